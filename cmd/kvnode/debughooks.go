package main

// Debug hooks for fault-injection harnesses (jepsen/). Each is an
// environment variable read once when the node starts; none is ever set in
// production. An active hook is announced loudly on stderr, and an invalid
// value is an error, so a harness cannot believe it injected a fault that
// was silently ignored.

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/powerfs"
)

// The debug environment variables.
const (
	// envClockRate is a clock RATE factor for the node's raft timing: the
	// node's clock runs that many times as fast as real time, so its tick
	// interval is the configured one divided by the factor (3.0: ticks 3x
	// as often, elections and heartbeats time out 3x sooner; 0.5: half as
	// often). Strata has no wall-clock dependence in its safety path, so a
	// rate is the only kind of clock skew that can matter.
	envClockRate = "STRATA_DEBUG_CLOCK_RATE"
	// envFsyncDelay is a duration (e.g. "20ms") every Sync, SyncData and
	// SyncTo of the node's data files sleeps before syncing: a slow disk.
	envFsyncDelay = "STRATA_DEBUG_FSYNC_DELAY"
	// envUnsafeLocalReads=1 sets Options.UnsafeLocalReads: reads are
	// served from the local replica without ReadIndex and may be stale.
	// It exists so the checkers can prove they catch a violation.
	envUnsafeLocalReads = "STRATA_DEBUG_UNSAFE_LOCAL_READS"
	// envUnsafeLeaseReads=1 sets Options.UnsafeLeaseReads: the leader
	// answers linearizable reads from raft's tick-counted lease, without a
	// heartbeat round, so a leader that is cut off or paused serves stale
	// reads. It is the lease-read bug of issue 10 kept as a planted bug
	// that the checkers (jepsen's expected-failure run under leader
	// isolation) must catch.
	envUnsafeLeaseReads = "STRATA_DEBUG_UNSAFE_LEASE_READS"
	// envPowerLoss=1 opens the node's store on internal/powerfs: every
	// write that is not fsynced stays in process memory, so a SIGKILL
	// loses exactly the unsynced data, as a power failure would (the OS
	// page cache, which a plain kill keeps, never holds it).
	envPowerLoss = "STRATA_DEBUG_POWER_LOSS"
)

// Limits of the debug values: beyond them a node is not skewed or slow but
// broken, which would test nothing.
const (
	minClockRate    = 0.01
	maxClockRate    = 100
	minTick         = time.Millisecond
	maxFsyncDelay   = 10 * time.Second
	defaultTickDbg  = 100 * time.Millisecond // strata.Options.TickInterval's default
	debugHookBanner = "kvnode: DEBUG HOOK ACTIVE: "
	// powerLossJournal is the file, in the data directory, where
	// envPowerLoss keeps the names of files not yet durable.
	powerLossJournal = ".powerfs-entries"
)

// applyDebugEnv applies the STRATA_DEBUG_* environment variables to opts,
// announcing each active one on stderr. It is called just before
// strata.Open.
func applyDebugEnv(opts *strata.Options) error {
	return applyDebugEnvFrom(os.Getenv, os.Stderr, opts)
}

// applyDebugEnvFrom is applyDebugEnv with the environment and the log
// given.
func applyDebugEnvFrom(getenv func(string) string, log io.Writer, opts *strata.Options) error {
	if s := getenv(envClockRate); s != "" {
		rate, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(rate) || rate < minClockRate || rate > maxClockRate {
			return fmt.Errorf("%s=%q: want a clock rate factor in [%g, %g] (e.g. 0.5 or 3.0)", envClockRate, s, float64(minClockRate), float64(maxClockRate))
		}
		base := opts.TickInterval
		if base == 0 {
			base = defaultTickDbg
		}
		tick := time.Duration(float64(base) / rate)
		if tick < minTick {
			return fmt.Errorf("%s=%q: the raft tick would be %v, under %v", envClockRate, s, tick, minTick)
		}
		opts.TickInterval = tick
		fmt.Fprintf(log, "%s%s=%s: this node's clock runs at %gx real time: raft tick %v instead of %v (for fault-injection tests only)\n",
			debugHookBanner, envClockRate, s, rate, tick, base)
	}
	if s := getenv(envFsyncDelay); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxFsyncDelay {
			return fmt.Errorf("%s=%q: want a duration in [0, %v] (e.g. 20ms)", envFsyncDelay, s, maxFsyncDelay)
		}
		if d > 0 {
			fs := opts.FS
			if fs == nil {
				fs = vfs.Default
			}
			opts.FS = &slowSyncFS{FS: fs, delay: d}
			fmt.Fprintf(log, "%s%s=%s: every fsync of the node's data sleeps %v first: a slow disk (for fault-injection tests only)\n",
				debugHookBanner, envFsyncDelay, s, d)
		}
	}
	if s := getenv(envPowerLoss); s != "" {
		on, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%s=%q: want 1 or 0", envPowerLoss, s)
		}
		if on {
			// Over the slow disk if both are set: a sync writes the
			// data out, then sleeps in the slow disk's sync.
			// New files are durable only once their directory is
			// synced: the names not yet durable are kept in a journal
			// in the data directory, and removed here, at the next start.
			var journal string
			if opts.Dir != "" {
				journal = filepath.Join(opts.Dir, powerLossJournal)
			}
			fs, err := powerfs.Open(opts.FS, powerfs.Options{EntryJournal: journal})
			if err != nil {
				return fmt.Errorf("%s=%s: %w", envPowerLoss, s, err)
			}
			opts.FS = fs
			fmt.Fprintf(log, "%s%s=%s: unsynced writes are kept in memory only, and new files are durable only at a sync of their directory: a kill -9 loses them as a power failure would (for fault-injection tests only)\n",
				debugHookBanner, envPowerLoss, s)
		}
	}
	if s := getenv(envUnsafeLocalReads); s != "" {
		on, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%s=%q: want 1 or 0", envUnsafeLocalReads, s)
		}
		if on {
			opts.UnsafeLocalReads = true
			fmt.Fprintf(log, "%s%s=%s: reads are served from the local replica without ReadIndex and MAY BE STALE: not linearizable (for checker tests only)\n",
				debugHookBanner, envUnsafeLocalReads, s)
		}
	}
	if s := getenv(envUnsafeLeaseReads); s != "" {
		on, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%s=%q: want 1 or 0", envUnsafeLeaseReads, s)
		}
		if on {
			opts.UnsafeLeaseReads = true
			fmt.Fprintf(log, "%s%s=%s: leaders answer reads from raft's tick-counted lease without a heartbeat round; a cut-off or paused leader's reads MAY BE STALE: not linearizable (for checker tests only)\n",
				debugHookBanner, envUnsafeLeaseReads, s)
		}
	}
	return nil
}

// slowSyncFS is a vfs.FS whose files sleep before every sync.
type slowSyncFS struct {
	vfs.FS
	delay time.Duration
}

var _ vfs.FS = (*slowSyncFS)(nil)

func (fs *slowSyncFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &slowSyncFile{File: f, delay: fs.delay}, nil
}

func (fs *slowSyncFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, category))
}

func (fs *slowSyncFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.Open(name, opts...))
}

func (fs *slowSyncFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, category, opts...))
}

func (fs *slowSyncFS) OpenDir(name string) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenDir(name))
}

func (fs *slowSyncFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, category))
}

// Unwrap returns the wrapped filesystem.
func (fs *slowSyncFS) Unwrap() vfs.FS { return fs.FS }

// slowSyncFile is a vfs.File whose syncs sleep first.
type slowSyncFile struct {
	vfs.File
	delay time.Duration
}

var _ vfs.File = (*slowSyncFile)(nil)

func (f *slowSyncFile) Sync() error {
	time.Sleep(f.delay)
	return f.File.Sync()
}

func (f *slowSyncFile) SyncData() error {
	time.Sleep(f.delay)
	return f.File.SyncData()
}

func (f *slowSyncFile) SyncTo(length int64) (bool, error) {
	time.Sleep(f.delay)
	return f.File.SyncTo(length)
}
