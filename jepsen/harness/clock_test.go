package harness

import (
	"slices"
	"testing"
)

// TestClockSkewNodeEnv: a run with the clock-skew nemesis starts every node
// with the oracle clock hook, once; other runs are left alone.
func TestClockSkewNodeEnv(t *testing.T) {
	nems, err := NewNemeses([]string{"kill", "clock-skew"})
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"STRATA_DEBUG_FSYNC_DELAY=1ms"}
	got := nemesisNodeEnv(base, nems)
	want := []string{"STRATA_DEBUG_FSYNC_DELAY=1ms", envClockOffset + "=1"}
	if !slices.Equal(got, want) || len(base) != 1 {
		t.Fatalf("env = %q (base %q), want %q", got, base, want)
	}
	if again := nemesisNodeEnv(got, nems); !slices.Equal(again, want) {
		t.Fatalf("env added twice: %q", again)
	}
	kill, _ := NewNemeses([]string{"kill"})
	if got := nemesisNodeEnv(base, kill); !slices.Equal(got, base) {
		t.Fatalf("kill alone: env = %q", got)
	}
}
