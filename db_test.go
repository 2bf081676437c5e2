package strata_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-kv/strata"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openSingle(t testing.TB, dir string) *strata.DB {
	t.Helper()
	db, err := strata.Open(strata.Options{Dir: dir, Shards: 3, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestSingleNodeReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t)
	db := openSingle(t, dir)
	for i := 0; i < 200; i++ {
		k := []byte{byte(i)}
		if err := db.Put(ctx, append(k, "key"...), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Delete(ctx, []byte("\x05key")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openSingle(t, dir)
	defer db.Close()
	for i := 0; i < 200; i++ {
		k := append([]byte{byte(i)}, "key"...)
		v, err := db.Get(ctx, k)
		if i == 5 {
			if !errors.Is(err, strata.ErrNotFound) {
				t.Fatalf("deleted key: got %q, %v", v, err)
			}
			continue
		}
		if err != nil || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("key %d: got %q, %v", i, v, err)
		}
	}
	kvs, err := db.Scan(ctx, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 199 {
		t.Fatalf("scan returned %d keys, want 199", len(kvs))
	}
	for i := 1; i < len(kvs); i++ {
		if bytes.Compare(kvs[i-1].Key, kvs[i].Key) >= 0 {
			t.Fatalf("scan out of order at %d: %q then %q", i, kvs[i-1].Key, kvs[i].Key)
		}
	}
}

// TestGCRemovesSupersededVersions overwrites keys many times, collects
// garbage once the history retention has passed, and checks that reads are
// unchanged, old versions are gone, and a read below the threshold is refused
// rather than answered wrong.
func TestGCRemovesSupersededVersions(t *testing.T) {
	ctx := ctxT(t)
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), Shards: 2, GCInterval: -1, TickInterval: 10 * time.Millisecond,
		HistoryRetention: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		for i := 0; i < 20; i++ {
			if err := db.Put(ctx, []byte(fmt.Sprintf("%c-gc-%d", byte(i*13), i)), []byte(fmt.Sprint(round))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Delete(ctx, []byte("\x00-gc-0")); err != nil {
		t.Fatal(err)
	}
	before, err := db.Scan(ctx, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every write is older than the retention, by the oracle.
	waitOracle(ctx, t, db, 5*time.Millisecond)
	removed, err := db.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 20 keys × 4 superseded versions, plus the deleted key's last value
	// and its tombstone.
	if removed != 20*4+2 {
		t.Fatalf("GC removed %d versions, want %d", removed, 20*4+2)
	}
	after, err := db.Scan(ctx, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) || len(after) != 19 {
		t.Fatalf("reads changed across GC: %d keys before, %d after", len(before), len(after))
	}
	if again, err := db.GC(ctx); err != nil || again != 0 {
		t.Fatalf("second GC removed %d (%v), want 0", again, err)
	}
	if _, err := first.Scan(ctx, nil, nil, 0); !errors.Is(err, strata.ErrTimestampTooOld) {
		t.Fatalf("scan of a snapshot below the GC threshold: %v, want ErrTimestampTooOld", err)
	}
}

func TestGetSerializable(t *testing.T) {
	ctx := ctxT(t)
	db := openSingle(t, t.TempDir())
	defer db.Close()
	if err := db.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := db.GetSerializable(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("GetSerializable = %q, %v", v, err)
	}
	if _, err := db.GetSerializable(ctx, []byte("absent")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("GetSerializable of an absent key: %v", err)
	}
	if _, err := db.GetSerializable(ctx, nil); !errors.Is(err, strata.ErrEmptyKey) {
		t.Fatalf("GetSerializable of an empty key: %v", err)
	}
}

// TestOpenRefusesFullDisk: a node whose filesystem has less free space than
// Options.MinFreeBytes does not start, and says why.
func TestOpenRefusesFullDisk(t *testing.T) {
	_, err := strata.Open(strata.Options{Dir: t.TempDir(), MinFreeBytes: 1 << 62})
	if !errors.Is(err, strata.ErrDiskFull) {
		t.Fatalf("Open with a 4 EiB reserve: %v, want ErrDiskFull", err)
	}
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), MinFreeBytes: -1})
	if err != nil {
		t.Fatalf("Open with the check disabled: %v", err)
	}
	_ = db.Close()
}
