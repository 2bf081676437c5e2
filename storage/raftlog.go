package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// AppliedState is what a group's state machine has applied. It is written in
// the same batch as the state-machine writes of the entries it covers, so the
// two never disagree.
type AppliedState struct {
	Index     uint64            // index of the last applied entry
	Term      uint64            // term of that entry
	ConfState *raftpb.ConfState // membership as of Index
}

// Encode returns the stored form: index and term (8 bytes each, BE), then
// the ConfState in protobuf.
func (a *AppliedState) Encode() ([]byte, error) {
	buf := make([]byte, 16, 64)
	binary.BigEndian.PutUint64(buf[0:], a.Index)
	binary.BigEndian.PutUint64(buf[8:], a.Term)
	cs := a.ConfState
	if cs == nil {
		cs = &raftpb.ConfState{}
	}
	return proto.MarshalOptions{}.MarshalAppend(buf, cs)
}

// DecodeAppliedState parses the stored form of an AppliedState.
func DecodeAppliedState(b []byte) (AppliedState, error) {
	if len(b) < 16 {
		return AppliedState{}, fmt.Errorf("storage: applied state is %d bytes, want at least 16", len(b))
	}
	a := AppliedState{
		Index:     binary.BigEndian.Uint64(b[0:]),
		Term:      binary.BigEndian.Uint64(b[8:]),
		ConfState: &raftpb.ConfState{},
	}
	if err := proto.Unmarshal(b[16:], a.ConfState); err != nil {
		return AppliedState{}, fmt.Errorf("storage: applied state conf state: %w", err)
	}
	return a, nil
}

// LoadAppliedState reads the applied state of group from r. A group that has
// applied nothing has the zero state and an empty ConfState.
func LoadAppliedState(r pebble.Reader, group uint64) (AppliedState, error) {
	v, err := Get(r, AppliedStateKey(group))
	if errors.Is(err, pebble.ErrNotFound) {
		return AppliedState{ConfState: &raftpb.ConfState{}}, nil
	}
	if err != nil {
		return AppliedState{}, err
	}
	return DecodeAppliedState(v)
}

// PutAppliedState stages a in w.
func PutAppliedState(w pebble.Writer, group uint64, a AppliedState) error {
	v, err := a.Encode()
	if err != nil {
		return err
	}
	return w.Set(AppliedStateKey(group), v, nil)
}

// RaftLog is the raft log and hard state of one group, stored in the
// engine. It implements raft.Storage.
//
// Reads (the raft.Storage methods) may run on any goroutine. Writes are
// staged into a caller's batch with the Stage* methods and become visible to
// reads only when the caller, after committing that batch, calls Persisted.
// One goroutine at a time may stage writes (the owner of the group).
type RaftLog struct {
	e     *Engine
	group uint64

	// snapshot builds the snapshot raft asks for; set by the group's owner.
	snapshot func() (*raftpb.Snapshot, error)
	// bounds of the entry cache (tests lower them)
	cacheMaxEntries int
	cacheMaxBytes   uint64

	mu struct {
		sync.Mutex
		truncIndex, truncTerm uint64 // the last entry removed from the log
		last                  uint64 // index of the last entry (truncIndex if none)
		lastTerm              uint64
		hardState             *raftpb.HardState
		// cache holds the newest persisted entries, a contiguous run that
		// ends at last (or nothing), so that raft reads the entries it
		// commits and sends without a trip to the engine.
		cache []cachedEntry
	}
	// pending holds staged, uncommitted changes (owner goroutine only).
	pending struct {
		set                   bool
		truncIndex, truncTerm uint64
		last, lastTerm        uint64
		hardState             *raftpb.HardState
		// appendFrom is the lowest index StageAppend wrote since the last
		// Persisted or Discard, 0 if none: the terms of those entries are
		// only in the uncommitted batch.
		appendFrom uint64
		// ents are the entries staged since appendFrom, for the cache.
		ents []cachedEntry
		// clearCache: the staged changes replace the whole log.
		clearCache bool
	}
}

// cachedEntry is an entry of the cache with its encoded size.
type cachedEntry struct {
	ent  *raftpb.Entry
	size uint64
}

// Default cache bounds per group: the entries a healthy group reads back
// (the ones it commits, and those a follower a little behind needs) are the
// newest few hundred; older ones come from the engine.
const (
	defaultCacheMaxEntries = 1024
	defaultCacheMaxBytes   = 1 << 20
	// releaseMargin is how many applied entries ReleaseApplied keeps, for
	// the terms raft looks up around the last index.
	releaseMargin = 16
)

var _ raft.Storage = (*RaftLog)(nil)

// OpenRaftLog loads the raft state of group. snapshot is called when raft
// needs a snapshot to send to a follower; it may be nil until SetSnapshotter.
func OpenRaftLog(e *Engine, group uint64) (*RaftLog, error) {
	l := &RaftLog{e: e, group: group, cacheMaxEntries: defaultCacheMaxEntries, cacheMaxBytes: defaultCacheMaxBytes}
	r := e.db
	if v, err := Get(r, TruncatedStateKey(group)); err == nil {
		if len(v) != 16 {
			return nil, fmt.Errorf("storage: group %d truncated state is %d bytes, want 16", group, len(v))
		}
		l.mu.truncIndex = binary.BigEndian.Uint64(v)
		l.mu.truncTerm = binary.BigEndian.Uint64(v[8:])
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, err
	}
	l.mu.last, l.mu.lastTerm = l.mu.truncIndex, l.mu.truncTerm
	start, end := logSpan(group)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return nil, err
	}
	if it.Last() {
		_, idx, err := DecodeLogKey(it.Key())
		if err != nil {
			it.Close()
			return nil, err
		}
		var ent raftpb.Entry
		if err := proto.Unmarshal(it.Value(), &ent); err != nil {
			it.Close()
			return nil, fmt.Errorf("storage: group %d entry %d: %w", group, idx, err)
		}
		l.mu.last, l.mu.lastTerm = idx, ent.GetTerm()
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	l.mu.hardState = &raftpb.HardState{}
	if v, err := Get(r, HardStateKey(group)); err == nil {
		if err := proto.Unmarshal(v, l.mu.hardState); err != nil {
			return nil, fmt.Errorf("storage: group %d hard state: %w", group, err)
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, err
	}
	l.resetPending()
	return l, nil
}

// SetSnapshotter sets the function that builds snapshots for Snapshot.
func (l *RaftLog) SetSnapshotter(f func() (*raftpb.Snapshot, error)) { l.snapshot = f }

// Group returns the group ID.
func (l *RaftLog) Group() uint64 { return l.group }

// InitialState implements raft.Storage.
func (l *RaftLog) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	as, err := LoadAppliedState(l.e.db, l.group)
	if err != nil {
		return nil, nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return proto.Clone(l.mu.hardState).(*raftpb.HardState), as.ConfState, nil
}

// Entries implements raft.Storage. As with raft.MemoryStorage, the
// entries returned may be shared with the log's cache and with other
// callers: they must not be modified.
func (l *RaftLog) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	l.mu.Lock()
	trunc, last := l.mu.truncIndex, l.mu.last
	l.mu.Unlock()
	if lo <= trunc {
		return nil, raft.ErrCompacted
	}
	if hi > last+1 {
		return nil, raft.ErrUnavailable
	}
	if ents, ok := l.cachedEntries(lo, hi, maxSize); ok {
		return ents, nil
	}
	it, err := l.e.db.NewIter(&pebble.IterOptions{LowerBound: LogKey(l.group, lo), UpperBound: LogKey(l.group, hi)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	ents := make([]*raftpb.Entry, 0, min(hi-lo, 64))
	var size uint64
	next := lo
	for valid := it.First(); valid; valid = it.Next() {
		ent := &raftpb.Entry{}
		if err := proto.Unmarshal(it.Value(), ent); err != nil {
			return nil, fmt.Errorf("storage: group %d entry: %w", l.group, err)
		}
		if ent.GetIndex() != next {
			// A concurrent truncation removed entries under us.
			return nil, raft.ErrCompacted
		}
		size += uint64(proto.Size(ent))
		if len(ents) > 0 && size > maxSize {
			break
		}
		ents = append(ents, ent)
		next++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if len(ents) == 0 || (next < hi && size <= maxSize) {
		// Entries below last must exist unless a truncation raced us.
		l.mu.Lock()
		trunc = l.mu.truncIndex
		l.mu.Unlock()
		if lo <= trunc {
			return nil, raft.ErrCompacted
		}
		return nil, raft.ErrUnavailable
	}
	return ents, nil
}

// cachedEntries returns the entries [lo, hi) from the cache, limited by
// maxSize as Entries is, if the cache holds them all.
func (l *RaftLog) cachedEntries(lo, hi, maxSize uint64) ([]*raftpb.Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.mu.cache
	if len(c) == 0 || lo < c[0].ent.GetIndex() || hi > l.mu.last+1 || lo >= hi {
		return nil, false
	}
	c = c[lo-c[0].ent.GetIndex() : hi-c[0].ent.GetIndex()]
	ents := make([]*raftpb.Entry, 0, len(c))
	var size uint64
	for _, ce := range c {
		size += ce.size
		if len(ents) > 0 && size > maxSize {
			break
		}
		ents = append(ents, ce.ent)
	}
	return ents, true
}

// ReleaseApplied drops from the cache the entries the caller has applied
// up to index, but for the newest few: raft reads entries back to apply
// them and seldom after, so the cache holds what is in flight, and a group
// that goes idle keeps next to nothing in memory.
func (l *RaftLog) ReleaseApplied(index uint64) {
	if index <= releaseMargin {
		return
	}
	upTo := index - releaseMargin
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.mu.cache
	if len(c) == 0 || upTo < c[0].ent.GetIndex() {
		return
	}
	l.mu.cache = dropFront(c, int(min(uint64(len(c)), upTo-c[0].ent.GetIndex()+1)))
}

// emptied returns c emptied, its slots cleared so that the entries can be
// collected.
func emptied(c []cachedEntry) []cachedEntry {
	clear(c)
	return c[:0]
}

// dropFront removes the first n entries of c in place, clearing the slots
// they leave so that the entries can be collected.
func dropFront(c []cachedEntry, n int) []cachedEntry {
	if n == 0 {
		return c
	}
	k := copy(c, c[n:])
	clear(c[k:])
	return c[:k]
}

// Term implements raft.Storage.
func (l *RaftLog) Term(i uint64) (uint64, error) {
	l.mu.Lock()
	trunc, truncTerm, last, lastTerm := l.mu.truncIndex, l.mu.truncTerm, l.mu.last, l.mu.lastTerm
	var cached *raftpb.Entry
	if c := l.mu.cache; len(c) > 0 && i >= c[0].ent.GetIndex() && i <= last {
		cached = c[i-c[0].ent.GetIndex()].ent
	}
	l.mu.Unlock()
	switch {
	case i == trunc:
		return truncTerm, nil
	case i < trunc:
		return 0, raft.ErrCompacted
	case i > last:
		return 0, raft.ErrUnavailable
	case i == last:
		return lastTerm, nil
	case cached != nil:
		return cached.GetTerm(), nil
	}
	v, err := Get(l.e.db, LogKey(l.group, i))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, raft.ErrCompacted
	}
	if err != nil {
		return 0, err
	}
	var ent raftpb.Entry
	if err := proto.Unmarshal(v, &ent); err != nil {
		return 0, fmt.Errorf("storage: group %d entry %d: %w", l.group, i, err)
	}
	return ent.GetTerm(), nil
}

// LastIndex implements raft.Storage.
func (l *RaftLog) LastIndex() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.last, nil
}

// FirstIndex implements raft.Storage.
func (l *RaftLog) FirstIndex() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.truncIndex + 1, nil
}

// Snapshot implements raft.Storage by calling the group's snapshotter.
func (l *RaftLog) Snapshot() (*raftpb.Snapshot, error) {
	if l.snapshot == nil {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return l.snapshot()
}

// HardState returns the persisted hard state.
func (l *RaftLog) HardState() *raftpb.HardState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return proto.Clone(l.mu.hardState).(*raftpb.HardState)
}

// EnsureCommit raises the commit index of the hard state to at least
// index. A group applies committed entries before it persists the hard
// state that says they are committed, so after a crash the applied index
// may be ahead of the stored commit index; the commit index is volatile in
// raft, and entries applied were committed, so raising it is safe.
func (l *RaftLog) EnsureCommit(index uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.hardState.GetCommit() < index {
		hs := proto.Clone(l.mu.hardState).(*raftpb.HardState)
		hs.Commit = proto.Uint64(index)
		l.mu.hardState = hs
		l.pending.hardState = hs
	}
}

// Bounds returns the first and last index of the persisted log.
func (l *RaftLog) Bounds() (first, last uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.truncIndex + 1, l.mu.last
}

func (l *RaftLog) resetPending() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending.set = false
	l.pending.appendFrom = 0
	l.pending.ents = nil
	l.pending.clearCache = false
	l.pending.truncIndex, l.pending.truncTerm = l.mu.truncIndex, l.mu.truncTerm
	l.pending.last, l.pending.lastTerm = l.mu.last, l.mu.lastTerm
	l.pending.hardState = l.mu.hardState
}

// StageAppend stages ents, which must be contiguous, into b. Entries already
// in the log at or after ents[0].Index are replaced: those beyond the new
// last index are deleted, as raft requires when a leader overwrites a
// follower's uncommitted tail.
func (l *RaftLog) StageAppend(b *pebble.Batch, ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].GetIndex()
	if first <= l.pending.truncIndex {
		return fmt.Errorf("storage: group %d: append at %d below truncated index %d", l.group, first, l.pending.truncIndex)
	}
	if first > l.pending.last+1 {
		return fmt.Errorf("storage: group %d: append at %d leaves a gap after %d", l.group, first, l.pending.last)
	}
	// Entries staged earlier in this batch at or after first are replaced.
	if p := l.pending.ents; len(p) > 0 {
		if from := p[0].ent.GetIndex(); first <= from {
			l.pending.ents = p[:0]
		} else if first <= from+uint64(len(p)) {
			l.pending.ents = p[:first-from]
		}
	}
	buf := make([]byte, 0, 256)
	for _, ent := range ents {
		var err error
		buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], ent)
		if err != nil {
			return err
		}
		if err := b.Set(LogKey(l.group, ent.GetIndex()), buf, nil); err != nil {
			return err
		}
		l.pending.ents = append(l.pending.ents, cachedEntry{ent: ent, size: uint64(len(buf))})
	}
	newLast := ents[len(ents)-1].GetIndex()
	if newLast < l.pending.last {
		if err := b.DeleteRange(LogKey(l.group, newLast+1), LogKey(l.group, l.pending.last+1), nil); err != nil {
			return err
		}
	}
	l.pending.last, l.pending.lastTerm = newLast, ents[len(ents)-1].GetTerm()
	if l.pending.appendFrom == 0 || first < l.pending.appendFrom {
		l.pending.appendFrom = first
	}
	l.pending.set = true
	return nil
}

// StageHardState stages hs into b.
func (l *RaftLog) StageHardState(b *pebble.Batch, hs *raftpb.HardState) error {
	v, err := proto.Marshal(hs)
	if err != nil {
		return err
	}
	if err := b.Set(HardStateKey(l.group), v, nil); err != nil {
		return err
	}
	l.pending.hardState = proto.Clone(hs).(*raftpb.HardState)
	l.pending.set = true
	return nil
}

func (l *RaftLog) stageTruncated(b *pebble.Batch, index, term uint64) error {
	v := binary.BigEndian.AppendUint64(nil, index)
	v = binary.BigEndian.AppendUint64(v, term)
	if err := b.Set(TruncatedStateKey(l.group), v, nil); err != nil {
		return err
	}
	l.pending.truncIndex, l.pending.truncTerm = index, term
	l.pending.set = true
	return nil
}

// StageSnapshot stages the log side of applying a snapshot at meta: the log
// is emptied and starts after meta.Index. The state-machine side (data and
// applied state) is the caller's.
func (l *RaftLog) StageSnapshot(b *pebble.Batch, meta *raftpb.SnapshotMetadata) error {
	start, end := logSpan(l.group)
	if err := b.DeleteRange(start, end, nil); err != nil {
		return err
	}
	if err := l.stageTruncated(b, meta.GetIndex(), meta.GetTerm()); err != nil {
		return err
	}
	l.pending.ents = nil
	l.pending.clearCache = true
	l.pending.last, l.pending.lastTerm = meta.GetIndex(), meta.GetTerm()
	return nil
}

// StageTruncate stages removal of every entry up to and including index,
// which must be in the log. Truncating at or below the current truncated
// index is a no-op.
func (l *RaftLog) StageTruncate(b *pebble.Batch, index uint64) error {
	if index <= l.pending.truncIndex {
		return nil
	}
	if index > l.pending.last {
		return fmt.Errorf("storage: group %d: truncate at %d beyond last index %d", l.group, index, l.pending.last)
	}
	var term uint64
	switch {
	case index == l.pending.last:
		term = l.pending.lastTerm
	case l.pending.appendFrom != 0 && index >= l.pending.appendFrom:
		// The persisted log does not know this entry's staged term.
		return fmt.Errorf("storage: group %d: truncate at %d inside entries staged in the same batch", l.group, index)
	default:
		var err error
		if term, err = l.Term(index); err != nil {
			return fmt.Errorf("storage: group %d: truncate at %d: %w", l.group, index, err)
		}
	}
	if err := b.DeleteRange(LogKey(l.group, l.pending.truncIndex+1), LogKey(l.group, index+1), nil); err != nil {
		return err
	}
	return l.stageTruncated(b, index, term)
}

// StageInitial stages the state of a group bootstrapped by configuration
// rather than by raft: an empty log that starts after (index, term), a hard
// state that has committed index, and an applied state at index with
// membership cs. Every initial member stages the same, so they agree.
func (l *RaftLog) StageInitial(b *pebble.Batch, index, term uint64, cs *raftpb.ConfState) error {
	if err := l.StageSnapshot(b, &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term)}); err != nil {
		return err
	}
	if err := l.StageHardState(b, &raftpb.HardState{Term: proto.Uint64(term), Commit: proto.Uint64(index), Vote: proto.Uint64(0)}); err != nil {
		return err
	}
	return PutAppliedState(b, l.group, AppliedState{Index: index, Term: term, ConfState: cs})
}

// Persisted makes the staged changes visible to reads. Call it after the
// batch holding them committed.
func (l *RaftLog) Persisted() {
	if !l.pending.set {
		return
	}
	l.mu.Lock()
	l.mu.truncIndex, l.mu.truncTerm = l.pending.truncIndex, l.pending.truncTerm
	l.mu.last, l.mu.lastTerm = l.pending.last, l.pending.lastTerm
	l.mu.hardState = l.pending.hardState
	l.updateCacheLocked()
	l.mu.Unlock()
	l.pending.set = false
	l.pending.appendFrom = 0
	l.pending.ents = nil
	l.pending.clearCache = false
}

// updateCacheLocked brings the cache in line with the log just persisted:
// it drops what was truncated or replaced, adds the appended entries and
// trims the oldest beyond the bounds. The cache stays a contiguous run
// ending at the last index, or empty.
func (l *RaftLog) updateCacheLocked() {
	c := l.mu.cache
	if l.pending.clearCache {
		c = emptied(c)
	}
	if p := l.pending.ents; len(p) > 0 {
		from := p[0].ent.GetIndex()
		if len(c) > 0 && from > c[0].ent.GetIndex() && from <= c[0].ent.GetIndex()+uint64(len(c)) {
			keep := from - c[0].ent.GetIndex() // the run before the append
			clear(c[keep:])
			c = c[:keep]
		} else {
			c = emptied(c)
		}
		c = append(c, p...)
	}
	// Drop truncated entries, then the oldest beyond the bounds.
	drop := 0
	for drop < len(c) && c[drop].ent.GetIndex() <= l.mu.truncIndex {
		drop++
	}
	var size uint64
	for _, ce := range c[drop:] {
		size += ce.size
	}
	for drop < len(c) && (len(c)-drop > l.cacheMaxEntries || size > l.cacheMaxBytes) {
		size -= c[drop].size
		drop++
	}
	if len(c) > 0 && c[len(c)-1].ent.GetIndex() != l.mu.last {
		c, drop = emptied(c), 0 // not the log's tail: never serve it
	}
	l.mu.cache = dropFront(c, drop)
}

// Discard drops staged changes whose batch was not committed.
func (l *RaftLog) Discard() { l.resetPending() }

// Destroy stages removal of every raft-local key of the group.
func (l *RaftLog) Destroy(b *pebble.Batch) error {
	l.pending.ents = nil
	l.pending.clearCache = true
	l.pending.set = true
	start, end := GroupRaftSpan(l.group)
	return b.DeleteRange(start, end, nil)
}
