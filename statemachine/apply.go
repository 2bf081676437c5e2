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
//     write of a method with no registered Apply (GC, for now);
//   - ErrWrongShard if a system write is not in SystemGroup, a user write
//     is, or a write's Pebble key is outside every span of e.Spans. The
//     checks cover every write before any is applied, so a refused command
//     writes nothing.
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
		if err := k.check(e, w); err != nil {
			return raftnode.Result{Err: fmt.Errorf("write %d of entry %d/%d: %w", i, e.Group, e.Index, err)}, nil
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
func (k *KV) check(e raftnode.Entry, w *kvpb.RequestUnion) error {
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
		// No write registered today lacks a key (DecodeCommand refuses
		// empty ones); one that addresses a span must keep its own writes
		// inside e.Spans.
		return nil
	}
	pk := storage.SystemKey(key)
	if !system {
		pk = mvcc.EncodeKey(key, e.Version)
	}
	if !inSpans(pk, e.Spans) {
		return fmt.Errorf("%w: %v of key %q, outside the spans of group %d", ErrWrongShard, m, key, e.Group)
	}
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
