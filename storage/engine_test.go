package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestOpenRequiresDir(t *testing.T) {
	if _, err := Open(Options{FS: vfs.NewMem()}); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
}

func mustGet(t *testing.T, r pebble.Reader, key []byte) ([]byte, bool) {
	t.Helper()
	v, err := Get(r, key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

// TestCrashSyncedDataSurvives: what a synced commit wrote is there after a
// crash that loses every unsynced byte.
func TestCrashSyncedDataSurvives(t *testing.T) {
	fs := vfs.NewCrashableMem()
	e, err := Open(Options{Dir: "db", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	l := openTestLog(t, e, 1)
	b := e.NewBatch()
	for i := 0; i < 100; i++ {
		if err := b.Set(SystemKey(fmt.Appendf(nil, "k%03d", i)), fmt.Appendf(nil, "v%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.StageAppend(b, ents(1, 21, 1)); err != nil {
		t.Fatal(err)
	}
	hs := &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(1), Commit: proto.Uint64(15)}
	if err := l.StageHardState(b, hs); err != nil {
		t.Fatal(err)
	}
	if err := PutAppliedState(b, 1, AppliedState{Index: 15, Term: 1, ConfState: &raftpb.ConfState{Voters: []uint64{1}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	l.Persisted()

	// Written after the synced commit, without sync: may or may not survive.
	if err := e.db.Set(SystemKey([]byte("unsynced")), []byte("x"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}

	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := openTestEngine(t, crashed, "db")
	for i := 0; i < 100; i++ {
		v, ok := mustGet(t, e2.db, SystemKey(fmt.Appendf(nil, "k%03d", i)))
		if !ok || string(v) != fmt.Sprintf("v%d", i) {
			t.Fatalf("key %d after crash: %q, %v", i, v, ok)
		}
	}
	l2 := openTestLog(t, e2, 1)
	wantBounds(t, l2, 1, 20)
	wantEntries(t, l2, 1, 21, math.MaxUint64, ents(1, 21, 1), nil)
	if !proto.Equal(l2.HardState(), hs) {
		t.Fatalf("hard state after crash = %v, want %v", l2.HardState(), hs)
	}
	as, err := LoadAppliedState(e2.db, 1)
	if err != nil || as.Index != 15 || as.Term != 1 {
		t.Fatalf("applied state after crash = %+v, %v", as, err)
	}
	// The format version written at creation was synced too.
	v, ok := mustGet(t, e2.db, formatKey)
	if !ok || binary.BigEndian.Uint64(v) != FormatVersion {
		t.Fatalf("format version after crash: %x, %v", v, ok)
	}
}

// TestCrashManySyncedCommits: every synced commit of a sequence survives a
// crash after it, whatever came later unsynced.
func TestCrashManySyncedCommits(t *testing.T) {
	fs := vfs.NewCrashableMem()
	e, err := Open(Options{Dir: "db", FS: fs, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	l := openTestLog(t, e, 2)
	var clones []*vfs.MemFS
	for i := uint64(1); i <= 30; i++ {
		b := e.NewBatch()
		if err := l.StageAppend(b, ents(i, i+1, 1)); err != nil {
			t.Fatal(err)
		}
		// Big values force memtable flushes and WAL rotation along the way.
		if err := b.Set(SystemKey(fmt.Appendf(nil, "big%d", i)), make([]byte, 100<<10), nil); err != nil {
			t.Fatal(err)
		}
		if err := e.Commit(b, true); err != nil {
			t.Fatal(err)
		}
		_ = b.Close()
		l.Persisted()
		if err := e.db.Set(SystemKey([]byte("noise")), fmt.Appendf(nil, "%d", i), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			clones = append(clones, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}))
		}
	}
	for c, crashed := range clones {
		e2 := openTestEngine(t, crashed, "db")
		last := uint64(c+1) * 10
		l2 := openTestLog(t, e2, 2)
		if _, l := l2.Bounds(); l < last {
			t.Fatalf("clone %d: last index %d after crash, want at least %d", c, l, last)
		}
		for i := uint64(1); i <= last; i++ {
			if _, ok := mustGet(t, e2.db, SystemKey(fmt.Appendf(nil, "big%d", i))); !ok {
				t.Fatalf("clone %d: synced key big%d lost", c, i)
			}
		}
		_ = e2.Close()
	}
}

// TestOpenRefusesNewerFormat: a store written by a newer binary is not
// opened, and the error says why.
func TestOpenRefusesNewerFormat(t *testing.T) {
	fs := vfs.NewMem()
	e, err := Open(Options{Dir: "db", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.Set(MetaKey("format-version"), binary.BigEndian.AppendUint64(nil, FormatVersion+1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = Open(Options{Dir: "db", FS: fs})
	if err == nil {
		_ = e.Close()
		t.Fatal("Open of a store with a newer format version succeeded")
	}
	t.Logf("error: %v", err)
	// The message is for an operator: it must name both versions.
	if msg := err.Error(); !errors.Is(err, ErrNewerFormat) || !strings.Contains(msg, fmt.Sprint(FormatVersion+1)) {
		t.Fatalf("error %q does not say the store's format is newer", msg)
	}

	// The refused open released the store: fixing the key lets it open.
	e = reopenWithFormat(t, fs, binary.BigEndian.AppendUint64(nil, FormatVersion))
	_ = e.Close()
}

// reopenWithFormat rewrites the format key with raw Pebble and opens the
// engine.
func reopenWithFormat(t *testing.T, fs vfs.FS, v []byte) *Engine {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}, Comparer: Comparer})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(formatKey, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	e, err := Open(Options{Dir: "db", FS: fs})
	if err != nil {
		t.Fatalf("Open after writing format %x: %v", v, err)
	}
	return e
}

func TestOpenFormatVersion(t *testing.T) {
	fs := vfs.NewMem()
	e := openTestEngine(t, fs, "db")
	v, ok := mustGet(t, e.db, formatKey)
	if !ok || len(v) != 8 || binary.BigEndian.Uint64(v) != FormatVersion {
		t.Fatalf("format version of a new store: %x, %v", v, ok)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// A corrupt one does not open.
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}, Comparer: Comparer})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(formatKey, []byte{1, 2, 3}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if e, err := Open(Options{Dir: "db", FS: fs}); err == nil {
		_ = e.Close()
		t.Fatal("Open of a store with a 3-byte format version succeeded")
	}
}

// TestOpenRefusesOlderFormat: a store of format 1 (Pebble's default
// comparer, per-group version counters) is refused with an error naming
// both versions, and left as it was; so is a store of format 2's comparer
// that says it is older.
func TestOpenRefusesOlderFormat(t *testing.T) {
	fs := vfs.NewMem()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(formatKey, binary.BigEndian.AppendUint64(nil, 1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("\x03user"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // refusing changes nothing: the second open says the same
		e, err := Open(Options{Dir: "db", FS: fs})
		if err == nil {
			_ = e.Close()
			t.Fatal("Open of a format-1 store succeeded")
		}
		t.Logf("error: %v", err)
		msg := err.Error()
		if !errors.Is(err, ErrOlderFormat) || !strings.Contains(msg, "format version 1") || !strings.Contains(msg, fmt.Sprintf("version %d", FormatVersion)) {
			t.Fatalf("error %q does not name both format versions", msg)
		}
	}

	fs2 := vfs.NewMem()
	e := openTestEngine(t, fs2, "db")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = pebble.Open("db", &pebble.Options{FS: fs2, Logger: quietLogger{}, Comparer: Comparer})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(formatKey, binary.BigEndian.AppendUint64(nil, FormatVersion-1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if e, err := Open(Options{Dir: "db", FS: fs2}); !errors.Is(err, ErrOlderFormat) {
		if e != nil {
			_ = e.Close()
		}
		t.Fatalf("Open of a store marked format %d: %v, want ErrOlderFormat", FormatVersion-1, err)
	}
}

// walSyncFailure returns a switchable injector failing every fsync of a WAL
// file. Pebble wraps WAL files in vfs.NewSyncingFile, whose Sync calls the
// file's SyncData, so both kinds are failed.
func walSyncFailure() *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) && strings.HasSuffix(op.Path, ".log") {
			return errorfs.ErrInjected
		}
		return nil
	})}
}

// TestCommitFailureStopsEngine: a WAL fsync failure stops the engine: the
// failed commit and every later one return ErrStopped, and the OnStop
// callbacks run exactly once.
func TestCommitFailureStopsEngine(t *testing.T) {
	inj := walSyncFailure()
	fs := errorfs.Wrap(vfs.NewMem(), inj)
	e, err := Open(Options{Dir: "db", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()

	var calls atomic.Int32
	var mu sync.Mutex
	var got []error
	for i := 0; i < 2; i++ {
		e.OnStop(func(err error) {
			calls.Add(1)
			mu.Lock()
			got = append(got, err)
			mu.Unlock()
		})
	}

	commit := func(sync bool) error {
		b := e.NewBatch()
		defer b.Close()
		if err := b.Set(SystemKey([]byte("k")), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		return e.Commit(b, sync)
	}
	if err := commit(true); err != nil {
		t.Fatalf("commit before injection: %v", err)
	}
	if e.Err() != nil {
		t.Fatalf("Err() before failure = %v", e.Err())
	}

	inj.On()
	err = commit(true)
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("commit with a failing WAL fsync: %v, want ErrStopped", err)
	}
	t.Logf("failed commit: %v", err)
	inj.Off()

	// Every later commit fails, synced or not, even with the disk healthy.
	for i := 0; i < 3; i++ {
		if err := commit(i%2 == 0); !errors.Is(err, ErrStopped) {
			t.Fatalf("commit %d after the failure: %v, want ErrStopped", i, err)
		}
	}
	if !errors.Is(e.Err(), ErrStopped) {
		t.Fatalf("Err() = %v, want ErrStopped", e.Err())
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("OnStop callbacks ran %d times, want 2 (each once)", n)
	}
	mu.Lock()
	for _, err := range got {
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("OnStop got %v, want ErrStopped", err)
		}
	}
	mu.Unlock()

	// Staged raft writes on a stopped engine are not persisted.
	l := openTestLog(t, e, 1)
	b := e.NewBatch()
	defer b.Close()
	if err := l.StageAppend(b, ents(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(b, true); !errors.Is(err, ErrStopped) {
		t.Fatalf("raft commit on a stopped engine: %v", err)
	}
	l.Discard()
	wantBounds(t, l, 1, 0)
	wantTerm(t, l, 1, 0, raft.ErrUnavailable)
}

// TestConcurrentCommitFailure: commits racing a WAL failure all fail with
// ErrStopped once one did, and OnStop runs once.
func TestConcurrentCommitFailure(t *testing.T) {
	inj := walSyncFailure()
	e, err := Open(Options{Dir: "db", FS: errorfs.Wrap(vfs.NewMem(), inj)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	var calls atomic.Int32
	e.OnStop(func(error) { calls.Add(1) })
	inj.On()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := e.NewBatch()
			defer b.Close()
			_ = b.Set(SystemKey(fmt.Appendf(nil, "k%d", i)), []byte("v"), nil)
			errs[i] = e.Commit(b, true)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("commit %d: %v, want ErrStopped", i, err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("OnStop ran %d times, want 1", n)
	}
}

func TestEngineStats(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	for i, sync := range []bool{true, false, true} {
		b := e.NewBatch()
		_ = b.Set(SystemKey(fmt.Appendf(nil, "k%d", i)), []byte("v"), nil)
		if err := e.Commit(b, sync); err != nil {
			t.Fatal(err)
		}
		_ = b.Close()
	}
	s := e.Stats()
	if s.Commits != 3 || s.Syncs != 2 {
		t.Fatalf("Stats = %+v, want 3 commits, 2 syncs", s)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestOpenFailingDisk: Open on a disk whose WAL fsyncs fail returns an
// error (wrapping the injected one) and leaves nothing open; it must not
// panic (Pebble reports the failed write of the format version through
// Logger.Fatalf) or hang.
func TestOpenFailingDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inj := walSyncFailure()
	inj.On()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("Open panicked: %v", r)
			}
		}()
		e, err := Open(Options{Dir: "db", FS: errorfs.Wrap(vfs.NewMem(), inj)})
		if err == nil {
			_ = e.Close()
			err = errors.New("Open succeeded")
		} else if !errors.Is(err, errorfs.ErrInjected) {
			err = fmt.Errorf("Open failed with %w, want the injected error", err)
		} else {
			t.Logf("Open on a failing disk: %v", err)
			err = nil
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Open on a failing disk hung")
	}
}
