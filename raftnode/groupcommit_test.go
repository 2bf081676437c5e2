package raftnode_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata/raftnode"
)

// TestGroupCommit runs many concurrent proposals over many groups of three
// nodes and checks that each node's loop shares fsyncs among them: far fewer
// syncs than proposals, and batches of more than one group and one entry.
func TestGroupCommit(t *testing.T) {
	const (
		numGroups = 16
		writers   = 8 // concurrent proposers per group
		perWriter = 10
		total     = numGroups * writers * perWriter
	)
	var groups []uint64
	for g := uint64(1); g <= numGroups; g++ {
		groups = append(groups, g)
	}
	c := newCluster(t, 3, groups, nil)
	for _, g := range groups {
		c.leader(g)
	}
	terms := termsOf(c, groups)
	before := map[uint64]raftnode.Stats{}
	for id, tn := range c.nodes {
		before[id] = tn.node.Stats()
	}
	appendsBefore := c.f.appends.Load()

	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, g := range groups {
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					cmd := fmt.Appendf(nil, "w%d-%d", w, i)
					var res raftnode.Result
					_, err := c.onLeader(g, func(l *testNode) (err error) {
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						res, err = l.node.Propose(ctx, g, cmd)
						return err
					})
					if err != nil {
						failed.Add(1)
						t.Errorf("group %d: propose %s: %v", g, cmd, err)
						return
					}
					if len(res.Data) != 8 || res.Err != nil {
						t.Errorf("group %d: propose %s: result %+v", g, cmd, res)
					}
				}
			})
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}

	for _, g := range groups {
		c.waitConverged(g)
		// Every command applied exactly once on every replica.
		for _, tn := range c.nodes {
			if got := binary.BigEndian.Uint64(get(t, tn, counterKey(g))); got != writers*perWriter {
				t.Errorf("node %d group %d: counter %d, want %d", tn.id, g, got, writers*perWriter)
			}
		}
	}
	if changed := termsOf(c, groups) - terms; changed > 0 {
		t.Logf("%d elections during the load", changed)
	}
	var proposals int64
	for id, tn := range c.nodes {
		s, b := tn.node.Stats(), before[id]
		proposals += s.Proposals - b.Proposals
		syncs, entries := s.Syncs-b.Syncs, s.EntriesSynced-b.EntriesSynced
		t.Logf("node %d: %d proposals led, %d syncs, %d entries synced (%.1f/sync), %d groups persisted (%.1f/sync), max batch %d groups",
			id, s.Proposals-b.Proposals, syncs, entries, float64(entries)/float64(syncs),
			s.GroupsPersisted-b.GroupsPersisted, float64(s.GroupsPersisted-b.GroupsPersisted)/float64(syncs), s.MaxBatchGroups)
		// Every node persists every entry of every group (it leads some
		// and follows the rest) but must share fsyncs among them.
		if entries < total {
			t.Errorf("node %d: synced %d entries, want at least the %d proposals", id, entries, total)
		}
		if syncs*4 > total {
			t.Errorf("node %d: %d syncs for %d proposals; group commit should need far fewer", id, syncs, total)
		}
		if entries <= syncs {
			t.Errorf("node %d: %d entries in %d syncs; batches should hold more than one entry", id, entries, syncs)
		}
		if s.MaxBatchGroups < 2 {
			t.Errorf("node %d: MaxBatchGroups = %d, want > 1", id, s.MaxBatchGroups)
		}
		if s.GroupsPersisted-b.GroupsPersisted <= syncs {
			t.Errorf("node %d: %d group batches in %d syncs; mean batch should exceed one group", id, s.GroupsPersisted-b.GroupsPersisted, syncs)
		}
		if es := tn.eng.Stats(); es.Syncs < s.Syncs {
			t.Errorf("node %d: engine counted %d syncs, node %d", id, es.Syncs, s.Syncs)
		}
	}
	if proposals != total {
		t.Errorf("Stats().Proposals summed over nodes = %d, want %d", proposals, total)
	}
	// Proposals queued together reach each follower in one append: with
	// one message per proposal there would be 2 (followers) per proposal.
	appends := c.f.appends.Load() - appendsBefore
	t.Logf("%d append messages with entries for %d proposals (%.2f per proposal)", appends, total, float64(appends)/total)
	if appends > total {
		t.Errorf("%d append messages for %d proposals to 2 followers each; proposals are not batched", appends, total)
	}
}

// TestManyGroupsOneNode hosts many single-voter groups on one node without a
// transport: each elects itself, and concurrent proposals over all of them
// commit with shared fsyncs.
func TestManyGroupsOneNode(t *testing.T) {
	const numGroups = 100
	var groups []uint64
	for g := uint64(1); g <= numGroups; g++ {
		groups = append(groups, g)
	}
	c := &cluster{t: t, f: &faults{isolated: map[uint64]bool{}}, nodes: map[uint64]*testNode{}}
	t.Cleanup(c.stopAll)
	var gcs []raftnode.GroupConfig
	for _, g := range groups {
		gcs = append(gcs, groupConfig(g, 1))
	}
	tn := &testNode{id: 1, dir: t.TempDir(), groups: gcs}
	c.nodes[1] = tn
	c.open(tn)
	tn.node.Start(nil)
	if got := tn.node.Groups(); len(got) != numGroups || got[0] != 1 || got[numGroups-1] != numGroups {
		t.Fatalf("Groups() = %v", got)
	}
	if err := tn.node.CreateGroup(groupConfig(1, 1)); !errors.Is(err, raftnode.ErrGroupExists) {
		t.Fatalf("CreateGroup of a hosted group: %v, want ErrGroupExists", err)
	}
	for _, g := range groups {
		c.leader(g)
	}
	base := tn.node.Stats()
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() {
			for i := range 5 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := tn.node.Propose(ctx, g, fmt.Appendf(nil, "k%d", i))
				cancel()
				if err != nil {
					t.Errorf("group %d: %v", g, err)
				}
			}
		})
	}
	wg.Wait()
	s := tn.node.Stats()
	syncs, props := s.Syncs-base.Syncs, s.Proposals-base.Proposals
	t.Logf("one node, %d groups: %d proposals, %d syncs, max batch %d groups", numGroups, props, syncs, s.MaxBatchGroups)
	if props != numGroups*5 {
		t.Errorf("Proposals = %d, want %d", props, numGroups*5)
	}
	if syncs*4 > props || s.MaxBatchGroups < 2 {
		t.Errorf("%d syncs for %d proposals, max batch %d groups: no group commit", syncs, props, s.MaxBatchGroups)
	}
	for _, g := range groups {
		if got := binary.BigEndian.Uint64(get(t, tn, counterKey(g))); got != 5 {
			t.Errorf("group %d: counter %d, want 5", g, got)
		}
	}
}

// termsOf sums the current terms of groups as their leaders see them.
func termsOf(c *cluster, groups []uint64) uint64 {
	var sum uint64
	for _, g := range groups {
		st, _ := c.leader(g).node.Status(g)
		sum += st.Term
	}
	return sum
}
