package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/raftnode"
)

// This file tests the life of a replica around its removal: reads racing
// the removal, removal decided on a Ready's final membership, and recovery
// of a replica whose removal was applied but not finished.

// TestRemoveThenReAddInOneReady delivers [remove N, add-learner N] to a
// lagging replica of N in one append: it applies both in one Ready and is a
// learner at the end, so it must keep its replica and its data rather than
// destroy itself on the first entry.
func TestRemoveThenReAddInOneReady(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	c.waitConverged(g)
	l := c.settledLeader(g)
	var v *testNode
	for _, id := range []uint64{1, 2, 3} {
		if id != l.id {
			v = c.nodes[id]
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// While v is cut off, the two others remove it and add it back as a
	// learner; v gets both entries at once when it is reachable again.
	c.isolate(v.id, true)
	if _, err := c.onLeader(g, func(l *testNode) error { return l.node.RemoveMember(ctx, g, v.id) }); err != nil {
		t.Fatalf("RemoveMember(%d): %v", v.id, err)
	}
	if _, err := c.onLeader(g, func(l *testNode) error { return l.node.AddLearner(ctx, g, v.id) }); err != nil {
		t.Fatalf("AddLearner(%d): %v", v.id, err)
	}
	c.isolate(v.id, false)
	waitFor(t, 10*time.Second, func() error {
		if r := v.removedGroups(); len(r) != 0 {
			t.Fatalf("node %d destroyed its replica (OnGroupRemoved %v) though it is a learner", v.id, r)
		}
		st, err := v.node.Status(g)
		if err != nil {
			return fmt.Errorf("node %d: %w", v.id, err)
		}
		if !slices.Equal(st.Learners, []uint64{v.id}) {
			return fmt.Errorf("node %d sees voters %v learners %v", v.id, st.Voters, st.Learners)
		}
		return nil
	})
	c.propose(g, []byte("b"))
	c.waitConverged(g)
	if r := v.removedGroups(); len(r) != 0 {
		t.Fatalf("node %d destroyed its replica: OnGroupRemoved %v", v.id, r)
	}
	if get(t, v, cmdKey(g, []byte("a"))) == nil || get(t, v, cmdKey(g, []byte("b"))) == nil {
		t.Fatalf("node %d lost the group's data", v.id)
	}
}

// TestReadRacesOwnRemoval removes the leader while a read it confirmed has
// not yet read: the removal deletes the replica's data, so the read must
// either see the data or fail as not-leader (safe to retry elsewhere),
// never see the keys absent.
func TestReadRacesOwnRemoval(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("k"))
	c.waitConverged(g)
	l := c.settledLeader(g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	confirmed := make(chan struct{})
	var found bool
	readErr := make(chan error, 1)
	go func() {
		readErr <- l.node.Read(ctx, g, func(r pebble.Reader) error {
			close(confirmed)
			// Hold the read between its confirmation and its access to
			// storage until the replica is gone.
			for !slices.Contains(l.removedGroups(), g) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Millisecond):
				}
			}
			v, closer, err := r.Get(cmdKey(g, []byte("k")))
			if errors.Is(err, pebble.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			found = v != nil
			return closer.Close()
		})
	}()
	select {
	case <-confirmed:
	case err := <-readErr:
		t.Fatalf("Read on the leader: %v", err)
	}
	if err := l.node.RemoveMember(ctx, g, l.id); err != nil {
		t.Fatalf("RemoveMember(leader %d): %v", l.id, err)
	}
	err := <-readErr
	var nle *raftnode.NotLeaderError
	switch {
	case err == nil && !found:
		t.Fatal("a read confirmed by ReadIndex saw the key absent: the replica's removal deleted it under the read")
	case err != nil && !errors.As(err, &nle):
		t.Fatalf("Read: %v, want success or *NotLeaderError", err)
	}
	t.Logf("Read: found=%v err=%v", found, err)
}
