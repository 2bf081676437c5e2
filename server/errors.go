package server

import (
	"context"
	"errors"
	"strconv"

	"github.com/strata-kv/strata"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of every ErrorInfo this package attaches.
const ErrorDomain = "strata.dev"

// ErrorInfo reasons attached to statuses. Clients match on them rather than
// on messages.
const (
	// ReasonAmbiguous: a write may or may not have been applied (Unknown).
	ReasonAmbiguous = "AMBIGUOUS_RESULT"
	// ReasonNotLeader: the node could not reach the shard's leader
	// (Unavailable). Metadata: leader_id and leader_addr (the leader's
	// client address), both "" when unknown, and shard_id. The request was
	// not applied.
	ReasonNotLeader = "NOT_LEADER"
	// ReasonNodeUnavailable: the node is closed or stopped (Unavailable).
	// The request was not applied.
	ReasonNodeUnavailable = "NODE_UNAVAILABLE"
	// Validation failures (InvalidArgument); the request was not applied.
	ReasonEmptyKey      = "EMPTY_KEY"
	ReasonKeyTooLarge   = "KEY_TOO_LARGE"
	ReasonValueTooLarge = "VALUE_TOO_LARGE"
	ReasonInvalidRange  = "INVALID_RANGE"
	// ReasonTimestampTooOld: a read below the history kept (InvalidArgument).
	ReasonTimestampTooOld = "TIMESTAMP_TOO_OLD"
	// ReasonFutureTimestamp: a read at a timestamp not yet reached
	// (InvalidArgument).
	ReasonFutureTimestamp = "FUTURE_TIMESTAMP"
	ReasonBadRequest      = "BAD_REQUEST"
	// ReasonSendTimeout: the client took no message of a stream within the
	// node's send timeout (DeadlineExceeded); the node ended the stream.
	ReasonSendTimeout = "SEND_TIMEOUT"
)

// errBadRequest marks a request malformed at the wire level (not one of the
// DB's own validation errors).
var errBadRequest = errors.New("server: bad request")

// statusOf maps an error of the DB (or of this package) to the gRPC status
// the client sees. clientAddr resolves a node ID to its client address for
// leader hints; it may be nil. Every status this package returns is made
// here.
func statusOf(err error, clientAddr func(uint64) string) error {
	if err == nil {
		return nil
	}
	var nle *strata.NotLeaderError
	switch {
	// Validation first: nothing was attempted.
	case errors.Is(err, strata.ErrEmptyKey):
		return withInfo(codes.InvalidArgument, err, ReasonEmptyKey, nil)
	case errors.Is(err, strata.ErrKeyTooLarge):
		return withInfo(codes.InvalidArgument, err, ReasonKeyTooLarge, nil)
	case errors.Is(err, strata.ErrValueTooLarge):
		return withInfo(codes.InvalidArgument, err, ReasonValueTooLarge, nil)
	case errors.Is(err, strata.ErrInvalidRange):
		return withInfo(codes.InvalidArgument, err, ReasonInvalidRange, nil)
	case errors.Is(err, strata.ErrTimestampTooOld):
		return withInfo(codes.InvalidArgument, err, ReasonTimestampTooOld, nil)
	case errors.Is(err, strata.ErrFutureTimestamp):
		return withInfo(codes.InvalidArgument, err, ReasonFutureTimestamp, nil)
	case errors.Is(err, errBadRequest):
		return withInfo(codes.InvalidArgument, err, ReasonBadRequest, nil)
	// Ambiguity before the context errors it often wraps: a write whose
	// context ended after proposing is ambiguous, not merely late.
	case errors.Is(err, strata.ErrAmbiguous):
		return withInfo(codes.Unknown, err, ReasonAmbiguous, nil)
	case errors.As(err, &nle):
		md := map[string]string{"shard_id": strconv.FormatUint(nle.Shard, 10), "leader_id": "", "leader_addr": ""}
		if nle.Leader != 0 {
			md["leader_id"] = strconv.FormatUint(nle.Leader, 10)
			if clientAddr != nil {
				md["leader_addr"] = clientAddr(nle.Leader)
			}
		}
		return withInfo(codes.Unavailable, err, ReasonNotLeader, md)
	case errors.Is(err, strata.ErrClosed), errors.Is(err, strata.ErrStopped):
		return withInfo(codes.Unavailable, err, ReasonNodeUnavailable, nil)
	case errors.Is(err, errSendTimeout):
		return withInfo(codes.DeadlineExceeded, err, ReasonSendTimeout, nil)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	if s, ok := status.FromError(err); ok {
		return s.Err() // an Admin implementation's own status
	}
	return status.Error(codes.Internal, err.Error())
}

func withInfo(code codes.Code, err error, reason string, md map[string]string) error {
	s := status.New(code, err.Error())
	if d, derr := s.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: md}); derr == nil {
		s = d
	}
	return s.Err()
}
