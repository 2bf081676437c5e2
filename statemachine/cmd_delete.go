package statemachine

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
)

func init() { register(&api.DeleteRequest{}, Command{Apply: applyDelete}) }

// applyDelete writes a tombstone at the command's commit timestamp of the user key.
// Deleting an absent key is not an error.
func applyDelete(b *pebble.Batch, _ raftnode.Entry, h *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error) {
	if err := mvcc.Delete(b, req.GetDelete().GetKey(), h.GetTimestamp()); err != nil {
		return nil, err
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_Delete{Delete: &api.DeleteResponse{}}}, nil
}
