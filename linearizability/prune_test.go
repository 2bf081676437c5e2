package linearizability

import (
	"math/rand/v2"
	"testing"

	"github.com/anishathalye/porcupine"
)

func TestPruneBoundsObservedWrites(t *testing.T) {
	h := History{
		put(0, "x", "1", 0, 10),
		ambiguous(put(1, "x", "2", 20, 30)),
		ambiguous(cas(2, "x", val("2"), "3", false, 25, 35)),
		get(3, "x", val("2"), 40, 50),
		get(3, "x", val("3"), 60, 70),
		ambiguous(put(1, "x", "4", 80, 90)), // never observed: dropped
	}
	got, dropped := pruneAmbiguous(h)
	if dropped != 1 || len(got) != 5 {
		t.Fatalf("dropped %d, kept %d", dropped, len(got))
	}
	if op := got[1]; op.Output.Ambiguous || op.Return != 50 {
		t.Fatalf("observed put not bounded by its first reader: %+v", op)
	}
	if op := got[2]; op.Output.Ambiguous || !op.Output.OK || op.Return != 70 {
		t.Fatalf("observed cas not bounded as a success: %+v", op)
	}
	if !h[1].Output.Ambiguous {
		t.Fatalf("pruneAmbiguous modified its input")
	}
}

// TestPruneKeepsWhatCouldBeNoticed: the first op of each history must
// survive pruning unchanged.
func TestPruneKeepsWhatCouldBeNoticed(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    History
	}{
		{
			name: "value written twice",
			h:    History{ambiguous(put(0, "x", "1", 0, 10)), put(1, "x", "1", 20, 30)},
		},
		{
			name: "compared against",
			h:    History{ambiguous(put(0, "x", "1", 0, 10)), ambiguous(cas(1, "x", val("1"), "2", false, 20, 30))},
		},
		{
			name: "a failed cas may depend on it",
			h:    History{put(0, "x", "0", 0, 1), ambiguous(put(0, "x", "1", 2, 10)), cas(1, "x", val("0"), "2", false, 20, 30)},
		},
		{
			name: "delete has no value",
			h:    History{ambiguous(del(0, "x", 0, 10))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := pruneAmbiguous(tc.h)
			if len(got) == 0 || got[0] != tc.h[0] {
				t.Fatalf("first op pruned: %+v", got)
			}
		})
	}
	// The failed cas case is illegal only if the ambiguous put is kept
	// and placed before the cas: it must be Ok.
	h := History{put(0, "x", "0", 0, 1), ambiguous(put(0, "x", "1", 2, 10)), cas(1, "x", val("0"), "2", false, 20, 30)}
	if res := Check(h, CheckOptions{}); res.Verdict != Ok {
		t.Fatalf("%s\n%s", res, res.Summary)
	}
}

// TestPrunePreservesVerdict compares verdicts with and without pruning on
// many small random histories, half of them corrupted.
func TestPrunePreservesVerdict(t *testing.T) {
	model := KVModel()
	for _, seed := range testSeeds(t, 1) {
		t.Logf("seed %d (STRATA_SEED=%d reproduces)", seed, seed)
		rng := rand.New(rand.NewPCG(seed, 0))
		counts := map[any]int{}
		for i := range 2000 {
			h := genHistory(seed+uint64(i), 12, 3, 1, 0.4)
			if rng.IntN(2) == 0 {
				corrupt(rng, h)
			}
			pruned, dropped := pruneAmbiguous(h)
			if dropped > 0 || countAmbiguous(pruned) < countAmbiguous(h)-dropped {
				counts["pruned"]++
			}
			want := porcupine.CheckOperations(model, toPorcupine(h))
			got := porcupine.CheckOperations(model, toPorcupine(pruned))
			if got != want {
				t.Fatalf("history %d: linearizable %t before pruning, %t after:\n%+v\n%+v", i, want, got, h, pruned)
			}
			counts[want]++
		}
		t.Logf("linearizable: %d, not: %d, changed by pruning: %d", counts[true], counts[false], counts["pruned"])
		if counts["pruned"] == 0 || counts[false] == 0 {
			t.Fatalf("the random histories do not exercise pruning on both verdicts")
		}
	}
}

// corrupt changes one output in h at random.
func corrupt(rng *rand.Rand, h History) {
	op := &h[rng.IntN(len(h))]
	switch {
	case op.Output.Ambiguous:
		op.Input.Value = "other"
	case op.Input.Kind == KindGet && op.Output.Value == nil:
		op.Output.Value = val(h[rng.IntN(len(h))].Input.Value)
	case op.Input.Kind == KindGet:
		op.Output.Value = nil
	case op.Input.Kind == KindCAS:
		op.Output.OK = !op.Output.OK
	default:
		op.Return, op.Call = op.Call, op.Call-10
	}
}

func countAmbiguous(h History) int {
	n := 0
	for _, op := range h {
		if op.Output.Ambiguous {
			n++
		}
	}
	return n
}
