package strata_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
)

// benchNodes opens a 1-node DB or a 3-node cluster with 4 user shards and
// returns the DB to send load to and every node (for fsync counts).
func benchNodes(b *testing.B, nodes int) (*strata.DB, []*strata.DB) {
	b.Helper()
	if nodes == 1 {
		db, err := strata.Open(strata.Options{Dir: b.TempDir(), Shards: 4, GCInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db, []*strata.DB{db}
	}
	c := testcluster.Start(b, nodes, strata.Options{Shards: 4, TickInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitLeaders(ctx); err != nil {
		b.Fatal(err)
	}
	var all []*strata.DB
	for _, id := range c.IDs() {
		all = append(all, c.DB(id))
	}
	return c.DB(1), all
}

func syncs(dbs []*strata.DB) int64 {
	var n int64
	for _, db := range dbs {
		n += db.Node().Stats().Syncs
	}
	return n
}

// syncTime sums the time the nodes' engines spent in synced commits.
func syncTime(dbs []*strata.DB) (time.Duration, int64) {
	var d time.Duration
	var n int64
	for _, db := range dbs {
		st := db.Node().Engine().Stats()
		d += st.SyncTime
		n += st.Syncs
	}
	return d, n
}

// runLoad runs b.N calls of op over clients goroutines and reports ops/s,
// p50 and p99 latency.
func runLoad(b *testing.B, clients int, op func(ctx context.Context, i int) error) {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(ctx, i); err != nil {
					failed.Add(1)
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d operations failed", f, b.N)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

func benchKey(i int) []byte { return []byte(fmt.Sprintf("%c/bench/%08d", byte(i*131), i)) }

func BenchmarkPut(b *testing.B) {
	value := make([]byte, 128)
	for _, nodes := range []int{1, 3} {
		for _, clients := range []int{1, 64} {
			b.Run(fmt.Sprintf("nodes=%d/clients=%d", nodes, clients), func(b *testing.B) {
				db, all := benchNodes(b, nodes)
				before := syncs(all)
				t0, n0 := syncTime(all)
				runLoad(b, clients, func(ctx context.Context, i int) error {
					return db.Put(ctx, benchKey(i), value)
				})
				// Each node fsyncs its own log; report per node and write.
				b.ReportMetric(float64(syncs(all)-before)/float64(len(all))/float64(b.N), "fsyncs/write")
				if t1, n1 := syncTime(all); n1 > n0 {
					b.ReportMetric(float64((t1-t0).Microseconds())/float64(n1-n0), "fsync-µs")
				}
			})
		}
	}
}

func BenchmarkGet(b *testing.B) {
	const keys = 1000
	value := make([]byte, 128)
	for _, nodes := range []int{1, 3} {
		for _, clients := range []int{1, 64} {
			b.Run(fmt.Sprintf("nodes=%d/clients=%d", nodes, clients), func(b *testing.B) {
				db, _ := benchNodes(b, nodes)
				ctx := context.Background()
				for i := 0; i < keys; i++ {
					if err := db.Put(ctx, benchKey(i), value); err != nil {
						b.Fatal(err)
					}
				}
				runLoad(b, clients, func(ctx context.Context, i int) error {
					_, err := db.Get(ctx, benchKey(i%keys))
					return err
				})
			})
		}
	}
}
