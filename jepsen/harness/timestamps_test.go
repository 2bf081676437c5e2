package harness

import (
	"testing"
	"time"

	"github.com/strata-kv/strata/txn/tso"
)

// TestCheckTimestamps: the checker passes rising timestamps and
// overlapping calls in any order, and catches a timestamp at or below one
// returned before it was asked for.
func TestCheckTimestamps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(node int, start, end int, ts tso.Timestamp) nowCall {
		return nowCall{Node: node, Start: t0.Add(time.Duration(start) * time.Millisecond),
			End: t0.Add(time.Duration(end) * time.Millisecond), TS: ts}
	}
	ok := []nowCall{
		at(1, 0, 10, 5), at(2, 20, 30, 6),
		// Concurrent calls may come back in any order.
		at(1, 40, 60, 9), at(2, 41, 50, 8), at(3, 42, 70, 7),
		at(3, 80, 90, 10),
	}
	if bad := checkTimestamps(ok); len(bad) != 0 {
		t.Fatalf("valid history flagged: %v", bad)
	}
	for name, h := range map[string][]nowCall{
		"went back":    {at(1, 0, 10, 5), at(2, 20, 30, 4)},
		"repeated":     {at(1, 0, 10, 5), at(2, 20, 30, 5)},
		"behind a max": {at(1, 0, 10, 9), at(2, 11, 12, 3), at(3, 20, 30, 8)},
	} {
		if bad := checkTimestamps(h); len(bad) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
	w := &Timestamps{}
	w.mu.calls = []nowCall{at(1, 0, 10, 5), at(2, 20, 30, 4)}
	if r := w.Check(&Env{}); r.Valid != ValidViolation {
		t.Errorf("Check of a history that went back = %+v", r)
	}
}
