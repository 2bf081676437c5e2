package statemachine

import (
	"bytes"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/storage"
)

func init() { register(&kvpb.SystemScanRequest{}, Command{Eval: evalSystemScan}) }

// evalSystemScan reads the system keys of [start, end) (end unset: to the
// end of system data) in key order. System keys have no versions, so the
// header's timestamp does not apply.
//
// It spends what it returns from b but never stops short:
// kvpb.SystemScanResponse has no resume key to say where to continue, and
// system data (the shard directory, the node registry) is small.
func evalSystemScan(r pebble.Reader, _ *kvpb.Header, req *kvpb.RequestUnion, b *Budget) (*kvpb.ResponseUnion, error) {
	s := req.GetSystemScan()
	lower := storage.SystemKey(s.GetStart())
	_, upper := storage.SystemSpan()
	if s.End != nil {
		upper = storage.SystemKey(s.GetEnd())
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	resp := &kvpb.SystemScanResponse{}
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		kv := &api.KeyValue{Key: bytes.Clone(it.Key()[1:]), Value: bytes.Clone(v)}
		b.spend(1, uint64(len(kv.Key)+len(kv.Value)))
		resp.Kvs = append(resp.Kvs, kv)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_SystemScan{SystemScan: resp}}, nil
}
