package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/storage"
)

// write puts (or, for a nil value, deletes) key at version straight into
// db.
func write(t *testing.T, db *pebble.DB, key string, value []byte, version uint64) {
	t.Helper()
	var err error
	if value == nil {
		err = mvcc.Delete(db, []byte(key), version)
	} else {
		err = mvcc.Put(db, []byte(key), value, version)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func at(ts uint64) *kvpb.Header { return &kvpb.Header{Timestamp: ts} }

func evalOK(t *testing.T, r pebble.Reader, h *kvpb.Header, req *kvpb.RequestUnion, b *Budget) *kvpb.ResponseUnion {
	t.Helper()
	resp, err := Eval(r, h, req, b)
	if err != nil {
		t.Fatalf("Eval(%v): %v", req, err)
	}
	if got, want := kvpb.ResponseMethodOf(resp), kvpb.MethodOf(req); got != want {
		t.Fatalf("Eval(%v) answered a %v", req, got)
	}
	return resp
}

// keysOf returns the keys of kvs, joined by commas.
func keysOf(kvs []*api.KeyValue) string {
	var b bytes.Buffer
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(kv.Key)
	}
	return b.String()
}

func TestEvalGet(t *testing.T) {
	db := openTestDB(t)
	write(t, db, "k", []byte("v1"), 10)
	write(t, db, "k", []byte("v2"), 20)
	write(t, db, "k", nil, 30)
	write(t, db, "k", []byte("v4"), 40)
	write(t, db, "e", []byte{}, 10)
	for _, tc := range []struct {
		key   string
		ts    uint64
		found bool
		value string
	}{
		{"k", 0, true, "v4"}, // 0: the newest
		{"k", 9, false, ""},
		{"k", 10, true, "v1"},
		{"k", 19, true, "v1"},
		{"k", 20, true, "v2"},
		{"k", 30, false, ""}, // deleted
		{"k", 39, false, ""},
		{"k", 40, true, "v4"},
		{"k", mvcc.MaxTimestamp, true, "v4"},
		{"e", 0, true, ""},
		{"e", 9, false, ""},
		{"never", 0, false, ""},
	} {
		g := evalOK(t, db, at(tc.ts), get(tc.key), nil).GetGet()
		if g.GetFound() != tc.found || string(g.GetValue()) != tc.value {
			t.Fatalf("get %q at %d = %v %q, want %v %q", tc.key, tc.ts, g.GetFound(), g.GetValue(), tc.found, tc.value)
		}
	}
	// A nil header reads the newest version.
	if g := evalOK(t, db, nil, get("k"), nil).GetGet(); string(g.GetValue()) != "v4" {
		t.Fatalf("get with a nil header: %v", g)
	}

	// A get spends its value; a miss spends nothing; it is never refused.
	b := &Budget{Keys: 2, Bytes: 3}
	evalOK(t, db, nil, get("never"), b)
	if *b != (Budget{Keys: 2, Bytes: 3}) {
		t.Fatalf("a miss spent: %+v", b)
	}
	evalOK(t, db, nil, get("k"), b)
	if b.Keys != 1 || b.Bytes != 1 || b.Exhausted() {
		t.Fatalf("after a get of 2 bytes: %+v", b)
	}
	if g := evalOK(t, db, nil, get("k"), b).GetGet(); !g.GetFound() || !b.Exhausted() {
		t.Fatalf("a get over budget: %v, budget %+v", g, b)
	}
	if g := evalOK(t, db, nil, get("k"), b).GetGet(); !g.GetFound() {
		t.Fatalf("a get on an exhausted budget: %v", g)
	}
}

func TestEvalScan(t *testing.T) {
	db := openTestDB(t)
	// a..e hold 2-byte values at version 10; c is deleted at 20; f is put
	// at 30; b changes at 30.
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		write(t, db, k, []byte(k+k), 10)
	}
	write(t, db, "c", nil, 20)
	write(t, db, "f", []byte("ff"), 30)
	write(t, db, "b", []byte("BBBB"), 30)
	for _, tc := range []struct {
		name     string
		ts       uint64
		req      *kvpb.RequestUnion
		budget   *Budget
		keys     string
		resume   string
		left     Budget // what the budget has left after
		keysOnly bool
	}{
		{name: "all", req: scan("", "", 0, false), keys: "a,b,d,e,f"},
		{name: "at 10", ts: 10, req: scan("", "", 0, false), keys: "a,b,c,d,e"},
		{name: "at 20", ts: 20, req: scan("", "", 0, false), keys: "a,b,d,e"},
		{name: "before any", ts: 9, req: scan("", "", 0, false)},
		{name: "range", req: scan("b", "e", 0, false), keys: "b,d"},
		{name: "limit", req: scan("", "", 2, false), keys: "a,b", resume: "b\x00"},
		{name: "limit at the end", req: scan("", "", 5, false), keys: "a,b,d,e,f", resume: "f\x00"},
		{name: "limit over the end", req: scan("", "", 6, false), keys: "a,b,d,e,f"},
		{name: "limit at a set end", req: scan("a", "d", 2, false), keys: "a,b", resume: "b\x00"},
		{name: "limit at an adjacent end", req: scan("a", "b\x00", 2, false), keys: "a,b"},
		{name: "keys budget", req: scan("", "", 0, false), budget: &Budget{Keys: 3}, keys: "a,b,d", resume: "d\x00"},
		{name: "keys budget and limit", req: scan("", "", 2, false), budget: &Budget{Keys: 3}, keys: "a,b", resume: "b\x00", left: Budget{Keys: 1}},
		{name: "keys budget left", req: scan("", "", 0, false), budget: &Budget{Keys: 9}, keys: "a,b,d,e,f", left: Budget{Keys: 4}},
		// a=1+2 bytes, b=1+4, d=1+2: 10 bytes fit a and b only.
		{name: "bytes budget", req: scan("", "", 0, false), budget: &Budget{Bytes: 10}, keys: "a,b", resume: "b\x00", left: Budget{Bytes: 2}},
		{name: "bytes budget exact", req: scan("", "", 0, false), budget: &Budget{Bytes: 8}, keys: "a,b", resume: "b\x00"},
		{name: "bytes budget, keys only", req: scan("", "", 0, true), budget: &Budget{Bytes: 3}, keys: "a,b,d", resume: "d\x00", keysOnly: true},
		{name: "progress over budget", req: scan("b", "", 0, false), budget: &Budget{Bytes: 1}, keys: "b", resume: "b\x00"},
		{name: "progress on an exhausted budget", req: scan("d", "", 0, false), budget: exhausted(), keys: "d", resume: "d\x00"},
		{name: "nothing on an exhausted budget", req: scan("g", "", 0, false), budget: exhausted()},
		{name: "both bounds", req: scan("", "", 0, false), budget: &Budget{Keys: 4, Bytes: 100}, keys: "a,b,d,e", resume: "e\x00", left: Budget{Bytes: 100 - 14}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := evalOK(t, db, at(tc.ts), tc.req, tc.budget).GetScan()
			if got := keysOf(s.GetKvs()); got != tc.keys {
				t.Fatalf("keys %q, want %q", got, tc.keys)
			}
			if got := string(s.GetResumeKey()); got != tc.resume || (tc.resume == "") != (s.GetResumeKey() == nil) {
				t.Fatalf("resume key %q, want %q", got, tc.resume)
			}
			for _, kv := range s.GetKvs() {
				want := string(kv.Key) + string(kv.Key)
				if tc.ts == 0 && string(kv.Key) == "b" {
					want = "BBBB"
				}
				if tc.keysOnly {
					want = ""
				}
				if string(kv.Value) != want {
					t.Fatalf("%q = %q, want %q", kv.Key, kv.Value, want)
				}
			}
			if tc.budget != nil && tc.left != (Budget{}) && (tc.budget.Keys != tc.left.Keys || tc.budget.Bytes != tc.left.Bytes) {
				t.Fatalf("budget left %+v, want %+v", tc.budget, tc.left)
			}
		})
	}
}

// exhausted returns a budget with no keys left.
func exhausted() *Budget {
	b := &Budget{Keys: 1}
	b.spend(1, 0)
	return b
}

// TestEvalScanPaged: paging through a range by resume keys, under random
// limits and budgets, returns exactly what one unbounded scan returns, and
// each page keeps to its bounds. The range is large enough for scans of
// several internal pages.
func TestEvalScanPaged(t *testing.T) {
	rng := rand.New(rand.NewSource(smTestSeed(t)))
	db := openTestDB(t)
	b := db.NewBatch()
	nkeys := 500 + rng.Intn(3000)
	for i := range nkeys {
		k := fmt.Sprintf("k%05d", i)
		if rng.Intn(8) == 0 {
			k += "\x00"
		}
		for v, n := uint64(1), uint64(1+rng.Intn(3)); v <= n; v++ {
			var err error
			if rng.Intn(5) == 0 {
				err = mvcc.Delete(b, []byte(k), 10*v)
			} else {
				err = mvcc.Put(b, []byte(k), bytes.Repeat([]byte{'v'}, rng.Intn(40)), 10*v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()

	for round := range 20 {
		ts := uint64(5 + rng.Intn(35)) // versions are 10, 20 and 30
		if round == 0 {
			ts = 0
		}
		start := fmt.Sprintf("k%05d", rng.Intn(nkeys/2))
		end := ""
		if rng.Intn(2) == 0 {
			end = fmt.Sprintf("k%05d", nkeys/2+rng.Intn(nkeys))
		}
		keysOnly := rng.Intn(4) == 0
		whole := evalOK(t, db, at(ts), scan(start, end, 0, keysOnly), nil).GetScan()
		if whole.ResumeKey != nil {
			t.Fatalf("an unbounded scan returned resume key %q", whole.ResumeKey)
		}
		var paged []*api.KeyValue
		from := start
		for pages := 0; ; pages++ {
			if pages > nkeys+1 {
				t.Fatalf("round %d: no end after %d pages", round, pages)
			}
			limit := uint32(rng.Intn(3) * rng.Intn(300))
			budget := &Budget{Keys: uint64(rng.Intn(3) * rng.Intn(400)), Bytes: uint64(rng.Intn(3) * rng.Intn(5000))}
			if rng.Intn(10) == 0 {
				budget.Bytes = 1 // below any pair: one pair a page
			}
			before := *budget
			s := evalOK(t, db, at(ts), scan(from, end, limit, keysOnly), budget).GetScan()
			n, size := uint64(len(s.Kvs)), uint64(0)
			for _, kv := range s.Kvs {
				size += uint64(len(kv.Key) + len(kv.Value))
			}
			if limit > 0 && n > uint64(limit) {
				t.Fatalf("round %d: %d pairs over limit %d", round, n, limit)
			}
			if before.Keys > 0 && n > max(before.Keys, 1) {
				t.Fatalf("round %d: %d pairs over a budget of %d keys", round, n, before.Keys)
			}
			if before.Bytes > 0 && n > 1 && size > before.Bytes {
				t.Fatalf("round %d: %d bytes over a budget of %d", round, size, before.Bytes)
			}
			if s.ResumeKey != nil && n == 0 {
				t.Fatalf("round %d: a page of no pairs with resume key %q", round, s.ResumeKey)
			}
			paged = append(paged, s.Kvs...)
			if s.ResumeKey == nil {
				break
			}
			if bytes.Compare(s.ResumeKey, s.Kvs[n-1].Key) <= 0 {
				t.Fatalf("round %d: resume key %q not after the last key %q", round, s.ResumeKey, s.Kvs[n-1].Key)
			}
			from = string(s.ResumeKey)
		}
		if len(paged) != len(whole.Kvs) {
			t.Fatalf("round %d (ts %d, [%q, %q)): paged scan has %d pairs, the whole scan %d", round, ts, start, end, len(paged), len(whole.Kvs))
		}
		for i := range paged {
			if !kvEqual(paged[i], whole.Kvs[i]) {
				t.Fatalf("round %d: pair %d is %q=%q paged, %q=%q whole", round, i, paged[i].Key, paged[i].Value, whole.Kvs[i].Key, whole.Kvs[i].Value)
			}
		}
	}
}

func kvEqual(a, b *api.KeyValue) bool {
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value)
}

func TestEvalSystemScan(t *testing.T) {
	db := openTestDB(t)
	for _, k := range []string{"node/1", "node/2", "shard/1", "shard/2", "shard/20", "z"} {
		if err := db.Set(storage.SystemKey([]byte(k)), []byte("v"+k), nil); err != nil {
			t.Fatal(err)
		}
	}
	write(t, db, "shard/3", []byte("user"), 1) // a user key, not a system key
	for _, tc := range []struct {
		start string
		end   []byte
		keys  string
	}{
		{"", nil, "node/1,node/2,shard/1,shard/2,shard/20,z"},
		{"shard/", []byte("shard0"), "shard/1,shard/2,shard/20"},
		{"shard/2", nil, "shard/2,shard/20,z"},
		{"node/", []byte("node/2"), "node/1"},
		{"zz", nil, ""},
	} {
		s := evalOK(t, db, at(5), sysScan(tc.start, tc.end), nil).GetSystemScan()
		if got := keysOf(s.GetKvs()); got != tc.keys {
			t.Fatalf("system scan [%q, %q): %q, want %q", tc.start, tc.end, got, tc.keys)
		}
		for _, kv := range s.GetKvs() {
			if string(kv.Value) != "v"+string(kv.Key) {
				t.Fatalf("%q = %q", kv.Key, kv.Value)
			}
		}
	}
	// It spends the budget but, having no resume key, never stops short.
	b := &Budget{Keys: 2, Bytes: 1000}
	s := evalOK(t, db, nil, sysScan("shard/", []byte("shard0")), b).GetSystemScan()
	if len(s.GetKvs()) != 3 || !b.Exhausted() || b.Bytes != 1000-2*(7+8)-(8+9) {
		t.Fatalf("system scan under a budget of 2 keys: %d pairs, budget %+v", len(s.GetKvs()), b)
	}
}

// TestEvalRefusesNonReads: Eval answers reads only.
func TestEvalRefusesNonReads(t *testing.T) {
	db := openTestDB(t)
	for _, req := range []*kvpb.RequestUnion{
		nil,
		{},
		put("k", "v"),
		del("k"),
		cas("k", nil, nil),
		sysPut("k", "v"),
		{Value: &kvpb.RequestUnion_Gc{Gc: &kvpb.GCRequest{Threshold: 1}}},
		{Value: &kvpb.RequestUnion_Progress{Progress: &kvpb.ProgressRequest{}}},
	} {
		if resp, err := Eval(db, nil, req, nil); !errors.Is(err, kvpb.ErrBadBatch) || resp != nil {
			t.Fatalf("Eval(%v) = %v, %v; want kvpb.ErrBadBatch", req, resp, err)
		}
	}
}

// TestRegistryComplete: every read method of kvpb has an Eval and every
// write method an Apply, but those deliberately left for later.
func TestRegistryComplete(t *testing.T) {
	notYet := map[kvpb.Method]bool{}
	n := 0
	for _, m := range kvpb.Methods() {
		n++
		c, ok := commands[m]
		f := m.Flags()
		switch {
		case notYet[m]:
			if ok {
				t.Errorf("%v is registered: take it off the not-yet list", m)
			}
		case f.Has(kvpb.IsRead):
			if c.Eval == nil || c.Apply != nil {
				t.Errorf("read %v: Eval %v, Apply %v", m, c.Eval != nil, c.Apply != nil)
			}
		case f.Has(kvpb.IsWrite):
			if c.Apply == nil || c.Eval != nil {
				t.Errorf("write %v: Apply %v, Eval %v", m, c.Apply != nil, c.Eval != nil)
			}
		default:
			if ok {
				t.Errorf("%v (%v) is neither a read nor a write but is registered", m, f)
			}
		}
	}
	if n < 12 {
		t.Fatalf("only %d methods found", n)
	}
	if len(commands) != 10 {
		t.Fatalf("%d commands registered, want 10", len(commands))
	}
}

func TestBudget(t *testing.T) {
	var nilBudget *Budget
	nilBudget.spend(10, 10)
	if !nilBudget.fits(1<<40) || nilBudget.Exhausted() {
		t.Fatal("a nil budget is bounded")
	}
	b := &Budget{Keys: 2}
	b.spend(1, 1<<30)
	if b.Keys != 1 || b.Bytes != 0 || b.Exhausted() || !b.fits(1<<30) {
		t.Fatalf("unbounded bytes became bounded: %+v", b)
	}
	b.spend(1, 0)
	if b.Keys != 0 || !b.Exhausted() || b.fits(0) {
		t.Fatalf("a budget spent to 0 keys is not exhausted: %+v", b)
	}
	if left, ok := b.keysLeft(); !ok || left != 0 {
		t.Fatalf("keysLeft of an exhausted budget: %d, %v", left, ok)
	}
	b = &Budget{Bytes: 10}
	if !b.fits(10) || b.fits(11) {
		t.Fatalf("fits of 10 bytes: %+v", b)
	}
	b.spend(1, 25) // a progress pair over budget
	if b.Bytes != 0 || !b.Exhausted() {
		t.Fatalf("overspent: %+v", b)
	}
}
