package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
	"google.golang.org/protobuf/proto"
)

var (
	// ErrBadCommand is a command-level failure: the raft payload is not a
	// well-formed kvpb.ReplicatedCommand, or holds a write this binary does
	// not apply (yet). It is kvpb.ErrBadCommand.
	ErrBadCommand = kvpb.ErrBadCommand
	// ErrWrongShard is a command-level failure: a write of the command is
	// for another group (a system write outside the system group, a user
	// write inside it) or for a key outside the group's spans.
	ErrWrongShard = errors.New("statemachine: key outside the shard")
	// ErrWriteTooOld is a command-level failure: a command with user
	// writes has no commit timestamp (its header's).
	ErrWriteTooOld = errors.New("statemachine: user write without a commit timestamp")
	// ErrCommitOrder is the storage-level failure (Apply returns it, and
	// the node stops) of a command whose commit timestamp is not above
	// that of the group's previous command applied here: the invariant
	// that a shard's log order is its timestamps' order is broken, and
	// applying the command could change what a finished read at a higher
	// timestamp saw.
	ErrCommitOrder = errors.New("statemachine: commit timestamps out of log order")
)

// KV applies replicated commands to Pebble. It implements
// raftnode.StateMachine. One KV serves every group.
//
// Its only state is, per group, the commit timestamp of the last command
// it applied, which checks the order of commit timestamps (ErrCommitOrder)
// at the cost of a map lookup instead of a read of every key written. A
// shard's writes are sequenced so that the log's order is their
// timestamps' order (package replica, docs/time.md), so the check is an
// assertion: it is kept in memory only and starts afresh when the process
// starts, so it sees the commands applied since.
type KV struct {
	// SystemGroup is the group that owns system keys (default 1).
	SystemGroup uint64

	mu struct {
		sync.Mutex
		last map[uint64]applied // by group
	}
}

// applied is the last timestamped command KV applied for a group.
type applied struct{ index, ts uint64 }

var _ raftnode.StateMachine = (*KV)(nil)

// Apply implements raftnode.StateMachine: it decodes data as a
// kvpb.ReplicatedCommand and applies its writes, in order, into b.
//
// Every replica sees the same bytes and decides the same, so a command it
// refuses applies as a no-op with a command-level error in Result.Err (the
// batch is left as it was):
//   - ErrBadCommand if data does not decode (kvpb.DecodeCommand) or holds a
//     write of a method with no registered Apply;
//   - ErrWrongShard if a system write is not in SystemGroup, a user write
//     is, a write's Pebble key is outside every span of e.Spans, or a GC is
//     in a group whose spans do not hold its replicated state
//     (storage.GroupStateSpan);
//   - ErrWriteTooOld if the command has user writes but no commit
//     timestamp (Header.timestamp).
//
// The checks cover every write before any is applied, so a refused command
// writes nothing. User writes are versions at the header's timestamp (a
// later write of a key in the same command replaces an earlier one).
//
// Otherwise Result.Data is the marshaled kvpb.BatchResponse with one
// response per write, in order. A returned error is a storage failure and
// stops the node; ErrCommitOrder is one (see KV).
func (k *KV) Apply(b *pebble.Batch, e raftnode.Entry, data []byte) (raftnode.Result, error) {
	c, err := kvpb.DecodeCommand(data)
	if err != nil {
		return raftnode.Result{Err: err}, nil // wraps ErrBadCommand
	}
	for i, w := range c.Writes {
		if err := k.check(e, c.Header, w); err != nil {
			return raftnode.Result{Err: fmt.Errorf("write %d of entry %d/%d: %w", i, e.Group, e.Index, err)}, nil
		}
	}
	if err := k.order(e, c.Header.GetTimestamp()); err != nil {
		return raftnode.Result{}, err
	}
	br := &kvpb.BatchResponse{Responses: make([]*kvpb.ResponseUnion, 0, len(c.Writes))}
	for _, w := range c.Writes {
		resp, err := commands[kvpb.MethodOf(w)].Apply(b, e, c.Header, w)
		if err != nil {
			return raftnode.Result{}, err
		}
		br.Responses = append(br.Responses, resp)
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(br)
	if err != nil {
		return raftnode.Result{}, fmt.Errorf("statemachine: marshal the response of entry %d/%d: %w", e.Group, e.Index, err)
	}
	return raftnode.Result{Data: out}, nil
}

// check decides whether the write w may be applied at entry e: its method
// has an Apply, it is in the right kind of group, and its key is inside
// the group's spans.
func (k *KV) check(e raftnode.Entry, h *kvpb.Header, w *kvpb.RequestUnion) error {
	m := kvpb.MethodOf(w)
	if commands[m].Apply == nil {
		return fmt.Errorf("%w: %v is not supported yet", ErrBadCommand, m)
	}
	sys := k.SystemGroup
	if sys == 0 {
		sys = 1
	}
	system := m.Flags().Has(kvpb.IsSystem)
	if system != (e.Group == sys) {
		return fmt.Errorf("%w: %v in group %d (the system group is %d)", ErrWrongShard, m, e.Group, sys)
	}
	key, _ := kvpb.Span(w)
	if key == nil {
		// A keyless write: a system one (the oracle's limit) writes a
		// fixed system key; a user one (GC) writes the group's replicated
		// state and touches only user data inside e.Spans.
		if !system && !inSpans(storage.GCThresholdKey(e.Group), e.Spans) {
			return fmt.Errorf("%w: %v in group %d, whose spans hold no replicated group state", ErrWrongShard, m, e.Group)
		}
		return nil
	}
	if system {
		if !inSpans(storage.SystemKey(key), e.Spans) {
			return fmt.Errorf("%w: %v of key %q, outside the spans of group %d", ErrWrongShard, m, key, e.Group)
		}
		return nil
	}
	ts := h.GetTimestamp()
	if ts == 0 {
		return fmt.Errorf("%w: %v of key %q has no commit timestamp", ErrWriteTooOld, m, key)
	}
	if !inSpans(mvcc.EncodeKey(key, ts), e.Spans) {
		return fmt.Errorf("%w: %v of key %q, outside the spans of group %d", ErrWrongShard, m, key, e.Group)
	}
	return nil
}

// order records entry e's commit timestamp ts as its group's last, or fails
// with ErrCommitOrder if it is not above the one of the group's previous
// entry. An index at or below the previous one is a new replica of the
// group replaying its log: the record starts again. Commands without a
// timestamp (system writes) are not ordered.
func (k *KV) order(e raftnode.Entry, ts uint64) error {
	if ts == 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if last, ok := k.mu.last[e.Group]; ok && e.Index > last.index && ts <= last.ts {
		return fmt.Errorf("%w: entry %d/%d has commit timestamp %d, not above %d of entry %d",
			ErrCommitOrder, e.Group, e.Index, ts, last.ts, last.index)
	}
	if k.mu.last == nil {
		k.mu.last = make(map[uint64]applied)
	}
	k.mu.last[e.Group] = applied{index: e.Index, ts: ts}
	return nil
}

// inSpans reports whether the Pebble key k is in one of spans, each
// [Start, End) (the rule raftnode's snapshots use).
func inSpans(k []byte, spans []raftnode.Span) bool {
	for _, s := range spans {
		if bytes.Compare(k, s.Start) >= 0 && bytes.Compare(k, s.End) < 0 {
			return true
		}
	}
	return false
}
