package statemachine

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

func init() { register(&kvpb.SystemDeleteRequest{}, Command{Apply: applySystemDelete}) }

// applySystemDelete deletes a system key; deleting an absent one is not an
// error.
func applySystemDelete(b *pebble.Batch, _ raftnode.Entry, _ *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error) {
	if err := b.Delete(storage.SystemKey(req.GetSystemDelete().GetKey()), nil); err != nil {
		return nil, err
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_SystemDelete{SystemDelete: &kvpb.SystemDeleteResponse{}}}, nil
}
