package statemachine

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

// Results of a compare-and-swap, in Result.Data.
var (
	Swapped    = []byte{1}
	NotSwapped = []byte{0}
)

// ErrWrongShard is a command-level failure: the command's key is outside
// the group it was proposed to.
var ErrWrongShard = errors.New("statemachine: key outside the shard")

// KV applies commands to Pebble. It implements raftnode.StateMachine.
type KV struct {
	// SystemGroup is the group that owns system keys (default 1).
	SystemGroup uint64
}

var _ raftnode.StateMachine = (*KV)(nil)

// Apply implements raftnode.StateMachine. A malformed command applies as a
// no-op with a command-level error: every replica sees the same bytes and
// decides the same.
func (k *KV) Apply(b *pebble.Batch, e raftnode.Entry, data []byte) (raftnode.Result, error) {
	group, version := e.Group, e.Version
	c, err := Decode(data)
	if err != nil {
		return raftnode.Result{Err: err}, nil
	}
	sys := k.SystemGroup
	if sys == 0 {
		sys = 1
	}
	if (c.Op == OpSystemPut) != (group == sys) {
		return raftnode.Result{Err: fmt.Errorf("%w: op %d in group %d", ErrWrongShard, c.Op, group)}, nil
	}
	switch c.Op {
	case OpPut:
		return raftnode.Result{}, mvcc.Put(b, c.Key, c.Value, version)
	case OpDelete:
		return raftnode.Result{}, mvcc.Delete(b, c.Key, version)
	case OpBatch:
		for _, m := range c.Batch {
			var err error
			if m.Delete {
				err = mvcc.Delete(b, m.Key, version)
			} else {
				err = mvcc.Put(b, m.Key, m.Value, version)
			}
			if err != nil {
				return raftnode.Result{}, err
			}
		}
		return raftnode.Result{}, nil
	case OpSystemPut:
		if c.NewAbsent {
			return raftnode.Result{}, b.Delete(storage.SystemKey(c.Key), nil)
		}
		return raftnode.Result{}, b.Set(storage.SystemKey(c.Key), c.Value, nil)
	case OpCAS:
		cur, _, found, err := mvcc.Get(b, c.Key, mvcc.MaxTimestamp)
		if err != nil {
			return raftnode.Result{}, err
		}
		if c.OldAbsent == found || (found && !bytes.Equal(cur, c.Old)) {
			return raftnode.Result{Data: NotSwapped}, nil
		}
		if c.NewAbsent {
			err = mvcc.Delete(b, c.Key, version)
		} else {
			err = mvcc.Put(b, c.Key, c.New, version)
		}
		return raftnode.Result{Data: Swapped}, err
	}
	return raftnode.Result{Err: fmt.Errorf("%w: op %d", ErrBadCommand, c.Op)}, nil
}
