package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/transport"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestReAddedEmptyReplicaHeartbeat destroys a caught-up learner's replica
// while the leader still tracks it, hosts the group empty again on the same
// node, and lets the leader heartbeat it (issue 10, defect 6). Before
// per-incarnation replica IDs the new replica took the old one's raft ID,
// so the leader's heartbeat carried the old replica's commit, beyond the
// empty log, and raft panicked on the transport goroutine:
//
//	panic: tocommit(22) is out of range [lastIndex(0)]. Was the raft log corrupted, truncated, or lost?
//
// Now the destroyed incarnation leaves a tombstone: the node refuses to
// host it again, before and after a restart, and hosts the group again
// only as a new learner with a new ID.
func TestReAddedEmptyReplicaHeartbeat(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	for i := range 10 {
		c.propose(g, fmt.Appendf(nil, "k%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n4 := c.addNode(4, nil)
	l := c.settledLeader(g)
	id4, err := l.node.AddLearner(ctx, g, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := n4.node.CreateGroup(replicaConfig(g, id4)); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(g)
	if err := n4.node.DestroyGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	// The leader still tracks the learner, at its old match index.
	for _, gc := range []raftnode.GroupConfig{groupConfig(g), replicaConfig(g, id4)} {
		if err := n4.node.CreateGroup(gc); !errors.Is(err, raftnode.ErrStaleReplica) {
			t.Fatalf("CreateGroup(replica %#x) after its destruction: %v, want ErrStaleReplica", gc.ReplicaID, err)
		}
	}
	c.propose(g, []byte("after"))
	c.stop(n4)
	c.start(n4)
	if err := n4.node.CreateGroup(replicaConfig(g, id4)); !errors.Is(err, raftnode.ErrStaleReplica) {
		t.Fatalf("CreateGroup(replica %#x) after a restart: %v, want ErrStaleReplica", id4, err)
	}

	// Taken out and added again, the node hosts a new incarnation, which
	// the leader heartbeats from scratch.
	if _, err := c.onLeader(g, func(l *testNode) error { return l.node.RemoveMember(ctx, g, 4) }); err != nil {
		t.Fatal(err)
	}
	var id uint64
	if _, err := c.onLeader(g, func(l *testNode) (err error) { id, err = l.node.AddLearner(ctx, g, 4); return err }); err != nil {
		t.Fatal(err)
	}
	if replicaid.Node(id) != 4 || id <= id4 {
		t.Fatalf("new learner has replica ID %#x after %#x", id, id4)
	}
	if err := n4.node.CreateGroup(replicaConfig(g, id)); err != nil {
		t.Fatal(err)
	}
	c.propose(g, []byte("again"))
	c.waitConverged(g)
	if err := n4.node.Err(); err != nil {
		t.Fatalf("node 4 stopped: %v", err)
	}
}

// TestStaleIncarnationMessageDropped steps a follower with a message
// addressed to another incarnation of its node: it must be dropped, not
// stepped. Before the fix it was stepped:
//
//	incarnation_test.go:86: follower 1 stepped a message for replica 0x7000001: term 6 -> 12
func TestStaleIncarnationMessageDropped(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	c.waitConverged(g)
	l := c.settledLeader(g)
	f := c.follower(l)
	st, err := f.node.Status(g)
	if err != nil {
		t.Fatal(err)
	}
	other := replicaid.Make(7, f.id) // another incarnation of the follower's node
	m := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(l.id), To: proto.Uint64(other), Term: proto.Uint64(st.Term + 5)}
	before := f.node.Stats().StaleReplicaDrops
	f.node.HandleMessages(l.id, []transport.Envelope{{Group: g, Msg: m}})
	if got := f.node.Stats().StaleReplicaDrops - before; got != 1 {
		t.Errorf("follower counted %d messages for another incarnation, want 1", got)
	}
	c.propose(g, []byte("b"))
	after, err := f.node.Status(g)
	if err != nil {
		t.Fatal(err)
	}
	if after.Term > st.Term {
		t.Fatalf("follower %d stepped a message for replica %#x: term %d -> %d", f.id, other, st.Term, after.Term)
	}
}

// TestEmptyReplicaTakesNewerID re-creates, after a restart, an empty
// replica that never heard from a leader under a newer replica ID (the
// call that created it failed before it was recorded as hosted, and the
// learner was added again): it never said anything under the old ID, so it
// may. An older ID than the stored one is refused.
func TestEmptyReplicaTakesNewerID(t *testing.T) {
	const g = 1
	c := newCluster(t, 1, []uint64{g}, nil)
	n2 := c.addNode(2, nil)
	older, newer := replicaid.Make(100, 2), replicaid.Make(200, 2)
	if err := n2.node.CreateGroup(replicaConfig(g, older)); err != nil {
		t.Fatal(err)
	}
	c.stop(n2)
	c.start(n2)
	if err := n2.node.CreateGroup(replicaConfig(g, replicaid.Make(50, 2))); !errors.Is(err, raftnode.ErrStaleReplica) {
		t.Fatalf("CreateGroup under an ID older than the stored one: %v, want ErrStaleReplica", err)
	}
	if err := n2.node.CreateGroup(replicaConfig(g, newer)); err != nil {
		t.Fatal(err)
	}
	if st, err := n2.node.Status(g); err != nil || st.ReplicaID != newer {
		t.Fatalf("status %+v, %v; want replica ID %#x", st, err, newer)
	}
}
