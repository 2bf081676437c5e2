package main

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/strata-kv/strata/jepsen/harness"
)

// TestShortMatrixPlantsBothUnsafeReads checks that make jepsen's matrix
// ends with the runs that must fail: unsafe local reads under leader
// isolation and unsafe lease reads under pause-leader, each with its
// debug hook.
func TestShortMatrixPlantsBothUnsafeReads(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	runs := matrixRuns("short", harness.Config{Workloads: []string{"register", "set"}, Env: []string{"X=1"}}, "out", fs)
	if got, want := len(runs), len(harness.NemesisNames())+2; got != want {
		t.Fatalf("%d runs, want %d", got, want)
	}
	for _, r := range runs[:len(runs)-2] {
		if r.ExpectViolation || len(r.Env) != 1 {
			t.Errorf("run %s: ExpectViolation=%v env %v", r.Dir, r.ExpectViolation, r.Env)
		}
	}
	for i, want := range []struct{ env, nemesis string }{
		{"STRATA_DEBUG_UNSAFE_LOCAL_READS=1", "partition-leader"},
		{"STRATA_DEBUG_UNSAFE_LEASE_READS=1", "pause-leader"},
	} {
		r := runs[len(runs)-2+i]
		if !r.ExpectViolation || !slices.Equal(r.Env, []string{"X=1", want.env}) ||
			!slices.Equal(r.Nemeses, []string{want.nemesis}) || !slices.Equal(r.Workloads, []string{"register"}) {
			t.Errorf("expected-failure run %d: %+v, want register under %s with %s", i, r, want.nemesis, want.env)
		}
		if !strings.Contains(r.Dir, "expected-failure") {
			t.Errorf("expected-failure run %d: dir %s", i, r.Dir)
		}
	}
}

// TestShortMatrixHasPowerLossAndMembership checks that make jepsen runs
// the power-loss and membership nemeses with the register and set
// workloads.
func TestShortMatrixHasPowerLossAndMembership(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	runs := matrixRuns("short", harness.Config{Workloads: []string{"register", "set"}}, "out", fs)
	for _, nemesis := range []string{"power-loss", "membership"} {
		found := false
		for _, r := range runs {
			if slices.Equal(r.Nemeses, []string{nemesis}) && !r.ExpectViolation {
				found = true
				if !slices.Equal(r.Workloads, []string{"register", "set"}) {
					t.Errorf("%s run has workloads %v", nemesis, r.Workloads)
				}
			}
		}
		if !found {
			t.Errorf("no %s run in the short matrix", nemesis)
		}
	}
}
