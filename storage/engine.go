package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// FormatVersion is the on-disk format this code writes. Open refuses a store
// of any other format, naming both versions.
//
//	1: MVCC versions were per-group counters; Pebble's default comparer.
//	2: MVCC versions are commit timestamps; Comparer (MVCC-aware Split,
//	   prefix bloom filters).
//	3: GC is replicated: each user group's GC threshold is replicated state
//	   (0x04 | group, GCThresholdKey); format 2's store-local GC horizons
//	   (meta "gc/" group) are gone, and a format-2 replica may hold less
//	   history than a threshold of 0 promises.
const FormatVersion = 3

var formatKey = MetaKey("format-version")

// ErrStopped is returned by every commit after one commit failed: the engine
// cannot know what reached the disk, so it stops accepting writes.
var ErrStopped = errors.New("storage: engine stopped after a write failure")

// ErrNewerFormat is returned by Open for a store written by a newer binary.
var ErrNewerFormat = errors.New("storage: store format is newer than this binary")

// ErrOlderFormat is returned by Open for a store written by an older binary
// in a layout this one cannot read.
var ErrOlderFormat = errors.New("storage: store format is older than this binary")

// ErrDiskFull is returned by Open when the store's filesystem has less free
// space than Options.MinFreeBytes.
var ErrDiskFull = errors.New("storage: free disk space is below the reserve")

// Options configure an Engine. The zero value of every field but Dir is a
// sane default.
type Options struct {
	// Dir is the directory of the Pebble instance. Required.
	Dir string
	// FS is the filesystem Pebble uses. Default: vfs.Default (the OS). Tests
	// pass vfs.NewCrashableMem() or an errorfs-wrapped FS.
	FS vfs.FS
	// CacheSize is the size of the block cache in bytes. Default: 64 MiB.
	CacheSize int64
	// MemTableSize is the size of a memtable in bytes. Default: 64 MiB.
	MemTableSize uint64
	// Logger receives Pebble's log lines. Default: discard info, keep errors
	// on stderr, each distinct line at most once a second.
	Logger pebble.Logger
	// MinFreeBytes is the free space Open requires on the store's
	// filesystem. Below it Open fails with ErrDiskFull instead of starting
	// a node that could neither write nor compact (Pebble would retry its
	// compactions in a tight loop). Negative disables the check, as does a
	// filesystem that cannot report its usage. Default: 64 MiB.
	MinFreeBytes int64
}

func (o *Options) ensureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = quietLogger{lim: newLogLimiter(os.Stderr, time.Now)}
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 64 << 20
	}
}

// Engine is a node's Pebble instance. It is safe for concurrent use.
type Engine struct {
	db *pebble.DB

	// failure holds the first commit error; once set every commit fails.
	failure atomic.Pointer[error]

	syncs        atomic.Int64 // commits with Sync
	syncNanos    atomic.Int64 // total time spent in synced commits
	commits      atomic.Int64 // all commits
	closeOnce    sync.Once
	closeErr     error
	onStopMu     sync.Mutex
	onStopNotify []func(error)
}

// Open opens (creating if needed) the Pebble instance in opts.Dir.
func Open(opts Options) (*Engine, error) {
	if opts.Dir == "" {
		return nil, errors.New("storage: Options.Dir is required")
	}
	opts.ensureDefaults()
	if err := checkFreeSpace(opts.FS, opts.Dir, opts.MinFreeBytes); err != nil {
		return nil, err
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		FS:           opts.FS,
		Cache:        cache,
		MemTableSize: opts.MemTableSize,
		Logger:       opts.Logger,
		Comparer:     Comparer,
	}
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(opts.Dir, popts)
	if err != nil {
		if v, ok := legacyFormat(opts); ok {
			return nil, fmt.Errorf("%w: %s holds format version %d, this binary reads only version %d "+
				"(MVCC versions became commit timestamps); there is no in-place upgrade: "+
				"start this node on an empty data directory and let it catch up from its peers, "+
				"or run the older binary", ErrOlderFormat, opts.Dir, v, FormatVersion)
		}
		return nil, fmt.Errorf("storage: open %s: %w", opts.Dir, err)
	}
	e := &Engine{db: db}
	if err := e.checkFormat(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return e, nil
}

// checkFreeSpace fails with ErrDiskFull if dir's filesystem has less than
// reserve bytes free.
func checkFreeSpace(fs vfs.FS, dir string, reserve int64) error {
	if reserve < 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage: create %s: %w", dir, err)
	}
	u, err := fs.GetDiskUsage(dir)
	if errors.Is(err, vfs.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: disk usage of %s: %w", dir, err)
	}
	if u.AvailBytes < uint64(reserve) {
		return fmt.Errorf("%w: %s has %d KiB free of %d KiB, the reserve is %d KiB: free space or grow the disk, then start again",
			ErrDiskFull, dir, u.AvailBytes>>10, u.TotalBytes>>10, reserve>>10)
	}
	return nil
}

func (e *Engine) checkFormat() error {
	v, closer, err := e.db.Get(formatKey)
	if errors.Is(err, pebble.ErrNotFound) {
		// Through commitRecover: Pebble reports a failed write by Fatalf.
		b := e.db.NewBatch()
		defer b.Close()
		if err := b.Set(formatKey, binary.BigEndian.AppendUint64(nil, FormatVersion), nil); err != nil {
			return err
		}
		if err := commitRecover(b, pebble.Sync); err != nil {
			return fmt.Errorf("storage: write format version: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: read format version: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return fmt.Errorf("storage: format version is %d bytes, want 8: store is corrupt", len(v))
	}
	switch got := binary.BigEndian.Uint64(v); {
	case got > FormatVersion:
		return fmt.Errorf("%w: store has format version %d, this binary %d: upgrade the binary", ErrNewerFormat, got, FormatVersion)
	case got < FormatVersion:
		return fmt.Errorf("%w: store has format version %d, this binary reads only version %d", ErrOlderFormat, got, FormatVersion)
	}
	return nil
}

// legacyFormat reports the format version of a store that Pebble refused to
// open with Comparer: one written before format 2, with Pebble's default
// comparer. It opens the store read-only to read the version and changes
// nothing.
func legacyFormat(opts Options) (uint64, bool) {
	desc, err := pebble.Peek(opts.Dir, opts.FS)
	if err != nil || !desc.Exists {
		return 0, false
	}
	db, err := pebble.Open(opts.Dir, &pebble.Options{FS: opts.FS, ReadOnly: true, Logger: opts.Logger})
	if err != nil {
		return 0, false
	}
	defer db.Close()
	v, closer, err := db.Get(formatKey)
	if err != nil {
		return 0, false
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// Reader returns the engine for reads and iterators of its current state.
// Writes go through NewBatch and Commit, so that failures stop the engine;
// the Reader's Close does nothing (Close the Engine).
func (e *Engine) Reader() pebble.Reader { return reader{e.db} }

// NewSnapshot returns a consistent view of the engine's current state, for
// reads that must not see later writes. The caller closes it.
func (e *Engine) NewSnapshot() *pebble.Snapshot { return e.db.NewSnapshot() }

// reader is the engine's Pebble instance as a pebble.Reader that callers
// cannot close.
type reader struct{ db *pebble.DB }

func (r reader) Get(key []byte) ([]byte, io.Closer, error) { return r.db.Get(key) }

func (r reader) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) { return r.db.NewIter(o) }

func (r reader) NewIterWithContext(ctx context.Context, o *pebble.IterOptions) (*pebble.Iterator, error) {
	return r.db.NewIterWithContext(ctx, o)
}

func (r reader) Close() error { return nil }

// NewBatch returns an empty write batch.
func (e *Engine) NewBatch() *pebble.Batch { return e.db.NewBatch() }

// NewIndexedBatch returns an empty batch that can also be read from.
func (e *Engine) NewIndexedBatch() *pebble.Batch { return e.db.NewIndexedBatch() }

// Err returns the error that stopped the engine, or nil.
func (e *Engine) Err() error {
	if p := e.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// OnStop registers f to be called once, with the cause, when the engine
// stops after a failed commit; at once if it already stopped.
func (e *Engine) OnStop(f func(error)) {
	e.onStopMu.Lock()
	err := e.Err() // read under the lock: Commit notifies the list after setting it
	if err == nil {
		e.onStopNotify = append(e.onStopNotify, f)
	}
	e.onStopMu.Unlock()
	if err != nil {
		f(err)
	}
}

// Commit writes b. With sync it returns only once b is durable. Any failure
// stops the engine: this and every later commit return an error wrapping
// ErrStopped. Commit does not close b.
func (e *Engine) Commit(b *pebble.Batch, sync bool) error {
	if err := e.Err(); err != nil {
		return err
	}
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	start := time.Now()
	err := commitRecover(b, opt)
	e.commits.Add(1)
	if sync {
		e.syncs.Add(1)
		e.syncNanos.Add(int64(time.Since(start)))
	}
	if err != nil {
		stopErr := fmt.Errorf("%w: %w", ErrStopped, err)
		if e.failure.CompareAndSwap(nil, &stopErr) {
			e.onStopMu.Lock()
			fs := e.onStopNotify
			e.onStopMu.Unlock()
			for _, f := range fs {
				f(stopErr)
			}
		}
		return e.Err()
	}
	return nil
}

// Stats are cumulative counters of an engine.
type Stats struct {
	Commits   int64         // batches committed
	Syncs     int64         // batches committed with fsync
	SyncTime  time.Duration // total time spent in synced commits
	DiskUsage uint64        // bytes of Pebble files
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Commits:   e.commits.Load(),
		Syncs:     e.syncs.Load(),
		SyncTime:  time.Duration(e.syncNanos.Load()),
		DiskUsage: e.db.Metrics().DiskSpaceUsage(),
	}
}

// Close closes Pebble. It is safe to call more than once.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.db.Close() })
	return e.closeErr
}

// Get reads key from r and returns a copy of its value, or nil and
// pebble.ErrNotFound.
func Get(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// commitRecover commits b, turning Pebble's fatal commit error (which it
// reports through Logger.Fatalf on the committing goroutine) into an error.
func commitRecover(b *pebble.Batch, opt *pebble.WriteOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	return b.Commit(opt)
}

// pebbleFatal is the panic value of quietLogger.Fatalf. It wraps the errors
// among Fatalf's arguments, so that callers can tell the cause (errors.Is
// with syscall.ENOSPC, say).
type pebbleFatal struct {
	msg  string
	errs []error
}

func (f pebbleFatal) Error() string   { return f.msg }
func (f pebbleFatal) Unwrap() []error { return f.errs }

// quietLogger drops Pebble's informational lines and keeps errors: all of
// them on stderr if lim is nil, else as lim lets through.
type quietLogger struct{ lim *logLimiter }

func (quietLogger) Infof(string, ...interface{}) {}
func (l quietLogger) Errorf(f string, a ...interface{}) {
	if l.lim == nil {
		fmt.Fprintf(os.Stderr, "pebble: "+f+"\n", a...)
		return
	}
	l.lim.printf(f, a...)
}
func (quietLogger) Fatalf(f string, a ...interface{}) {
	// Pebble calls Fatalf when it cannot go on (a failed WAL write or
	// fsync, corruption) and expects it not to return. Library code must not
	// exit the process: a commit recovers this panic and stops the engine;
	// in a background goroutine it ends the process, as Pebble intends.
	pf := pebbleFatal{msg: fmt.Sprintf("pebble: fatal: "+f, a...)}
	for _, v := range a {
		if err, ok := v.(error); ok {
			pf.errs = append(pf.errs, err)
		}
	}
	panic(pf)
}

// logLimiter writes each distinct log format at most once per
// logInterval, and counts the lines it left out in the next one it
// writes: a node on a full disk retries failing compactions in a loop,
// each failure logged.
type logLimiter struct {
	w   io.Writer
	now func() time.Time
	mu  struct {
		sync.Mutex
		byFormat map[string]*limitState // Pebble's formats are constants: bounded
	}
}

type limitState struct {
	last       time.Time // when a line of this format was last written
	suppressed int       // lines left out since
}

const logInterval = time.Second

func newLogLimiter(w io.Writer, now func() time.Time) *logLimiter {
	l := &logLimiter{w: w, now: now}
	l.mu.byFormat = make(map[string]*limitState)
	return l
}

func (l *logLimiter) printf(format string, a ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st := l.mu.byFormat[format]
	if st == nil {
		st = &limitState{}
		l.mu.byFormat[format] = st
	} else if now.Sub(st.last) < logInterval {
		st.suppressed++
		return
	}
	line := fmt.Sprintf("pebble: "+format, a...)
	if st.suppressed > 0 {
		line += fmt.Sprintf(" (%d similar lines suppressed)", st.suppressed)
	}
	st.last, st.suppressed = now, 0
	fmt.Fprintln(l.w, line)
}
