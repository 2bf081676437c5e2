package statemachine

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
)

func init() { register(&api.GetRequest{}, Command{Eval: evalGet}) }

// evalGet reads a user key at the header's timestamp. A value found spends
// one key and its length from b; a get is never refused for the budget.
func evalGet(r pebble.Reader, h *kvpb.Header, req *kvpb.RequestUnion, b *Budget) (*kvpb.ResponseUnion, error) {
	v, _, found, err := mvcc.Get(r, req.GetGet().GetKey(), readTimestamp(h))
	if err != nil {
		return nil, err
	}
	if found {
		b.spend(1, uint64(len(v)))
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_Get{Get: &api.GetResponse{Found: found, Value: v}}}, nil
}
