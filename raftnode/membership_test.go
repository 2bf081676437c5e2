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

// TestMembership walks a group through the life of a replica: a fresh node
// joins as a learner and catches up, is promoted to voter, another member
// is removed (its replica destroyed with its data), and leadership moves
// to the new node.
func TestMembership(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	for i := range 20 {
		c.propose(g, fmt.Appendf(nil, "k%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The leader adds a learner on node 4, which then hosts the group
	// under the learner's replica ID with no peers: it waits for the leader.
	l := c.leader(g)
	id4, err := l.node.AddLearner(ctx, g, 4)
	if err != nil {
		t.Fatalf("AddLearner: %v", err)
	}
	n4 := c.addNode(4, []raftnode.GroupConfig{replicaConfig(g, id4)})
	if st, err := n4.node.Status(g); err != nil || st.Applied != 0 || len(st.Voters) != 0 || st.ReplicaID != id4 {
		t.Fatalf("fresh replica: %+v, %v", st, err)
	}
	applied, sum := c.waitConverged(g)
	t.Logf("learner caught up to %d (checksum %08x), %d snapshot(s) received", applied, sum, n4.node.Stats().SnapshotsReceived)
	st, err := c.settledLeader(g).node.Status(g)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Learners, []uint64{4}) || !slices.Equal(st.Voters, []uint64{1, 2, 3}) {
		t.Fatalf("after AddLearner: voters %v learners %v", st.Voters, st.Learners)
	}
	var nle *raftnode.NotLeaderError
	if _, err := n4.node.Propose(ctx, g, []byte("x")); !errors.As(err, &nle) || nle.Leader != st.Leader {
		t.Fatalf("Propose on the learner: %v, want NotLeaderError{Leader: %d}", err, st.Leader)
	}

	if err := c.leader(g).node.PromoteVoter(ctx, g, 4); err != nil {
		t.Fatalf("PromoteVoter: %v", err)
	}
	waitFor(t, 5*time.Second, func() error {
		st, err := n4.node.Status(g)
		if err != nil {
			return err
		}
		if !slices.Equal(st.Voters, []uint64{1, 2, 3, 4}) || len(st.Learners) != 0 {
			return fmt.Errorf("node 4 sees voters %v learners %v", st.Voters, st.Learners)
		}
		return nil
	})

	// Remove a voter that is neither the leader nor the new node.
	l = c.leader(g)
	victim := c.follower(l)
	if get(t, victim, counterKey(g)) == nil {
		t.Fatal("the victim has no data to lose")
	}
	if err := l.node.RemoveMember(ctx, g, victim.id); err != nil {
		t.Fatalf("RemoveMember(%d): %v", victim.id, err)
	}
	waitFor(t, 5*time.Second, func() error {
		if gs := victim.node.Groups(); slices.Contains(gs, g) {
			return fmt.Errorf("removed node %d still hosts %v", victim.id, gs)
		}
		if r := victim.removedGroups(); !slices.Equal(r, []uint64{g}) {
			return fmt.Errorf("OnGroupRemoved calls: %v", r)
		}
		return nil
	})
	if _, err := victim.node.Status(g); !errors.Is(err, raftnode.ErrUnknownGroup) {
		t.Fatalf("Status on the removed node: %v, want ErrUnknownGroup", err)
	}
	if n := spanKeys(t, victim, span(g).Start, span(g).End); n != 0 {
		t.Fatalf("removed node kept %d keys of the group's data", n)
	}
	rs, re := storage.GroupRaftSpan(g)
	if n := spanKeys(t, victim, rs, re); n != 0 {
		t.Fatalf("removed node kept %d raft keys of the group", n)
	}
	for _, tn := range c.running(g) {
		st, err := tn.node.Status(g)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(st.Voters, victim.id) {
			waitFor(t, 5*time.Second, func() error {
				st, _ := tn.node.Status(g)
				if slices.Contains(st.Voters, victim.id) {
					return fmt.Errorf("node %d still lists %d as a voter: %v", tn.id, victim.id, st.Voters)
				}
				return nil
			})
		}
	}
	c.propose(g, []byte("after-remove"))
	c.waitConverged(g)

	// Hand leadership to the node that joined.
	if err := c.leader(g).node.TransferLeader(g, 4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if l := c.leader(g); l.id != 4 {
			return fmt.Errorf("leader is %d, want 4", l.id)
		}
		return nil
	})
	if _, err := n4.node.Propose(ctx, g, []byte("on-4")); err != nil {
		t.Fatalf("Propose on the new leader: %v", err)
	}
	c.waitConverged(g)

	// The node that joined empty recovers its replica after a restart.
	c.stop(n4)
	c.propose(g, []byte("while-4-down"))
	c.start(n4)
	c.propose(g, []byte("after-restart"))
	c.waitConverged(g)
	if n := victim.node.Stats().UnknownGroupDrops; n > 0 {
		t.Logf("removed node dropped %d messages for the group it left", n)
	}
}

// TestTransferLeader moves leadership of several groups around.
func TestTransferLeader(t *testing.T) {
	groups := []uint64{1, 2, 3}
	c := newCluster(t, 3, groups, nil)
	for _, g := range groups {
		c.propose(g, []byte("a"))
		for _, to := range []uint64{1, 2, 3} {
			l := c.leader(g)
			if l.id == to {
				continue
			}
			if err := l.node.TransferLeader(g, to); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, func() error {
				if l := c.leader(g); l.id != to {
					return fmt.Errorf("group %d: leader %d, want %d", g, l.id, to)
				}
				return nil
			})
			c.propose(g, fmt.Appendf(nil, "to%d", to))
		}
		c.waitConverged(g)
	}
}

// TestConfChangeRefused checks a membership change raft refuses because
// another is still pending: raft swaps it for an empty entry rather than
// failing the call, so raftnode must report it as dropped (safe to retry)
// instead of leaving the caller waiting for an entry that never comes.
func TestConfChangeRefused(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	l := c.leader(g)
	// Without a quorum the first change stays pending.
	for id := range c.nodes {
		if id != l.id {
			c.isolate(id, true)
		}
	}
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := l.node.AddLearner(ctx, g, 5)
		first <- err
	}()
	time.Sleep(30 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := l.node.AddLearner(ctx, g, 6)
	if !errors.Is(err, raftnode.ErrProposalDropped) {
		t.Fatalf("second AddLearner while one is pending: %v after %v, want ErrProposalDropped", err, time.Since(start))
	}
	for id := range c.nodes {
		c.isolate(id, false)
	}
	if err := <-first; err != nil {
		// The old leader may have lost leadership while isolated.
		if !errors.Is(err, raftnode.ErrProposalDropped) && !errors.Is(err, raftnode.ErrAmbiguous) {
			t.Fatalf("first AddLearner: %v", err)
		}
	}
	c.propose(g, []byte("b"))
	c.waitConverged(g)
	st, _ := c.leader(g).node.Status(g)
	if slices.Contains(st.Learners, 6) {
		t.Fatalf("the refused change applied: learners %v", st.Learners)
	}
}

// TestRemoveLeader removes the leader itself: it steps down and destroys
// its replica, and the remaining members elect a leader and go on.
func TestRemoveLeader(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	l := c.leader(g)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.node.RemoveMember(ctx, g, l.id); err != nil {
		t.Fatalf("RemoveMember(leader %d): %v", l.id, err)
	}
	waitFor(t, 5*time.Second, func() error {
		if slices.Contains(l.node.Groups(), g) || !slices.Equal(l.removedGroups(), []uint64{g}) {
			return fmt.Errorf("removed leader still hosts the group (OnGroupRemoved: %v)", l.removedGroups())
		}
		return nil
	})
	if n := spanKeys(t, l, span(g).Start, span(g).End); n != 0 {
		t.Fatalf("removed leader kept %d keys", n)
	}
	_, nl := c.propose(g, []byte("b"))
	if nl == l {
		t.Fatal("the removed node still leads")
	}
	st, _ := nl.node.Status(g)
	if slices.Contains(st.Voters, l.id) || len(st.Voters) != 2 {
		t.Fatalf("voters after removing %d: %v", l.id, st.Voters)
	}
	c.waitConverged(g)
}
