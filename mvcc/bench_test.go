package mvcc

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// loadBench writes keys user keys with versions versions each and compacts
// them, so reads go through sstables of a settled LSM.
func loadBench(b *testing.B, keys, versions int) *pebble.DB {
	b.Helper()
	db := newMemDB(b)
	batch := db.NewBatch()
	value := make([]byte, 100)
	for v := 1; v <= versions; v++ {
		for k := 0; k < keys; k++ {
			if err := Put(batch, benchKey(k), value, uint64(v)); err != nil {
				b.Fatal(err)
			}
		}
		if batch.Len() > 16<<20 {
			if err := batch.Commit(nil); err != nil {
				b.Fatal(err)
			}
			batch = db.NewBatch()
		}
	}
	if err := batch.Commit(nil); err != nil {
		b.Fatal(err)
	}
	lo, hi := Span(nil, nil)
	if err := db.Compact(context.Background(), lo, hi, true); err != nil {
		b.Fatal(err)
	}
	return db
}

func benchKey(i int) []byte { return fmt.Appendf(nil, "user/%08d", i) }

// BenchmarkGetNewest reads the newest version of a key among many versions.
func BenchmarkGetNewest(b *testing.B) {
	const keys = 1000
	for _, versions := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("versions=%d", versions), func(b *testing.B) {
			db := loadBench(b, keys, versions)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				_, v, found, err := Get(db, benchKey(i%keys), MaxTimestamp)
				if err != nil || !found || v != uint64(versions) {
					b.Fatalf("Get = %d, %v, %v", v, found, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
		})
	}
}

// BenchmarkScan scans keys at the newest timestamp and at an old one, over
// keys with many versions.
func BenchmarkScan(b *testing.B) {
	const keys = 10000
	for _, versions := range []int{1, 10} {
		db := loadBench(b, keys, versions)
		for _, limit := range []int{100, keys} {
			for _, ts := range []uint64{MaxTimestamp, 1} {
				name := fmt.Sprintf("versions=%d/limit=%d/ts=%s", versions, limit, tsName(ts))
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					scanned := 0
					for b.Loop() {
						kvs, err := Scan(db, nil, nil, ts, limit, false)
						if err != nil || len(kvs) != limit {
							b.Fatalf("Scan = %d keys, %v", len(kvs), err)
						}
						scanned += len(kvs)
					}
					b.ReportMetric(float64(scanned)/b.Elapsed().Seconds(), "keys/s")
				})
			}
		}
	}
}

func tsName(ts uint64) string {
	if ts == MaxTimestamp {
		return "max"
	}
	return fmt.Sprint(ts)
}
