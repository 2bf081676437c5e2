package replica_test

import (
	"errors"
	"testing"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/statemachine"
)

// TestRefusedAtApply: a write that passes the range check at evaluation
// but whose key is outside its group's spans when it applies (the
// descriptor the store checks against moved past the spans the group
// applies with, as a split between evaluation and apply would) is refused
// by the state machine on apply, reaches the router as a
// ShardMismatchError with the current descriptor, and writes nothing.
func TestRefusedAtApply(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	old := userShard
	t.Cleanup(func() { userShard = old })
	// The group still applies with the spans of [a, m).
	userShard = &kvpb.ShardDescriptor{Id: 2, Start: []byte("a"), End: []byte("z"), Replicas: []uint64{1}}

	_, err := s.Send(ctx, to(2, put("b", "1"), put("p", "1")))
	var sme *kvpb.ShardMismatchError
	if !errors.As(err, &sme) || !errors.Is(err, statemachine.ErrWrongShard) {
		t.Fatalf("write outside the group's spans: %v, want a ShardMismatchError from the apply check", err)
	}
	if len(sme.Descriptors) != 1 || sme.Descriptors[0].GetId() != 2 {
		t.Errorf("refusal carries %v, want the shard's descriptor", sme.Descriptors)
	}
	br, err := s.Send(ctx, to(2, get("b")))
	if err != nil || br.GetResponses()[0].GetGet().GetFound() {
		t.Fatalf("a command refused at apply wrote: %v, %v", br, err)
	}
}
