package elle

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// testRand returns a generator seeded from STRATA_SEED, or from the time,
// and logs the seed.
func testRand(t testing.TB) *rand.Rand {
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

// plant names an anomaly the generator can plant.
type plant int

const (
	plantNone plant = iota
	plantWriteSkew
	plantLostUpdate
)

// generator runs random list-append transactions one at a time against an
// in-memory store, so that its histories are serializable (and strictly
// so, and in process order), and can plant one anomaly by running two
// transactions against the same state.
type generator struct {
	rng   *rand.Rand
	keys  int
	lists map[string][]int
	next  int // the next value to append, unique over all keys
	h     History
	// procs[p] is when process p's last transaction completed; -1 after
	// an Info, which retires the process.
	procs []int64
}

func newGenerator(rng *rand.Rand, keys int) *generator {
	return &generator{rng: rng, keys: keys, lists: make(map[string][]int)}
}

func (g *generator) key() string { return "k" + strconv.Itoa(g.rng.IntN(g.keys)) }

// ops returns 1 to 5 random micro-operations.
func (g *generator) ops() []Op {
	ops := make([]Op, 1+g.rng.IntN(5))
	for i := range ops {
		if g.rng.IntN(2) == 0 {
			g.next++
			ops[i] = ap(g.key(), g.next)
		} else {
			ops[i] = rd(g.key())
		}
	}
	return ops
}

// apply runs ops against lists, filling in the reads, and returns them.
func apply(lists map[string][]int, ops []Op) []Op {
	out := slices.Clone(ops)
	for i, op := range out {
		switch op.Kind {
		case Append:
			lists[op.Key] = append(lists[op.Key], op.Value)
		case Read:
			out[i].List = slices.Clone(lists[op.Key])
		}
	}
	return out
}

// record adds a transaction that ran at the next serial position: its
// interval surrounds that point, on a process that was idle then.
func (g *generator) record(status Status, ops []Op) {
	at := int64(100 * len(g.h))
	t := Txn{Invoke: at - g.rng.Int64N(60), Complete: at + g.rng.Int64N(60), Status: status, Ops: ops}
	t.Process = -1
	for p, done := range g.procs {
		if done >= 0 && done < t.Invoke {
			t.Process = p
			break
		}
	}
	if t.Process < 0 {
		t.Process = len(g.procs)
		g.procs = append(g.procs, 0)
	}
	g.procs[t.Process] = t.Complete
	if status == Info {
		g.procs[t.Process] = -1
		for i := range t.Ops {
			t.Ops[i].List = nil // an Info transaction's reads are unknown
		}
	}
	g.h = append(g.h, t)
}

// txn runs one random transaction: OK mostly, sometimes failed (its
// effects dropped), sometimes Info (its effects kept or not).
func (g *generator) txn() {
	ops := g.ops()
	scratch := make(map[string][]int, len(g.lists))
	for k, l := range g.lists {
		scratch[k] = slices.Clone(l)
	}
	ops = apply(scratch, ops)
	status := OK
	switch g.rng.IntN(10) {
	case 0:
		status = Fail
	case 1:
		status = Info
	}
	if status == OK || status == Info && g.rng.IntN(2) == 0 {
		g.lists = scratch
	}
	g.record(status, ops)
}

// plant runs two OK transactions that both read keys x and y from the same
// state, then both take effect: write skew (one appends to x, the other to
// y) or lost update (both append to x).
func (g *generator) plant(kind plant) {
	x := g.key()
	y := x
	for y == x {
		y = g.key()
	}
	reads := apply(g.lists, []Op{rd(x), rd(y)})
	g.next++
	a := append(slices.Clone(reads), ap(x, g.next))
	g.next++
	b := append(slices.Clone(reads), ap(y, g.next))
	if kind == plantLostUpdate {
		b[2].Key = x
	}
	apply(g.lists, a[2:])
	apply(g.lists, b[2:])
	g.record(OK, a)
	g.record(OK, b)
}

// history runs n random transactions, plants kind at a random point, and
// ends with a transaction reading every key, so that every append that
// took effect is in a version order.
func (g *generator) history(n int, kind plant) History {
	at := g.rng.IntN(n)
	for i := range n {
		if i == at && kind != plantNone {
			g.plant(kind)
		}
		g.txn()
	}
	var final []Op
	for k := range g.keys {
		final = append(final, rd("k"+strconv.Itoa(k)))
	}
	g.record(OK, apply(g.lists, final))
	return g.h
}

func TestGeneratedSerialHistoriesPass(t *testing.T) {
	rng := testRand(t)
	for round := range 50 {
		h := newGenerator(rng, 1+rng.IntN(8)).history(1+rng.IntN(200), plantNone)
		for _, opts := range []Options{{}, {Realtime: true, Process: true}} {
			if res := mustCheck(t, h, opts); !res.Valid {
				t.Fatalf("round %d, %+v: a serial history is invalid: %s", round, opts, res)
			}
		}
	}
}

func TestGeneratedPlantedAnomalyFound(t *testing.T) {
	rng := testRand(t)
	for _, tc := range []struct {
		plant plant
		want  Kind
	}{{plantWriteSkew, G2}, {plantLostUpdate, GSingle}} {
		t.Run(fmt.Sprint(tc.want), func(t *testing.T) {
			for round := range 50 {
				h := newGenerator(rng, 2+rng.IntN(8)).history(1+rng.IntN(200), tc.plant)
				res := mustCheck(t, h, Options{})
				kinds := slices.Collect(func(yield func(Kind) bool) {
					for k := range res.ByKind() {
						yield(k)
					}
				})
				if !slices.Equal(kinds, []Kind{tc.want}) || len(res.Anomalies) != 1 {
					t.Fatalf("round %d: want one %s, got %s", round, tc.want, res)
				}
			}
		})
	}
}

// BenchmarkCheck checks a serializable history of 10,000 transactions over
// 100 keys.
func BenchmarkCheck(b *testing.B) {
	h := newGenerator(rand.New(rand.NewPCG(1, 2)), 100).history(10000, plantNone)
	b.ReportAllocs()
	for b.Loop() {
		res, err := Check(h, Options{})
		if err != nil || !res.Valid {
			b.Fatalf("%v %s", err, res)
		}
	}
	b.ReportMetric(float64(len(h))*float64(b.N)/b.Elapsed().Seconds(), "txns/s")
}
