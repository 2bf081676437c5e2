package linearizability

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestVisualizationWrittenOnFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "viz") // Check creates it
	bad := History{
		put(0, "x", "1", 0, 10),
		put(0, "x", "2", 20, 30),
		get(1, "x", val("1"), 40, 50),
		put(1, "y", "1", 0, 10),
	}
	res := Check(bad, CheckOptions{VisualizeDir: dir})
	if res.Verdict != Illegal || res.VisualizationErr != nil {
		t.Fatalf("got %s (err %v)", res, res.VisualizationErr)
	}
	if filepath.Dir(res.VisualizationPath) != dir {
		t.Fatalf("visualization at %q, want it in %q", res.VisualizationPath, dir)
	}
	data, err := os.ReadFile(res.VisualizationPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `get(\"x\") -\u003e \"1\"`) {
		t.Fatalf("visualization does not show the failing read")
	}
	if strings.Contains(string(data), `put(\"y\"`) {
		t.Fatalf("visualization shows a key that did not fail")
	}
	if !strings.Contains(res.String(), res.VisualizationPath) {
		t.Fatalf("String() omits the visualization: %s", res)
	}

	good := History{put(0, "x", "1", 0, 10)}
	res = Check(good, CheckOptions{VisualizeDir: dir})
	if res.Verdict != Ok || res.VisualizationPath != "" {
		t.Fatalf("good history: %s", res)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("want one visualization in %s, found %d files", dir, len(entries))
	}
}

// genHistory returns a linearizable history of n operations by the given
// number of clients over the given number of keys. Each client runs one
// operation at a time; each operation takes effect at a random point between
// its call and return, and outputs follow from applying the operations in
// that order. Writes are ambiguous with probability pAmbiguous, and then
// take effect or not at random.
func genHistory(seed uint64, n, clients, keys int, pAmbiguous float64) History {
	rng := rand.New(rand.NewPCG(seed, 0x6e4))
	type planned struct {
		op      Operation
		effect  int64 // when it takes effect
		applies bool  // false for an ambiguous write that never took effect
	}
	clock := make([]int64, clients)
	plan := make([]planned, n)
	for i := range plan {
		c := i % clients
		call := clock[c] + rng.Int64N(50)
		effect := call + 1 + rng.Int64N(100)
		ret := effect + 1 + rng.Int64N(100)
		clock[c] = ret
		in := Input{Key: fmt.Sprintf("k%d", rng.IntN(keys)), Value: fmt.Sprintf("%d.%d", c, i)}
		switch r := rng.IntN(100); {
		case r < 50:
			in.Kind = KindGet
		case r < 75:
			in.Kind = KindPut
		case r < 85:
			in.Kind = KindDelete
		default:
			in.Kind = KindCAS
		}
		plan[i] = planned{op: Operation{ClientID: c, Input: in, Call: call, Return: ret}, effect: effect, applies: true}
		if in.Kind != KindGet && rng.Float64() < pAmbiguous {
			plan[i].op.Output.Ambiguous = true
			plan[i].applies = rng.IntN(2) == 0
		}
	}
	slices.SortStableFunc(plan, func(a, b planned) int { return cmp.Compare(a.effect, b.effect) })
	data := make(map[string]string)
	for i := range plan {
		p := &plan[i]
		in := &p.op.Input
		cur, present := data[in.Key]
		switch in.Kind {
		case KindGet:
			if present {
				p.op.Output.Value = &cur
			}
		case KindPut:
			if p.applies {
				data[in.Key] = in.Value
			}
		case KindDelete:
			if p.applies {
				delete(data, in.Key)
			}
		case KindCAS:
			if present && rng.IntN(2) == 0 {
				in.Old = &cur // likely to succeed
			} else if rng.IntN(2) == 0 {
				in.Old = val("stale")
			}
			matches := present && in.Old != nil && *in.Old == cur || !present && in.Old == nil
			if p.applies && matches {
				data[in.Key] = in.Value
			}
			if !p.op.Output.Ambiguous {
				p.op.Output.OK = matches
			}
		}
	}
	h := make(History, n)
	for i, p := range plan {
		h[i] = p.op
	}
	slices.SortStableFunc(h, func(a, b Operation) int { return cmp.Compare(a.Call, b.Call) })
	return h
}

// injectStaleRead changes a read of key in the middle of h to return a value
// that a later, non-overlapping put had certainly overwritten before the read
// began. It reports whether it found such a read.
func injectStaleRead(h History, key string) bool {
	var reads []int
	for i, op := range h {
		if op.Input.Key == key && op.Input.Kind == KindGet {
			reads = append(reads, i)
		}
	}
	if len(reads) == 0 {
		return false
	}
	g := reads[len(reads)/2]
	var first *Operation // the first definite put of key
	for i := range h[:g] {
		op := &h[i]
		if op.Input.Key != key || op.Input.Kind != KindPut || op.Output.Ambiguous {
			continue
		}
		switch {
		case first == nil:
			first = op
		case op.Call > first.Return && op.Return < h[g].Call:
			h[g].Output.Value = val(first.Input.Value)
			return true
		}
	}
	return false
}

func TestCheckLargeHistory(t *testing.T) {
	for _, seed := range testSeeds(t, 1) {
		t.Logf("seed %d (STRATA_SEED=%d reproduces)", seed, seed)
		h := genHistory(seed, 20000, 20, 10, 0.02)
		res := Check(h, CheckOptions{})
		t.Log(res)
		if res.Verdict != Ok || res.Partitions != 10 {
			t.Fatalf("generated history: %s\n%s", res, res.Summary)
		}

		// Proving a history illegal costs exponential time in the
		// ambiguous writes per key that nothing observed, so the bad
		// history has fewer of them.
		h = genHistory(seed, 20000, 20, 10, 0.005)
		if !injectStaleRead(h, "k3") {
			t.Fatalf("no read to make stale")
		}
		res = Check(h, CheckOptions{})
		t.Log(res)
		if res.Verdict != Illegal {
			t.Fatalf("stale read not caught: %s", res)
		}
		for _, want := range []string{"1 of 10 keys", `key "k3"`, "<- first op outside", "earlier ops", "later ops"} {
			if !strings.Contains(res.Summary, want) {
				t.Errorf("summary lacks %q:\n%s", want, res.Summary)
			}
		}
	}
}

func BenchmarkCheck20kOps10Keys(b *testing.B) {
	h := genHistory(1, 20000, 20, 10, 0.02)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res := Check(h, CheckOptions{}); res.Verdict != Ok {
			b.Fatal(res)
		}
	}
	b.ReportMetric(float64(len(h))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
