package strata_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
)

// writeAll writes n keys spread over every shard through node via, and
// returns the acknowledged ones.
func writeAll(ctx context.Context, t *testing.T, db *strata.DB, prefix string, n int) map[string]string {
	t.Helper()
	acked := map[string]string{}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%c%s-%04d", byte(i*37%256), prefix, i)
		v := fmt.Sprintf("%s-value-%d", prefix, i)
		if err := db.Put(ctx, []byte(k), []byte(v)); err != nil {
			t.Fatalf("put %q via node %d: %v", k, db.NodeID(), err)
		}
		acked[k] = v
	}
	return acked
}

func checkAll(ctx context.Context, t *testing.T, db *strata.DB, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, err := db.Get(ctx, []byte(k))
		if err != nil || string(got) != v {
			t.Fatalf("node %d: get %q = %q, %v; want %q", db.NodeID(), k, got, err, v)
		}
	}
}

func TestClusterReplication(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.Start(t, 3, strata.Options{Shards: 4, LogRetain: 50})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Shards()); got != 5 {
		t.Fatalf("%d groups, want 5 (system + 4 user shards)", got)
	}

	// Writes through every node land on every shard and read back
	// everywhere.
	acked := map[string]string{}
	for _, id := range c.IDs() {
		for k, v := range writeAll(ctx, t, c.DB(id), fmt.Sprint("n", id), 60) {
			acked[k] = v
		}
	}
	for _, id := range c.IDs() {
		checkAll(ctx, t, c.DB(id), acked)
	}
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}

	// Kill the leader of a user shard; a new one is elected and writes
	// go on through the survivors.
	victim := c.Leader(3)
	start := time.Now()
	c.Stop(victim)
	survivor := c.Live()[0]
	for k, v := range writeAll(ctx, t, c.DB(survivor), "after-kill", 40) {
		acked[k] = v
	}
	t.Logf("first writes after killing leader node %d completed in %v", victim, time.Since(start))
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("re-election and writes took %v", time.Since(start))
	}

	// The killed node restarts from its directory and catches up.
	c.Restart(victim)
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	checkAll(ctx, t, c.DB(victim), acked)

	// A node that is down while the logs are truncated catches up by
	// snapshot.
	down := c.IDs()[2]
	if down == victim {
		down = c.IDs()[1]
	}
	c.Stop(down)
	via := c.Live()[0]
	for k, v := range writeAll(ctx, t, c.DB(via), "while-down", 600) {
		acked[k] = v
	}
	truncated := false
	for _, g := range c.Shards() {
		st, err := c.DB(via).Node().Status(g)
		if err != nil {
			t.Fatal(err)
		}
		truncated = truncated || st.FirstIndex > 100
	}
	if !truncated {
		t.Fatal("no log was truncated; the snapshot path is not exercised")
	}
	c.Restart(down)
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.DB(down).Node().Stats().SnapshotsReceived; got == 0 {
		t.Fatalf("node %d caught up without a snapshot", down)
	}
	checkAll(ctx, t, c.DB(down), acked)
}

// TestClusterConcurrentWritesNoLoss runs concurrent writers on every node
// while the leader of each shard is killed in turn, then checks every
// acknowledged write is readable on every node.
func TestClusterConcurrentWritesNoLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.Start(t, 3, strata.Options{Shards: 4})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]string{}
	var ambiguous int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				live := c.Live()
				db := c.DB(live[(w+i)%len(live)])
				mu.Unlock()
				k := fmt.Sprintf("%c-w%d-%d", byte(i*53+w), w, i)
				opCtx, opCancel := context.WithTimeout(ctx, 5*time.Second)
				err := db.Put(opCtx, []byte(k), []byte(k))
				opCancel()
				mu.Lock()
				switch {
				case err == nil:
					acked[k] = k
				case errors.Is(err, strata.ErrClosed):
				default:
					ambiguous++
				}
				mu.Unlock()
			}
		}()
	}
	for _, g := range []uint64{2, 4} {
		time.Sleep(300 * time.Millisecond)
		leader := c.Leader(g)
		if leader == 0 {
			continue
		}
		mu.Lock()
		c.Stop(leader)
		mu.Unlock()
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		c.Restart(leader)
		mu.Unlock()
	}
	// Write on until at least 100 writes were acknowledged, so that the
	// check below means something however slow the machine.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 100 {
			break
		}
		select {
		case <-ctx.Done():
			close(stop)
			wg.Wait()
			t.Fatalf("only %d writes acknowledged (%d failed or ambiguous): %v", n, ambiguous, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d writes acknowledged, %d failed or ambiguous", len(acked), ambiguous)
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range c.Live() {
		checkAll(ctx, t, c.DB(id), acked)
	}
}
