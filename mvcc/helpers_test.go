package mvcc

import (
	"fmt"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/storage"
)

// newMemDB opens a Pebble instance on an in-memory filesystem. Its cleanup
// checks the MVCC invariants and closes it.
func newMemDB(t testing.TB) *pebble.DB {
	t.Helper()
	return newMemDBWith(t, storage.Comparer)
}

// newMemDBWith is newMemDB with comparer c (nil: Pebble's default) and, when
// c splits keys, bloom filters on every level, as storage.Open sets them.
func newMemDBWith(t testing.TB, c *pebble.Comparer) *pebble.DB {
	t.Helper()
	opts := &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}, Comparer: c}
	if c != nil {
		for i := range opts.Levels {
			opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		}
	}
	db, err := pebble.Open("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := checkInvariants(db); err != nil {
			t.Errorf("MVCC invariants: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// checkInvariants checks that every key of the user span decodes, that every
// value decodes, and that no version 0 was written.
func checkInvariants(r pebble.Reader) error {
	lo, hi := storage.UserSpan()
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		v, err := current(it, nil)
		if err != nil {
			return err
		}
		if v.Version == 0 {
			return errVersionZero
		}
	}
	return it.Error()
}

var errVersionZero = checkVersion(0)

// quietLogger drops Pebble's informational lines and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
