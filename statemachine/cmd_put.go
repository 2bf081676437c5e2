package statemachine

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
)

func init() { register(&api.PutRequest{}, Command{Apply: applyPut}) }

// applyPut writes the value at the command's commit timestamp of the user key.
func applyPut(b *pebble.Batch, _ raftnode.Entry, h *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error) {
	p := req.GetPut()
	if err := mvcc.Put(b, p.GetKey(), p.GetValue(), h.GetTimestamp()); err != nil {
		return nil, err
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_Put{Put: &api.PutResponse{}}}, nil
}
