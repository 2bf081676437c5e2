package storage

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// storageTestSeed returns the seed of a randomized test: STRATA_SEED if set,
// else a fresh one. It logs the seed so a failure can be reproduced.
func storageTestSeed(t *testing.T) int64 {
	t.Helper()
	seed := rand.Int63()
	if s := os.Getenv("STRATA_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("STRATA_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (reproduce with STRATA_SEED=%d)", seed, seed)
	return seed
}

// openTestEngine opens an engine in dir on fs and closes it at cleanup.
func openTestEngine(t *testing.T, fs vfs.FS, dir string) *Engine {
	t.Helper()
	e, err := Open(Options{Dir: dir, FS: fs, CacheSize: 1 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func openTestLog(t *testing.T, e *Engine, group uint64) *RaftLog {
	t.Helper()
	l, err := OpenRaftLog(e, group)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ents returns entries [lo, hi) of term, with a payload naming them.
func ents(lo, hi, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i < hi; i++ {
		out = append(out, &raftpb.Entry{
			Index: proto.Uint64(i),
			Term:  proto.Uint64(term),
			Type:  raftpb.EntryNormal.Enum(),
			Data:  fmt.Appendf(nil, "entry %d term %d", i, term),
		})
	}
	return out
}

// stage runs f on a fresh batch, commits it with sync and calls Persisted.
func stage(t *testing.T, e *Engine, l *RaftLog, f func(b *pebble.Batch) error) {
	t.Helper()
	b := e.NewBatch()
	defer b.Close()
	if err := f(b); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	l.Persisted()
}

func appendEnts(t *testing.T, e *Engine, l *RaftLog, es []*raftpb.Entry) {
	t.Helper()
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageAppend(b, es) })
}

func wantBounds(t *testing.T, l *RaftLog, first, last uint64) {
	t.Helper()
	f, err := l.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	la, err := l.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || la != last {
		t.Fatalf("FirstIndex, LastIndex = %d, %d; want %d, %d", f, la, first, last)
	}
	if bf, bl := l.Bounds(); bf != first || bl != last {
		t.Fatalf("Bounds = %d, %d; want %d, %d", bf, bl, first, last)
	}
}

func wantTerm(t *testing.T, l *RaftLog, i, term uint64, wantErr error) {
	t.Helper()
	got, err := l.Term(i)
	if !errors.Is(err, wantErr) || (err == nil && got != term) {
		t.Fatalf("Term(%d) = %d, %v; want %d, %v", i, got, err, term, wantErr)
	}
}

func wantEntries(t *testing.T, l *RaftLog, lo, hi, maxSize uint64, want []*raftpb.Entry, wantErr error) {
	t.Helper()
	got, err := l.Entries(lo, hi, maxSize)
	if !errors.Is(err, wantErr) {
		t.Fatalf("Entries(%d, %d, %d) error %v, want %v", lo, hi, maxSize, err, wantErr)
	}
	if err != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("Entries(%d, %d, %d) = %d entries, want %d", lo, hi, maxSize, len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("Entries(%d, %d, %d)[%d] = %v, want %v", lo, hi, maxSize, i, got[i], want[i])
		}
	}
}

// logIndexes lists the indexes of the log entries of group in the engine.
func logIndexes(t *testing.T, e *Engine, group uint64) []uint64 {
	t.Helper()
	start, end := logSpan(group)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []uint64
	for valid := it.First(); valid; valid = it.Next() {
		g, i, err := DecodeLogKey(it.Key())
		if err != nil || g != group {
			t.Fatalf("key %x in the log span of group %d: group %d, %v", it.Key(), group, g, err)
		}
		out = append(out, i)
	}
	return out
}

func TestRaftLogEmpty(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 7)
	wantBounds(t, l, 1, 0)
	wantTerm(t, l, 0, 0, nil)
	wantTerm(t, l, 1, 0, raft.ErrUnavailable)
	wantEntries(t, l, 1, 2, math.MaxUint64, nil, raft.ErrUnavailable)
	hs, cs, err := l.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if !raft.IsEmptyHardState(hs) || len(cs.GetVoters()) != 0 {
		t.Fatalf("InitialState of an empty log = %v, %v", hs, cs)
	}
	if _, err := l.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) {
		t.Fatalf("Snapshot without a snapshotter: %v", err)
	}
	if l.Group() != 7 {
		t.Fatalf("Group() = %d", l.Group())
	}
}

func TestRaftLogAppendPersisted(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 1)
	es := ents(1, 11, 1)

	b := e.NewBatch()
	defer b.Close()
	if err := l.StageAppend(b, es); err != nil {
		t.Fatal(err)
	}
	hs := &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(2), Commit: proto.Uint64(4)}
	if err := l.StageHardState(b, hs); err != nil {
		t.Fatal(err)
	}
	// Staged but not committed: reads see nothing yet.
	wantBounds(t, l, 1, 0)
	if err := e.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	// Committed but not Persisted: the in-memory bounds still lag (see the
	// package Caveats); raft only asks for entries it was told are stable.
	wantBounds(t, l, 1, 0)
	l.Persisted()
	wantBounds(t, l, 1, 10)
	if !proto.Equal(l.HardState(), hs) {
		t.Fatalf("HardState = %v, want %v", l.HardState(), hs)
	}
	for i := uint64(1); i <= 10; i++ {
		wantTerm(t, l, i, 1, nil)
	}
	wantTerm(t, l, 11, 0, raft.ErrUnavailable)
	wantEntries(t, l, 1, 11, math.MaxUint64, es, nil)
	wantEntries(t, l, 3, 7, math.MaxUint64, es[2:6], nil)
	wantEntries(t, l, 10, 11, math.MaxUint64, es[9:], nil)
	wantEntries(t, l, 5, 12, math.MaxUint64, nil, raft.ErrUnavailable)

	// More entries in a later batch, and a contiguous append.
	appendEnts(t, e, l, ents(11, 13, 2))
	wantBounds(t, l, 1, 12)
	wantTerm(t, l, 12, 2, nil)
	wantTerm(t, l, 10, 1, nil)
}

func TestRaftLogAppendErrors(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 1)
	appendEnts(t, e, l, ents(1, 6, 1))
	b := e.NewBatch()
	defer b.Close()
	if err := l.StageAppend(b, ents(7, 8, 1)); err == nil {
		t.Fatal("append leaving a gap after 5 succeeded")
	}
	if err := l.StageAppend(b, nil); err != nil {
		t.Fatalf("empty append: %v", err)
	}
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageTruncate(b, 3) })
	if err := l.StageAppend(b, ents(3, 4, 2)); err == nil {
		t.Fatal("append at 3, at the truncated index, succeeded")
	}
	if err := l.StageAppend(b, ents(2, 4, 2)); err == nil {
		t.Fatal("append at 2, below the truncated index, succeeded")
	}
}

// TestRaftLogOverwriteTail: a leader overwriting a follower's uncommitted
// tail with a shorter one removes the entries beyond the new last index.
func TestRaftLogOverwriteTail(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 3)
	ms := raft.NewMemoryStorage()
	old := ents(1, 11, 1)
	appendEnts(t, e, l, old)
	if err := ms.Append(old); err != nil {
		t.Fatal(err)
	}
	over := ents(6, 8, 2)
	appendEnts(t, e, l, over)
	if err := ms.Append(over); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, l, 1, 7)
	wantTerm(t, l, 5, 1, nil)
	wantTerm(t, l, 6, 2, nil)
	wantTerm(t, l, 7, 2, nil)
	wantTerm(t, l, 8, 0, raft.ErrUnavailable)
	wantEntries(t, l, 1, 8, math.MaxUint64, append(append([]*raftpb.Entry(nil), old[:5]...), over...), nil)
	wantEntries(t, l, 8, 9, math.MaxUint64, nil, raft.ErrUnavailable)
	if got := logIndexes(t, e, 3); fmt.Sprint(got) != fmt.Sprint([]uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("log keys after overwrite: %v", got)
	}
	compareWithMemory(t, l, ms)

	// Overwriting with a longer tail replaces in place.
	longer := ents(7, 13, 3)
	appendEnts(t, e, l, longer)
	if err := ms.Append(longer); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, l, 1, 12)
	compareWithMemory(t, l, ms)

	// The overwrite survives a reopen: no stale entry resurfaces.
	l2 := openTestLog(t, e, 3)
	wantBounds(t, l2, 1, 12)
	compareWithMemory(t, l2, ms)

	// An overwrite of a single entry at the end of the log.
	appendEnts(t, e, l, ents(2, 3, 4))
	if err := ms.Append(ents(2, 3, 4)); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, l, 1, 2)
	if got := logIndexes(t, e, 3); fmt.Sprint(got) != fmt.Sprint([]uint64{1, 2}) {
		t.Fatalf("log keys after overwrite: %v", got)
	}
	compareWithMemory(t, l, ms)
}

// TestRaftLogEntriesMaxSize: maxSize limits the total size of the result,
// which holds at least one entry, as raft.MemoryStorage does.
func TestRaftLogEntriesMaxSize(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 1)
	ms := raft.NewMemoryStorage()
	es := ents(1, 21, 1)
	es[4].Data = make([]byte, 1000) // one big entry in the middle
	appendEnts(t, e, l, es)
	if err := ms.Append(es); err != nil {
		t.Fatal(err)
	}
	one := uint64(proto.Size(es[0]))
	for _, c := range []struct {
		lo, hi, maxSize uint64
		n               int
	}{
		{1, 21, 0, 1},
		{1, 21, 1, 1},
		{1, 21, one, 1},
		{1, 21, 2*one - 1, 1},
		{1, 21, 2 * one, 2},
		{1, 21, 4 * one, 4},
		{1, 21, 4*one + 500, 4}, // the big entry does not fit
		{5, 21, 0, 1},           // the big entry alone, though over maxSize
		{5, 21, 10, 1},
		{1, 21, math.MaxUint64, 20},
		{19, 21, 0, 1},
		{20, 21, 0, 1},
	} {
		got, err := l.Entries(c.lo, c.hi, c.maxSize)
		if err != nil {
			t.Fatalf("Entries(%d, %d, %d): %v", c.lo, c.hi, c.maxSize, err)
		}
		if len(got) != c.n {
			t.Fatalf("Entries(%d, %d, %d) = %d entries, want %d", c.lo, c.hi, c.maxSize, len(got), c.n)
		}
		want, err := ms.Entries(c.lo, c.hi, c.maxSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != len(got) {
			t.Fatalf("Entries(%d, %d, %d) = %d entries, MemoryStorage gives %d", c.lo, c.hi, c.maxSize, len(got), len(want))
		}
	}
}

func TestRaftLogTruncate(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 2)
	ms := raft.NewMemoryStorage()
	es := append(ents(1, 6, 1), ents(6, 11, 2)...)
	appendEnts(t, e, l, es)
	if err := ms.Append(es); err != nil {
		t.Fatal(err)
	}
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageTruncate(b, 6) })
	if err := ms.Compact(6); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, l, 7, 10)
	wantTerm(t, l, 6, 2, nil) // the truncated entry's term is still known
	wantTerm(t, l, 5, 0, raft.ErrCompacted)
	wantTerm(t, l, 1, 0, raft.ErrCompacted)
	wantEntries(t, l, 6, 8, math.MaxUint64, nil, raft.ErrCompacted)
	wantEntries(t, l, 3, 8, math.MaxUint64, nil, raft.ErrCompacted)
	wantEntries(t, l, 7, 11, math.MaxUint64, es[6:], nil)
	if got := logIndexes(t, e, 2); fmt.Sprint(got) != fmt.Sprint([]uint64{7, 8, 9, 10}) {
		t.Fatalf("log keys after truncation: %v", got)
	}
	compareWithMemory(t, l, ms)

	// At or below the truncated index: a no-op.
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageTruncate(b, 6) })
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageTruncate(b, 2) })
	wantBounds(t, l, 7, 10)
	// Beyond the last index: an error.
	b := e.NewBatch()
	defer b.Close()
	if err := l.StageTruncate(b, 11); err == nil {
		t.Fatal("truncate beyond the last index succeeded")
	}
	// Truncating the whole log leaves it empty, with the last term known.
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageTruncate(b, 10) })
	if err := ms.Compact(10); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, l, 11, 10)
	wantTerm(t, l, 10, 2, nil)
	wantEntries(t, l, 11, 12, math.MaxUint64, nil, raft.ErrUnavailable)
	compareWithMemory(t, l, ms)
	// Appending continues after it.
	appendEnts(t, e, l, ents(11, 13, 3))
	wantBounds(t, l, 11, 12)

	// Reopen recovers the truncated state.
	l2 := openTestLog(t, e, 2)
	wantBounds(t, l2, 11, 12)
	wantTerm(t, l2, 10, 2, nil)
	wantTerm(t, l2, 9, 0, raft.ErrCompacted)
}

func TestRaftLogSnapshot(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 4)
	appendEnts(t, e, l, ents(1, 11, 1))

	// A snapshot beyond the log.
	meta := &raftpb.SnapshotMetadata{Index: proto.Uint64(20), Term: proto.Uint64(3)}
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageSnapshot(b, meta) })
	wantBounds(t, l, 21, 20)
	wantTerm(t, l, 20, 3, nil)
	wantTerm(t, l, 10, 0, raft.ErrCompacted)
	wantTerm(t, l, 21, 0, raft.ErrUnavailable)
	wantEntries(t, l, 21, 22, math.MaxUint64, nil, raft.ErrUnavailable)
	if got := logIndexes(t, e, 4); len(got) != 0 {
		t.Fatalf("log keys after a snapshot: %v", got)
	}

	// A snapshot inside the log also empties it.
	appendEnts(t, e, l, ents(21, 31, 3))
	meta = &raftpb.SnapshotMetadata{Index: proto.Uint64(25), Term: proto.Uint64(3)}
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageSnapshot(b, meta) })
	wantBounds(t, l, 26, 25)
	if got := logIndexes(t, e, 4); len(got) != 0 {
		t.Fatalf("log keys after a snapshot inside the log: %v", got)
	}

	// Snapshot and entries after it in one batch, as a Ready can carry.
	stage(t, e, l, func(b *pebble.Batch) error {
		if err := l.StageSnapshot(b, &raftpb.SnapshotMetadata{Index: proto.Uint64(40), Term: proto.Uint64(5)}); err != nil {
			return err
		}
		return l.StageAppend(b, ents(41, 44, 5))
	})
	wantBounds(t, l, 41, 43)
	wantTerm(t, l, 40, 5, nil)
	wantEntries(t, l, 41, 44, math.MaxUint64, ents(41, 44, 5), nil)

	l2 := openTestLog(t, e, 4)
	wantBounds(t, l2, 41, 43)
	wantTerm(t, l2, 40, 5, nil)

	// Snapshot uses the snapshotter.
	want := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(40), Term: proto.Uint64(5)}}
	l.SetSnapshotter(func() (*raftpb.Snapshot, error) { return want, nil })
	if got, err := l.Snapshot(); err != nil || got != want {
		t.Fatalf("Snapshot() = %v, %v", got, err)
	}
}

func TestRaftLogInitial(t *testing.T) {
	fs := vfs.NewMem()
	e := openTestEngine(t, fs, "db")
	l := openTestLog(t, e, 5)
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageInitial(b, 10, 5, cs) })
	check := func(l *RaftLog) {
		t.Helper()
		wantBounds(t, l, 11, 10)
		wantTerm(t, l, 10, 5, nil)
		wantTerm(t, l, 9, 0, raft.ErrCompacted)
		hs, gotCS, err := l.InitialState()
		if err != nil {
			t.Fatal(err)
		}
		if hs.GetTerm() != 5 || hs.GetCommit() != 10 || hs.GetVote() != 0 {
			t.Fatalf("InitialState hard state = %v", hs)
		}
		if !proto.Equal(gotCS, cs) {
			t.Fatalf("InitialState conf state = %v, want %v", gotCS, cs)
		}
		as, err := LoadAppliedState(e.db, 5)
		if err != nil {
			t.Fatal(err)
		}
		if as.Index != 10 || as.Term != 5 || !proto.Equal(as.ConfState, cs) {
			t.Fatalf("applied state = %+v", as)
		}
	}
	check(l)
	check(openTestLog(t, e, 5))
	// Another group is untouched.
	other := openTestLog(t, e, 6)
	wantBounds(t, other, 1, 0)
	if as, err := LoadAppliedState(e.db, 6); err != nil || as.Index != 0 || as.ConfState == nil {
		t.Fatalf("applied state of an untouched group = %+v, %v", as, err)
	}
}

func TestRaftLogDiscard(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 1)
	appendEnts(t, e, l, ents(1, 6, 1))
	hs := &raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(3), Vote: proto.Uint64(1)}
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageHardState(b, hs) })

	b := e.NewBatch()
	if err := l.StageAppend(b, ents(4, 9, 2)); err != nil {
		t.Fatal(err)
	}
	if err := l.StageHardState(b, &raftpb.HardState{Term: proto.Uint64(2), Commit: proto.Uint64(8)}); err != nil {
		t.Fatal(err)
	}
	if err := l.StageSnapshot(b, &raftpb.SnapshotMetadata{Index: proto.Uint64(50), Term: proto.Uint64(9)}); err != nil {
		t.Fatal(err)
	}
	_ = b.Close() // never committed
	l.Discard()
	l.Persisted() // nothing staged any more: a no-op
	wantBounds(t, l, 1, 5)
	if !proto.Equal(l.HardState(), hs) {
		t.Fatalf("HardState after Discard = %v, want %v", l.HardState(), hs)
	}
	wantTerm(t, l, 5, 1, nil)

	// Staging after Discard starts from the persisted state: an append at
	// 6 is contiguous again, one at 9 would leave a gap.
	b = e.NewBatch()
	defer b.Close()
	if err := l.StageAppend(b, ents(10, 11, 2)); err == nil {
		t.Fatal("append at 10 after Discard succeeded: staged state leaked")
	}
	appendEnts(t, e, l, ents(6, 8, 1))
	wantBounds(t, l, 1, 7)
	wantEntries(t, l, 1, 8, math.MaxUint64, ents(1, 8, 1), nil)
}

// TestRaftLogReopen: OpenRaftLog on a reopened engine recovers the bounds,
// terms and hard state.
func TestRaftLogReopen(t *testing.T) {
	fs := vfs.NewMem()
	e, err := Open(Options{Dir: "db", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	l := openTestLog(t, e, 9)
	appendEnts(t, e, l, append(ents(1, 8, 1), ents(8, 16, 2)...))
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageTruncate(b, 4) })
	hs := &raftpb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(3), Commit: proto.Uint64(12)}
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageHardState(b, hs) })
	appendEnts(t, e, l, ents(14, 15, 3)) // overwrite, shortening the log to 14
	// Another group in the same engine must not leak into group 9.
	o := openTestLog(t, e, 10)
	appendEnts(t, e, o, ents(1, 30, 7))
	o8 := openTestLog(t, e, 8)
	appendEnts(t, e, o8, ents(1, 3, 6))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openTestEngine(t, fs, "db")
	l = openTestLog(t, e, 9)
	wantBounds(t, l, 5, 14)
	wantTerm(t, l, 4, 1, nil)
	wantTerm(t, l, 13, 2, nil)
	wantTerm(t, l, 14, 3, nil)
	wantTerm(t, l, 15, 0, raft.ErrUnavailable)
	if !proto.Equal(l.HardState(), hs) {
		t.Fatalf("HardState after reopen = %v, want %v", l.HardState(), hs)
	}
	wantEntries(t, l, 5, 15, math.MaxUint64, append(append(ents(5, 8, 1), ents(8, 14, 2)...), ents(14, 15, 3)...), nil)
	wantBounds(t, openTestLog(t, e, 10), 1, 29)
	wantBounds(t, openTestLog(t, e, 8), 1, 2)
}

func TestRaftLogDestroy(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 2)
	neighbours := []*RaftLog{openTestLog(t, e, 1), openTestLog(t, e, 3)}
	for _, x := range append(neighbours, l) {
		x := x
		stage(t, e, x, func(b *pebble.Batch) error {
			if err := x.StageInitial(b, 5, 1, &raftpb.ConfState{Voters: []uint64{1}}); err != nil {
				return err
			}
			return x.StageAppend(b, ents(6, 9, 1))
		})
	}
	b := e.NewBatch()
	defer b.Close()
	if err := l.Destroy(b); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	start, end := GroupRaftSpan(2)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		t.Fatal(err)
	}
	if it.First() {
		t.Fatalf("key %x left after Destroy", it.Key())
	}
	_ = it.Close()
	for _, n := range []uint64{1, 3} {
		x := openTestLog(t, e, n)
		wantBounds(t, x, 6, 8)
		if as, err := LoadAppliedState(e.db, n); err != nil || as.Index != 5 {
			t.Fatalf("group %d applied state after destroying group 2: %+v, %v", n, as, err)
		}
	}
	wantBounds(t, openTestLog(t, e, 2), 1, 0)
}

// compareWithMemory checks that l answers every raft.Storage read as ms does.
func compareWithMemory(t *testing.T, l *RaftLog, ms *raft.MemoryStorage) {
	t.Helper()
	mf, _ := ms.FirstIndex()
	ml, _ := ms.LastIndex()
	wantBounds(t, l, mf, ml)
	lo := mf - 1
	if lo > 0 {
		lo--
	}
	for i := lo; i <= ml+2; i++ {
		wt, werr := ms.Term(i)
		wantTerm(t, l, i, wt, werr)
	}
	sizes := []uint64{0, 1, 100, 250, math.MaxUint64}
	for lo := max(mf, 2) - 1; lo <= ml+1; lo++ {
		for hi := lo + 1; hi <= ml+2; hi++ {
			for _, sz := range sizes {
				var want []*raftpb.Entry
				var werr error
				if hi > ml+1 {
					werr = raft.ErrUnavailable // MemoryStorage panics here
					if lo < mf {
						werr = raft.ErrCompacted
					}
				} else {
					want, werr = ms.Entries(lo, hi, sz)
				}
				wantEntries(t, l, lo, hi, sz, want, werr)
			}
		}
	}
}

// TestRaftLogModel applies random appends, overwrites, truncations,
// snapshots, discarded batches and reopens to a RaftLog and to a
// raft.MemoryStorage and checks they always answer alike.
func TestRaftLogModel(t *testing.T) {
	rng := rand.New(rand.NewSource(storageTestSeed(t)))
	fs := vfs.NewMem()
	e, err := Open(Options{Dir: "db", FS: fs, CacheSize: 1 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	const group = 3
	// A small entry cache, so that appends overflow it and reads span
	// the cache and the engine.
	openLog := func() *RaftLog {
		l := openTestLog(t, e, group)
		l.cacheMaxEntries, l.cacheMaxBytes = 8, 1000
		return l
	}
	l := openLog()
	ms := raft.NewMemoryStorage()
	hs := &raftpb.HardState{}

	randEnts := func(first uint64) []*raftpb.Entry {
		prev, err := ms.Term(first - 1)
		if err != nil {
			t.Fatalf("model Term(%d): %v", first-1, err)
		}
		var es []*raftpb.Entry
		term := prev + uint64(rng.Intn(2))
		for i := first; i < first+1+uint64(rng.Intn(6)); i++ {
			if rng.Intn(4) == 0 {
				term++
			}
			es = append(es, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(term),
				Type: raftpb.EntryNormal.Enum(), Data: make([]byte, rng.Intn(200))})
			rng.Read(es[len(es)-1].Data)
		}
		return es
	}

	for step := 0; step < 300; step++ {
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		switch op := rng.Intn(10); {
		case op < 5: // append, possibly overwriting a tail, with a hard state
			at := first + uint64(rng.Int63n(int64(last-first+2)))
			es := randEnts(at)
			withHS := rng.Intn(2) == 0
			newHS := &raftpb.HardState{Term: proto.Uint64(es[len(es)-1].GetTerm()), Vote: proto.Uint64(uint64(rng.Intn(3))), Commit: proto.Uint64(first - 1)}
			stage(t, e, l, func(b *pebble.Batch) error {
				if err := l.StageAppend(b, es); err != nil {
					return err
				}
				if withHS {
					return l.StageHardState(b, newHS)
				}
				return nil
			})
			if err := ms.Append(es); err != nil {
				t.Fatal(err)
			}
			if withHS {
				hs = newHS
			}
		case op < 7: // truncate
			if last < first {
				continue
			}
			at := first + uint64(rng.Int63n(int64(last-first+1)))
			stage(t, e, l, func(b *pebble.Batch) error { return l.StageTruncate(b, at) })
			if err := ms.Compact(at); err != nil {
				t.Fatal(err)
			}
		case op < 8 && rng.Intn(2) == 0: // two appends in one batch, the second may overwrite the first
			at := first + uint64(rng.Int63n(int64(last-first+2)))
			es1 := randEnts(at)
			if err := ms.Append(es1); err != nil {
				t.Fatal(err)
			}
			last1 := es1[len(es1)-1].GetIndex()
			es2 := randEnts(at + uint64(rng.Int63n(int64(last1-at+2))))
			if err := ms.Append(es2); err != nil {
				t.Fatal(err)
			}
			stage(t, e, l, func(b *pebble.Batch) error {
				if err := l.StageAppend(b, es1); err != nil {
					return err
				}
				return l.StageAppend(b, es2)
			})
		case op < 8: // snapshot, inside or beyond the log
			lastTerm, _ := ms.Term(last)
			idx := first + uint64(rng.Intn(int(last-first+1)+5))
			term := lastTerm + uint64(rng.Intn(2))
			meta := &raftpb.SnapshotMetadata{Index: proto.Uint64(idx), Term: proto.Uint64(term), ConfState: &raftpb.ConfState{}}
			stage(t, e, l, func(b *pebble.Batch) error { return l.StageSnapshot(b, meta) })
			if err := ms.ApplySnapshot(&raftpb.Snapshot{Metadata: meta}); err != nil {
				t.Fatal(err)
			}
		case op < 9: // a batch that is never committed
			b := e.NewBatch()
			if err := l.StageAppend(b, randEnts(last+1)); err != nil {
				t.Fatal(err)
			}
			if err := l.StageHardState(b, &raftpb.HardState{Term: proto.Uint64(99)}); err != nil {
				t.Fatal(err)
			}
			_ = b.Close()
			l.Discard()
		default: // reopen the engine
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e, err = Open(Options{Dir: "db", FS: fs, CacheSize: 1 << 20, MemTableSize: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			l = openLog()
		}
		if !proto.Equal(l.HardState(), hs) {
			t.Fatalf("step %d: HardState = %v, want %v", step, l.HardState(), hs)
		}
		if rng.Intn(2) == 0 { // the owner applied up to some index
			last, _ := ms.LastIndex()
			l.ReleaseApplied(uint64(rng.Int63n(int64(last) + 1)))
		}
		compareWithMemory(t, l, ms)
		// A log opened afresh has no cache: it reads the engine alone.
		compareWithMemory(t, openTestLog(t, e, group), ms)
	}
}

// TestRaftLogTruncateInBatchWithAppend: a truncation staged in the same
// batch as an append records the term of the staged entry, not the term of
// the entry it replaces, or refuses when it cannot know it.
func TestRaftLogTruncateInBatchWithAppend(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 1)
	appendEnts(t, e, l, ents(1, 11, 1))

	// Truncating at the new last index of an overwrite: its term is known.
	stage(t, e, l, func(b *pebble.Batch) error {
		if err := l.StageAppend(b, ents(5, 7, 2)); err != nil {
			return err
		}
		return l.StageTruncate(b, 6)
	})
	wantBounds(t, l, 7, 6)
	wantTerm(t, l, 6, 2, nil)
	wantBounds(t, openTestLog(t, e, 1), 7, 6)
	wantTerm(t, openTestLog(t, e, 1), 6, 2, nil)

	// Inside staged entries: refused rather than recorded with a stale term.
	appendEnts(t, e, l, ents(7, 11, 2))
	b := e.NewBatch()
	defer b.Close()
	if err := l.StageAppend(b, ents(8, 11, 3)); err != nil {
		t.Fatal(err)
	}
	if err := l.StageTruncate(b, 9); err == nil {
		t.Fatal("truncate at 9 inside entries staged in the same batch succeeded")
	}
	// Below the staged entries the persisted term is right.
	if err := l.StageTruncate(b, 7); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	l.Persisted()
	wantBounds(t, l, 8, 10)
	wantTerm(t, l, 7, 2, nil)
	wantTerm(t, l, 8, 3, nil)
	// After Persisted, truncating the once-staged entries works.
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageTruncate(b, 9) })
	wantTerm(t, l, 9, 3, nil)
}

// TestRaftLogEntryCache: entries just persisted are served from memory (the
// very entries appended), within the cache's bounds; older ones from the
// engine; and a snapshot empties the cache.
func TestRaftLogEntryCache(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 1)
	l.cacheMaxEntries = 4
	es := ents(1, 11, 1)
	appendEnts(t, e, l, es)
	got, err := l.Entries(7, 11, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	for i, ent := range got {
		if ent != es[6+i] {
			t.Fatalf("Entries(7, 11)[%d] is not the cached entry", i)
		}
	}
	got, err = l.Entries(5, 11, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || got[0] == es[4] || !proto.Equal(got[0], es[4]) {
		t.Fatalf("Entries(5, 11): want 6 entries, the first read from the engine")
	}
	meta := &raftpb.SnapshotMetadata{Index: proto.Uint64(20), Term: proto.Uint64(2), ConfState: &raftpb.ConfState{}}
	stage(t, e, l, func(b *pebble.Batch) error { return l.StageSnapshot(b, meta) })
	if n := len(l.mu.cache); n != 0 {
		t.Fatalf("cache holds %d entries after a snapshot, want 0", n)
	}
	wantEntries(t, l, 20, 21, math.MaxUint64, nil, raft.ErrCompacted)
	appendEnts(t, e, l, ents(21, 23, 2))
	wantEntries(t, l, 21, 23, math.MaxUint64, ents(21, 23, 2), nil)
}

// TestRaftLogReleaseApplied: once entries are applied the cache keeps only
// the newest few of them, and the rest are read from the engine.
func TestRaftLogReleaseApplied(t *testing.T) {
	e := openTestEngine(t, vfs.NewMem(), "db")
	l := openTestLog(t, e, 1)
	es := ents(1, 101, 1)
	appendEnts(t, e, l, es)
	l.ReleaseApplied(10) // keeps 16 applied entries: nothing to drop yet
	if n := len(l.mu.cache); n != 100 {
		t.Fatalf("cache holds %d entries, want 100", n)
	}
	l.ReleaseApplied(90)
	if n := len(l.mu.cache); n != 26 {
		t.Fatalf("after ReleaseApplied(90) the cache holds %d entries, want 26 (75..100)", n)
	}
	got, err := l.Entries(75, 101, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 26 || got[0] != es[74] {
		t.Fatalf("Entries(75, 101): want the cached entries")
	}
	// A range that starts below the cache is read from the engine.
	got, err = l.Entries(74, 101, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 27 || got[0] == es[73] || !proto.Equal(got[0], es[73]) || !proto.Equal(got[26], es[99]) {
		t.Fatalf("Entries(74, 101): want entries 74..100 read from the engine")
	}
	l.ReleaseApplied(200)
	if n := len(l.mu.cache); n != 0 {
		t.Fatalf("after ReleaseApplied(200) the cache holds %d entries, want 0", n)
	}
	wantEntries(t, l, 1, 101, math.MaxUint64, es, nil)
}
