package deadlock

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestNewRejectsNegativeTTL(t *testing.T) {
	if _, err := New(Options{TTL: -time.Second}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("New(TTL -1s) = %v, want ErrInvalidOptions", err)
	}
}

func TestDeadlockErrorIs(t *testing.T) {
	d := mustNew(t, Options{})
	now := time.Unix(0, 0)
	if err := d.Detect(now, 1, 2, []byte("a")); err != nil {
		t.Fatal(err)
	}
	err := fmt.Errorf("lock k: %w", d.Detect(now, 2, 1, []byte("b")))
	var de *DeadlockError
	if !errors.Is(err, ErrDeadlock) || !errors.As(err, &de) {
		t.Fatalf("got %v, want a wrapped *DeadlockError", err)
	}
	if de.Victim != 2 || len(de.Cycle) != 2 {
		t.Fatalf("victim %d cycle %v, want victim 2 and two edges", de.Victim, de.Cycle)
	}
}

// TestDetectKeyIsCopied checks that the caller may reuse its key buffer.
func TestDetectKeyIsCopied(t *testing.T) {
	d := mustNew(t, Options{})
	key := []byte("a")
	if err := d.Detect(time.Unix(0, 0), 1, 2, key); err != nil {
		t.Fatal(err)
	}
	key[0] = 'z'
	if got := d.Edges(); string(got[0].Key) != "a" {
		t.Fatalf("edge key %q after the caller reused its buffer, want \"a\"", got[0].Key)
	}
}

// testRand returns a generator seeded from STRATA_SEED, or from the time,
// and logs the seed.
func testRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STRATA_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("STRATA_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (STRATA_SEED=%d reproduces)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// model is the brute-force reference: a set of waits with their last
// Detect times, searched for cycles by repeatedly removing sinks.
type model struct {
	ttl   time.Duration
	edges map[[2]TxnID]*modelEdge
}

type modelEdge struct {
	keys     []string
	lastSeen time.Time
}

func (m *model) live(now time.Time) map[[2]TxnID]bool {
	live := make(map[[2]TxnID]bool)
	for p, e := range m.edges {
		if now.Sub(e.lastSeen) < m.ttl {
			live[p] = true
		}
	}
	return live
}

// hasCycle reports whether the edges contain a cycle, by Kahn's algorithm.
func hasCycle(edges map[[2]TxnID]bool) bool {
	outdeg := make(map[TxnID]int)
	for p := range edges {
		if p[0] == p[1] {
			return true
		}
		outdeg[p[0]]++
		outdeg[p[1]] += 0
	}
	removed := make(map[[2]TxnID]bool)
	for progress := true; progress; {
		progress = false
		for n, deg := range outdeg {
			if deg != 0 {
				continue
			}
			delete(outdeg, n)
			progress = true
			for p := range edges {
				if p[1] == n && !removed[p] {
					removed[p] = true
					outdeg[p[0]]--
				}
			}
		}
	}
	return len(outdeg) > 0
}

// distance is the number of hops of a shortest path from a to b, or -1.
func distance(edges map[[2]TxnID]bool, a, b TxnID) int {
	dist := map[TxnID]int{a: 0}
	for frontier := []TxnID{a}; len(frontier) > 0; {
		var next []TxnID
		for _, n := range frontier {
			for p := range edges {
				if _, ok := dist[p[1]]; p[0] == n && !ok {
					dist[p[1]] = dist[n] + 1
					next = append(next, p[1])
				}
			}
		}
		frontier = next
	}
	if d, ok := dist[b]; ok {
		return d
	}
	return -1
}

// TestDetectMatchesModel runs random waits, removals, clean-ups and expiry
// on a few transactions and compares every answer with the brute-force
// model: a deadlock exactly when the new edge closes a cycle of live edges,
// the cycle reported made of live edges and as short as any, and the same
// waits recorded.
func TestDetectMatchesModel(t *testing.T) {
	rng := testRand(t)
	const ttl = 50 * time.Millisecond
	for round := range 200 {
		d := mustNew(t, Options{TTL: ttl})
		m := &model{ttl: ttl, edges: make(map[[2]TxnID]*modelEdge)}
		now := time.Unix(0, 0)
		txns := 2 + rng.IntN(8)
		for step := range 200 {
			now = now.Add(time.Duration(rng.IntN(5)) * time.Millisecond)
			w, h := TxnID(rng.IntN(txns)), TxnID(rng.IntN(txns))
			key := string(rune('a' + rng.IntN(3)))
			where := fmt.Sprintf("round %d step %d", round, step)
			switch op := rng.IntN(20); {
			case op < 12:
				checkDetect(t, where, d, m, now, w, h, key)
			case op < 16:
				d.Remove(w, h, []byte(key))
				if e := m.edges[[2]TxnID{w, h}]; e != nil {
					e.keys = slices.DeleteFunc(e.keys, func(k string) bool { return k == key })
					if len(e.keys) == 0 {
						delete(m.edges, [2]TxnID{w, h})
					}
				}
			case op < 18:
				d.CleanUp(w)
				for p := range m.edges {
					if p[0] == w || p[1] == w {
						delete(m.edges, p)
					}
				}
			default:
				d.Expire(now)
				for p := range m.edges {
					if !m.live(now)[p] {
						delete(m.edges, p)
					}
				}
				compareEdges(t, where, d, m)
			}
		}
		d.Expire(now)
		for p := range m.edges {
			if !m.live(now)[p] {
				delete(m.edges, p)
			}
		}
		compareEdges(t, fmt.Sprintf("round %d end", round), d, m)
	}
}

func checkDetect(t *testing.T, where string, d *Detector, m *model, now time.Time, w, h TxnID, key string) {
	t.Helper()
	p := [2]TxnID{w, h}
	live := m.live(now)
	if e := m.edges[p]; e != nil && !live[p] {
		delete(m.edges, p) // an expired wait detected again is a new one
	}
	err := d.Detect(now, w, h, []byte(key))
	if e := m.edges[p]; e != nil {
		if err != nil {
			t.Fatalf("%s: Detect(%d, %d, %s) of a recorded wait = %v", where, w, h, key, err)
		}
		e.lastSeen = now
		if !slices.Contains(e.keys, key) {
			e.keys = append(e.keys, key)
		}
		return
	}
	live[p] = true
	cycle := hasCycle(live)
	delete(live, p)
	if !cycle {
		if err != nil {
			t.Fatalf("%s: Detect(%d, %d, %s) = %v, but the model has no cycle", where, w, h, key, err)
		}
		m.edges[p] = &modelEdge{keys: []string{key}, lastSeen: now}
		return
	}
	var de *DeadlockError
	if !errors.As(err, &de) {
		t.Fatalf("%s: Detect(%d, %d, %s) = %v, but the model has a cycle", where, w, h, key, err)
	}
	if de.Victim != w || len(de.Cycle) == 0 || de.Cycle[0].String() != (Edge{w, h, []byte(key)}).String() {
		t.Fatalf("%s: %v: want victim %d and first edge %d -> %d on %s", where, de, w, w, h, key)
	}
	for i, e := range de.Cycle {
		next := de.Cycle[(i+1)%len(de.Cycle)]
		if e.Holder != next.Waiter {
			t.Fatalf("%s: %v: not a cycle at edge %d", where, de, i)
		}
		if i > 0 && (!live[[2]TxnID{e.Waiter, e.Holder}] || !slices.Contains(m.edges[[2]TxnID{e.Waiter, e.Holder}].keys, string(e.Key))) {
			t.Fatalf("%s: %v: edge %v is not a live wait", where, de, e)
		}
	}
	if want := distance(live, h, w) + 1; len(de.Cycle) != want {
		t.Fatalf("%s: %v: %d edges, but the shortest cycle has %d", where, de, len(de.Cycle), want)
	}
}

func compareEdges(t *testing.T, where string, d *Detector, m *model) {
	t.Helper()
	var want []string
	for p, e := range m.edges {
		for _, k := range e.keys {
			want = append(want, Edge{p[0], p[1], []byte(k)}.String())
		}
	}
	slices.Sort(want)
	var got []string
	for _, e := range d.Edges() {
		got = append(got, e.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: detector has %q, model %q", where, got, want)
	}
	pairs := make(map[[2]TxnID]bool)
	for p := range m.edges {
		pairs[p] = true
	}
	if d.Len() != len(pairs) {
		t.Fatalf("%s: Len() = %d, model has %d edges", where, d.Len(), len(pairs))
	}
}

// TestConcurrentUse hammers one Detector from several goroutines (run it
// with -race) and checks that the graph it keeps has no cycle.
func TestConcurrentUse(t *testing.T) {
	d := mustNew(t, Options{TTL: time.Hour})
	rng := testRand(t)
	var wg sync.WaitGroup
	for g := range 4 {
		seed := rng.Uint64()
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			now := time.Unix(0, 0)
			for range 2000 {
				w, h := TxnID(r.IntN(20)), TxnID(r.IntN(20))
				switch r.IntN(10) {
				case 0:
					d.CleanUp(w)
				case 1, 2:
					d.Remove(w, h, []byte("k"))
				case 3:
					d.Expire(now)
				default:
					if err := d.Detect(now, w, h, []byte("k")); err != nil && !errors.Is(err, ErrDeadlock) {
						t.Errorf("Detect: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	edges := make(map[[2]TxnID]bool)
	for _, e := range d.Edges() {
		edges[[2]TxnID{e.Waiter, e.Holder}] = true
	}
	if hasCycle(edges) {
		t.Fatalf("the graph has a cycle: %v", d.Edges())
	}
}

// BenchmarkDetect measures Detect on a graph of 10,000 edges: 2,500
// transactions, each waiting for 4 older ones (so the graph is acyclic).
// "cycle" detects waits of an old transaction for a young one, which
// often close a cycle (about a third here); "acyclic" detects waits of a young one for an old
// one, which never do and make the search visit everything the holder
// waits for, directly or not. Each wait recorded is removed again so the
// graph stays the same.
func BenchmarkDetect(b *testing.B) {
	const txns, perTxn = 2500, 4
	d := mustNew(b, Options{TTL: time.Hour})
	now := time.Unix(0, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	key := []byte("key")
	for w := 1; w < txns; w++ {
		for range perTxn {
			_ = d.Detect(now, TxnID(w), TxnID(rng.IntN(w)), key)
		}
	}
	b.Logf("%d edges", d.Len())
	for _, bc := range []struct {
		name  string
		young bool
	}{{"cycle", false}, {"acyclic", true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			deadlocks := 0
			for b.Loop() {
				lo, hi := TxnID(rng.IntN(txns/2)), TxnID(txns/2+rng.IntN(txns/2))
				w, h := lo, hi
				if bc.young {
					w, h = hi, lo
				}
				if err := d.Detect(now, w, h, key); err != nil {
					deadlocks++
					continue
				}
				d.Remove(w, h, key)
			}
			b.ReportMetric(float64(deadlocks)/float64(b.N), "deadlocks/op")
		})
	}
}
