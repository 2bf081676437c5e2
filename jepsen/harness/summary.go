package harness

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// PrintSummary writes a one-screen summary of r.
func PrintSummary(w io.Writer, r *Result) {
	line := strings.Repeat("=", 78)
	fmt.Fprintln(w, line)
	nem := strings.Join(r.Nemeses, ",")
	if nem == "" {
		nem = "none"
	}
	fmt.Fprintf(w, "run %s: workloads %s, nemesis %s, %d nodes, seed %d\n", r.Name, strings.Join(r.Workloads, ","), nem, r.Nodes, r.Seed)
	if len(r.Env) > 0 {
		fmt.Fprintf(w, "node env: %s\n", strings.Join(r.Env, " "))
	}
	fmt.Fprintf(w, "verdict: %s", strings.ToUpper(r.Verdict))
	if r.ExpectViolation {
		if r.Passed() {
			fmt.Fprint(w, " (expected: the checker can fail: OK)")
		} else {
			fmt.Fprint(w, " (EXPECTED A VIOLATION: the checker did not catch the unsafe mode)")
		}
	}
	fmt.Fprintf(w, "   %.0fs, %.0fs of faults in %d rounds\n", r.Seconds, r.FaultSeconds, len(r.Faults))
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
	fmt.Fprintf(w, "ops: %d total, %d ok, %d failed, %d ambiguous\n", r.Ops.Total, r.Ops.OK, r.Ops.Failed, r.Ops.Ambiguous)
	for _, name := range slices.Sorted(maps.Keys(r.OpsByWorkload)) {
		c := r.OpsByWorkload[name]
		fmt.Fprintf(w, "  %-16s %7d total, %7d ok, %6d failed, %6d ambiguous\n", name, c.Total, c.OK, c.Failed, c.Ambiguous)
	}
	if len(r.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		fmt.Fprintf(w, "errors: %s\n", strings.Join(parts, ", "))
	}
	a := r.Availability
	fmt.Fprintf(w, "availability under faults: %.1f%% of ops succeeded (worst second %.1f%%); ok ops/s %.0f under faults vs %.0f healthy\n",
		100*a.Share, 100*a.MinSecond, a.OpsPerSecFaulty, a.OpsPerSecHealthy)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "check %-8s %-9s %s\n", c.Workload, strings.ToUpper(c.Valid), indent(c.Summary, 15, 12))
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
	fmt.Fprintf(w, "cleanup: %s\n", r.Cleanup)
	fmt.Fprintf(w, "files: %s/{result.json,timeline.jsonl,history.json,node*.log}\n", r.Dir)
	fmt.Fprintln(w, line)
}

// indent indents the lines after the first of s by n spaces, keeping at
// most max lines.
func indent(s string, n, max int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > max {
		lines = append(lines[:max], fmt.Sprintf("... (%d more lines in result.json)", len(lines)-max))
	}
	return strings.Join(lines, "\n"+strings.Repeat(" ", n))
}

// PrintMatrix writes one line per run.
func PrintMatrix(w io.Writer, rs []*Result) {
	fmt.Fprintln(w, strings.Repeat("=", 100))
	fmt.Fprintf(w, "%-34s %-10s %8s %8s %8s %7s %9s %s\n", "nemesis", "workloads", "ops", "ok", "ambig", "avail", "worst-sec", "verdict")
	for _, r := range rs {
		nem := strings.Join(r.Nemeses, ",")
		if nem == "" {
			nem = "none"
		}
		verdict := r.Verdict
		switch {
		case r.ExpectViolation && r.Passed():
			verdict = "violation found: checker can fail: OK"
		case r.ExpectViolation:
			verdict = "NOT CAUGHT (" + r.Verdict + ")"
		case !r.Passed():
			verdict = "FAIL (" + r.Verdict + ")"
		}
		if r.Cleanup != "" && !strings.HasPrefix(r.Cleanup, "ok") {
			verdict += "; CLEANUP FAILED"
		}
		if r.ExpectViolation {
			nem += " [" + unsafeMode(r.Env) + "]"
		}
		fmt.Fprintf(w, "%-34s %-10s %8d %8d %8d %6.1f%% %8.1f%% %s\n", nem, strings.Join(r.Workloads, "+"),
			r.Ops.Total, r.Ops.OK, r.Ops.Ambiguous, 100*r.Availability.Share, 100*r.Availability.MinSecond, verdict)
	}
	fmt.Fprintln(w, strings.Repeat("=", 100))
}

// unsafeMode names the unsafe debug hook an expected-failure run's nodes
// ran with.
func unsafeMode(env []string) string {
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "STRATA_DEBUG_UNSAFE_LOCAL_READS="):
			return "unsafe local reads"
		case strings.HasPrefix(kv, "STRATA_DEBUG_UNSAFE_LEASE_READS="):
			return "unsafe lease reads"
		}
	}
	return "unsafe reads"
}
