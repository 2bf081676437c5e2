package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/strata-kv/strata/txn/tso"
)

func init() {
	RegisterWorkload("timestamps", func() (Workload, error) { return &Timestamps{}, nil })
}

// Timestamps is the timestamps workload: clients ask the cluster's
// timestamp oracle for timestamps (kvnode's Cluster.Now), one client per
// node so every node's oracle client is used. The check: a timestamp
// fetched after another was returned (in the harness's real time) is
// higher, on whatever nodes. It is the rule the oracle keeps across leader
// changes, restarts and wall clocks jumped back (the clock-skew nemesis).
type Timestamps struct {
	// Pace is the pause between a client's calls. Default 20ms.
	Pace time.Duration

	mu struct {
		sync.Mutex
		calls []nowCall
	}
}

var _ Workload = (*Timestamps)(nil)

// nowCall is one successful Now: when it was sent and answered, on which
// node, and what it returned.
type nowCall struct {
	Node  int           `json:"node"`
	Start time.Time     `json:"start"`
	End   time.Time     `json:"end"`
	TS    tso.Timestamp `json:"ts"`
}

// Name implements Workload.
func (w *Timestamps) Name() string { return "timestamps" }

// Run implements Workload.
func (w *Timestamps) Run(ctx context.Context, env *Env) error {
	pace := w.Pace
	if pace == 0 {
		pace = 20 * time.Millisecond
	}
	return runClients(len(env.Endpoints), func(i int) error {
		// Client 2i+1 of newClient talks to node i alone.
		c, err := env.newClient(2*i + 1)
		if err != nil {
			return err
		}
		defer c.Close()
		for ctx.Err() == nil {
			opCtx, cancel := context.WithTimeout(context.Background(), env.OpTimeout)
			start := time.Now()
			ts, err := c.Now(opCtx)
			end := time.Now()
			cancel()
			env.Stats.Record(w.Name(), err, false)
			if err == nil {
				w.mu.Lock()
				w.mu.calls = append(w.mu.calls, nowCall{Node: (i % len(env.Endpoints)) + 1, Start: start, End: end, TS: ts})
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(pace):
			}
		}
		return nil
	})
}

// Final implements Workload: there is no final state.
func (w *Timestamps) Final(context.Context, *Env) error { return nil }

// Check implements Workload.
func (w *Timestamps) Check(env *Env) CheckResult {
	w.mu.Lock()
	calls := slices.Clone(w.mu.calls)
	w.mu.Unlock()
	res := CheckResult{Workload: w.Name(), Valid: ValidOK}
	bad := checkTimestamps(calls)
	res.Details = map[string]any{"calls": len(calls), "violations": len(bad)}
	if env.Dir != "" {
		if err := writeCalls(filepath.Join(env.Dir, "timestamps.json"), calls); err != nil {
			res.Details["artifact_error"] = err.Error()
		}
	}
	switch {
	case len(bad) > 0:
		res.Valid = ValidViolation
		res.Summary = fmt.Sprintf("%d of %d timestamps not above one returned before they were asked for; first: %s",
			len(bad), len(calls), bad[0])
	case len(calls) == 0:
		res.Valid = ValidUnknown
		res.Summary = "no timestamp was fetched"
	default:
		res.Summary = fmt.Sprintf("%d timestamps, each above every one returned before it was asked for", len(calls))
	}
	return res
}

// checkTimestamps returns a description of every call whose timestamp is
// not above that of a call that ended before it started.
func checkTimestamps(calls []nowCall) []string {
	byStart := slices.Clone(calls)
	slices.SortFunc(byStart, func(a, b nowCall) int { return a.Start.Compare(b.Start) })
	byEnd := slices.Clone(calls)
	slices.SortFunc(byEnd, func(a, b nowCall) int { return a.End.Compare(b.End) })
	var (
		bad  []string
		j    int
		best *nowCall // the highest timestamp of the calls ended so far
	)
	for _, c := range byStart {
		for ; j < len(byEnd) && byEnd[j].End.Before(c.Start); j++ {
			if best == nil || byEnd[j].TS > best.TS {
				best = &byEnd[j]
			}
		}
		if best != nil && c.TS <= best.TS {
			bad = append(bad, fmt.Sprintf("node %d returned %v at %s, after node %d returned %v at %s",
				c.Node, c.TS, c.End.Format(time.RFC3339Nano), best.Node, best.TS, best.End.Format(time.RFC3339Nano)))
		}
	}
	return bad
}

func writeCalls(path string, calls []nowCall) error {
	b, err := json.Marshal(calls)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
