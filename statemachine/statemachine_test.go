package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
	"google.golang.org/protobuf/proto"
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

const (
	testUserGroup = 7
	testSysGroup  = 1
)

// Requests, as the router builds them. A nil old or new of cas is unset.
func put(k, v string) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Put{Put: &api.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func del(k string) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Delete{Delete: &api.DeleteRequest{Key: []byte(k)}}}
}

func cas(k string, old, new []byte) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Cas{Cas: &api.CompareAndSwapRequest{Key: []byte(k), Old: old, New: new}}}
}

func sysPut(k, v string) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_SystemPut{SystemPut: &kvpb.SystemPutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func sysDel(k string) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_SystemDelete{SystemDelete: &kvpb.SystemDeleteRequest{Key: []byte(k)}}}
}

func get(k string) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Get{Get: &api.GetRequest{Key: []byte(k)}}}
}

// scan is a scan of [start, end); an empty end is unbounded.
func scan(start, end string, limit uint32, keysOnly bool) *kvpb.RequestUnion {
	s := &api.ScanRequest{Start: []byte(start), Limit: limit, KeysOnly: keysOnly}
	if end != "" {
		s.End = []byte(end)
	}
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Scan{Scan: s}}
}

func sysScan(start string, end []byte) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_SystemScan{SystemScan: &kvpb.SystemScanRequest{Start: []byte(start), End: end}}}
}

// encode returns the raft payload of a command with writes.
func encode(t testing.TB, writes ...*kvpb.RequestUnion) []byte {
	t.Helper()
	data, err := kvpb.EncodeCommand(&kvpb.ReplicatedCommand{Header: &kvpb.Header{ShardId: testUserGroup}, Writes: writes})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// spansOf returns the spans of a test group: all system data for the
// system group, all user data for a user group.
// stamp returns data with its command's commit timestamp set to ts, as the
// replica's sequencer sets it before proposing; data that does not decode is
// returned as it is.
func stamp(data []byte, ts uint64) []byte {
	c, err := kvpb.DecodeCommand(data)
	if err != nil {
		return data
	}
	if c.Header == nil {
		c.Header = &kvpb.Header{}
	}
	c.Header.Timestamp = ts
	out, err := kvpb.EncodeCommand(c)
	if err != nil {
		return data
	}
	return out
}

// spansOf returns the spans of group as the root package gives them: all
// system data for the system group sys; all user data and the group's
// replicated state for a user group.
func spansOf(group uint64, sys uint64) []raftnode.Span {
	if group == sys {
		start, end := storage.SystemSpan()
		return []raftnode.Span{{Start: start, End: end}}
	}
	start, end := storage.UserSpan()
	gs, ge := storage.GroupStateSpan(group)
	return []raftnode.Span{{Start: start, End: end}, {Start: gs, End: ge}}
}

// gcReq is a GC request to threshold examining at most maxVersions.
func gcReq(threshold, maxVersions uint64) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Gc{Gc: &kvpb.GCRequest{Threshold: threshold, MaxVersions: maxVersions}}}
}

func openTestDB(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Comparer: storage.Comparer, Logger: quietLogger{pebble.DefaultLogger}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// quietLogger drops Pebble's informational messages; errors go to Pebble's
// default logger.
type quietLogger struct{ pebble.Logger }

func (quietLogger) Infof(string, ...any) {}

// applier applies commands one at a time, each in its own indexed batch,
// with increasing versions.
type applier struct {
	t       *testing.T
	db      *pebble.DB
	kv      KV
	version uint64
}

// apply applies a command of writes in group, which spans what spansOf
// says; see applyRaw.
func (a *applier) apply(group uint64, writes ...*kvpb.RequestUnion) (raftnode.Result, []*kvpb.ResponseUnion, *pebble.Batch) {
	a.t.Helper()
	sys := a.kv.SystemGroup
	if sys == 0 {
		sys = 1
	}
	return a.applyRaw(raftnode.Entry{Group: group, Spans: spansOf(group, sys)}, encode(a.t, writes...))
}

// applyRaw applies data at e (its Index, and the command's timestamp, set here) and commits
// the batch. It returns the result, the responses it holds (checked to
// match data's writes), and the committed, still open, batch.
func (a *applier) applyRaw(e raftnode.Entry, data []byte) (raftnode.Result, []*kvpb.ResponseUnion, *pebble.Batch) {
	a.t.Helper()
	a.version++
	e.Index = a.version
	data = stamp(data, a.version)
	b := a.db.NewIndexedBatch()
	a.t.Cleanup(func() { _ = b.Close() })
	res, err := a.kv.Apply(b, e, data)
	if err != nil {
		a.t.Fatalf("Apply(%x): %v", data, err)
	}
	resps := responses(a.t, data, res)
	if err := b.Commit(pebble.Sync); err != nil {
		a.t.Fatal(err)
	}
	return res, resps, b
}

// responses decodes res.Data and checks that it answers the command data
// (when res has no error) or is empty (when it has).
func responses(t testing.TB, data []byte, res raftnode.Result) []*kvpb.ResponseUnion {
	t.Helper()
	if res.Err != nil {
		if res.Data != nil {
			t.Fatalf("Apply(%x): error %v and data %x", data, res.Err, res.Data)
		}
		return nil
	}
	var br kvpb.BatchResponse
	if err := proto.Unmarshal(res.Data, &br); err != nil {
		t.Fatalf("Apply(%x): Result.Data %x is not a BatchResponse: %v", data, res.Data, err)
	}
	c, err := kvpb.DecodeCommand(data)
	if err != nil {
		t.Fatalf("Apply(%x) accepted a command DecodeCommand refuses: %v", data, err)
	}
	if err := kvpb.ValidateResponse(&kvpb.BatchRequest{Requests: c.Writes}, &br); err != nil {
		t.Fatalf("Apply(%x): %v", data, err)
	}
	return br.Responses
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
	res, resps, b := a.apply(testUserGroup, cas(key, old, new))
	if res.Err != nil {
		a.t.Fatalf("CAS(%q, %q, %q): %v", key, old, new, res.Err)
	}
	if got := resps[0].GetCas().GetSwapped(); got != wantSwapped {
		a.t.Fatalf("CAS(%q, %q -> %q) swapped %v, want %v", key, old, new, got, wantSwapped)
	}
	if !wantSwapped && !b.Empty() {
		a.t.Fatalf("CAS(%q, %q -> %q) did not swap but wrote", key, old, new)
	}
}

// wantRefused checks that a command was refused with target and wrote
// nothing.
func wantRefused(t *testing.T, what string, res raftnode.Result, b *pebble.Batch, target error) {
	t.Helper()
	if !errors.Is(res.Err, target) || !b.Empty() {
		t.Fatalf("%s: %+v (want %v), batch empty %v", what, res, target, b.Empty())
	}
}

// dump returns every key and value of db.
func dump(t testing.TB, db *pebble.DB) [][2][]byte {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out [][2][]byte
	for valid := it.First(); valid; valid = it.Next() {
		out = append(out, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	return out
}

func TestApplyPutDelete(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	res, resps, _ := a.apply(testUserGroup, put("k", "v1"))
	if res.Err != nil || resps[0].GetPut() == nil {
		t.Fatalf("put: %+v", res)
	}
	a.wantValue("k", "v1", true)
	a.apply(testUserGroup, put("k", "v2"))
	a.wantValue("k", "v2", true)
	// The empty value is a value.
	a.apply(testUserGroup, put("e", ""))
	a.wantValue("e", "", true)
	res, resps, _ = a.apply(testUserGroup, del("k"))
	if res.Err != nil || resps[0].GetDelete() == nil {
		t.Fatalf("delete: %+v", res)
	}
	a.wantValue("k", "", false)
	// Deleting an absent key is not an error.
	if res, _, _ := a.apply(testUserGroup, del("never")); res.Err != nil {
		t.Fatalf("delete of an absent key: %+v", res)
	}
	a.wantValue("never", "", false)
	// Each write is a new MVCC version, at the entry's version.
	vs, err := mvcc.Versions(a.db, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].Version != 4 || !vs[0].Deleted || vs[2].Version != 1 {
		t.Fatalf("versions of k: %+v", vs)
	}
	// Keys with 0x00 bytes are ordinary keys.
	a.apply(testUserGroup, put("a\x00b", "z"))
	a.wantValue("a\x00b", "z", true)
	a.wantValue("a", "", false)
	// Several writes of one command apply in order, at one version.
	res, resps, _ = a.apply(testUserGroup, put("m", "1"), put("n", "2"), del("m"), put("n", "3"))
	if res.Err != nil || len(resps) != 4 {
		t.Fatalf("a command of 4 writes: %+v, %d responses", res, len(resps))
	}
	a.wantValue("m", "", false)
	a.wantValue("n", "3", true)
	if vs, err := mvcc.Versions(a.db, []byte("n")); err != nil || len(vs) != 1 || vs[0].Version != a.version {
		t.Fatalf("versions of n: %+v, %v", vs, err)
	}
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

	// An unset new deletes.
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

// TestApplyCASNotSwappedWritesNothing: a failed CAS leaves the batch
// empty, and the other writes of its command still apply.
func TestApplyCASNotSwappedWritesNothing(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	a.apply(testUserGroup, put("k", "v"))
	res, resps, b := a.apply(testUserGroup, cas("k", []byte("x"), []byte("y")))
	if res.Err != nil || resps[0].GetCas().GetSwapped() || !b.Empty() {
		t.Fatalf("failed CAS: %+v, %v, batch empty %v", res, resps, b.Empty())
	}
	a.wantValue("k", "v", true)
	res, resps, _ = a.apply(testUserGroup, cas("k", []byte("x"), []byte("y")), put("j", "w"))
	if res.Err != nil || resps[0].GetCas().GetSwapped() || resps[1].GetPut() == nil {
		t.Fatalf("failed CAS and a put: %+v, %v", res, resps)
	}
	a.wantValue("k", "v", true)
	a.wantValue("j", "w", true)
}

// TestApplyCASSeesEarlierWrites: the commands of one apply pass share an
// indexed batch, so a CAS sees the writes of earlier commands in it and of
// earlier writes of its own command.
func TestApplyCASSeesEarlierWrites(t *testing.T) {
	t.Run("pass", func(t *testing.T) {
		db := openTestDB(t)
		var kv KV
		b := db.NewIndexedBatch()
		defer b.Close()
		cmds := []*kvpb.RequestUnion{
			put("k", "a"),
			cas("k", []byte("a"), []byte("b")),
			cas("k", []byte("b"), nil),
			cas("k", nil, []byte("c")),
		}
		for i, c := range cmds {
			data := encode(t, c)
			res, err := kv.Apply(b, raftnode.Entry{Group: testUserGroup, Index: uint64(i + 1), Spans: spansOf(testUserGroup, 1)}, stamp(data, uint64(i+1)))
			if err != nil || res.Err != nil {
				t.Fatalf("command %d: %+v, %v", i, res, err)
			}
			if r := responses(t, data, res)[0]; r.GetCas() != nil && !r.GetCas().GetSwapped() {
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
	})
	t.Run("command", func(t *testing.T) {
		a := &applier{t: t, db: openTestDB(t)}
		res, resps, _ := a.apply(testUserGroup,
			put("k", "a"),
			cas("k", []byte("a"), []byte("b")),
			cas("k", []byte("a"), []byte("x")), // k is b now
			cas("k", []byte("b"), nil),
			cas("k", nil, []byte("c")))
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		var got []bool
		for _, r := range resps[1:] {
			got = append(got, r.GetCas().GetSwapped())
		}
		if want := []bool{true, false, true, true}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("swapped %v, want %v", got, want)
		}
		a.wantValue("k", "c", true)
	})
}

func TestApplySystemPutDelete(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	getSys := func(key string) ([]byte, bool) {
		t.Helper()
		v, err := storage.Get(a.db, storage.SystemKey([]byte(key)))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return v, true
	}
	res, resps, _ := a.apply(testSysGroup, sysPut("shard/1", "desc"))
	if res.Err != nil || resps[0].GetSystemPut() == nil {
		t.Fatalf("system put in the system group: %+v", res)
	}
	if v, ok := getSys("shard/1"); !ok || string(v) != "desc" {
		t.Fatalf("system key = %q, %v", v, ok)
	}
	// A system write is not an MVCC write.
	a.wantValue("shard/1", "", false)
	// It replaces the old value.
	a.apply(testSysGroup, sysPut("shard/1", "desc2"), sysPut("shard/2", "other"))
	if v, ok := getSys("shard/1"); !ok || string(v) != "desc2" {
		t.Fatalf("system key = %q, %v", v, ok)
	}

	// In a user group: a command-level error and nothing written.
	res, _, b := a.apply(testUserGroup, sysPut("shard/3", "evil"))
	wantRefused(t, "system put in a user group", res, b, ErrWrongShard)
	res, _, b = a.apply(testUserGroup, sysDel("shard/1"))
	wantRefused(t, "system delete in a user group", res, b, ErrWrongShard)
	if _, ok := getSys("shard/3"); ok {
		t.Fatal("system put in a user group wrote")
	}

	// User writes in the system group: refused too.
	for _, w := range []*kvpb.RequestUnion{put("k", "v"), del("k"), cas("k", nil, []byte("v"))} {
		res, _, b := a.apply(testSysGroup, w)
		wantRefused(t, fmt.Sprintf("%v in the system group", kvpb.MethodOf(w)), res, b, ErrWrongShard)
	}
	a.wantValue("k", "", false)

	// A system delete deletes; of an absent key, it is no error.
	res, resps, _ = a.apply(testSysGroup, sysDel("shard/1"), sysDel("never"))
	if res.Err != nil || resps[0].GetSystemDelete() == nil {
		t.Fatalf("system delete: %+v", res)
	}
	if _, ok := getSys("shard/1"); ok {
		t.Fatal("system key survived a system delete")
	}
	if v, ok := getSys("shard/2"); !ok || string(v) != "other" {
		t.Fatalf("shard/2 = %q, %v", v, ok)
	}

	// A configured system group.
	a.kv.SystemGroup = 5
	if res, _, _ := a.apply(5, sysPut("x", "y")); res.Err != nil {
		t.Fatalf("system put in configured system group 5: %v", res.Err)
	}
	res, _, b = a.apply(1, sysPut("z", "y"))
	wantRefused(t, "system put in group 1 with system group 5", res, b, ErrWrongShard)
	if res, _, _ := a.apply(1, put("u", "v")); res.Err != nil {
		t.Fatalf("user put in group 1 with system group 5: %v", res.Err)
	}
}

// TestApplyOutsideSpans: a write whose Pebble key is outside the group's
// spans is refused, and so is its whole command, before anything is
// written. (Before this check, the state machine wrote any key of the
// right kind into any group.)
func TestApplyOutsideSpans(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	lo, hi := mvcc.Span([]byte("b"), []byte("m"))
	user := raftnode.Entry{Group: testUserGroup, Spans: []raftnode.Span{{Start: lo, End: hi}}}
	sys := raftnode.Entry{Group: testSysGroup, Spans: []raftnode.Span{{
		Start: storage.SystemKey([]byte("shard/")), End: storage.SystemKey([]byte("shard0"))}}}
	for _, tc := range []struct {
		name   string
		e      raftnode.Entry
		writes []*kvpb.RequestUnion
		ok     bool
	}{
		{"put inside", user, []*kvpb.RequestUnion{put("b", "v")}, true},
		{"put before", user, []*kvpb.RequestUnion{put("a", "v")}, false},
		{"put at end", user, []*kvpb.RequestUnion{put("m", "v")}, false},
		{"put after", user, []*kvpb.RequestUnion{put("z", "v")}, false},
		{"delete after", user, []*kvpb.RequestUnion{del("z")}, false},
		{"cas after", user, []*kvpb.RequestUnion{cas("z", nil, []byte("v"))}, false},
		{"2nd write after", user, []*kvpb.RequestUnion{put("c", "v"), put("z", "v")}, false},
		{"3rd write before", user, []*kvpb.RequestUnion{del("c"), cas("d", nil, nil), put("a\xff", "v")}, false},
		{"no spans", raftnode.Entry{Group: testUserGroup}, []*kvpb.RequestUnion{put("c", "v")}, false},
		{"system inside", sys, []*kvpb.RequestUnion{sysPut("shard/1", "d")}, true},
		{"system outside", sys, []*kvpb.RequestUnion{sysPut("node/1", "d")}, false},
		{"2nd system delete outside", sys, []*kvpb.RequestUnion{sysPut("shard/2", "d"), sysDel("zzz")}, false},
	} {
		res, _, b := a.applyRaw(tc.e, encode(t, tc.writes...))
		if tc.ok {
			if res.Err != nil || b.Empty() {
				t.Fatalf("%s: %+v, batch empty %v", tc.name, res, b.Empty())
			}
			continue
		}
		wantRefused(t, tc.name, res, b, ErrWrongShard)
	}
	a.wantValue("c", "", false)
	a.wantValue("z", "", false)
}

func TestApplyMalformed(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	good := encode(t, put("k", "v"))
	noWrites, err := kvpb.EncodeCommand(&kvpb.ReplicatedCommand{})
	if err != nil {
		t.Fatal(err)
	}
	aRead, err := kvpb.EncodeCommand(&kvpb.ReplicatedCommand{Writes: []*kvpb.RequestUnion{put("k", "v"), get("k")}})
	if err != nil {
		t.Fatal(err)
	}
	gc := encode(t, gcReq(10, 0))
	for _, data := range [][]byte{
		nil,
		{},
		{kvpb.CommandFormatV1},
		good[:len(good)-1],
		append(bytes.Clone(good), 0xff),
		good[1:],                      // no format tag
		{1, 0, 1, 'k', 1, 'v', 0},     // a legacy put
		{kvpb.CommandFormatV1 + 1, 0}, // a later format
		noWrites,                      // nothing to apply
		aRead,                         // a read is not a write
		encode(t, put("", "v")),       // an empty key
		encode(t, put("k", "v"), sysPut("s", "v")), // system and user writes mixed
		gc,                                     // no bound on its work
		encode(t, gcReq(10, 5), put("k", "v")), // GC not alone
	} {
		for _, group := range []uint64{testUserGroup, testSysGroup} {
			res, _, b := a.applyRaw(raftnode.Entry{Group: group, Spans: spansOf(group, 1)}, data)
			wantRefused(t, fmt.Sprintf("Apply(%x) in group %d", data, group), res, b, ErrBadCommand)
		}
	}
	if kv := dump(t, a.db); len(kv) != 0 {
		t.Fatalf("malformed commands wrote %x", kv)
	}
	if !errors.Is(ErrBadCommand, kvpb.ErrBadCommand) {
		t.Fatal("ErrBadCommand is not kvpb.ErrBadCommand")
	}
}

// FuzzApply feeds arbitrary bytes to Apply in a user and the system group:
// it must not panic or return a storage error (a malformed command must
// never stop a node), a refusal must be command-level and write nothing,
// and what it accepts must answer its command.
func FuzzApply(f *testing.F) {
	for _, data := range [][]byte{
		{},
		{1, 0, 1, 'k', 0, 0},
		{kvpb.CommandFormatV1},
		{kvpb.CommandFormatV1, 0x12, 0},
		encode(f, put("k", "v")),
		encode(f, put("k", "v"), del("j"), cas("k", []byte("v"), nil)),
		encode(f, cas("k", nil, []byte{})),
		encode(f, sysPut("shard/1", "d"), sysDel("shard/2")),
		encode(f, gcReq(1, 1)),
	} {
		f.Add(data)
	}
	db := openTestDB(f)
	var kv KV
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, group := range []uint64{testUserGroup, testSysGroup} {
			b := db.NewIndexedBatch()
			res, err := kv.Apply(b, raftnode.Entry{Group: group, Index: 1, Spans: spansOf(group, 1)}, stamp(data, 1))
			if err != nil {
				t.Fatalf("Apply(%x) in group %d: storage error %v", data, group, err)
			}
			if res.Err != nil {
				if !errors.Is(res.Err, ErrBadCommand) && !errors.Is(res.Err, ErrWrongShard) {
					t.Fatalf("Apply(%x) in group %d: refusal %v is neither ErrBadCommand nor ErrWrongShard", data, group, res.Err)
				}
				if !b.Empty() {
					t.Fatalf("Apply(%x) in group %d: refused (%v) but wrote", data, group, res.Err)
				}
			}
			responses(t, data, res)
			_ = b.Close()
		}
	})
}

// randCommand returns a random command of one to three writes over a few
// keys, sometimes malformed or sent to the wrong group.
func randCommand(t testing.TB, rng *rand.Rand) (group uint64, data []byte) {
	keys := []string{"a", "b", "a\x00", "c"}
	vals := [][]byte{nil, {}, []byte("x"), []byte("y"), {0}}
	key := func() string { return keys[rng.Intn(len(keys))] }
	val := func() []byte { return vals[rng.Intn(len(vals))] }
	userWrite := func() *kvpb.RequestUnion {
		switch rng.Intn(7) {
		case 0, 1, 2:
			return put(key(), string(val()))
		case 3:
			return del(key())
		default:
			return cas(key(), val(), val())
		}
	}
	sysWrite := func() *kvpb.RequestUnion {
		if rng.Intn(3) == 0 {
			return sysDel(key())
		}
		return sysPut(key(), string(val()))
	}
	var writes []*kvpb.RequestUnion
	n := 1 + rng.Intn(3)
	switch rng.Intn(10) {
	case 0, 1, 2, 3, 4:
		group = testUserGroup
		for range n {
			writes = append(writes, userWrite())
		}
	case 5: // GC up to a recent version, alone, in bounded steps
		group = testUserGroup
		writes = append(writes, gcReq(1+rng.Uint64()%400, 1+rng.Uint64()%3))
		if rng.Intn(2) == 0 {
			writes[0].GetGc().From = []byte(key())
		}
	case 6:
		group = testSysGroup
		for range n {
			writes = append(writes, sysWrite())
		}
	case 7: // the wrong group
		group = testSysGroup
		writes = append(writes, userWrite())
		if rng.Intn(2) == 0 {
			group = testUserGroup
			writes[0] = sysWrite()
		}
	default: // garbage that does not decode
		data = make([]byte, rng.Intn(8))
		rng.Read(data)
		if rng.Intn(2) == 0 && len(data) > 0 {
			data[0] = kvpb.CommandFormatV1
		}
		if _, err := kvpb.DecodeCommand(data); err == nil {
			t.Fatalf("random bytes %x decode", data)
		}
		return testUserGroup, data
	}
	return group, encode(t, writes...)
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
	for range 100 {
		var p []entry
		for j := rng.Intn(8); j >= 0; j-- {
			g, d := randCommand(t, rng)
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
				res, err := kv.Apply(b, raftnode.Entry{Group: e.group, Index: index, Spans: spansOf(e.group, 1)}, stamp(e.data, index))
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

// TestApplyModel checks commands against a map model (user and system
// keys) on random sequences.
func TestApplyModel(t *testing.T) {
	rng := rand.New(rand.NewSource(smTestSeed(t)))
	a := &applier{t: t, db: openTestDB(t)}
	user, system := map[string][]byte{}, map[string][]byte{}
	for i := range 500 {
		g, data := randCommand(t, rng)
		res, resps, _ := a.applyRaw(raftnode.Entry{Group: g, Spans: spansOf(g, 1)}, data)
		c, err := kvpb.DecodeCommand(data)
		if err != nil {
			if !errors.Is(res.Err, ErrBadCommand) {
				t.Fatalf("step %d: malformed %x gave %+v", i, data, res)
			}
			continue
		}
		if kvpb.MethodOf(c.Writes[0]).Flags().Has(kvpb.IsSystem) != (g == testSysGroup) {
			if !errors.Is(res.Err, ErrWrongShard) {
				t.Fatalf("step %d: %v in group %d gave %+v", i, c.Writes, g, res)
			}
			continue
		}
		if res.Err != nil {
			t.Fatalf("step %d: %v: %v", i, c.Writes, res.Err)
		}
		for j, w := range c.Writes {
			switch v := w.Value.(type) {
			case *kvpb.RequestUnion_Put:
				user[string(v.Put.Key)] = bytes.Clone(v.Put.Value)
			case *kvpb.RequestUnion_Delete:
				delete(user, string(v.Delete.Key))
			case *kvpb.RequestUnion_Cas:
				k := string(v.Cas.Key)
				cur, ok := user[k]
				swap := (v.Cas.Old == nil && !ok) || (v.Cas.Old != nil && ok && bytes.Equal(cur, v.Cas.Old))
				if got := resps[j].GetCas().GetSwapped(); got != swap {
					t.Fatalf("step %d: CAS %v on %q (present %v) swapped %v", i, v.Cas, cur, ok, got)
				}
				if swap && v.Cas.New == nil {
					delete(user, k)
				} else if swap {
					user[k] = bytes.Clone(v.Cas.New)
				}
			case *kvpb.RequestUnion_SystemPut:
				system[string(v.SystemPut.Key)] = bytes.Clone(v.SystemPut.Value)
			case *kvpb.RequestUnion_SystemDelete:
				delete(system, string(v.SystemDelete.Key))
			}
		}
		// The store holds the model, user keys read back by Eval.
		for _, k := range []string{"a", "b", "a\x00", "c"} {
			want, wantOK := user[k]
			a.wantValue(k, string(want), wantOK)
		}
		r, err := Eval(a.db, nil, sysScan("", nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		for _, kv := range r.GetSystemScan().GetKvs() {
			got[string(kv.Key)] = kv.Value
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", system) {
			t.Fatalf("step %d: system keys %q, want %q", i, got, system)
		}
	}
}

// TestApplyCommitOrder: a user write with no commit timestamp is refused
// whole and writes nothing; a command whose timestamp is not above the one
// of the group's previous entry stops the node (ErrCommitOrder) and writes
// nothing; a replica replaying its group's log from an earlier index (a new
// replica of the group) starts the order afresh; two writes of one key in
// one command share its timestamp, and the later wins.
func TestApplyCommitOrder(t *testing.T) {
	db := openTestDB(t)
	var kv KV
	spans := spansOf(testUserGroup, 1)
	apply := func(index, ts uint64, writes ...*kvpb.RequestUnion) (raftnode.Result, *pebble.Batch, error) {
		t.Helper()
		data, err := kvpb.EncodeCommand(&kvpb.ReplicatedCommand{Header: &kvpb.Header{Timestamp: ts}, Writes: writes})
		if err != nil {
			t.Fatal(err)
		}
		b := db.NewIndexedBatch()
		t.Cleanup(func() { _ = b.Close() })
		res, err := kv.Apply(b, raftnode.Entry{Group: testUserGroup, Index: index, Spans: spans}, data)
		if err == nil {
			if err := b.Commit(pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
		return res, b, err
	}
	if res, _, err := apply(10, 5, put("k", "a"), put("k", "b")); err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	if v, _, found, err := mvcc.Get(db, []byte("k"), mvcc.MaxTimestamp); err != nil || !found || string(v) != "b" {
		t.Fatalf("k = %q, %v, %v; want the later write of the command", v, found, err)
	}
	res, b, err := apply(11, 0, put("j", "x"))
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "put with no timestamp", res, b, ErrWriteTooOld)
	for _, c := range []struct {
		what string
		ts   uint64
		w    *kvpb.RequestUnion
	}{
		{"put below the previous entry's timestamp", 3, put("j", "x")},
		{"put at the previous entry's timestamp", 5, put("j", "x")},
		{"compare-and-swap below the previous entry's timestamp", 4, cas("k", []byte("b"), []byte("c"))},
	} {
		if _, b, err := apply(12, c.ts, c.w); !errors.Is(err, ErrCommitOrder) || !b.Empty() {
			t.Fatalf("%s: %v (want %v), batch empty %v", c.what, err, ErrCommitOrder, b.Empty())
		}
	}
	if res, _, err := apply(12, 6, del("k")); err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	// A new replica of the group replays the log from its start.
	if res, _, err := apply(1, 2, put("i", "y")); err != nil || res.Err != nil {
		t.Fatalf("replay from index 1: %v, %v", err, res.Err)
	}
	if _, _, err := apply(2, 1, put("i", "z")); !errors.Is(err, ErrCommitOrder) {
		t.Fatalf("replayed entry below its predecessor: %v, want %v", err, ErrCommitOrder)
	}
}
