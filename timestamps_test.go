package strata_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
)

// seqKey is the key of the i-th write of TestReadsSeePrefixes: the first
// byte cycles over the four shards' ranges, so consecutive writes go to
// different shards.
func seqKey(i int) []byte {
	return fmt.Appendf([]byte{byte(i%4) * 0x40}, "k%06d", i)
}

// checkPrefix checks that kvs holds exactly the writes 0..n-1 for some n
// >= acked, and returns n.
func checkPrefix(kvs []strata.KV, acked int) (int, error) {
	seen := map[int]bool{}
	for _, kv := range kvs {
		var i int
		if _, err := fmt.Sscanf(string(kv.Key[1:]), "k%06d", &i); err != nil {
			return 0, fmt.Errorf("unexpected key %q", kv.Key)
		}
		seen[i] = true
	}
	n := len(seen)
	for i := range n {
		if !seen[i] {
			return 0, fmt.Errorf("saw %d writes but not write %d: not a prefix", n, i)
		}
	}
	if n < acked {
		return 0, fmt.Errorf("saw %d writes, but %d were acknowledged before the read began", n, acked)
	}
	return n, nil
}

// TestReadsSeePrefixes is issue 11's first check: one writer puts keys one
// after another on all 4 shards of a 3-node cluster while readers on every
// node take snapshots and plain scans. Every read sees a prefix of the
// writes that includes every write acknowledged before it began, and a
// snapshot read again later sees the same prefix, however many writes
// came after it.
func TestReadsSeePrefixes(t *testing.T) {
	c := testcluster.Start(t, 3, strata.Options{Shards: 4})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	const writes = 300
	var acked atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		db := c.DB(1)
		for i := range writes {
			if err := db.Put(ctx, seqKey(i), []byte("v")); err != nil {
				t.Errorf("put %d: %v", i, err)
				return
			}
			acked.Store(int64(i + 1))
		}
	})
	reads := atomic.Int64{}
	for _, id := range c.IDs() {
		db := c.DB(id)
		wg.Go(func() {
			var snaps []*strata.Snapshot
			var sizes []int
			for {
				select {
				case <-done:
					// Snapshots taken during the writes still see what
					// they saw then.
					for i, s := range snaps {
						kvs, err := s.Scan(ctx, nil, nil, 0)
						if err != nil {
							t.Errorf("node %d: re-read snapshot at %v: %v", id, s.Timestamp(), err)
							return
						}
						if n, err := checkPrefix(kvs, 0); err != nil || n != sizes[i] {
							t.Errorf("node %d: snapshot at %v saw %d writes, now %d (%v)", id, s.Timestamp(), sizes[i], n, err)
						}
						s.Close()
					}
					return
				default:
				}
				before := int(acked.Load())
				var kvs []strata.KV
				var err error
				if reads.Add(1)%2 == 0 {
					kvs, err = db.Scan(ctx, nil, nil, 0)
				} else {
					var s *strata.Snapshot
					if s, err = db.Snapshot(ctx); err == nil {
						if kvs, err = s.Scan(ctx, nil, nil, 0); err == nil && len(snaps) < 20 {
							snaps = append(snaps, s)
							sizes = append(sizes, len(kvs))
						}
					}
				}
				if err != nil {
					t.Errorf("node %d: read: %v", id, err)
					return
				}
				if _, err := checkPrefix(kvs, before); err != nil {
					t.Errorf("node %d: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d reads checked", reads.Load())
}

// TestSnapshotAt: a snapshot at a past timestamp reads that time's state;
// one at a future timestamp is refused.
func TestSnapshotAt(t *testing.T) {
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	var stamps []strata.Timestamp
	for i := range 5 {
		if err := db.Put(ctx, []byte("k"), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
		ts, err := db.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stamps = append(stamps, ts)
	}
	if err := db.Delete(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	for i, ts := range stamps {
		s, err := db.SnapshotAt(ctx, ts)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, []byte("k")); err != nil || string(v) != fmt.Sprintf("v%d", i) {
			t.Fatalf("at %v: %q, %v; want v%d", ts, v, err, i)
		}
		s.Close()
		if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, strata.ErrSnapshotClosed) {
			t.Fatalf("read of a closed snapshot: %v", err)
		}
	}
	s, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("after the delete: %v, want ErrNotFound", err)
	}
	if _, err := db.SnapshotAt(ctx, s.Timestamp()+1<<30); !errors.Is(err, strata.ErrFutureTimestamp) {
		t.Fatalf("SnapshotAt the future: %v, want ErrFutureTimestamp", err)
	}
}

// TestSnapshotAllPages: All walks a range bigger than many pages, across
// shards, in order, and sees the snapshot's state though writes go on.
func TestSnapshotAllPages(t *testing.T) {
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), Shards: 4, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	value := make([]byte, 4<<10)
	const n = 1000 // about 4 MiB: several pages of All
	var ops []strata.BatchOp
	for i := range n {
		ops = append(ops, strata.BatchOp{Key: seqKey(i), Value: value})
	}
	if err := db.Batch(ctx, ops); err != nil {
		t.Fatal(err)
	}
	snap, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if err := db.Put(ctx, seqKey(n), value); err != nil {
		t.Fatal(err)
	}
	var got []strata.KV
	for kv, err := range snap.All(ctx, nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, kv)
	}
	if _, err := checkPrefix(got, n); err != nil || len(got) != n {
		t.Fatalf("All yielded %d pairs (%v), want the %d written before the snapshot", len(got), err, n)
	}
	for i := 1; i < len(got); i++ {
		if string(got[i-1].Key) >= string(got[i].Key) {
			t.Fatalf("out of order at %d", i)
		}
	}
	page, resume, err := snap.ScanPage(ctx, nil, nil, 0, 64<<10, false)
	if err != nil || len(page) == 0 || resume == nil || len(page) >= n {
		t.Fatalf("a 64 KiB page: %d pairs, resume %q, %v", len(page), resume, err)
	}
}
