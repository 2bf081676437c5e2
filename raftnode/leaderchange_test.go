package raftnode_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata/raftnode"
)

// TestOnLeaderChange: every replica reports the leader it learns of through
// Config.OnLeaderChange, and the survivors report a new one after the
// leader stops.
func TestOnLeaderChange(t *testing.T) {
	const g = 1
	var mu sync.Mutex
	seen := map[uint64]uint64{} // node -> the last leader it reported
	c := newCluster(t, 3, []uint64{g}, func(cfg *raftnode.Config) {
		node := cfg.NodeID
		cfg.OnLeaderChange = func(group, leader uint64) {
			if group != g {
				t.Errorf("node %d: leader change of group %d", node, group)
			}
			mu.Lock()
			seen[node] = leader
			mu.Unlock()
		}
	})
	reported := func(nodes []*testNode, cond func(uint64) bool) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			for _, tn := range nodes {
				if l := seen[tn.id]; !cond(l) {
					return fmt.Errorf("node %d reported leader %d", tn.id, l)
				}
			}
			return nil
		}
	}
	l := c.settledLeader(g)
	waitFor(t, 5*time.Second, reported(c.running(g), func(lead uint64) bool { return lead == l.id }))
	c.stop(l)
	next := c.settledLeader(g)
	if next == l {
		t.Fatal("the stopped node still leads")
	}
	waitFor(t, 5*time.Second, reported(c.running(g), func(lead uint64) bool { return lead == next.id }))
}
