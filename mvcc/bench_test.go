package mvcc

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/storage"
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

// pointRead is Get without the copy of the value, seeking with
// SeekPrefixGE (as Get does) or, as Get did before storage.Comparer, with
// SeekGE, which no bloom filter can serve.
func pointRead(r pebble.Reader, key []byte, ts uint64, prefix bool) (found bool, err error) {
	seek := EncodeKey(key, ts)
	lower, upper := versionsSpan(seek)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, err
	}
	defer it.Close()
	if valid := prefix && it.SeekPrefixGE(seek) || !prefix && it.SeekGE(seek); !valid {
		return false, it.Error()
	}
	v, err := current(it, nil)
	return err == nil && !v.Deleted, err
}

// BenchmarkPointRead compares a point read with storage.Comparer (prefix
// bloom filters, SeekPrefixGE, as Get reads) against one without (Pebble's
// default comparer, SeekGE in a bounded iterator, as Get read before), on keys present and absent, in an
// LSM of several levels (each round of versions flushed on its own, then
// partly compacted).
func BenchmarkPointRead(b *testing.B) {
	const keys, versions = 20000, 4
	for _, mode := range []string{"split", "nosplit"} {
		var c *pebble.Comparer
		if mode == "split" {
			c = storage.Comparer
		}
		db := newMemDBWith(b, c)
		value := make([]byte, 100)
		for v := 1; v <= versions; v++ {
			batch := db.NewBatch()
			for k := 0; k < keys; k += 2 { // even keys only: odd ones are misses
				if err := Put(batch, benchKey(k), value, uint64(v)); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Commit(nil); err != nil {
				b.Fatal(err)
			}
			if err := db.Flush(); err != nil {
				b.Fatal(err)
			}
			if v == versions/2 {
				lo, hi := Span(nil, nil)
				if err := db.Compact(context.Background(), lo, hi, true); err != nil {
					b.Fatal(err)
				}
			}
		}
		for _, hit := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/hit=%v", mode, hit), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					k := (2 * i) % keys
					if !hit {
						k++
					}
					found, err := pointRead(db, benchKey(k), MaxTimestamp, mode == "split")
					if err != nil || found != hit {
						b.Fatalf("read %d: found %v, %v", k, found, err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
			})
		}
	}
}
