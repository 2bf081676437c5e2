package statemachine

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

func init() { register(&kvpb.SystemPutRequest{}, Command{Apply: applySystemPut}) }

// applySystemPut sets a system key. System keys have no versions: the
// value replaces the old one.
func applySystemPut(b *pebble.Batch, _ raftnode.Entry, _ *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error) {
	p := req.GetSystemPut()
	if err := b.Set(storage.SystemKey(p.GetKey()), p.GetValue(), nil); err != nil {
		return nil, err
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_SystemPut{SystemPut: &kvpb.SystemPutResponse{}}}, nil
}
