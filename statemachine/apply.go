package statemachine

import (
	"bytes"
	"errors"
	"fmt"

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
	// ErrWriteTooOld is a command-level failure: a user write's commit
	// timestamp (its header's) is missing, or below the newest version of
	// its key. Writes of a shard are sequenced so that the log's order is
	// their timestamps' order (package replica); a command that breaks it
	// is refused rather than written under a newer version.
	ErrWriteTooOld = errors.New("statemachine: commit timestamp not above the key's newest version")
)

// KV applies replicated commands to Pebble. It implements
// raftnode.StateMachine. It holds no state: one KV serves every group.
type KV struct {
	// SystemGroup is the group that owns system keys (default 1).
	SystemGroup uint64
}

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
//     timestamp (Header.timestamp), or one below the newest version of a
//     key it writes (equal is a second write of the key in this command).
//
// The checks cover every write before any is applied, so a refused command
// writes nothing. User writes are versions at the header's timestamp.
//
// Otherwise Result.Data is the marshaled kvpb.BatchResponse with one
// response per write, in order. A returned error is a storage failure and
// stops the node.
func (k *KV) Apply(b *pebble.Batch, e raftnode.Entry, data []byte) (raftnode.Result, error) {
	c, err := kvpb.DecodeCommand(data)
	if err != nil {
		return raftnode.Result{Err: err}, nil // wraps ErrBadCommand
	}
	for i, w := range c.Writes {
		if err := k.check(e, c.Header, w); err != nil {
			return raftnode.Result{Err: fmt.Errorf("write %d of entry %d/%d: %w", i, e.Group, e.Index, err)}, nil
		}
		refused, err := tooOld(b, c.Header, w)
		if err != nil {
			return raftnode.Result{}, err
		}
		if refused != nil {
			return raftnode.Result{Err: fmt.Errorf("write %d of entry %d/%d: %w", i, e.Group, e.Index, refused)}, nil
		}
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

// tooOld refuses (the first result) a user write whose key has a version
// newer than the command's commit timestamp, as r holds it. The second
// result is a storage failure.
func tooOld(r pebble.Reader, h *kvpb.Header, w *kvpb.RequestUnion) (refused, err error) {
	m := kvpb.MethodOf(w)
	key, _ := kvpb.Span(w)
	if key == nil || m.Flags().Has(kvpb.IsSystem) {
		return nil, nil
	}
	_, newest, _, err := mvcc.Get(r, key, mvcc.MaxTimestamp)
	if err != nil {
		return nil, fmt.Errorf("statemachine: newest version of %q: %w", key, err)
	}
	if ts := h.GetTimestamp(); newest > ts {
		return fmt.Errorf("%w: %v of key %q at %d, newest version %d", ErrWriteTooOld, m, key, ts, newest), nil
	}
	return nil, nil
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
