package kvpb

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestErrorOf(t *testing.T) {
	desc := &ShardDescriptor{Id: 3, Generation: 4, Start: []byte("a"), Replicas: []uint64{1, 2}}
	for _, tc := range []struct {
		err  error
		want *Error
	}{
		{nil, nil},
		{errors.New("boom"), &Error{Message: "boom"}},
		{context.DeadlineExceeded, &Error{Message: context.DeadlineExceeded.Error()}},
		{&NotLeaderError{Shard: 2, Leader: 3},
			&Error{Detail: &Error_NotLeader{NotLeader: &NotLeader{ShardId: 2, LeaderId: 3}}}},
		{&ShardMismatchError{Shard: 2, Generation: 1, Descriptors: []*ShardDescriptor{desc}},
			&Error{Detail: &Error_ShardMismatch{ShardMismatch: &ShardMismatch{RequestedShardId: 2, RequestedGeneration: 1, Descriptors: []*ShardDescriptor{desc}}}}},
		{fmt.Errorf("propose: %w", ErrProposalDropped), &Error{Detail: &Error_ProposalDropped{ProposalDropped: &ProposalDropped{}}}},
		{ErrAmbiguous, &Error{Detail: &Error_Ambiguous{Ambiguous: &Ambiguous{}}}},
		{ErrUnavailable, &Error{Detail: &Error_Unavailable{Unavailable: &Unavailable{}}}},
		{&TimestampTooOldError{Threshold: 9}, &Error{Detail: &Error_TimestampTooOld{TimestampTooOld: &TimestampTooOld{Threshold: 9}}}},
		{fmt.Errorf("read: %w", ErrTimestampTooOld), &Error{Detail: &Error_TimestampTooOld{TimestampTooOld: &TimestampTooOld{}}}},
		{ErrRequestTooLarge, &Error{Detail: &Error_RequestTooLarge{RequestTooLarge: &RequestTooLarge{}}}},
		// Ambiguity wins over any other detail in the chain.
		{fmt.Errorf("%w after %w", ErrAmbiguous, &NotLeaderError{Shard: 2}), &Error{Detail: &Error_Ambiguous{Ambiguous: &Ambiguous{}}}},
		{errors.Join(ErrProposalDropped, ErrAmbiguous), &Error{Detail: &Error_Ambiguous{Ambiguous: &Ambiguous{}}}},
	} {
		got := ErrorOf(tc.err)
		if tc.want != nil {
			tc.want.Message = tc.err.Error()
		}
		if !proto.Equal(tc.want, got) {
			t.Errorf("ErrorOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestErrRoundTrip(t *testing.T) {
	var nilErr *Error
	if nilErr.Err() != nil {
		t.Fatal("nil *Error is a non-nil error")
	}
	for _, err := range []error{
		errors.New("boom"),
		&NotLeaderError{Shard: 2, Leader: 3},
		fmt.Errorf("on node 4: %w", &NotLeaderError{Shard: 2}),
		&ShardMismatchError{Shard: 2, Generation: 1, Descriptors: []*ShardDescriptor{{Id: 2, Generation: 2}}},
		fmt.Errorf("x: %w", ErrProposalDropped),
		ErrAmbiguous,
		fmt.Errorf("node stopping: %w", ErrUnavailable),
		&TimestampTooOldError{Threshold: 7},
		ErrRequestTooLarge,
	} {
		e := ErrorOf(err)
		back := e.Err()
		if back.Error() != err.Error() {
			t.Errorf("%v: came back as %q", err, back.Error())
		}
		if again := ErrorOf(back); !proto.Equal(e, again) {
			t.Errorf("%v: not stable through Err and ErrorOf: %v, then %v", err, e, again)
		}
		for _, s := range []error{ErrProposalDropped, ErrAmbiguous, ErrUnavailable, ErrTimestampTooOld, ErrRequestTooLarge} {
			if errors.Is(err, s) != errors.Is(back, s) {
				t.Errorf("%v: errors.Is(%v) differs after the round trip", err, s)
			}
		}
		var nle, nle2 *NotLeaderError
		if errors.As(err, &nle) != errors.As(back, &nle2) || (nle != nil && *nle != *nle2) {
			t.Errorf("%v: NotLeaderError lost: %v", err, back)
		}
		var too, too2 *TimestampTooOldError
		if errors.As(err, &too) != errors.As(back, &too2) || (too != nil && *too != *too2) {
			t.Errorf("%v: TimestampTooOldError lost: %v", err, back)
		}
	}
}

func TestErrOverTheWire(t *testing.T) {
	b, err := proto.Marshal(ErrorOf(fmt.Errorf("serving: %w", &NotLeaderError{Shard: 5, Leader: 6})))
	if err != nil {
		t.Fatal(err)
	}
	var e Error
	if err := proto.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	var nle *NotLeaderError
	if got := e.Err(); !errors.As(got, &nle) || nle.Shard != 5 || nle.Leader != 6 || got.Error() != "serving: "+nle.Error() {
		t.Fatalf("Err() = %v (%#v)", got, nle)
	}
	if got := (&Error{}).Err(); got == nil || got.Error() == "" {
		t.Fatalf("an empty Error converts to %v", got)
	}
}

// FuzzError checks that any Error that decodes converts to a Go error and
// back with its detail kept, and is stable from then on.
func FuzzError(f *testing.F) {
	for _, err := range []error{errors.New("x"), &NotLeaderError{Shard: 1, Leader: 2}, ErrAmbiguous,
		&ShardMismatchError{Descriptors: []*ShardDescriptor{{Id: 2}}}, &TimestampTooOldError{Threshold: 3}} {
		b, _ := proto.Marshal(ErrorOf(err))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Error
		if proto.Unmarshal(b, &e) != nil {
			return
		}
		err := e.Err()
		if err == nil {
			t.Fatal("a decoded Error converts to nil")
		}
		once := ErrorOf(err)
		if (e.Detail == nil) != (once.Detail == nil) {
			t.Fatalf("detail %T became %T", e.Detail, once.Detail)
		}
		if e.Detail != nil && fmt.Sprintf("%T", e.Detail) != fmt.Sprintf("%T", once.Detail) {
			t.Fatalf("detail %T became %T", e.Detail, once.Detail)
		}
		if twice := ErrorOf(once.Err()); !proto.Equal(once, twice) {
			t.Fatalf("not stable: %v, then %v", once, twice)
		}
	})
}
