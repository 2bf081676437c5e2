package statemachine

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
)

func init() { register(kvpb.Delete, Command{Apply: applyDelete}) }

// applyDelete writes a tombstone as the entry's version of the user key.
// Deleting an absent key is not an error.
func applyDelete(b *pebble.Batch, e raftnode.Entry, _ *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error) {
	if err := mvcc.Delete(b, req.GetDelete().GetKey(), e.Version); err != nil {
		return nil, err
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_Delete{Delete: &api.DeleteResponse{}}}, nil
}
