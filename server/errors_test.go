package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/strata-kv/strata"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStatusOf(t *testing.T) {
	addrs := func(id uint64) string { return map[uint64]string{2: "10.0.0.2:7370"}[id] }
	for _, tc := range []struct {
		name   string
		err    error
		code   codes.Code
		reason string            // "" = no ErrorInfo
		md     map[string]string // checked when reason is set
	}{
		{name: "nil", err: nil, code: codes.OK},
		{name: "empty key", err: strata.ErrEmptyKey, code: codes.InvalidArgument, reason: ReasonEmptyKey},
		{name: "key too large", err: fmt.Errorf("%w: 5000 bytes", strata.ErrKeyTooLarge), code: codes.InvalidArgument, reason: ReasonKeyTooLarge},
		{name: "value too large", err: fmt.Errorf("batch op 3: %w", strata.ErrValueTooLarge), code: codes.InvalidArgument, reason: ReasonValueTooLarge},
		{name: "invalid range", err: strata.ErrInvalidRange, code: codes.InvalidArgument, reason: ReasonInvalidRange},
		{name: "bad request", err: fmt.Errorf("%w: delete with value", errBadRequest), code: codes.InvalidArgument, reason: ReasonBadRequest},
		{name: "ambiguous", err: fmt.Errorf("%w: forwarding", strata.ErrAmbiguous), code: codes.Unknown, reason: ReasonAmbiguous},
		{name: "ambiguous deadline", err: fmt.Errorf("%w: %w", strata.ErrAmbiguous, context.DeadlineExceeded), code: codes.Unknown, reason: ReasonAmbiguous},
		{name: "ambiguous in joined batch error", err: errors.Join(nil, fmt.Errorf("%w: x", strata.ErrAmbiguous)), code: codes.Unknown, reason: ReasonAmbiguous},
		{name: "not leader, known", err: &strata.NotLeaderError{Shard: 3, Leader: 2}, code: codes.Unavailable, reason: ReasonNotLeader,
			md: map[string]string{"shard_id": "3", "leader_id": "2", "leader_addr": "10.0.0.2:7370"}},
		{name: "not leader, address unknown", err: fmt.Errorf("wrapped: %w", &strata.NotLeaderError{Shard: 3, Leader: 5}), code: codes.Unavailable, reason: ReasonNotLeader,
			md: map[string]string{"shard_id": "3", "leader_id": "5", "leader_addr": ""}},
		{name: "not leader, leader unknown", err: &strata.NotLeaderError{Shard: 4}, code: codes.Unavailable, reason: ReasonNotLeader,
			md: map[string]string{"shard_id": "4", "leader_id": "", "leader_addr": ""}},
		{name: "closed", err: strata.ErrClosed, code: codes.Unavailable, reason: ReasonNodeUnavailable},
		{name: "stopped", err: fmt.Errorf("%w: fsync", strata.ErrStopped), code: codes.Unavailable, reason: ReasonNodeUnavailable},
		{name: "deadline", err: fmt.Errorf("%w (last attempt: x)", context.DeadlineExceeded), code: codes.DeadlineExceeded},
		{name: "canceled", err: context.Canceled, code: codes.Canceled},
		{name: "admin status passes through", err: status.Error(codes.FailedPrecondition, "no such shard"), code: codes.FailedPrecondition},
		{name: "other", err: errors.New("disk on fire"), code: codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := statusOf(tc.err, addrs)
			st := status.Convert(got)
			if st.Code() != tc.code {
				t.Fatalf("code %v, want %v (%v)", st.Code(), tc.code, got)
			}
			if tc.err != nil && st.Message() != tc.err.Error() && tc.code != codes.FailedPrecondition {
				t.Errorf("message %q, want the error's %q", st.Message(), tc.err.Error())
			}
			var info *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if tc.reason == "" {
				if info != nil {
					t.Fatalf("unexpected ErrorInfo %v", info)
				}
				return
			}
			if info == nil || info.Reason != tc.reason || info.Domain != ErrorDomain {
				t.Fatalf("ErrorInfo %v, want reason %s domain %s", info, tc.reason, ErrorDomain)
			}
			for k, v := range tc.md {
				if got, ok := info.Metadata[k]; !ok || got != v {
					t.Errorf("metadata %s = %q (present %v), want %q", k, got, ok, v)
				}
			}
		})
	}
}

func TestStatusOfNilResolver(t *testing.T) {
	st := status.Convert(statusOf(&strata.NotLeaderError{Shard: 2, Leader: 3}, nil))
	if st.Code() != codes.Unavailable {
		t.Fatalf("code %v", st.Code())
	}
}
