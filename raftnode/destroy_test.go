package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

// TestDestroyGroup drops a follower's replica as a stale one is dropped:
// raft state, data and the hosting go, OnGroupRemoved is called, and a
// second call finds nothing. Once the leader no longer counts the node
// (a member's replica is never destroyed this way otherwise: the leader's
// progress would still claim the entries it lost), the node hosts an empty
// replica again, joins as a learner and catches up.
func TestDestroyGroup(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	for i := range 10 {
		c.propose(g, fmt.Appendf(nil, "k%d", i))
	}
	c.waitConverged(g)
	l := c.leader(g)
	victim := c.follower(l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := victim.node.DestroyGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if gs := victim.node.Groups(); slices.Contains(gs, g) {
		t.Fatalf("node %d still hosts %v", victim.id, gs)
	}
	if r := victim.removedGroups(); !slices.Equal(r, []uint64{g}) {
		t.Fatalf("OnGroupRemoved calls: %v", r)
	}
	if n := spanKeys(t, victim, span(g).Start, span(g).End); n != 0 {
		t.Fatalf("destroyed replica kept %d keys of the group's data", n)
	}
	rs, re := storage.GroupRaftSpan(g)
	if n := spanKeys(t, victim, rs, re); n != 0 {
		t.Fatalf("destroyed replica kept %d raft state keys", n)
	}
	if err := victim.node.DestroyGroup(ctx, g); !errors.Is(err, raftnode.ErrUnknownGroup) {
		t.Fatalf("second DestroyGroup: %v, want ErrUnknownGroup", err)
	}
	// The others still commit.
	c.propose(g, []byte("after"))
	if err := l.node.RemoveMember(ctx, g, victim.id); err != nil {
		t.Fatal(err)
	}
	// Every other replica applies the removal before the node comes back
	// empty. (One that had not, if it became leader, would still track the
	// old replica at its match index; the new replica has another ID, so
	// its messages to the old one are dropped: issue 10, defect 6.)
	waitFor(t, 10*time.Second, func() error {
		for _, tn := range c.nodes {
			if tn == victim {
				continue
			}
			st, err := tn.node.Status(g)
			if err != nil {
				return err
			}
			if slices.Contains(st.Voters, victim.id) || slices.Contains(st.Learners, victim.id) {
				return fmt.Errorf("node %d has not applied the removal of node %d", tn.id, victim.id)
			}
		}
		return nil
	})
	id, err := l.node.AddLearner(ctx, g, victim.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.node.CreateGroup(groupConfig(g)); !errors.Is(err, raftnode.ErrStaleReplica) {
		t.Fatalf("CreateGroup of the destroyed incarnation: %v, want ErrStaleReplica", err)
	}
	if err := victim.node.CreateGroup(replicaConfig(g, id)); err != nil {
		t.Fatal(err)
	}
	if a, err := victim.node.AppliedIndex(g); err != nil || a != 0 {
		t.Fatalf("new replica: applied %d, %v; want an empty one", a, err)
	}
	waitFor(t, 10*time.Second, func() error {
		st, err := l.node.Status(g)
		if err != nil {
			return err
		}
		if a, err := victim.node.AppliedIndex(g); err != nil || a < st.Commit {
			return fmt.Errorf("new replica applied %d, %v; leader committed %d", a, err, st.Commit)
		}
		return nil
	})
	if get(t, victim, counterKey(g)) == nil {
		t.Fatal("the new replica has no data")
	}
}
