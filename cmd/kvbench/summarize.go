package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Labels of the suite's special runs: "sweep-put@<rate>" are the open-loop
// sweep, "shards-<n>" the throughput-vs-shards curve.
const (
	sweepPrefix  = "sweep-put@"
	shardsPrefix = "shards-"
)

// Stats summarises the repeats of one workload on one system.
type Stats struct {
	Runs         int     `json:"runs"`
	MedianOps    float64 `json:"median_ops_per_sec"`
	MinOps       float64 `json:"min_ops_per_sec"`
	MaxOps       float64 `json:"max_ops_per_sec"`
	MedianP50    float64 `json:"median_p50_ms"`
	MedianP99    float64 `json:"median_p99_ms"`
	MinP99       float64 `json:"min_p99_ms"`
	MaxP99       float64 `json:"max_p99_ms"`
	MedianKeys   float64 `json:"median_keys_per_sec,omitempty"`
	Errors       int64   `json:"errors"`
	OfferedRate  float64 `json:"offered_rate,omitempty"`
	MedianOpsPct float64 `json:"median_achieved_pct,omitempty"`
}

// Row is one workload of the comparison.
type Row struct {
	Label  string `json:"label"`
	Strata *Stats `json:"strata,omitempty"`
	Etcd   *Stats `json:"etcd,omitempty"`
	// OpsRatio is Strata's median ops/s over etcd's; P99Ratio Strata's
	// median p99 over etcd's (below 1: Strata is faster). Nil when a side
	// is missing.
	OpsRatio *float64 `json:"ops_ratio,omitempty"`
	P99Ratio *float64 `json:"p99_ratio,omitempty"`
}

// Report is the suite's output.
type Report struct {
	Meta   map[string]any `json:"meta,omitempty"`
	Rows   []Row          `json:"workloads"`
	Sweep  []Row          `json:"sweep,omitempty"`
	Shards []Row          `json:"shards,omitempty"`
	Runs   []*Result      `json:"runs"`
}

func summarizeMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvbench summarize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.String("runs", "", "file of the runs' JSON results, one a line (required)")
	meta := fs.String("meta", "", "JSON object file to embed as the report's meta (machine, versions, notes)")
	jsonOut := fs.String("json", "", "write the report as JSON to this file")
	mdOut := fs.String("md", "", "write the markdown tables to this file (default: stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runs == "" {
		return errors.New("--runs is required")
	}
	rs, err := readRuns(*runs)
	if err != nil {
		return err
	}
	rep := summarize(rs)
	if *meta != "" {
		b, err := os.ReadFile(*meta)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &rep.Meta); err != nil {
			return fmt.Errorf("--meta %s: %w", *meta, err)
		}
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	md := markdown(rep)
	if *mdOut == "" {
		_, err = io.WriteString(stdout, md)
		return err
	}
	return os.WriteFile(*mdOut, []byte(md), 0o644)
}

func readRuns(path string) ([]*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []*Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		rs = append(rs, &r)
	}
	return rs, sc.Err()
}

// summarize groups runs by label and system, in the order labels first
// appear.
func summarize(rs []*Result) *Report {
	rep := &Report{Runs: rs}
	type key struct{ label, system string }
	groups := map[key][]*Result{}
	var labels []string
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.Label] {
			seen[r.Label] = true
			labels = append(labels, r.Label)
		}
		k := key{r.Label, r.System}
		groups[k] = append(groups[k], r)
	}
	for _, l := range labels {
		row := Row{Label: l, Strata: stats(groups[key{l, "strata"}]), Etcd: stats(groups[key{l, "etcd"}])}
		if row.Strata != nil && row.Etcd != nil {
			if row.Etcd.MedianOps > 0 {
				v := row.Strata.MedianOps / row.Etcd.MedianOps
				row.OpsRatio = &v
			}
			if row.Etcd.MedianP99 > 0 {
				v := row.Strata.MedianP99 / row.Etcd.MedianP99
				row.P99Ratio = &v
			}
		}
		switch {
		case strings.HasPrefix(l, sweepPrefix):
			rep.Sweep = append(rep.Sweep, row)
		case strings.HasPrefix(l, shardsPrefix):
			rep.Shards = append(rep.Shards, row)
		default:
			rep.Rows = append(rep.Rows, row)
		}
	}
	sort.SliceStable(rep.Sweep, func(i, j int) bool { return labelNum(rep.Sweep[i].Label) < labelNum(rep.Sweep[j].Label) })
	sort.SliceStable(rep.Shards, func(i, j int) bool { return labelNum(rep.Shards[i].Label) < labelNum(rep.Shards[j].Label) })
	return rep
}

// labelNum is the number after a label's prefix ("sweep-put@2000": 2000).
func labelNum(l string) float64 {
	i := strings.LastIndexAny(l, "@-")
	v, _ := strconv.ParseFloat(l[i+1:], 64)
	return v
}

func stats(rs []*Result) *Stats {
	if len(rs) == 0 {
		return nil
	}
	var ops, p50, p99, keys, pct []float64
	s := &Stats{Runs: len(rs), OfferedRate: rs[0].OfferedRate}
	for _, r := range rs {
		ops = append(ops, r.OpsPerSec)
		p50 = append(p50, r.Latency.P50)
		p99 = append(p99, r.Latency.P99)
		keys = append(keys, r.KeysPerSec)
		if r.OfferedRate > 0 {
			pct = append(pct, 100*r.OpsPerSec/r.OfferedRate)
		}
		s.Errors += r.ErrorCount
	}
	s.MedianOps, s.MinOps, s.MaxOps = median(ops), minOf(ops), maxOf(ops)
	s.MedianP50 = median(p50)
	s.MedianP99, s.MinP99, s.MaxP99 = median(p99), minOf(p99), maxOf(p99)
	s.MedianKeys = median(keys)
	if len(pct) > 0 {
		s.MedianOpsPct = median(pct)
	}
	return s
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// markdown renders the report's tables.
func markdown(rep *Report) string {
	var b strings.Builder
	// etcd took part if the suite ran it (its version is in the meta), even
	// when the runs selected were Strata's only (the shard curve).
	etcdVersion, _ := rep.Meta["etcd"].(string)
	haveEtcd := etcdVersion != ""
	for _, r := range rep.Runs {
		haveEtcd = haveEtcd || r.System == "etcd"
	}
	if len(rep.Rows) > 0 { // a sweep-only or curve-only run has none
		b.WriteString("| workload | Strata ops/s (median) | Strata ops/s min–max | Strata p50 ms | Strata p99 ms (min–max) | etcd ops/s (median) | etcd ops/s min–max | etcd p50 ms | etcd p99 ms (min–max) | ops/s Strata/etcd | p99 Strata/etcd |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, row := range rep.Rows {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", row.Label, side(row.Strata), side(row.Etcd)+" | "+ratios(row, haveEtcd))
		}
	}
	if !haveEtcd {
		b.WriteString("\nNo etcd was run (no `etcd` on PATH and no ETCD_BIN): the Strata/etcd ratios are missing.\n")
	}
	if len(rep.Sweep) > 0 {
		b.WriteString("\nOpen-loop put sweep (latency from each request's scheduled time):\n\n")
		b.WriteString("| offered ops/s | Strata achieved ops/s | Strata p50 ms | Strata p99 ms | Strata errors | etcd achieved ops/s | etcd p50 ms | etcd p99 ms | etcd errors |\n")
		b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, row := range rep.Sweep {
			fmt.Fprintf(&b, "| %.0f | %s | %s |\n", labelNum(row.Label), sweepSide(row.Strata), sweepSide(row.Etcd))
		}
	}
	if len(rep.Shards) > 0 {
		b.WriteString("\nStrata put throughput vs user shards (3 nodes, same load):\n\n")
		b.WriteString("| shards | ops/s (median) | ops/s min–max | p50 ms | p99 ms |\n|--:|--:|--:|--:|--:|\n")
		for _, row := range rep.Shards {
			s := row.Strata
			if s == nil {
				continue
			}
			fmt.Fprintf(&b, "| %.0f | %.0f | %.0f–%.0f | %.2f | %.2f |\n", labelNum(row.Label), s.MedianOps, s.MinOps, s.MaxOps, s.MedianP50, s.MedianP99)
		}
	}
	if notes, ok := rep.Meta["notes"].([]any); ok && len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %v\n", n)
		}
	}
	return b.String()
}

func side(s *Stats) string {
	if s == nil {
		return "— | — | — | —"
	}
	errs := ""
	if s.Errors > 0 {
		errs = fmt.Sprintf(" (%d errors)", s.Errors)
	}
	return fmt.Sprintf("%.0f%s | %.0f–%.0f | %.2f | %.2f (%.2f–%.2f)", s.MedianOps, errs, s.MinOps, s.MaxOps, s.MedianP50, s.MedianP99, s.MinP99, s.MaxP99)
}

func ratios(row Row, haveEtcd bool) string {
	if row.OpsRatio == nil || row.P99Ratio == nil {
		if !haveEtcd {
			return "missing (no etcd) | missing"
		}
		return "— | —"
	}
	return fmt.Sprintf("%.2f× | %.2f×", *row.OpsRatio, *row.P99Ratio)
}

func sweepSide(s *Stats) string {
	if s == nil {
		return "— | — | — | —"
	}
	return fmt.Sprintf("%.0f (%.0f%%) | %.2f | %.2f | %d", s.MedianOps, s.MedianOpsPct, s.MedianP50, s.MedianP99, s.Errors)
}
