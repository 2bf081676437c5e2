package statemachine

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

// smTestSeed returns the seed of a randomized test: STRATA_SEED if set,
// else a fresh one. It logs the seed so a failure can be reproduced.
func smTestSeed(t *testing.T) int64 {
	t.Helper()
	seed := rand.Int63()
	if s := os.Getenv("STRATA_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("STRATA_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (reproduce with STRATA_SEED=%d)", seed, seed)
	return seed
}

// cmdEqual compares commands field by field, treating nil and empty slices
// alike (the encoding does not tell them apart).
func cmdEqual(a, b Command) bool {
	return a.Op == b.Op && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) &&
		bytes.Equal(a.Old, b.Old) && bytes.Equal(a.New, b.New) &&
		a.OldAbsent == b.OldAbsent && a.NewAbsent == b.NewAbsent
}

// normalize drops the fields an op does not carry.
func normalize(c Command) Command {
	switch c.Op {
	case OpPut, OpSystemPut:
		c.Old, c.New = nil, nil
	case OpDelete:
		c.Value, c.Old, c.New = nil, nil, nil
	case OpCAS:
		c.Value = nil
	}
	return c
}

func FuzzCommandRoundTrip(f *testing.F) {
	f.Add(byte(OpPut), []byte("k"), []byte("v"), []byte{}, []byte{}, false, false)
	f.Add(byte(OpDelete), []byte("k"), []byte{}, []byte{}, []byte{}, false, false)
	f.Add(byte(OpCAS), []byte("k"), []byte{}, []byte("old"), []byte("new"), false, false)
	f.Add(byte(OpCAS), []byte{0}, []byte{}, []byte{}, []byte{}, true, true)
	f.Add(byte(OpSystemPut), []byte("shard/\x00\x00\x00\x02"), make([]byte, 300), []byte{}, []byte{}, false, true)
	f.Fuzz(func(t *testing.T, op byte, key, value, old, new []byte, oldAbsent, newAbsent bool) {
		c := Command{Op: Op(op%4 + 1), Key: key, Value: value, Old: old, New: new, OldAbsent: oldAbsent, NewAbsent: newAbsent}
		enc := c.Encode()
		got, err := Decode(enc)
		if len(key) == 0 {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("Decode of a command with an empty key: %+v, %v", got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", c, err)
		}
		if want := normalize(c); !cmdEqual(got, want) {
			t.Fatalf("round trip %+v -> %+v", want, got)
		}
		if re := got.Encode(); c.Op != OpDelete && !bytes.Equal(re, enc) {
			t.Fatalf("re-encode differs: %x vs %x", re, enc)
		}
	})
}

// FuzzDecodeCommand feeds arbitrary bytes to Decode: it must not panic, must
// fail with ErrBadCommand, and what it accepts must re-encode to a stable
// form and apply without a storage error (a malformed command must never
// stop a node).
func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{9, 0, 1, 'k', 0, 0})
	f.Add([]byte{1, 0, 1, 'k', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0})
	f.Add([]byte{3, 3, 1, 'k', 1, 'a', 1, 'b'})
	f.Add((&Command{Op: OpCAS, Key: []byte("key"), Old: []byte("o"), New: []byte("n")}).Encode())
	f.Add((&Command{Op: OpSystemPut, Key: []byte("s"), Value: []byte("v")}).Encode())
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Comparer: storage.Comparer})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	var kv KV
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("Decode(%x) error %v does not wrap ErrBadCommand", b, err)
			}
			return
		}
		switch c.Op {
		case OpPut, OpDelete, OpCAS, OpSystemPut:
			if len(c.Key) == 0 {
				t.Fatalf("Decode(%x) accepted an empty key: %+v", b, c)
			}
		}
		// Encode o Decode is stable after one round.
		e1 := c.Encode()
		c2, err := Decode(e1)
		if err != nil {
			t.Fatalf("Decode(%x) = %+v; its encoding %x does not decode: %v", b, c, e1, err)
		}
		if e2 := c2.Encode(); !bytes.Equal(e1, e2) {
			t.Fatalf("Decode(%x): re-encodings differ: %x vs %x", b, e1, e2)
		}
		for _, group := range []uint64{testUserGroup, testSysGroup} {
			batch := db.NewIndexedBatch()
			_, err := kv.Apply(batch, raftnode.Entry{Group: group, Index: 1, Version: 1}, b)
			_ = batch.Close()
			if err != nil {
				t.Fatalf("Apply(%x) in group %d: storage error %v", b, group, err)
			}
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	good := (&Command{Op: OpCAS, Key: []byte("key"), Old: []byte("old"), New: []byte("new")}).Encode()
	for i := 0; i < len(good); i++ {
		if _, err := Decode(good[:i]); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("Decode of a %d-byte prefix: %v", i, err)
		}
	}
	if _, err := Decode(append(append([]byte(nil), good...), 0)); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("trailing byte: %v", err)
	}
	for _, op := range []byte{0, 0x7f, 0xff} {
		b := append([]byte(nil), good...)
		b[0] = op
		if _, err := Decode(b); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("op %d: %v", op, err)
		}
	}
	if _, err := Decode((&Command{Op: OpPut, Key: nil, Value: []byte("v")}).Encode()); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("empty key: %v", err)
	}
}

const (
	testUserGroup = 7
	testSysGroup  = 1
)

func openTestDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Comparer: storage.Comparer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// applier applies commands one at a time, each in its own indexed batch,
// with increasing versions.
type applier struct {
	t       *testing.T
	db      *pebble.DB
	kv      KV
	version uint64
}

func (a *applier) apply(group uint64, c Command) (raftnode.Result, *pebble.Batch) {
	return a.applyRaw(group, c.Encode())
}

// applyRaw applies data and commits the batch; it returns the result and
// the (committed, still open) batch for inspection.
func (a *applier) applyRaw(group uint64, data []byte) (raftnode.Result, *pebble.Batch) {
	a.t.Helper()
	a.version++
	b := a.db.NewIndexedBatch()
	a.t.Cleanup(func() { _ = b.Close() })
	res, err := a.kv.Apply(b, raftnode.Entry{Group: group, Index: a.version, Version: a.version}, data)
	if err != nil {
		a.t.Fatalf("Apply(%x): %v", data, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		a.t.Fatal(err)
	}
	return res, b
}

func (a *applier) get(key string) (string, bool) {
	a.t.Helper()
	v, _, found, err := mvcc.Get(a.db, []byte(key), mvcc.MaxTimestamp)
	if err != nil {
		a.t.Fatal(err)
	}
	return string(v), found
}

func (a *applier) wantValue(key, value string, found bool) {
	a.t.Helper()
	v, ok := a.get(key)
	if ok != found || v != value {
		a.t.Fatalf("Get(%q) = %q, %v; want %q, %v", key, v, ok, value, found)
	}
}

func (a *applier) cas(key string, old, new []byte, wantSwapped bool) {
	a.t.Helper()
	res, _ := a.apply(testUserGroup, Command{Op: OpCAS, Key: []byte(key), Old: old, OldAbsent: old == nil, New: new, NewAbsent: new == nil})
	if res.Err != nil {
		a.t.Fatalf("CAS(%q, %q, %q): %v", key, old, new, res.Err)
	}
	want := NotSwapped
	if wantSwapped {
		want = Swapped
	}
	if !bytes.Equal(res.Data, want) {
		a.t.Fatalf("CAS(%q, %q -> %q) = %v, want %v", key, old, new, res.Data, want)
	}
}

func TestApplyPutDelete(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	res, _ := a.apply(testUserGroup, Command{Op: OpPut, Key: []byte("k"), Value: []byte("v1")})
	if res.Err != nil || res.Data != nil {
		t.Fatalf("put: %+v", res)
	}
	a.wantValue("k", "v1", true)
	a.apply(testUserGroup, Command{Op: OpPut, Key: []byte("k"), Value: []byte("v2")})
	a.wantValue("k", "v2", true)
	// The empty value is a value.
	a.apply(testUserGroup, Command{Op: OpPut, Key: []byte("e"), Value: []byte{}})
	a.wantValue("e", "", true)
	res, _ = a.apply(testUserGroup, Command{Op: OpDelete, Key: []byte("k")})
	if res.Err != nil {
		t.Fatalf("delete: %+v", res)
	}
	a.wantValue("k", "", false)
	// Deleting an absent key is not an error.
	if res, _ := a.apply(testUserGroup, Command{Op: OpDelete, Key: []byte("never")}); res.Err != nil {
		t.Fatalf("delete of an absent key: %+v", res)
	}
	a.wantValue("never", "", false)
	// Each write is a new MVCC version, at the version Apply was given.
	vs, err := mvcc.Versions(a.db, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("versions of k: %+v", vs)
	}
	// Keys with 0x00 bytes are ordinary keys.
	a.apply(testUserGroup, Command{Op: OpPut, Key: []byte("a\x00b"), Value: []byte("z")})
	a.wantValue("a\x00b", "z", true)
	a.wantValue("a", "", false)
}

func TestApplyCAS(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	// Absent old on an absent key swaps.
	a.cas("k", nil, []byte("v1"), true)
	a.wantValue("k", "v1", true)
	// Absent old on a present key does not.
	a.cas("k", nil, []byte("v2"), false)
	a.wantValue("k", "v1", true)
	// A wrong old does not swap.
	a.cas("k", []byte("v0"), []byte("v2"), false)
	a.cas("k", []byte("v1\x00"), []byte("v2"), false)
	a.cas("k", []byte{}, []byte("v2"), false)
	a.wantValue("k", "v1", true)
	// The right old swaps.
	a.cas("k", []byte("v1"), []byte("v2"), true)
	a.wantValue("k", "v2", true)

	// The empty value is distinct from absent, both ways.
	a.cas("e", []byte{}, []byte("x"), false) // e is absent, not empty
	a.wantValue("e", "", false)
	a.cas("e", nil, []byte{}, true) // set e to the empty value
	a.wantValue("e", "", true)
	a.cas("e", nil, []byte("x"), false) // e is empty, not absent
	a.wantValue("e", "", true)
	a.cas("e", []byte{}, []byte("x"), true)
	a.wantValue("e", "x", true)

	// A nil new deletes.
	a.cas("k", []byte("v2"), nil, true)
	a.wantValue("k", "", false)
	// And a deleted key is absent again.
	a.cas("k", []byte("v2"), []byte("v3"), false)
	a.cas("k", nil, []byte("v3"), true)
	a.wantValue("k", "v3", true)
	// Deleting with a wrong old does nothing.
	a.cas("k", []byte("nope"), nil, false)
	a.wantValue("k", "v3", true)
	// Absent to absent: swaps, and the key stays absent.
	a.cas("gone", nil, nil, true)
	a.wantValue("gone", "", false)
}

// TestApplyCASNotSwappedWritesNothing: a failed CAS leaves the batch empty.
func TestApplyCASNotSwappedWritesNothing(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	a.apply(testUserGroup, Command{Op: OpPut, Key: []byte("k"), Value: []byte("v")})
	res, b := a.apply(testUserGroup, Command{Op: OpCAS, Key: []byte("k"), Old: []byte("x"), New: []byte("y")})
	if !bytes.Equal(res.Data, NotSwapped) || !b.Empty() {
		t.Fatalf("failed CAS: %+v, batch empty %v", res, b.Empty())
	}
}

// TestApplyCASSeesEarlierInBatch: commands of one apply pass share an
// indexed batch, so a CAS sees the writes of earlier commands in it.
func TestApplyCASSeesEarlierInBatch(t *testing.T) {
	db := openTestDB(t)
	var kv KV
	b := db.NewIndexedBatch()
	defer b.Close()
	cmds := []Command{
		{Op: OpPut, Key: []byte("k"), Value: []byte("a")},
		{Op: OpCAS, Key: []byte("k"), Old: []byte("a"), New: []byte("b")},
		{Op: OpCAS, Key: []byte("k"), Old: []byte("b"), NewAbsent: true},
		{Op: OpCAS, Key: []byte("k"), OldAbsent: true, New: []byte("c")},
	}
	for i, c := range cmds {
		res, err := kv.Apply(b, raftnode.Entry{Group: testUserGroup, Index: uint64(i+1), Version: uint64(i+1)}, c.Encode())
		if err != nil || res.Err != nil {
			t.Fatalf("command %d: %+v, %v", i, res, err)
		}
		if c.Op == OpCAS && !bytes.Equal(res.Data, Swapped) {
			t.Fatalf("command %d did not swap", i)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	v, _, found, err := mvcc.Get(db, []byte("k"), mvcc.MaxTimestamp)
	if err != nil || !found || string(v) != "c" {
		t.Fatalf("k = %q, %v, %v", v, found, err)
	}
}

func TestApplySystemPut(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	get := func(key string) ([]byte, bool) {
		t.Helper()
		v, closer, err := a.db.Get(storage.SystemKey([]byte(key)))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return append([]byte(nil), v...), true
	}
	res, _ := a.apply(testSysGroup, Command{Op: OpSystemPut, Key: []byte("shard/1"), Value: []byte("desc")})
	if res.Err != nil {
		t.Fatalf("system put in the system group: %v", res.Err)
	}
	if v, ok := get("shard/1"); !ok || string(v) != "desc" {
		t.Fatalf("system key = %q, %v", v, ok)
	}
	// A system write is not an MVCC write.
	a.wantValue("shard/1", "", false)

	// In a user group: a command-level error and nothing written.
	res, b := a.apply(testUserGroup, Command{Op: OpSystemPut, Key: []byte("shard/2"), Value: []byte("evil")})
	if !errors.Is(res.Err, ErrWrongShard) || !b.Empty() {
		t.Fatalf("system put in a user group: %+v, batch empty %v", res, b.Empty())
	}
	if _, ok := get("shard/2"); ok {
		t.Fatal("system put in a user group wrote")
	}
	res, b = a.apply(testUserGroup, Command{Op: OpSystemPut, Key: []byte("shard/1"), NewAbsent: true})
	if !errors.Is(res.Err, ErrWrongShard) || !b.Empty() {
		t.Fatalf("system delete in a user group: %+v, batch empty %v", res, b.Empty())
	}

	// User commands in the system group: refused too.
	for _, c := range []Command{
		{Op: OpPut, Key: []byte("k"), Value: []byte("v")},
		{Op: OpDelete, Key: []byte("k")},
		{Op: OpCAS, Key: []byte("k"), OldAbsent: true, New: []byte("v")},
	} {
		res, b := a.apply(testSysGroup, c)
		if !errors.Is(res.Err, ErrWrongShard) || !b.Empty() {
			t.Fatalf("op %d in the system group: %+v, batch empty %v", c.Op, res, b.Empty())
		}
	}
	a.wantValue("k", "", false)

	// NewAbsent deletes a system key.
	res, _ = a.apply(testSysGroup, Command{Op: OpSystemPut, Key: []byte("shard/1"), NewAbsent: true})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, ok := get("shard/1"); ok {
		t.Fatal("system key survived a system delete")
	}

	// A configured system group.
	a.kv.SystemGroup = 5
	if res, _ := a.apply(5, Command{Op: OpSystemPut, Key: []byte("x"), Value: []byte("y")}); res.Err != nil {
		t.Fatalf("system put in configured system group 5: %v", res.Err)
	}
	if res, b := a.apply(1, Command{Op: OpSystemPut, Key: []byte("z"), Value: []byte("y")}); !errors.Is(res.Err, ErrWrongShard) || !b.Empty() {
		t.Fatalf("system put in group 1 with system group 5: %+v", res)
	}
}

func TestApplyMalformed(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	good := (&Command{Op: OpPut, Key: []byte("k"), Value: []byte("v")}).Encode()
	for _, data := range [][]byte{
		nil,
		{},
		{byte(OpPut)},
		good[:len(good)-1],
		append(append([]byte(nil), good...), 0),
		{9, 0, 1, 'k', 0, 0},
		{byte(OpPut), 0, 0, 0, 0},
	} {
		for _, group := range []uint64{testUserGroup, testSysGroup} {
			res, b := a.applyRaw(group, data)
			if !errors.Is(res.Err, ErrBadCommand) {
				t.Fatalf("Apply(%x) in group %d: Result %+v, want ErrBadCommand", data, group, res)
			}
			if !b.Empty() {
				t.Fatalf("Apply(%x) wrote", data)
			}
		}
	}
	it, err := a.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if it.First() {
		t.Fatalf("key %x written by malformed commands", it.Key())
	}
}

// randCommand returns a random command over a few keys, sometimes
// malformed or sent to the wrong group.
func randCommand(rng *rand.Rand) (group uint64, data []byte) {
	keys := []string{"a", "b", "a\x00", "c"}
	vals := [][]byte{nil, {}, []byte("x"), []byte("y"), {0}}
	val := func() []byte { return vals[rng.Intn(len(vals))] }
	c := Command{Key: []byte(keys[rng.Intn(len(keys))])}
	group = testUserGroup
	switch rng.Intn(10) {
	case 0, 1, 2:
		c.Op, c.Value = OpPut, val()
	case 3:
		c.Op = OpDelete
	case 4, 5, 6:
		c.Op, c.Old, c.New = OpCAS, val(), val()
		c.OldAbsent, c.NewAbsent = c.Old == nil, c.New == nil
	case 7:
		c.Op, c.Value, c.NewAbsent = OpSystemPut, val(), rng.Intn(3) == 0
		group = testSysGroup
	case 8: // the wrong group
		c.Op, c.Value = Op(rng.Intn(4)+1), val()
		if c.Op == OpSystemPut {
			group = testUserGroup
		} else {
			group = testSysGroup
		}
	default: // garbage that does not decode
		for {
			data = make([]byte, rng.Intn(8))
			rng.Read(data)
			if _, err := Decode(data); err != nil {
				return group, data
			}
		}
	}
	return group, c.Encode()
}

// dump returns every key and value of db.
func dump(t *testing.T, db *pebble.DB) [][2][]byte {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out [][2][]byte
	for valid := it.First(); valid; valid = it.Next() {
		out = append(out, [2][]byte{append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)})
	}
	return out
}

// TestApplyDeterministic: two replicas applying the same commands, in the
// same apply passes, end with byte-identical stores and give the same
// results.
func TestApplyDeterministic(t *testing.T) {
	rng := rand.New(rand.NewSource(smTestSeed(t)))
	type entry struct {
		group uint64
		data  []byte
	}
	var passes [][]entry
	for i := 0; i < 100; i++ {
		var p []entry
		for j := rng.Intn(8); j >= 0; j-- {
			g, d := randCommand(rng)
			p = append(p, entry{g, d})
		}
		passes = append(passes, p)
	}
	run := func() ([][2][]byte, []raftnode.Result) {
		db := openTestDB(t)
		var kv KV
		var results []raftnode.Result
		index := uint64(0)
		for _, p := range passes {
			b := db.NewIndexedBatch()
			for _, e := range p {
				index++
				res, err := kv.Apply(b, raftnode.Entry{Group: e.group, Index: index, Version: index}, e.data)
				if err != nil {
					t.Fatalf("Apply(%x): %v", e.data, err)
				}
				results = append(results, res)
			}
			if err := b.Commit(pebble.Sync); err != nil {
				t.Fatal(err)
			}
			_ = b.Close()
		}
		return dump(t, db), results
	}
	s1, r1 := run()
	s2, r2 := run()
	if len(s1) == 0 {
		t.Fatal("nothing written: the test exercises nothing")
	}
	if len(s1) != len(s2) {
		t.Fatalf("replicas hold %d and %d keys", len(s1), len(s2))
	}
	for i := range s1 {
		if !bytes.Equal(s1[i][0], s2[i][0]) || !bytes.Equal(s1[i][1], s2[i][1]) {
			t.Fatalf("replicas differ at %d: %x=%x vs %x=%x", i, s1[i][0], s1[i][1], s2[i][0], s2[i][1])
		}
	}
	for i := range r1 {
		if !bytes.Equal(r1[i].Data, r2[i].Data) || (r1[i].Err == nil) != (r2[i].Err == nil) {
			t.Fatalf("results differ at %d: %+v vs %+v", i, r1[i], r2[i])
		}
	}
}

// TestApplyModel checks user commands against a map model on random
// sequences.
func TestApplyModel(t *testing.T) {
	rng := rand.New(rand.NewSource(smTestSeed(t)))
	a := &applier{t: t, db: openTestDB(t)}
	model := map[string][]byte{}
	for i := 0; i < 500; i++ {
		g, data := randCommand(rng)
		res, _ := a.applyRaw(g, data)
		c, err := Decode(data)
		if err != nil {
			if !errors.Is(res.Err, ErrBadCommand) {
				t.Fatalf("step %d: malformed %x gave %+v", i, data, res)
			}
			continue
		}
		if (c.Op == OpSystemPut) != (g == testSysGroup) {
			if !errors.Is(res.Err, ErrWrongShard) {
				t.Fatalf("step %d: %+v in group %d gave %+v", i, c, g, res)
			}
			continue
		}
		if res.Err != nil {
			t.Fatalf("step %d: %+v: %v", i, c, res.Err)
		}
		k := string(c.Key)
		switch c.Op {
		case OpPut:
			model[k] = append([]byte{}, c.Value...)
		case OpDelete:
			delete(model, k)
		case OpCAS:
			cur, ok := model[k]
			swap := (c.OldAbsent && !ok) || (!c.OldAbsent && ok && bytes.Equal(cur, c.Old))
			if swap != bytes.Equal(res.Data, Swapped) {
				t.Fatalf("step %d: CAS %+v on %q (present %v) gave %v", i, c, cur, ok, res.Data)
			}
			if swap && c.NewAbsent {
				delete(model, k)
			} else if swap {
				model[k] = append([]byte{}, c.New...)
			}
		}
		if c.Op == OpSystemPut {
			continue
		}
		want, wantOK := model[k]
		a.wantValue(k, string(want), wantOK)
	}
}
