package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrNotFound is returned by Get for an absent key.
	ErrNotFound = errors.New("client: key not found")
	// ErrAmbiguous means a write may or may not have been applied: the
	// cluster said so, or the request may have reached it and no answer
	// came back. The client does not retry such a write.
	ErrAmbiguous = errors.New("client: outcome unknown, the write may or may not have been applied")
	// ErrUnavailable means no endpoint could serve the call within the
	// retries and the deadline.
	ErrUnavailable = errors.New("client: cluster unavailable")
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("client: closed")

	// ErrInvalidArgument is matched by every error about a bad key, value,
	// range or request. The errors below each match it too.
	ErrInvalidArgument = errors.New("client: invalid argument")
	// ErrEmptyKey rejects an empty key.
	ErrEmptyKey = errors.New("client: empty key")
	// ErrKeyTooLarge rejects a key over the server's limit (4096 bytes).
	ErrKeyTooLarge = errors.New("client: key too large")
	// ErrValueTooLarge rejects a value (or batch) over the server's limit.
	ErrValueTooLarge = errors.New("client: value too large")
	// ErrInvalidRange rejects a scan whose end is not after its start.
	ErrInvalidRange = errors.New("client: invalid range")
	// ErrTimestampTooOld rejects a read at a timestamp older than the
	// cluster keeps history for.
	ErrTimestampTooOld = errors.New("client: timestamp older than the history kept")
	// ErrFutureTimestamp rejects a read at a timestamp the cluster has not
	// reached yet.
	ErrFutureTimestamp = errors.New("client: timestamp in the future")
)

// Error reasons and domain of the server's ErrorInfo details (see
// api/strata.proto and package server).
const (
	errorDomain           = "strata.dev"
	reasonAmbiguous       = "AMBIGUOUS_RESULT"
	reasonNotLeader       = "NOT_LEADER"
	reasonNodeUnavailable = "NODE_UNAVAILABLE"
)

var validationReasons = map[string]error{
	"EMPTY_KEY":         ErrEmptyKey,
	"KEY_TOO_LARGE":     ErrKeyTooLarge,
	"VALUE_TOO_LARGE":   ErrValueTooLarge,
	"INVALID_RANGE":     ErrInvalidRange,
	"TIMESTAMP_TOO_OLD": ErrTimestampTooOld,
	"FUTURE_TIMESTAMP":  ErrFutureTimestamp,
}

// rpcError is a failed call: its gRPC status (status.Code and
// status.FromError see it) and the sentinels and context error it matches.
type rpcError struct {
	method string
	st     *status.Status
	is     []error
	note   string // what the client concluded, prefixed to the message
}

func (e *rpcError) Error() string {
	msg := fmt.Sprintf("client: %s: %s (%s)", e.method, e.st.Message(), e.st.Code())
	if e.note != "" {
		msg = fmt.Sprintf("client: %s: %s: %s (%s)", e.method, e.note, e.st.Message(), e.st.Code())
	}
	return msg
}

func (e *rpcError) Unwrap() []error { return e.is }

func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// errorInfo returns the status's Strata ErrorInfo, or nil.
func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			return info
		}
	}
	return nil
}

func reasonOf(st *status.Status) string {
	if info := errorInfo(st); info != nil {
		return info.GetReason()
	}
	return ""
}

// notApplied reports whether a failed call certainly had no effect, so
// that even a write may be sent again.
func notApplied(st *status.Status) bool {
	switch reasonOf(st) {
	case reasonNotLeader, reasonNodeUnavailable:
		return true
	}
	return false
}

// convert turns a call's error into the error the caller gets. write
// says whether the call changes data and may have been sent: then an
// outcome the status leaves open is reported as ambiguous.
func convert(method string, err error, write bool) error {
	st := status.Convert(err)
	e := &rpcError{method: method, st: st}
	switch st.Code() {
	case codes.InvalidArgument:
		e.is = append(e.is, ErrInvalidArgument)
		if s, ok := validationReasons[reasonOf(st)]; ok {
			e.is = append(e.is, s)
		}
	case codes.DeadlineExceeded:
		e.is = append(e.is, context.DeadlineExceeded)
	case codes.Canceled:
		e.is = append(e.is, context.Canceled)
	case codes.Unavailable:
		e.is = append(e.is, ErrUnavailable)
	}
	switch {
	case reasonOf(st) == reasonAmbiguous:
		e.is = append(e.is, ErrAmbiguous)
	case write && !notApplied(st):
		switch st.Code() {
		case codes.Unknown, codes.DeadlineExceeded, codes.Canceled, codes.Unavailable:
			e.is = append(e.is, ErrAmbiguous)
			e.note = "the write may or may not have been applied"
		}
	}
	return e
}
