package raftnode_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
)

type replicaState struct {
	applied uint64
	sum     uint32
}

// TestRestart closes a node, writes without it, and reopens it on the same
// directory: it recovers every group at the applied index and checksum it
// had, then catches up. Then the whole cluster restarts and serves again.
func TestRestart(t *testing.T) {
	groups := []uint64{1, 2, 3, 4}
	c := newCluster(t, 3, groups, nil)
	for _, g := range groups {
		for i := range 10 {
			c.propose(g, fmt.Appendf(nil, "a%d", i))
		}
		c.waitConverged(g)
	}
	down := c.nodes[2]
	had := c.stopRecording(down, groups)
	for _, g := range groups {
		for i := range 10 {
			c.propose(g, fmt.Appendf(nil, "b%d", i))
		}
	}

	// Reopened but not started: the recovered state is what it was.
	c.open(down)
	if got := down.node.Groups(); !slices.Equal(got, groups) {
		t.Fatalf("reopened node hosts %v, want %v", got, groups)
	}
	for _, g := range groups {
		a, s, err := down.node.Checksum(g)
		if err != nil {
			t.Fatal(err)
		}
		ai, err := down.node.AppliedIndex(g)
		if err != nil {
			t.Fatal(err)
		}
		if (replicaState{a, s}) != had[g] || ai != a {
			t.Fatalf("group %d reopened at %d/%08x (AppliedIndex %d), closed at %d/%08x", g, a, s, ai, had[g].applied, had[g].sum)
		}
	}
	c.start(down)
	for _, g := range groups {
		c.waitConverged(g)
		if got := binary.BigEndian.Uint64(get(t, down, counterKey(g))); got != 20 {
			t.Fatalf("group %d: restarted node's counter %d, want 20", g, got)
		}
	}

	// Everyone restarts. Each node's state is taken as it closes: under
	// load an election between convergence and close appends an empty
	// entry on some nodes and not others.
	for _, g := range groups {
		c.waitConverged(g)
	}
	closed := map[uint64]map[uint64]replicaState{}
	for id := uint64(1); id <= 3; id++ {
		closed[id] = c.stopRecording(c.nodes[id], groups)
	}
	for id := uint64(1); id <= 3; id++ {
		c.open(c.nodes[id])
		for _, g := range groups {
			a, s, err := c.nodes[id].node.Checksum(g)
			if err != nil {
				t.Fatal(err)
			}
			if was := closed[id][g]; (replicaState{a, s}) != was {
				t.Fatalf("node %d group %d reopened at %d/%08x, closed at %d/%08x", id, g, a, s, was.applied, was.sum)
			}
		}
	}
	for id := uint64(1); id <= 3; id++ {
		c.start(c.nodes[id])
	}
	for _, g := range groups {
		c.propose(g, []byte("c"))
		c.waitConverged(g)
		for _, tn := range c.nodes {
			if got := binary.BigEndian.Uint64(get(t, tn, counterKey(g))); got != 21 {
				t.Fatalf("node %d group %d: counter %d after restart, want 21", tn.id, g, got)
			}
		}
	}
}
