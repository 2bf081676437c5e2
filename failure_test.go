package strata_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-kv/strata"
)

// TestFailingFsyncStopsNode injects an fsync error into the write-ahead
// log: the write in flight must fail rather than be acknowledged, and the
// node must refuse every later write.
func TestFailingFsyncStopsNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				return errorfs.ErrInjected
			}
		}
		return nil
	})}
	db, err := strata.Open(strata.Options{Dir: "db", FS: errorfs.Wrap(mem, toggle), TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Put(ctx, []byte("before"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	toggle.On()
	err = db.Put(ctx, []byte("after"), []byte("2"))
	if err == nil {
		t.Fatal("a write was acknowledged although its fsync failed")
	}
	t.Logf("write during fsync failure: %v", err)
	select {
	case <-db.Node().Done():
	case <-ctx.Done():
		t.Fatal("node did not stop after a failed fsync")
	}
	toggle.Off()
	// Stopped for good: later writes fail too, even with a healthy disk.
	if err := db.Put(ctx, []byte("later"), []byte("3")); !errors.Is(err, strata.ErrStopped) {
		t.Fatalf("write after the failure: %v, want ErrStopped", err)
	}
	if _, err := db.Get(ctx, []byte("before")); !errors.Is(err, strata.ErrStopped) {
		t.Fatalf("read after the failure: %v, want ErrStopped", err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := ctxT(t)
	db := openSingle(t, t.TempDir())
	if err := db.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, strata.MaxValueSize+1)
	bigKey := make([]byte, strata.MaxKeySize+1)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		err  error
		do   func() error
	}{
		{"empty key put", strata.ErrEmptyKey, func() error { return db.Put(ctx, nil, []byte("v")) }},
		{"empty key get", strata.ErrEmptyKey, func() error { _, err := db.Get(ctx, []byte{}); return err }},
		{"empty key delete", strata.ErrEmptyKey, func() error { return db.Delete(ctx, nil) }},
		{"empty key cas", strata.ErrEmptyKey, func() error { _, err := db.CompareAndSwap(ctx, nil, nil, []byte("x")); return err }},
		{"key too large", strata.ErrKeyTooLarge, func() error { return db.Put(ctx, bigKey, []byte("v")) }},
		{"value too large", strata.ErrValueTooLarge, func() error { return db.Put(ctx, []byte("k"), big) }},
		{"cas value too large", strata.ErrValueTooLarge, func() error { _, err := db.CompareAndSwap(ctx, []byte("k"), []byte("v"), big); return err }},
		{"inverted scan", strata.ErrInvalidRange, func() error { _, err := db.Scan(ctx, []byte("b"), []byte("a"), 0); return err }},
		{"cancelled put", context.Canceled, func() error { return db.Put(cancelled, []byte("k"), []byte("changed")) }},
		{"cancelled get", context.Canceled, func() error { _, err := db.Get(cancelled, []byte("k")); return err }},
	} {
		if err := tc.do(); !errors.Is(err, tc.err) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.err)
		}
	}
	// Nothing changed.
	kvs, err := db.Scan(ctx, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 1 || string(kvs[0].Key) != "k" || string(kvs[0].Value) != "v" {
		t.Fatalf("bad input changed the data: %q", kvs)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("put on closed db: %v, want ErrClosed", err)
	}
	if _, err := db.Get(ctx, []byte("k")); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("get on closed db: %v, want ErrClosed", err)
	}
	if _, err := strata.Open(strata.Options{}); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
}

func TestCompareAndSwap(t *testing.T) {
	ctx := ctxT(t)
	db := openSingle(t, t.TempDir())
	defer db.Close()
	k := []byte("cas")
	steps := []struct {
		old, new []byte
		want     bool
	}{
		{nil, []byte("a"), true},          // absent -> a
		{nil, []byte("b"), false},         // not absent any more
		{[]byte("x"), []byte("b"), false}, // wrong old value
		{[]byte("a"), []byte(""), true},   // a -> empty value
		{[]byte(""), nil, true},           // empty value -> deleted
		{nil, []byte("c"), true},          // absent again
	}
	for i, s := range steps {
		ok, err := db.CompareAndSwap(ctx, k, s.old, s.new)
		if err != nil || ok != s.want {
			t.Fatalf("step %d: cas(%q, %q) = %v, %v; want %v", i, s.old, s.new, ok, err, s.want)
		}
	}
	if v, err := db.Get(ctx, k); err != nil || string(v) != "c" {
		t.Fatalf("get = %q, %v", v, err)
	}
}
