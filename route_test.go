package strata_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/internal/testcluster"
	"github.com/strata-kv/strata/shard"
)

// staleCase is a faked shard cache: stale returns it, built from the
// node's true directory.
type staleCase struct {
	name  string
	stale func(t *testing.T, truth []shard.Descriptor) []shard.Descriptor
	key   []byte // routed by the stale cache to a shard that refuses it
}

// TestStaleCacheIsReRouted is issue 11's check that a request routed with
// a stale descriptor generation, or for a key outside the shard, is
// refused and re-routed: a router whose shard cache is faked stale sends a
// compare-and-swap and reads; the replica refuses the stale routing with a
// ShardMismatchError, the router learns the descriptors it carries and
// re-routes, the write applies exactly once and the reads see it.
func TestStaleCacheIsReRouted(t *testing.T) {
	c := testcluster.Start(t, 3, strata.Options{Shards: 4})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	cases := []staleCase{{
		// Shard 2 is ["", 0x40) and shard 3 [0x40, 0x80): the cache has
		// the boundary at 0x50, so 0x45 goes to shard 2.
		name: "key outside the shard",
		key:  []byte{0x45, 'r'},
		stale: func(t *testing.T, truth []shard.Descriptor) []shard.Descriptor {
			ds := clone(truth)
			if ds[0].ID != 2 || ds[1].ID != 3 || string(ds[0].End) != "\x40" {
				t.Fatalf("directory %+v: want shard 2 ending at 0x40, then shard 3", ds)
			}
			ds[0].End, ds[1].Start = []byte{0x50}, []byte{0x50}
			return ds
		},
	}, {
		// Generations do not change yet (no splits): the cache has
		// another generation of shard 3 than its replicas.
		name: "stale generation",
		key:  []byte{0x45, 'g'},
		stale: func(t *testing.T, truth []shard.Descriptor) []shard.Descriptor {
			ds := clone(truth)
			ds[1].Generation += 7
			return ds
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := c.DB(1)
			truth := db.RoutesForTest().All()
			stale, err := shard.NewRouter(tc.stale(t, truth))
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu       sync.Mutex
				refused  []*kvpb.ShardMismatchError
				served   int
				servedAt []uint64
			)
			ds, err := db.NewSenderForTest(func() (*shard.Router, error) { return stale, nil },
				func(ba *kvpb.BatchRequest, err error) {
					mu.Lock()
					defer mu.Unlock()
					var sme *kvpb.ShardMismatchError
					switch {
					case errors.As(err, &sme):
						refused = append(refused, sme)
					case err == nil && !ba.IsReadOnly():
						served++
						servedAt = append(servedAt, ba.GetHeader().GetShardId())
					}
				})
			if err != nil {
				t.Fatal(err)
			}
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			br, err := ds.Send(sctx, &kvpb.BatchRequest{Header: &kvpb.Header{}, Requests: []*kvpb.RequestUnion{{
				Value: &kvpb.RequestUnion_Cas{Cas: &api.CompareAndSwapRequest{Key: tc.key, New: []byte("once")}}}}})
			if err != nil {
				t.Fatalf("CAS through the stale cache: %v", err)
			}
			if !br.GetResponses()[0].GetCas().GetSwapped() {
				t.Fatalf("CAS of an absent key did not swap: applied more than once?")
			}
			want := truthShard(truth, tc.key)
			mu.Lock()
			if len(refused) == 0 {
				t.Errorf("no ShardMismatchError: the stale routing was not refused")
			} else if sme := refused[0]; !slices.ContainsFunc(sme.Descriptors, func(d *kvpb.ShardDescriptor) bool {
				return d.GetId() == want.ID && d.GetGeneration() == want.Generation
			}) {
				t.Errorf("refusal %v carries %v, not the descriptor of shard %d", sme, sme.Descriptors, want.ID)
			}
			if served > 1 {
				t.Errorf("write served %d times (shards %v), want once", served, servedAt)
			}
			for _, id := range servedAt {
				if id != want.ID {
					t.Errorf("write served on shard %d, want %d", id, want.ID)
				}
			}
			mu.Unlock()

			// Reads, through the stale cache and the node's own router.
			br, err = ds.Send(sctx, &kvpb.BatchRequest{Header: &kvpb.Header{}, Requests: []*kvpb.RequestUnion{{
				Value: &kvpb.RequestUnion_Get{Get: &api.GetRequest{Key: tc.key}}}}})
			if err != nil {
				t.Fatalf("get through the stale cache: %v", err)
			}
			if g := br.GetResponses()[0].GetGet(); !g.GetFound() || string(g.GetValue()) != "once" {
				t.Fatalf("get through the stale cache = %v, want once", g)
			}
			br, err = ds.Send(sctx, &kvpb.BatchRequest{Header: &kvpb.Header{}, Requests: []*kvpb.RequestUnion{{
				Value: &kvpb.RequestUnion_Scan{Scan: &api.ScanRequest{Start: []byte{0x30}, End: []byte{0x60}}}}}})
			if err != nil {
				t.Fatalf("scan through the stale cache: %v", err)
			}
			kvs := br.GetResponses()[0].GetScan().GetKvs()
			if !slices.ContainsFunc(kvs, func(kv *api.KeyValue) bool { return string(kv.GetKey()) == string(tc.key) }) {
				t.Fatalf("scan through the stale cache = %v, missing %q", kvs, tc.key)
			}
			for _, id := range c.IDs() {
				v, err := c.DB(id).Get(sctx, tc.key)
				if err != nil || string(v) != "once" {
					t.Fatalf("node %d: Get = %q, %v, want once", id, v, err)
				}
			}
		})
	}
}

func clone(ds []shard.Descriptor) []shard.Descriptor {
	out := make([]shard.Descriptor, len(ds))
	for i, d := range ds {
		d.Start, d.End = slices.Clone(d.Start), slices.Clone(d.End)
		out[i] = d
	}
	return out
}

func truthShard(ds []shard.Descriptor, key []byte) shard.Descriptor {
	for _, d := range ds {
		if d.Contains(key) {
			return d
		}
	}
	return shard.Descriptor{}
}
