package statemachine

import (
	"bytes"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
)

func init() { register(&api.ScanRequest{}, Command{Eval: evalScan}) }

// A scan reads its range in pages of mvcc.Scan, which has no byte bound of
// its own: the first page has firstScanPage pairs, each next one twice as
// many up to maxScanPage. Under a byte budget a page is also cut to the
// pairs that should fit, estimated from the pairs read so far (one pair
// for the first page), so that a scan reads little beyond what it returns.
const (
	firstScanPage = 16
	maxScanPage   = 1024
)

// evalScan reads the live user keys of [start, end) at the header's
// timestamp, in key order. It stops when the request's limit is reached or
// the next pair does not fit in b, and then sets the resume key to the key
// right after the last one returned (unless that is the range's end). It
// returns at least one pair when there is one, even over budget.
func evalScan(r pebble.Reader, h *kvpb.Header, req *kvpb.RequestUnion, b *Budget) (*kvpb.ResponseUnion, error) {
	s := req.GetScan()
	ts := readTimestamp(h)
	start, end, limit := s.GetStart(), s.GetEnd(), uint64(s.GetLimit())
	resp := &kvpb.ScanResponse{}
	page := uint64(firstScanPage)
	size := uint64(0) // the bytes of resp.Kvs
	for {
		n := page
		if limit > 0 {
			n = min(n, limit-uint64(len(resp.Kvs)))
		}
		if left, ok := b.keysLeft(); ok {
			n = min(n, max(left, 1)) // 1: the progress pair
		}
		if left, ok := b.bytesLeft(); ok {
			est := uint64(1)
			if got := uint64(len(resp.Kvs)); got > 0 {
				est = left/max(size/got, 1) + 1
			}
			n = min(n, est)
		}
		got, err := mvcc.Scan(r, start, end, ts, int(n), s.GetKeysOnly())
		if err != nil {
			return nil, err
		}
		for _, kv := range got {
			sz := uint64(len(kv.Key) + len(kv.Value))
			if len(resp.Kvs) > 0 && !b.fits(sz) {
				resp.ResumeKey = resumeKey(resp.Kvs, end)
				return scanResponse(resp), nil
			}
			b.spend(1, sz)
			size += sz
			resp.Kvs = append(resp.Kvs, &api.KeyValue{Key: kv.Key, Value: kv.Value})
		}
		if uint64(len(got)) < n {
			return scanResponse(resp), nil // the end of the range
		}
		if (limit > 0 && uint64(len(resp.Kvs)) == limit) || b.Exhausted() {
			resp.ResumeKey = resumeKey(resp.Kvs, end)
			return scanResponse(resp), nil
		}
		start = next(resp.Kvs[len(resp.Kvs)-1].Key)
		page = min(2*page, maxScanPage)
	}
}

func scanResponse(s *kvpb.ScanResponse) *kvpb.ResponseUnion {
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_Scan{Scan: s}}
}

// next returns the first key after k.
func next(k []byte) []byte {
	return append(bytes.Clone(k), 0)
}

// resumeKey is where a scan of a range ending at end (nil: unbounded)
// that returned kvs and stopped continues: the key after the last one
// returned, or nil if no key of the range is left.
func resumeKey(kvs []*api.KeyValue, end []byte) []byte {
	k := next(kvs[len(kvs)-1].GetKey())
	if end != nil && bytes.Compare(k, end) >= 0 {
		return nil
	}
	return k
}
