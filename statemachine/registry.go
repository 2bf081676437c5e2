package statemachine

import (
	"fmt"
	"google.golang.org/protobuf/proto"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
)

// Command is how the state machine runs one method: a read is evaluated,
// a write applied. Each cmd_*.go file registers one.
type Command struct {
	// Eval answers a read (IsRead methods) from r at the header's timestamp
	// (see readTimestamp), spending what it returns from b. An error is a
	// storage failure, or a request this node cannot answer.
	Eval func(r pebble.Reader, h *kvpb.Header, req *kvpb.RequestUnion, b *Budget) (*kvpb.ResponseUnion, error)
	// Apply applies a write (IsWrite methods) into b, which holds the earlier
	// writes of the pass (an indexed batch), at entry e. KV.Apply has already
	// checked the write's group and keys. It must be deterministic and must
	// write only the keys KV.Apply checked. An error is a storage failure and
	// stops the node: Apply has no command-level failures of its own.
	Apply func(b *pebble.Batch, e raftnode.Entry, h *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error)
}

// commands is the registry, filled by the init functions of the cmd_*.go
// files and read-only after.
var commands = map[kvpb.Method]Command{}

// register records c as the command of the method whose request is a
// message of req's type (kvpb.MethodFor): one line in the command's own
// file, and no method constant. It is called from init functions only;
// registering a method twice, a request type that is no method, or a read
// without Eval or a write without Apply, is a programming error and panics
// at start-up.
func register(req proto.Message, c Command) {
	m := kvpb.MethodFor(req)
	f := m.Flags()
	_, dup := commands[m]
	switch {
	case m == kvpb.Unknown:
		panic("statemachine: register of the Unknown method")
	case dup:
		panic(fmt.Sprintf("statemachine: %v registered twice", m))
	case f.Has(kvpb.IsRead) && (c.Eval == nil || c.Apply != nil):
		panic(fmt.Sprintf("statemachine: read %v needs Eval and no Apply", m))
	case f.Has(kvpb.IsWrite) && (c.Apply == nil || c.Eval != nil):
		panic(fmt.Sprintf("statemachine: write %v needs Apply and no Eval", m))
	case !f.Has(kvpb.IsRead) && !f.Has(kvpb.IsWrite):
		panic(fmt.Sprintf("statemachine: %v (%v) is neither a read nor a write", m, f))
	}
	commands[m] = c
}

// Eval answers the read req from r, at the timestamp of h, spending what
// it returns from b (nil: no bound). A request that is not a read this
// package evaluates is refused with an error wrapping kvpb.ErrBadBatch.
// Any other error is a storage failure.
func Eval(r pebble.Reader, h *kvpb.Header, req *kvpb.RequestUnion, b *Budget) (*kvpb.ResponseUnion, error) {
	m := kvpb.MethodOf(req)
	c := commands[m]
	if !m.Flags().Has(kvpb.IsRead) || c.Eval == nil {
		return nil, fmt.Errorf("%w: %v is not a read this node evaluates", kvpb.ErrBadBatch, m)
	}
	return c.Eval(r, h, req, b)
}

// readTimestamp is the MVCC timestamp a read under h reads at:
// h.Timestamp, or the newest version (mvcc.MaxTimestamp) if it is 0.
func readTimestamp(h *kvpb.Header) uint64 {
	if ts := h.GetTimestamp(); ts != 0 {
		return ts
	}
	return mvcc.MaxTimestamp
}
