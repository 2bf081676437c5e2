package strata_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/internal/testcluster"
)

// waitOracle waits until the oracle's time, as db sees it, is more than d
// past what it was at the call.
func waitOracle(ctx context.Context, t *testing.T, db *strata.DB, d time.Duration) {
	t.Helper()
	start, err := db.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for {
		now, err := db.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if now.WallTime().Sub(start.WallTime()) > d {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("oracle time did not advance by %v: %v", d, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// TestGCReplicasAgree runs GC on every node with a short history retention
// while keys are written, overwritten and deleted, and checks after every
// round that the replicas of each shard hold the same data at the same
// applied index: GC is a replicated command, so every replica removes the
// same versions at the same log index.
func TestGCReplicasAgree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const retention = 60 * time.Millisecond
	// A few versions per command: each shard is collected by chains of
	// several commands.
	c := testcluster.Start(t, 3, strata.Options{Shards: 2, GCInterval: 30 * time.Millisecond, HistoryRetention: retention,
		GCVersionsPerCommand: 7})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	db := c.DB(1)
	first, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) []byte { return []byte(fmt.Sprintf("%c-gc-%02d", byte(i*29), i)) }
	const keys, rounds = 20, 12
	for round := 0; round < rounds; round++ {
		for i := 0; i < keys; i++ {
			via := c.DB(uint64(1 + (round+i)%3))
			if err := via.Put(ctx, key(i), []byte(fmt.Sprint(round))); err != nil {
				t.Fatalf("round %d: put %q: %v", round, key(i), err)
			}
		}
		if err := db.Delete(ctx, key(round%keys)); err != nil {
			t.Fatal(err)
		}
		// GC is removing what the previous rounds superseded, on every
		// node, while the replicas are compared.
		if err := c.WaitConverged(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	// Let GC collect everything this test superseded, then compare again.
	waitOracle(ctx, t, db, 3*retention)
	for {
		_, err := first.Scan(ctx, nil, nil, 0)
		if errors.Is(err, strata.ErrTimestampTooOld) {
			break
		}
		if err != nil {
			t.Fatalf("scan of the first snapshot: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("GC never raised the threshold above the first snapshot")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatalf("after GC: %v", err)
	}
	for _, id := range c.IDs() {
		for i := 0; i < keys; i++ {
			v, err := c.DB(id).Get(ctx, key(i))
			switch {
			case i == (rounds-1)%keys:
				if !errors.Is(err, strata.ErrNotFound) {
					t.Fatalf("node %d: get of deleted %q = %q, %v", id, key(i), v, err)
				}
			case err != nil || string(v) != fmt.Sprint(rounds-1):
				t.Fatalf("node %d: get %q = %q, %v; want %d", id, key(i), v, err, rounds-1)
			}
		}
	}
}

// TestReadAtGCThreshold: after GC, a read below a shard's replicated GC
// threshold fails with ErrTimestampTooOld (naming the threshold), and a
// read at the threshold sees what it saw before GC, on every node.
func TestReadAtGCThreshold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const retention = 50 * time.Millisecond
	c := testcluster.Start(t, 3, strata.Options{Shards: 2, GCInterval: -1, HistoryRetention: retention})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	db := c.DB(2)
	for v := 0; v < 3; v++ {
		for _, k := range []string{"a", "\xf0z"} { // one key on each shard
			if err := db.Put(ctx, []byte(k), []byte(fmt.Sprint(v))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Delete(ctx, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	before, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitOracle(ctx, t, db, 2*retention)
	removed, err := db.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two superseded versions of each key, and the tombstone.
	if removed != 2*2+1 {
		t.Fatalf("GC removed %d versions, want %d", removed, 2*2+1)
	}
	_, err = before.Get(ctx, []byte("a"))
	var too *kvpb.TimestampTooOldError
	if !errors.As(err, &too) || too.Threshold <= uint64(before.Timestamp()) {
		t.Fatalf("get below the threshold: %v, want a TimestampTooOldError above %d", err, before.Timestamp())
	}
	threshold := strata.Timestamp(too.Threshold)
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range c.IDs() {
		at, err := c.DB(id).SnapshotAt(ctx, threshold)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "\xf0z"} {
			if v, err := at.Get(ctx, []byte(k)); err != nil || string(v) != "2" {
				t.Fatalf("node %d: get %q at the threshold = %q, %v; want 2", id, k, v, err)
			}
		}
		if _, err := at.Get(ctx, []byte("gone")); !errors.Is(err, strata.ErrNotFound) {
			t.Fatalf("node %d: get of a deleted key at the threshold: %v", id, err)
		}
		below, err := c.DB(id).SnapshotAt(ctx, threshold-1)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "\xf0z"} {
			if _, err := below.Get(ctx, []byte(k)); !errors.Is(err, strata.ErrTimestampTooOld) {
				t.Fatalf("node %d: get %q just below the threshold: %v, want ErrTimestampTooOld", id, k, err)
			}
		}
	}
}

// TestGCThresholdInSnapshot: a replica that catches up by snapshot after
// GC gets the shard's threshold with the data: led by it, the shard refuses
// a read below the threshold and answers one at it.
func TestGCThresholdInSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const retention = 50 * time.Millisecond
	c := testcluster.Start(t, 3, strata.Options{Shards: 1, GCInterval: -1, HistoryRetention: retention, LogRetain: 20})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	const shardID = 2
	down := uint64(3)
	if c.Leader(shardID) == down {
		down = 2
	}
	c.Stop(down)
	db := c.DB(c.Live()[0])
	for v := 0; v < 3; v++ {
		for i := 0; i < 40; i++ {
			if err := db.Put(ctx, []byte(fmt.Sprintf("k%02d", i)), []byte(fmt.Sprint(v))); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitOracle(ctx, t, db, 2*retention)
	if _, err := db.GC(ctx); err != nil {
		t.Fatal(err)
	}
	var too *kvpb.TimestampTooOldError
	early, err := db.SnapshotAt(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := early.Get(ctx, []byte("k00")); !errors.As(err, &too) {
		t.Fatalf("read at 1 after GC: %v, want TimestampTooOldError", err)
	}
	threshold := strata.Timestamp(too.Threshold)
	// More writes, so that the log is truncated past what the stopped node has.
	for i := 0; i < 40; i++ {
		if err := db.Put(ctx, []byte(fmt.Sprintf("later%02d", i)), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c.Restart(down)
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.DB(down).Node().Stats().SnapshotsReceived; got == 0 {
		t.Fatalf("node %d caught up without a snapshot", down)
	}
	if err := c.DB(down).TransferLeader(ctx, shardID, down); err != nil {
		t.Fatal(err)
	}
	below, err := c.DB(down).SnapshotAt(ctx, threshold-1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := below.Get(ctx, []byte("k00")); !errors.As(err, &too) || strata.Timestamp(too.Threshold) != threshold {
		t.Fatalf("node %d leading: read below the threshold %d: %v, want TimestampTooOldError at it", down, threshold, err)
	}
	at, err := c.DB(down).SnapshotAt(ctx, threshold)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := at.Get(ctx, []byte("k00")); err != nil || string(v) != "2" {
		t.Fatalf("node %d leading: read at the threshold = %q, %v; want 2", down, v, err)
	}
}
