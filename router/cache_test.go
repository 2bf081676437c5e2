package router

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/shard"
)

// truthLocal is a node whose replicas check batches against truth, as
// package replica does: a batch with another generation than its shard's,
// or a key outside the shard, is refused with the current descriptors of
// the shard and of the shards its keys are in. It serves puts (counting
// them by key) and gets and scans (answering with each key as its value).
type truthLocal struct {
	truth []shard.Descriptor
	mu    struct {
		sync.Mutex
		applied map[string]int
		refused int
	}
}

func (l *truthLocal) Send(_ context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	h := ba.GetHeader()
	var d shard.Descriptor
	for _, t := range l.truth {
		if t.ID == h.GetShardId() {
			d = t
		}
	}
	ok := d.ID != 0 && d.Generation == h.GetShardGeneration()
	for _, r := range ba.GetRequests() {
		start, end := kvpb.Span(r)
		ok = ok && covers(d, start, end)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.mu.refused++
		sme := &kvpb.ShardMismatchError{Shard: h.GetShardId(), Generation: h.GetShardGeneration()}
		for _, t := range l.truth {
			sme.Descriptors = append(sme.Descriptors, t.Proto())
		}
		return nil, sme
	}
	br := &kvpb.BatchResponse{}
	for _, r := range ba.GetRequests() {
		resp := &kvpb.ResponseUnion{}
		switch v := r.GetValue().(type) {
		case *kvpb.RequestUnion_Put:
			l.mu.applied[string(v.Put.GetKey())]++
			resp.Value = &kvpb.ResponseUnion_Put{Put: &api.PutResponse{}}
		case *kvpb.RequestUnion_Get:
			resp.Value = &kvpb.ResponseUnion_Get{Get: &api.GetResponse{Found: true, Value: v.Get.GetKey()}}
		case *kvpb.RequestUnion_Scan:
			sr := &kvpb.ScanResponse{}
			for k := range l.mu.applied {
				if bytes.Compare([]byte(k), v.Scan.GetStart()) >= 0 && (v.Scan.End == nil || bytes.Compare([]byte(k), v.Scan.End) < 0) {
					sr.Kvs = append(sr.Kvs, &api.KeyValue{Key: []byte(k)})
				}
			}
			resp.Value = &kvpb.ResponseUnion_Scan{Scan: sr}
		}
		br.Responses = append(br.Responses, resp)
	}
	return br, nil
}

func (l *truthLocal) HandleNode(context.Context, *kvpb.NodeRequest) *kvpb.NodeResponse {
	return &kvpb.NodeResponse{}
}
func (l *truthLocal) Err() error { return nil }

func mustRouter(t *testing.T, ds ...shard.Descriptor) *shard.Router {
	t.Helper()
	r, err := shard.NewRouter(ds)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStaleCacheReRoutesOnlyTheRefusedPart: a batch over two shards, split
// by a cache whose boundary is wrong: the part the replica refuses is
// routed again from the descriptors the refusal carries (it splits in
// two), the part that was served is not sent again, and every write
// applies once. A scan over the moved boundary and a batch with a stale
// generation are re-routed too.
func TestStaleCacheReRoutesOnlyTheRefusedPart(t *testing.T) {
	local := &truthLocal{truth: []shard.Descriptor{
		{ID: 2, Generation: 3, Start: []byte{}, End: []byte("k"), Replicas: []uint64{1}},
		{ID: 3, Generation: 1, Start: []byte("k"), Replicas: []uint64{1}},
	}}
	local.mu.applied = map[string]int{}
	stale := mustRouter(t,
		shard.Descriptor{ID: 2, Generation: 3, Start: []byte{}, End: []byte("m"), Replicas: []uint64{1}},
		shard.Descriptor{ID: 3, Generation: 0, Start: []byte("m"), Replicas: []uint64{1}})
	ds, err := New(Config{NodeID: 1, Local: local,
		Routes:   func() (*shard.Router, error) { return stale, nil },
		Replicas: func(uint64) []uint64 { return []uint64{1} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	ba := &kvpb.BatchRequest{Header: &kvpb.Header{}}
	keys := []string{"a", "l", "x"} // shard 2, 2 (truly 3), 3 (stale generation)
	for _, k := range keys {
		ba.Requests = append(ba.Requests, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Put{Put: &api.PutRequest{Key: []byte(k)}}})
	}
	br, err := ds.Send(ctx, ba)
	if err != nil {
		t.Fatal(err)
	}
	if len(br.GetResponses()) != len(keys) {
		t.Fatalf("%d responses, want %d", len(br.GetResponses()), len(keys))
	}
	local.mu.Lock()
	for _, k := range keys {
		if n := local.mu.applied[k]; n != 1 {
			t.Errorf("put %q applied %d times, want once", k, n)
		}
	}
	if local.mu.refused == 0 {
		t.Errorf("nothing refused: the stale cache went unnoticed")
	}
	local.mu.Unlock()

	br, err = ds.Send(ctx, &kvpb.BatchRequest{Header: &kvpb.Header{}, Requests: []*kvpb.RequestUnion{{
		Value: &kvpb.RequestUnion_Get{Get: &api.GetRequest{Key: []byte("l")}}}}})
	if err != nil || string(br.GetResponses()[0].GetGet().GetValue()) != "l" {
		t.Fatalf("get through the learned cache: %v, %v", br, err)
	}
	br, err = ds.Send(ctx, &kvpb.BatchRequest{Header: &kvpb.Header{}, Requests: []*kvpb.RequestUnion{{
		Value: &kvpb.RequestUnion_Scan{Scan: &api.ScanRequest{Start: []byte("a")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(br.GetResponses()[0].GetScan().GetKvs()); n != len(keys) {
		t.Fatalf("scan found %d keys, want %d: %v", n, len(keys), br)
	}
}

// TestDirectoryChangeDropsLearned: what the cache learned from refusals
// overlays the directory it was learned against only.
func TestDirectoryChangeDropsLearned(t *testing.T) {
	var c cache
	a := mustRouter(t, shard.Descriptor{ID: 2, Start: []byte{}})
	c.lookup(a, []byte("x"))
	c.learn([]*kvpb.ShardDescriptor{{Id: 5, Generation: 1, Start: []byte("k")}})
	if d := c.lookup(a, []byte("x")); d.ID != 5 {
		t.Fatalf("lookup after learning = shard %d, want 5", d.ID)
	}
	b := mustRouter(t, shard.Descriptor{ID: 7, Start: []byte{}})
	if d := c.lookup(b, []byte("x")); d.ID != 7 {
		t.Fatalf("lookup in a new directory = shard %d, want 7", d.ID)
	}
}
