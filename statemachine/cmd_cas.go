package statemachine

import (
	"bytes"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
)

func init() { register(&api.CompareAndSwapRequest{}, Command{Apply: applyCAS}) }

// applyCAS compares the user key's newest value, as b holds it (so the
// earlier writes of the pass and of the same command count), with old:
// an unset old must find the key absent, a set one (empty included) must
// find exactly that value. If it matches, it writes new as the command's
// commit timestamp, or a tombstone if new is unset, and answers swapped; if not, it
// writes nothing.
func applyCAS(b *pebble.Batch, _ raftnode.Entry, h *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error) {
	c := req.GetCas()
	cur, _, found, err := mvcc.Get(b, c.GetKey(), mvcc.MaxTimestamp)
	if err != nil {
		return nil, err
	}
	swapped := found == (c.Old != nil) && (!found || bytes.Equal(cur, c.Old))
	if swapped {
		if c.New == nil {
			err = mvcc.Delete(b, c.GetKey(), h.GetTimestamp())
		} else {
			err = mvcc.Put(b, c.GetKey(), c.New, h.GetTimestamp())
		}
		if err != nil {
			return nil, err
		}
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_Cas{Cas: &api.CompareAndSwapResponse{Swapped: swapped}}}, nil
}
