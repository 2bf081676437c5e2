package linearizability

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the outcome of a check.
type Verdict int

const (
	// Unknown: the check timed out before reaching a verdict. It is the
	// zero value so that an unset Verdict never reads as Ok.
	Unknown Verdict = iota
	// Ok: the history is linearizable.
	Ok
	// Illegal: the history is not linearizable.
	Illegal
)

func (v Verdict) String() string {
	switch v {
	case Unknown:
		return "Unknown"
	case Ok:
		return "Ok"
	case Illegal:
		return "Illegal"
	default:
		return "Verdict(?)"
	}
}

// CheckOptions configures Check. The zero value is valid.
type CheckOptions struct {
	// Timeout bounds the search; when it expires the verdict is Unknown
	// unless a violation was already found. Default 60s; negative means
	// no limit.
	Timeout time.Duration
	// VisualizeDir, if set, is where Check writes porcupine's HTML
	// visualisation when the verdict is not Ok. Created if missing.
	// Default: no visualisation.
	VisualizeDir string
}

const defaultTimeout = 60 * time.Second

func (o *CheckOptions) ensureDefaults() {
	switch {
	case o.Timeout == 0:
		o.Timeout = defaultTimeout
	case o.Timeout < 0:
		o.Timeout = 0 // porcupine: no limit
	}
}

// Result is the outcome of Check.
type Result struct {
	Verdict Verdict
	// Ops is the number of operations checked.
	Ops int
	// Indeterminate is the number of ambiguous operations among them.
	Indeterminate int
	// Dropped is the number of ambiguous writes left out of the search
	// because no operation could have noticed them (see prune.go).
	Dropped int
	// Partitions is the number of independently checked partitions (keys).
	Partitions int
	// Elapsed is how long the check took.
	Elapsed time.Duration
	// VisualizationPath is the HTML visualisation written, if any.
	VisualizationPath string
	// VisualizationErr is why the visualisation could not be written, if
	// it could not. The verdict stands regardless.
	VisualizationErr error
	// Summary explains a verdict that is not Ok: for Illegal, the smallest
	// failing key and its operations in call order.
	Summary string
}

// String describes r in one line.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "linearizability: %s: %d ops (%d indeterminate, %d dropped) over %d keys in %s",
		r.Verdict, r.Ops, r.Indeterminate, r.Dropped, r.Partitions, r.Elapsed.Round(time.Millisecond))
	if r.VisualizationPath != "" {
		fmt.Fprintf(&b, "; visualization %s", r.VisualizationPath)
	}
	if r.VisualizationErr != nil {
		fmt.Fprintf(&b, "; visualization failed: %v", r.VisualizationErr)
	}
	return b.String()
}

// Check checks h for linearizability against [KVModel]. An ambiguous
// operation is treated as returning at the end of the history: it may take
// effect at any point after its call, or never. Before the search, ambiguous
// writes of values unique to their key are bounded by the first operation
// that observed them, or dropped if nothing could have; neither changes the
// verdict, and both make it much cheaper to reach.
func Check(h History, opts CheckOptions) Result {
	opts.ensureDefaults()
	start := time.Now()
	res := Result{Ops: len(h)}
	for _, op := range h {
		if op.Output.Ambiguous {
			res.Indeterminate++
		}
	}
	pruned, dropped := pruneAmbiguous(h)
	res.Dropped = dropped
	ops := toPorcupine(pruned)
	model := KVModel()
	parts := partitionByKey(ops)
	res.Partitions = len(parts)

	verdict, info := porcupine.CheckOperationsVerbose(model, ops, opts.Timeout)
	res.Elapsed = time.Since(start)
	switch verdict {
	case porcupine.Ok:
		res.Verdict = Ok
		return res
	case porcupine.Illegal:
		res.Verdict = Illegal
	default:
		res.Verdict = Unknown
		res.Summary = fmt.Sprintf("no verdict within %s", opts.Timeout)
	}

	var failing [][]porcupine.Operation
	if res.Verdict == Illegal {
		// A timeout can cut other partitions short after one failed;
		// those lack a complete linearization too.
		timedOut := opts.Timeout > 0 && res.Elapsed >= opts.Timeout
		idx := failingPartitions(parts, info)
		res.Summary = summarize(parts, idx, info, timedOut)
		for _, i := range idx {
			failing = append(failing, parts[i])
		}
	}
	if opts.VisualizeDir != "" {
		res.VisualizationPath, res.VisualizationErr = visualize(opts.VisualizeDir, model, info, failing, opts.Timeout)
	}
	return res
}

// toPorcupine converts h to porcupine operations in call order, giving every
// ambiguous operation a return time after every other timestamp: the end of
// the history.
func toPorcupine(h History) []porcupine.Operation {
	var end int64
	for _, op := range h {
		end = max(end, op.Call+1)
		if !op.Output.Ambiguous {
			end = max(end, op.Return+1)
		}
	}
	ops := make([]porcupine.Operation, 0, len(h))
	for _, op := range h {
		ret := op.Return
		if op.Output.Ambiguous {
			ret = end
		}
		ops = append(ops, porcupine.Operation{
			ClientId: op.ClientID,
			Input:    op.Input,
			Call:     op.Call,
			Output:   op.Output,
			Return:   ret,
		})
	}
	slices.SortStableFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	return ops
}

// failingPartitions returns the indexes of the partitions with no complete
// linearization, smallest partition first. It relies on porcupine reporting,
// for every partition it found linearizable, a partial linearization that
// covers all its operations.
func failingPartitions(parts [][]porcupine.Operation, info porcupine.LinearizationInfo) []int {
	partials := info.PartialLinearizations()
	var failing []int
	for i, part := range parts {
		complete := false
		for _, p := range partials[i] {
			complete = complete || len(p) == len(part)
		}
		if !complete {
			failing = append(failing, i)
		}
	}
	slices.SortStableFunc(failing, func(a, b int) int { return cmp.Compare(len(parts[a]), len(parts[b])) })
	return failing
}

// maxSummaryOps bounds how many operations a summary lists.
const maxSummaryOps = 60

// summarize describes the smallest failing partition: its key and operations
// in call order. A long partition is cut to a window around the first
// operation (by call) that its longest partial linearization leaves out,
// which is where the search got stuck.
func summarize(parts [][]porcupine.Operation, failing []int, info porcupine.LinearizationInfo, timedOut bool) string {
	if len(failing) == 0 {
		return "porcupine reported Illegal but every key has a complete linearization"
	}
	part := parts[failing[0]]
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d keys not linearizable", len(failing), len(parts))
	if timedOut {
		b.WriteString(" (the check timed out: some may only be unfinished)")
	}
	fmt.Fprintf(&b, "; smallest: key %q with %d ops [call, return] in ns, \"end\" for ambiguous:\n",
		part[0].Input.(Input).Key, len(part))

	from, to, stuck := 0, len(part), -1
	if len(part) > maxSummaryOps {
		stuck = firstLeftOut(len(part), info.PartialLinearizations()[failing[0]])
		to = min(len(part), max(0, stuck-maxSummaryOps/2)+maxSummaryOps)
		from = to - maxSummaryOps
	}
	if from > 0 {
		fmt.Fprintf(&b, "  ... %d earlier ops\n", from)
	}
	for i := from; i < to; i++ {
		op := part[i]
		out := op.Output.(Output)
		ret := fmt.Sprint(op.Return)
		if out.Ambiguous {
			ret = "end"
		}
		mark := ""
		if i == stuck {
			mark = "  <- first op outside the longest linearizable prefix"
		}
		fmt.Fprintf(&b, "  client %-3d [%d, %s] %s%s\n", op.ClientId, op.Call, ret, describeOp(op.Input.(Input), out), mark)
	}
	if to < len(part) {
		fmt.Fprintf(&b, "  ... %d later ops\n", len(part)-to)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// firstLeftOut returns the smallest operation index, of n, that the longest
// of partials leaves out.
func firstLeftOut(n int, partials [][]int) int {
	var longest []int
	for _, p := range partials {
		if len(p) > len(longest) {
			longest = p
		}
	}
	in := make([]bool, n)
	for _, id := range longest {
		in[id] = true
	}
	return max(0, slices.Index(in, false))
}

// visualize writes porcupine's HTML visualisation to a new file in dir. When
// some partitions are known to fail it shows only those, re-checked on their
// own, so the file stays small and to the point.
func visualize(dir string, model porcupine.Model, info porcupine.LinearizationInfo, failing [][]porcupine.Operation, timeout time.Duration) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("linearizability: visualize: %w", err)
	}
	if len(failing) > 0 {
		_, info = porcupine.CheckOperationsVerbose(model, slices.Concat(failing...), timeout)
	}
	f, err := os.CreateTemp(dir, "linearizability-*.html")
	if err != nil {
		return "", fmt.Errorf("linearizability: visualize: %w", err)
	}
	err = porcupine.Visualize(model, info, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return f.Name(), fmt.Errorf("linearizability: visualize: %w", err)
	}
	return f.Name(), nil
}
