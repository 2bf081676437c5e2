package mvcc

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/storage"
)

// TestDataDriven runs the scripts in testdata/. Each file starts with an
// empty store. Commands:
//
//	put k=<key> v=<value> ts=<version>
//	del k=<key> ts=<version>
//	get k=<key> [ts=<ts>]                      ts defaults to max
//	scan [start=<key>] [end=<key>] [ts=<ts>] [limit=<n>] [keys-only]
//	gc [start=<key>] [end=<key>] horizon=<ts> [max=<n>]   max: the versions examined (0: no bound)
//	dump                                       every stored version, raw key included
//
// Keys and values are Go string literals without the quotes, so \x00 is a
// zero byte. Rewrite the expected output with -rewrite.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		db := newMemDB(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := runCommand(t, db, d)
			if err != nil {
				return fmt.Sprintf("error: %v\n", err)
			}
			return out
		})
	})
}

func runCommand(t *testing.T, db *pebble.DB, d *datadriven.TestData) (string, error) {
	key := func(name string) []byte {
		var s string
		if !d.MaybeScanArgs(t, name, &s) {
			return nil
		}
		u, err := strconv.Unquote(`"` + s + `"`)
		if err != nil {
			d.Fatalf(t, "%s=%s: %v", name, s, err)
		}
		return []byte(u)
	}
	ts := func(name string) uint64 {
		var s string
		if !d.MaybeScanArgs(t, name, &s) || s == "max" {
			return MaxTimestamp
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			d.Fatalf(t, "%s=%s: %v", name, s, err)
		}
		return v
	}
	var b strings.Builder
	switch d.Cmd {
	case "put":
		return "", Put(db, key("k"), key("v"), ts("ts"))
	case "del":
		return "", Delete(db, key("k"), ts("ts"))
	case "get":
		k := key("k")
		v, version, found, err := Get(db, k, ts("ts"))
		switch {
		case err != nil:
			return "", err
		case found:
			fmt.Fprintf(&b, "%q = %q @%d\n", k, v, version)
		case version != 0:
			fmt.Fprintf(&b, "%q deleted @%d\n", k, version)
		default:
			fmt.Fprintf(&b, "%q not found\n", k)
		}
	case "scan":
		limit := 0
		d.MaybeScanArgs(t, "limit", &limit)
		kvs, err := Scan(db, key("start"), key("end"), ts("ts"), limit, d.HasArg("keys-only"))
		if err != nil {
			return "", err
		}
		for _, kv := range kvs {
			if kv.Value == nil {
				fmt.Fprintf(&b, "%q @%d\n", kv.Key, kv.Version)
			} else {
				fmt.Fprintf(&b, "%q = %q @%d\n", kv.Key, kv.Value, kv.Version)
			}
		}
		if len(kvs) == 0 {
			b.WriteString("(empty)\n")
		}
	case "gc":
		batch := db.NewBatch()
		maxVersions := 0
		d.MaybeScanArgs(t, "max", &maxVersions)
		lower, upper := Span(key("start"), key("end"))
		removed, resume, err := GC(db, batch, lower, upper, ts("horizon"), maxVersions)
		if err != nil {
			return "", err
		}
		if err := batch.Commit(nil); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "removed %d\n", removed)
		if resume != nil {
			fmt.Fprintf(&b, "resume %q\n", resume)
		}
	case "dump":
		lo, hi := storage.UserSpan()
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return "", err
		}
		defer it.Close()
		for valid := it.First(); valid; valid = it.Next() {
			k, v, err := DecodeKey(it.Key())
			if err != nil {
				return "", err
			}
			val, deleted, err := DecodeValue(it.Value())
			if err != nil {
				return "", err
			}
			if deleted {
				fmt.Fprintf(&b, "%q @%d tombstone  %x\n", k, v, it.Key())
			} else {
				fmt.Fprintf(&b, "%q @%d = %q  %x\n", k, v, val, it.Key())
			}
		}
		if err := it.Error(); err != nil {
			return "", err
		}
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return b.String(), nil
}
