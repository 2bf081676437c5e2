package mvcc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// model is the simple reference: every key's versions, newest first.
type model map[string][]Value

func (m model) write(key string, v Value) {
	vs := slices.DeleteFunc(m[key], func(o Value) bool { return o.Version == v.Version })
	vs = append(vs, v)
	slices.SortFunc(vs, func(a, b Value) int { return -cmpU64(a.Version, b.Version) })
	m[key] = vs
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// visible returns the newest version of key <= ts, if any.
func (m model) visible(key string, ts uint64) (Value, bool) {
	for _, v := range m[key] {
		if v.Version <= ts {
			return v, true
		}
	}
	return Value{}, false
}

func (m model) get(key string, ts uint64) (value []byte, version uint64, found bool) {
	v, ok := m.visible(key, ts)
	if !ok {
		return nil, 0, false
	}
	if v.Deleted {
		return nil, v.Version, false
	}
	return v.Value, v.Version, true
}

func (m model) scan(start, end string, ts uint64, limit int, keysOnly bool) []KV {
	var keys []string
	for k := range m {
		if k >= start && (end == "" || k < end) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []KV
	for _, k := range keys {
		if limit > 0 && len(out) == limit {
			break
		}
		v, ok := m.visible(k, ts)
		if !ok || v.Deleted {
			continue
		}
		kv := KV{Key: []byte(k), Version: v.Version}
		if !keysOnly {
			kv.Value = v.Value
		}
		out = append(out, kv)
	}
	return out
}

func (m model) gc(start, end string, horizon uint64) (removed int) {
	for k, vs := range m {
		if k < start || (end != "" && k >= end) {
			continue
		}
		keep := vs[:0:0]
		kept := false // the newest version <= horizon has been seen
		for _, v := range vs {
			switch {
			case v.Version > horizon:
				keep = append(keep, v)
			case !kept && !v.Deleted:
				kept = true
				keep = append(keep, v)
			default:
				kept = true
				removed++
			}
		}
		if len(keep) == 0 {
			delete(m, k)
		} else {
			m[k] = keep
		}
	}
	return removed
}

// testSeed returns the seed of a randomized test: STRATA_SEED if set, else
// the clock. It logs the seed so that a failure can be reproduced.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STRATA_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("STRATA_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (reproduce with STRATA_SEED=%d)", seed, seed)
	return seed
}

// randomKey draws from a small alphabet with 0x00 and 0xFF bytes so that
// keys collide, are prefixes of each other and need escaping.
func randomKey(rng *rand.Rand) string {
	const alphabet = "\x00\x01a\xff"
	b := make([]byte, rng.IntN(4))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// TestRandomAgainstModel runs random puts, deletes, GCs, gets and scans on
// Pebble and on the model and compares every read. Writes go into an
// indexed batch that is committed now and then; reads go through the batch
// (pending writes over the DB) or, right after a commit, the DB itself.
func TestRandomAgainstModel(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	db := newMemDB(t)
	m := model{}
	b := db.NewIndexedBatch()
	var r pebble.Reader = b
	var version uint64 // the last version written, like a group's sequence
	horizon := uint64(0)

	nextVersion := func() uint64 {
		// Mostly increasing; sometimes an older version, above the GC horizon,
		// or the same one again (which overwrites).
		switch n := rng.IntN(20); {
		case n == 0 && version > horizon:
			return horizon + 1 + rng.Uint64N(version-horizon)
		case n == 1 && version > 0:
			return version
		}
		version++
		return version
	}
	randomTS := func() uint64 {
		switch rng.IntN(10) {
		case 0:
			return MaxTimestamp
		case 1:
			return horizon // reads at the horizon must survive GC
		}
		return rng.Uint64N(version + 2)
	}
	randomEnd := func() string {
		if rng.IntN(3) == 0 {
			return ""
		}
		return randomKey(rng)
	}

	const steps = 5000
	for step := 0; step < steps; step++ {
		var op string
		switch n := rng.IntN(100); {
		case n < 30:
			k, val, v := randomKey(rng), fmt.Sprintf("v%d", step), nextVersion()
			if rng.IntN(10) == 0 {
				val = ""
			}
			op = fmt.Sprintf("put %q=%q@%d", k, val, v)
			if err := Put(b, []byte(k), []byte(val), v); err != nil {
				t.Fatalf("step %d %s: %v", step, op, err)
			}
			m.write(k, Value{Value: []byte(val), Version: v})
		case n < 40:
			k, v := randomKey(rng), nextVersion()
			op = fmt.Sprintf("delete %q@%d", k, v)
			if err := Delete(b, []byte(k), v); err != nil {
				t.Fatalf("step %d %s: %v", step, op, err)
			}
			m.write(k, Value{Version: v, Deleted: true})
		case n < 43:
			if version > horizon {
				horizon += rng.Uint64N(version - horizon + 1)
			}
			start, end := randomKey(rng), randomEnd()
			op = fmt.Sprintf("gc [%q, %q) horizon %d", start, end, horizon)
			// Reads at or above the horizon must not change; check the
			// model's GC rule itself, since Pebble is compared to the model.
			readTS := []uint64{horizon, horizon + rng.Uint64N(version-horizon+2), MaxTimestamp}
			var before [][]KV
			for _, ts := range readTS {
				before = append(before, m.scan("", "", ts, 0, false))
			}
			// In chained calls of a random bound, as replicated GC does.
			maxVersions := rng.IntN(4)
			lower, upper := Span([]byte(start), []byte(end))
			removed := 0
			for {
				n, resume, err := GC(b, b, lower, upper, horizon, maxVersions)
				if err != nil {
					t.Fatalf("step %d %s: %v", step, op, err)
				}
				removed += n
				if resume == nil {
					break
				}
				if next := KeyPrefix(resume); bytes.Compare(next, lower) <= 0 {
					t.Fatalf("step %d %s: resume %q does not advance", step, op, resume)
				} else {
					lower = next
				}
			}
			if want := m.gc(start, end, horizon); removed != want {
				t.Fatalf("step %d %s: removed %d, model %d", step, op, removed, want)
			}
			for i, ts := range readTS {
				if after := m.scan("", "", ts, 0, false); !equalKVs(after, before[i], false) {
					t.Fatalf("step %d %s: model scan at %d changed:\n before %s\n after %s", step, op, ts, fmtKVs(before[i]), fmtKVs(after))
				}
			}
		case n < 48:
			op = "commit"
			if err := b.Commit(nil); err != nil {
				t.Fatalf("step %d commit: %v", step, err)
			}
			b = db.NewIndexedBatch()
			r = db
			continue
		case n < 80:
			k, ts := randomKey(rng), randomTS()
			op = fmt.Sprintf("get %q@%d", k, ts)
			val, v, found, err := Get(r, []byte(k), ts)
			if err != nil {
				t.Fatalf("step %d %s: %v", step, op, err)
			}
			wval, wv, wfound := m.get(k, ts)
			if found != wfound || v != wv || !bytes.Equal(val, wval) || (found && val == nil) {
				t.Fatalf("step %d %s = %q, %d, %v; model %q, %d, %v", step, op, val, v, found, wval, wv, wfound)
			}
		default:
			start, end, ts, limit, keysOnly := randomKey(rng), randomEnd(), randomTS(), rng.IntN(5)-1, rng.IntN(4) == 0
			if rng.IntN(3) == 0 {
				start = ""
			}
			op = fmt.Sprintf("scan [%q, %q)@%d limit %d keysOnly %v", start, end, ts, limit, keysOnly)
			got, err := Scan(r, []byte(start), []byte(end), ts, limit, keysOnly)
			if err != nil {
				t.Fatalf("step %d %s: %v", step, op, err)
			}
			if want := m.scan(start, end, ts, limit, keysOnly); !equalKVs(got, want, keysOnly) {
				t.Fatalf("step %d %s\n got %s\nwant %s", step, op, fmtKVs(got), fmtKVs(want))
			}
		}
		r = b
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	// Every key's full history matches the model.
	for k, want := range m {
		got, err := Versions(db, []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("Versions(%q) = %v, model %v", k, got, want)
		}
		for i := range got {
			if got[i].Version != want[i].Version || got[i].Deleted != want[i].Deleted || !bytes.Equal(got[i].Value, want[i].Value) {
				t.Fatalf("Versions(%q) = %v, model %v", k, got, want)
			}
		}
	}
	all, err := Scan(db, nil, nil, MaxTimestamp, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d steps, %d keys in the model, %d live, last version %d, horizon %d", steps, len(m), len(all), version, horizon)
}

func equalKVs(got, want []KV, keysOnly bool) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i].Key, want[i].Key) || got[i].Version != want[i].Version ||
			!bytes.Equal(got[i].Value, want[i].Value) || (keysOnly != (got[i].Value == nil)) {
			return false
		}
	}
	return true
}

func fmtKVs(kvs []KV) string {
	var buf bytes.Buffer
	for _, kv := range kvs {
		fmt.Fprintf(&buf, "%q=%q@%d ", kv.Key, kv.Value, kv.Version)
	}
	return buf.String()
}
