package elle

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func ap(k string, v int) Op { return Op{Kind: Append, Key: k, Value: v} }

func rd(k string, list ...int) Op { return Op{Kind: Read, Key: k, List: list} }

// serial builds a history from transactions that ran one after another,
// each on its own process, T(i) from time 10i to 10i+5.
func serial(txns ...Txn) History {
	h := make(History, len(txns))
	for i, t := range txns {
		if t.Status == "" {
			t.Status = OK
		}
		t.Process = i
		t.Invoke, t.Complete = int64(10*i), int64(10*i+5)
		h[i] = t
	}
	return h
}

func ok(ops ...Op) Txn   { return Txn{Status: OK, Ops: ops} }
func fail(ops ...Op) Txn { return Txn{Status: Fail, Ops: ops} }
func info(ops ...Op) Txn { return Txn{Status: Info, Ops: ops} }

func mustCheck(t *testing.T, h History, opts Options) Result {
	t.Helper()
	res, err := Check(h, opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

// wantOnly checks that res reports exactly the kinds given, the first one
// involving txns (in cycle order, from any rotation, for a cycle).
func wantOnly(t *testing.T, res Result, kind Kind, txns []int, more ...Kind) {
	t.Helper()
	t.Logf("%s", res)
	if res.Valid {
		t.Fatalf("Valid, want %s", kind)
	}
	var got []Kind
	for k := range res.ByKind() {
		got = append(got, k)
	}
	want := append([]Kind{kind}, more...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	a := res.ByKind()[kind][0]
	if !sameCycle(a.Txns, txns) {
		t.Fatalf("%s involves %v, want %v", kind, a.Txns, txns)
	}
	if a.Explanation == "" {
		t.Fatalf("%s has no explanation", kind)
	}
	for i, d := range a.Cycle {
		if next := a.Cycle[(i+1)%len(a.Cycle)]; d.To != next.From || d.From != a.Txns[i] || d.Why == "" {
			t.Fatalf("%s: cycle %+v is not a cycle through %v", kind, a.Cycle, a.Txns)
		}
	}
}

// sameCycle reports whether a is b, or, for a cycle, a rotation of it.
func sameCycle(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for r := range a {
		if slices.Equal(append(slices.Clone(a[r:]), a[:r]...), b) {
			return true
		}
	}
	return false
}

func depKinds(a Anomaly) []DepKind {
	var kinds []DepKind
	for _, d := range a.Cycle {
		kinds = append(kinds, d.Kind)
	}
	slices.Sort(kinds)
	return kinds
}

func TestG0(t *testing.T) {
	// T0 and T1 append to x and y in opposite orders: a write cycle.
	h := serial(
		ok(ap("x", 1), ap("y", 1)),
		ok(ap("x", 2), ap("y", 2)),
		ok(rd("x", 1, 2), rd("y", 2, 1)),
	)
	res := mustCheck(t, h, Options{})
	wantOnly(t, res, G0, []int{0, 1})
	if got := depKinds(res.Anomalies[0]); !slices.Equal(got, []DepKind{WW, WW}) {
		t.Fatalf("G0 edges %v, want ww ww", got)
	}
}

func TestG1a(t *testing.T) {
	h := serial(
		fail(ap("x", 1)),
		ok(rd("x", 1)),
	)
	wantOnly(t, mustCheck(t, h, Options{}), G1a, []int{0, 1})
}

func TestG1b(t *testing.T) {
	// T1 read 1, but T0 appended 2 after 1 in the same transaction. That
	// T1 saw one of T0's appends and not the other is also a G-single
	// cycle (T0 -wr-> T1 -rw-> T0).
	h := serial(
		ok(ap("x", 1), ap("x", 2)),
		ok(rd("x", 1)),
		ok(rd("x", 1, 2)),
	)
	wantOnly(t, mustCheck(t, h, Options{}), G1b, []int{0, 1}, GSingle)
}

func TestG1c(t *testing.T) {
	// Each saw the other's append: circular information flow.
	h := serial(
		ok(ap("x", 1), rd("y", 1)),
		ok(ap("y", 1), rd("x", 1)),
	)
	res := mustCheck(t, h, Options{})
	wantOnly(t, res, G1c, []int{0, 1})
	if got := depKinds(res.Anomalies[0]); !slices.Equal(got, []DepKind{WR, WR}) {
		t.Fatalf("G1c edges %v, want wr wr", got)
	}
}

func TestGSingleLostUpdate(t *testing.T) {
	// Both read x empty and appended: T0's append is lost to T1.
	h := serial(
		ok(rd("x"), ap("x", 1)),
		ok(rd("x"), ap("x", 2)),
		ok(rd("x", 1, 2)),
	)
	res := mustCheck(t, h, Options{})
	wantOnly(t, res, GSingle, []int{0, 1})
	if got := depKinds(res.Anomalies[0]); !slices.Equal(got, []DepKind{RW, WW}) {
		t.Fatalf("G-single edges %v, want rw ww", got)
	}
}

func TestGSingleReadSkew(t *testing.T) {
	// T1 saw T0's x but not its y.
	h := serial(
		ok(ap("x", 1), ap("y", 1)),
		ok(rd("x", 1), rd("y")),
		ok(rd("y", 1)),
	)
	wantOnly(t, mustCheck(t, h, Options{}), GSingle, []int{0, 1})
}

func TestG2WriteSkew(t *testing.T) {
	// Both read x and y empty, each appended to one of them.
	h := serial(
		ok(rd("x"), rd("y"), ap("x", 1)),
		ok(rd("x"), rd("y"), ap("y", 1)),
		ok(rd("x", 1), rd("y", 1)),
	)
	res := mustCheck(t, h, Options{})
	wantOnly(t, res, G2, []int{0, 1})
	if got := depKinds(res.Anomalies[0]); !slices.Equal(got, []DepKind{RW, RW}) {
		t.Fatalf("G2 edges %v, want rw rw", got)
	}
}

// TestGSinglePreferredOverShorterG2 builds a component whose shortest
// cycle is a write skew (T0 and T1 on x and y) but which also holds a
// longer cycle with a single rw edge (T1 -rw-> T0 -ww-> T2 -wr-> T1): the
// G-single is the weaker anomaly and is the one reported.
func TestGSinglePreferredOverShorterG2(t *testing.T) {
	h := serial(
		ok(rd("x"), rd("y"), ap("x", 1), ap("z", 1)),
		ok(rd("x"), rd("y"), ap("y", 1), rd("w", 5)),
		ok(ap("z", 2), ap("w", 5)),
		ok(rd("x", 1), rd("y", 1), rd("z", 1, 2), rd("w", 5)),
	)
	res := mustCheck(t, h, Options{})
	wantOnly(t, res, GSingle, []int{1, 0, 2})
	if got := depKinds(res.Anomalies[0]); !slices.Equal(got, []DepKind{RW, WR, WW}) {
		t.Fatalf("G-single edges %v, want rw wr ww", got)
	}
}

// TestWeakestReported builds one component holding both a G0 (T0 and T1
// on x and y) and a write skew (T1 and T2 on z and w): the G0 is reported.
func TestWeakestReported(t *testing.T) {
	h := serial(
		ok(ap("x", 1), ap("y", 1)),
		ok(ap("x", 2), ap("y", 2), rd("z"), rd("w"), ap("z", 1)),
		ok(rd("z"), rd("w"), ap("w", 1), ap("x", 3)),
		ok(rd("x", 1, 2, 3), rd("y", 2, 1), rd("z", 1), rd("w", 1)),
	)
	wantOnly(t, mustCheck(t, h, Options{}), G0, []int{0, 1})
}

func TestInternal(t *testing.T) {
	h := serial(
		ok(ap("x", 1)),
		ok(ap("x", 2), rd("x", 1)),                      // missed its own append
		ok(rd("x", 1, 2), rd("x", 1)),                   // the list shrank between two reads
		ok(rd("x", 1, 2), ap("x", 3), rd("x", 1, 2, 3)), // fine
	)
	res := mustCheck(t, h, Options{})
	t.Logf("%s", res)
	got := res.ByKind()[Internal]
	if len(got) != 2 || !slices.Equal(got[0].Txns, []int{1}) || !slices.Equal(got[1].Txns, []int{2}) {
		t.Fatalf("want internal anomalies in T1 and T2, got %s", res)
	}
}

func TestIncompatibleOrder(t *testing.T) {
	h := serial(
		ok(ap("x", 1)),
		ok(ap("x", 2)),
		ok(ap("x", 3)),
		ok(rd("x", 1, 2)),
		ok(rd("x", 1, 3)),
	)
	wantOnly(t, mustCheck(t, h, Options{}), IncompatibleOrder, []int{3, 4})
}

func TestDuplicateAndGarbage(t *testing.T) {
	h := serial(
		ok(ap("x", 1)),
		ok(rd("x", 1, 1)),
		ok(rd("y", 7)),
	)
	res := mustCheck(t, h, Options{})
	wantOnly(t, res, DuplicateElements, []int{1}, GarbageRead)
	if g := res.ByKind()[GarbageRead][0]; g.Key != "y" || !slices.Equal(g.Txns, []int{2}) {
		t.Fatalf("garbage-read %+v, want T2 on y", g)
	}
}

func TestRealtimeOption(t *testing.T) {
	// T1 ran entirely after T0 but read x before T0's append: fine for
	// serializability (T1 first), a realtime G-single for strict
	// serializability.
	h := serial(
		ok(ap("x", 1)),
		ok(rd("x")),
		ok(rd("x", 1)),
	)
	if res := mustCheck(t, h, Options{}); !res.Valid {
		t.Fatalf("without realtime edges: %s", res)
	}
	res := mustCheck(t, h, Options{Realtime: true})
	wantOnly(t, res, GSingle+"-realtime", []int{0, 1})
	if got := depKinds(res.Anomalies[0]); !slices.Equal(got, []DepKind{Realtime, RW}) {
		t.Fatalf("edges %v, want realtime rw", got)
	}
}

func TestProcessOption(t *testing.T) {
	// One process ran T0 then T1, concurrent in time with nothing else;
	// T1 did not see T0's append.
	h := History{
		{Process: 0, Invoke: 0, Complete: 100, Status: OK, Ops: []Op{ap("x", 1)}},
		{Process: 0, Invoke: 50, Complete: 150, Status: OK, Ops: []Op{rd("x")}},
		{Process: 1, Invoke: 0, Complete: 200, Status: OK, Ops: []Op{rd("x", 1)}},
	}
	if res := mustCheck(t, h, Options{Realtime: true}); !res.Valid {
		t.Fatalf("with realtime edges only: %s", res)
	}
	wantOnly(t, mustCheck(t, h, Options{Process: true}), GSingle+"-process", []int{0, 1})
}

func TestSerializableHistoriesPass(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    History
	}{
		{"empty", nil},
		{"appends and reads", serial(
			ok(ap("x", 1), ap("y", 1)),
			ok(rd("x", 1), ap("x", 2), rd("x", 1, 2)),
			ok(rd("y", 1), ap("y", 2)),
			ok(rd("x", 1, 2), rd("y", 1, 2)),
		)},
		{"failed txn unseen", serial(
			ok(ap("x", 1)),
			fail(ap("x", 2), rd("x", 9)),
			ok(ap("x", 3)),
			ok(rd("x", 1, 3)),
		)},
		{"info txn seen", serial(
			ok(ap("x", 1)),
			info(ap("x", 2), ap("y", 1)),
			ok(rd("x", 1, 2), rd("y", 1)),
		)},
		{"info txn unseen", serial(
			ok(ap("x", 1)),
			info(ap("x", 2)),
			ok(rd("x", 1)),
		)},
		{"info read ignored", serial(
			ok(ap("x", 1)),
			info(rd("x", 5, 6)),
			ok(rd("x", 1)),
		)},
		{"own appends read back", serial(
			ok(ap("x", 1), rd("x", 1), ap("x", 2), rd("x", 1, 2)),
			ok(rd("x", 1, 2)),
		)},
		{"reads in an order the clock does not show", serial(
			ok(rd("x", 1)),
			ok(ap("x", 1)),
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, opts := range []Options{{}, {Process: true}} {
				if res := mustCheck(t, tc.h, opts); !res.Valid {
					t.Fatalf("%+v: %s", opts, res)
				}
			}
		})
	}
}

func TestInvalidHistory(t *testing.T) {
	for _, h := range []History{
		serial(ok(ap("x", 1)), ok(ap("x", 1))),
		serial(ok(ap("x", 1), ap("x", 1))),
		{{Status: "maybe"}},
		{{Status: OK, Ops: []Op{{Kind: "cas", Key: "x"}}}},
	} {
		if _, err := Check(h, Options{}); !errors.Is(err, ErrInvalidHistory) {
			t.Errorf("Check(%+v) = %v, want ErrInvalidHistory", h, err)
		}
	}
}

func TestListString(t *testing.T) {
	if got := listString([]int{1, 2, 3}); got != "[1 2 3]" {
		t.Errorf("short list: %s", got)
	}
	long := make([]int, 20)
	for i := range long {
		long[i] = i
	}
	if got := listString(long); !strings.Contains(got, "(12 more)") || !strings.HasPrefix(got, "[0 1 2 3 ") || !strings.HasSuffix(got, " 16 17 18 19]") {
		t.Errorf("long list: %s", got)
	}
}
