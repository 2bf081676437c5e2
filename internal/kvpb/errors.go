package kvpb

import (
	"errors"
	"fmt"
)

// The sentinel errors of the Error details that carry no data. Match them
// with errors.Is.
var (
	// ErrProposalDropped: raft dropped the proposal; the write had no
	// effect and may be sent again.
	ErrProposalDropped = errors.New("kvpb: proposal dropped")
	// ErrAmbiguous: the write may or may not have been applied.
	ErrAmbiguous = errors.New("kvpb: ambiguous result")
	// ErrUnavailable: the node cannot serve now; the request had no effect.
	ErrUnavailable = errors.New("kvpb: unavailable")
	// ErrTimestampTooOld: a read below the shard's GC threshold. The
	// threshold is in a *TimestampTooOldError (errors.As).
	ErrTimestampTooOld = errors.New("kvpb: timestamp below the GC threshold")
	// ErrRequestTooLarge: a batch or its answer exceeds a size limit;
	// sending it again cannot succeed.
	ErrRequestTooLarge = errors.New("kvpb: request too large")
)

// NotLeaderError: the replica does not lead Shard; Leader is the leader it
// knows, 0 if none. The request had no effect.
type NotLeaderError struct {
	Shard, Leader uint64
}

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return fmt.Sprintf("kvpb: not the leader of shard %d (leader unknown)", e.Shard)
	}
	return fmt.Sprintf("kvpb: not the leader of shard %d (leader is node %d)", e.Shard, e.Leader)
}

// ShardMismatchError: the node has no replica of Shard, its descriptor has
// another generation than the request's, or a key is outside the shard's
// range; Descriptors are the current ones the node knows. The request had
// no effect.
type ShardMismatchError struct {
	Shard, Generation uint64 // as requested
	Descriptors       []*ShardDescriptor
}

func (e *ShardMismatchError) Error() string {
	return fmt.Sprintf("kvpb: shard %d generation %d does not match the replica (%d current descriptors)",
		e.Shard, e.Generation, len(e.Descriptors))
}

// TimestampTooOldError: a read below the shard's GC threshold. It matches
// ErrTimestampTooOld with errors.Is.
type TimestampTooOldError struct {
	Threshold uint64
}

func (e *TimestampTooOldError) Error() string {
	return fmt.Sprintf("%v (threshold %d)", ErrTimestampTooOld, e.Threshold)
}

// Is makes errors.Is(e, ErrTimestampTooOld) true.
func (e *TimestampTooOldError) Is(target error) bool { return target == ErrTimestampTooOld }

// ErrorOf converts err into an Error for the wire: kvpb's own errors,
// found with errors.As and errors.Is anywhere in err's chain, become their
// typed detail; anything else only a message. The message is err's text.
// ErrorOf(nil) is nil.
//
// When err matches several details, ErrAmbiguous wins: a write that may have
// applied must never be reported as one that certainly did not.
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	e := &Error{Message: err.Error()}
	var (
		nle *NotLeaderError
		sme *ShardMismatchError
		too *TimestampTooOldError
	)
	switch {
	case errors.Is(err, ErrAmbiguous):
		e.Detail = &Error_Ambiguous{Ambiguous: &Ambiguous{}}
	case errors.As(err, &sme):
		e.Detail = &Error_ShardMismatch{ShardMismatch: &ShardMismatch{
			RequestedShardId: sme.Shard, RequestedGeneration: sme.Generation, Descriptors: sme.Descriptors}}
	case errors.As(err, &nle):
		e.Detail = &Error_NotLeader{NotLeader: &NotLeader{ShardId: nle.Shard, LeaderId: nle.Leader}}
	case errors.Is(err, ErrProposalDropped):
		e.Detail = &Error_ProposalDropped{ProposalDropped: &ProposalDropped{}}
	case errors.As(err, &too):
		e.Detail = &Error_TimestampTooOld{TimestampTooOld: &TimestampTooOld{Threshold: too.Threshold}}
	case errors.Is(err, ErrTimestampTooOld):
		e.Detail = &Error_TimestampTooOld{TimestampTooOld: &TimestampTooOld{}}
	case errors.Is(err, ErrRequestTooLarge):
		e.Detail = &Error_RequestTooLarge{RequestTooLarge: &RequestTooLarge{}}
	case errors.Is(err, ErrUnavailable):
		e.Detail = &Error_Unavailable{Unavailable: &Unavailable{}}
	}
	return e
}

// Err converts e back into a Go error: its detail as the typed error or
// sentinel that ErrorOf recognizes (so ErrorOf(e.Err()) has e's detail),
// with e's message as its text. A nil e is a nil error; an e with no detail
// (or one this binary does not know) is an error with e's message only.
func (e *Error) Err() error {
	if e == nil {
		return nil
	}
	var d error
	switch x := e.Detail.(type) {
	case *Error_NotLeader:
		d = &NotLeaderError{Shard: x.NotLeader.GetShardId(), Leader: x.NotLeader.GetLeaderId()}
	case *Error_ShardMismatch:
		d = &ShardMismatchError{Shard: x.ShardMismatch.GetRequestedShardId(),
			Generation: x.ShardMismatch.GetRequestedGeneration(), Descriptors: x.ShardMismatch.GetDescriptors()}
	case *Error_ProposalDropped:
		d = ErrProposalDropped
	case *Error_Ambiguous:
		d = ErrAmbiguous
	case *Error_Unavailable:
		d = ErrUnavailable
	case *Error_TimestampTooOld:
		d = &TimestampTooOldError{Threshold: x.TimestampTooOld.GetThreshold()}
	case *Error_RequestTooLarge:
		d = ErrRequestTooLarge
	default:
		msg := e.Message
		if msg == "" {
			msg = "kvpb: remote error"
		}
		return &remoteError{msg: msg}
	}
	if e.Message == "" || e.Message == d.Error() {
		return d
	}
	return &remoteError{msg: e.Message, detail: d}
}

// remoteError is an error that came over the wire: its text is the
// sender's, and it unwraps to the typed detail, if any.
type remoteError struct {
	msg    string
	detail error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.detail }
