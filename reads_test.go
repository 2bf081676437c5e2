package strata_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
	"github.com/strata-kv/strata/transport/faultnet"
)

// isolatedLeaderReads runs up to trials rounds of: write k=old, cut the
// leader of k's shard off from the other nodes, wait until one of them
// leads and write k=new through it, then read k on the old leader. It
// returns how many of those reads returned the old value (a stale
// linearizable read) and how many rounds ran; it stops at the first stale
// read when stopAtStale.
func isolatedLeaderReads(t *testing.T, opts strata.Options, trials int, stopAtStale bool) (stale, ran int) {
	t.Helper()
	net := faultnet.New(1)
	defer net.Close()
	opts.Shards = 1
	c := testcluster.StartFaulty(t, 3, opts, net)
	key := []byte("lease-read-key")
	for trial := 0; trial < trials; trial++ {
		ran++
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := c.WaitLeaders(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		var shardID uint64
		for _, d := range c.DB(1).Shards() {
			if d.Contains(key) {
				shardID = d.ID
			}
		}
		old := []byte(fmt.Sprint("old-", trial))
		if err := c.DB(1).Put(ctx, key, old); err != nil {
			cancel()
			t.Fatal(err)
		}
		leader := c.Leader(shardID)
		if leader == 0 {
			cancel()
			continue // leadership moved under us; try again
		}
		// The leader has applied old: a read on it sees it.
		if got, err := c.DB(leader).Get(ctx, key); err != nil || !bytes.Equal(got, old) {
			cancel()
			t.Fatalf("trial %d: read on leader %d before the partition: %q, %v", trial, leader, got, err)
		}
		var others []uint64
		for _, id := range c.IDs() {
			if id != leader {
				others = append(others, id)
			}
		}
		net.Partition([]uint64{leader}, others)

		// Write through the new leader as soon as there is one.
		newLeader := uint64(0)
		for newLeader == 0 {
			for _, id := range others {
				if _, isLeader, err := c.DB(id).Node().Leader(shardID); err == nil && isLeader {
					newLeader = id
				}
			}
			if newLeader == 0 {
				select {
				case <-ctx.Done():
					cancel()
					t.Fatalf("trial %d: no new leader among %v: %v", trial, others, ctx.Err())
				case <-time.After(time.Millisecond):
				}
			}
		}
		fresh := []byte(fmt.Sprint("new-", trial))
		if err := c.DB(newLeader).Put(ctx, key, fresh); err != nil {
			cancel()
			t.Fatalf("trial %d: write through new leader %d: %v", trial, newLeader, err)
		}

		// A linearizable read on the old leader must not return old: it
		// must fail (it cannot reach a quorum) or wait.
		rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		got, err := c.DB(leader).Get(rctx, key)
		rcancel()
		if err == nil && bytes.Equal(got, old) {
			stale++
			t.Logf("trial %d: old leader %d answered %q after new leader %d committed %q", trial, leader, got, newLeader, fresh)
		}
		net.Heal()
		cancel()
		if stale > 0 && stopAtStale {
			break
		}
	}
	return stale, ran
}

// TestIsolatedLeaderServesNoStaleRead is the regression test of defect 2
// of issue 10: a leader cut off from its followers must not answer a
// linearizable read with a value a new leader has already overwritten.
func TestIsolatedLeaderServesNoStaleRead(t *testing.T) {
	if stale, ran := isolatedLeaderReads(t, strata.Options{}, 5, false); stale > 0 {
		t.Fatalf("%d of %d linearizable reads on an isolated old leader were stale", stale, ran)
	}
}

// TestUnsafeLeaseReadsAreCaught proves that isolatedLeaderReads can fail:
// with the planted lease-read bug an isolated old leader answers from its
// lease after a new leader committed a write.
func TestUnsafeLeaseReadsAreCaught(t *testing.T) {
	if stale, ran := isolatedLeaderReads(t, strata.Options{UnsafeLeaseReads: true}, 20, true); stale == 0 {
		t.Fatalf("no stale read in %d rounds with UnsafeLeaseReads: the test cannot see the defect", ran)
	}
}
