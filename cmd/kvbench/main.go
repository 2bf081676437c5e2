// Command kvbench is a load generator for Strata and, with the same
// workload definitions, for etcd v3, so that the two can be compared.
//
//	kvbench --system strata --endpoints 127.0.0.1:7370 --workload put --clients 100 --duration 10s
//	kvbench --system etcd --endpoints 127.0.0.1:2379 --workload get --read serializable --json
//	kvbench --workload put --rate 2000      # open loop: 2,000 requests/s, latency from when each was due
//
// Workloads: put (random keys over --keys), get (--read linearizable, or
// serializable: any replica answers from local state), mixed (YCSB A with --read-ratio 0.5, B with 0.95),
// scan (YCSB E: 95% scans of 1..--scan-length keys, 5% puts), batch
// (--batch-size distinct keys in one call; etcd: one Txn), cas (read then
// compare-and-swap on --hot-keys keys) and load (fills the key space, for
// the read workloads). kvbench probes the target before it sends any load;
// bad flags or an unreachable target are one line on stderr and exit
// status 2 or 1.
//
// `kvbench summarize` turns the JSON lines of many runs (the suite's,
// bench/run.sh) into a JSON report and a markdown table.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the target failed the probe, or the run failed
	exitUsage = 2 // bad flags
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "summarize" {
		if err := summarizeMain(args[1:], stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "kvbench summarize: "+oneLine(err.Error()))
			return exitError
		}
		return exitOK
	}
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "kvbench: "+err.Error())
		return exitUsage
	}
	res, err := bench(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "kvbench: "+oneLine(err.Error()))
		return exitError
	}
	b, _ := json.Marshal(res)
	if cfg.JSONOut != "" {
		if err := appendLine(cfg.JSONOut, b); err != nil {
			fmt.Fprintln(stderr, "kvbench: --json-out: "+oneLine(err.Error()))
			return exitError
		}
	}
	if cfg.JSON {
		fmt.Fprintln(stdout, string(b))
	} else {
		printResult(stdout, res)
	}
	return exitOK
}

// bench probes the target, opens the connections and runs cfg.
func bench(ctx context.Context, cfg *Config, stderr io.Writer) (_ *Result, err error) {
	if err := probe(ctx, cfg); err != nil {
		return nil, fmt.Errorf("%s at %s is not reachable or not serving, no load was sent: %w",
			cfg.System, strings.Join(cfg.Endpoints, ","), err)
	}
	var targets []target
	defer func() {
		for _, t := range targets {
			t.Close()
		}
	}()
	for range cfg.Conns {
		t, err := openTarget(cfg)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	r, err := newRunner(cfg, targets)
	if err != nil {
		return nil, err
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile() // writes the rest of the profile
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("--cpuprofile: %w", cerr)
			}
		}()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	stopBar := startProgress(cfg, r, stderr)
	res := r.run(ctx)
	stopBar()
	if cfg.ReadLevel == readSerializable {
		res.Notes = append(res.Notes, "serializable reads: served by a replica from its local state, may be stale")
	}
	return res, nil
}

// startProgress shows a progress bar on stderr while r runs, if cfg asks
// for one (auto: when stderr is a terminal). It returns a function that
// stops it.
func startProgress(cfg *Config, r *runner, stderr io.Writer) (stop func()) {
	show := cfg.Progress == "on"
	if cfg.Progress == "auto" {
		f, ok := stderr.(*os.File)
		show = ok && term.IsTerminal(int(f.Fd()))
	}
	if !show {
		return func() {}
	}
	total := r.total()
	byTime := total == 0
	max := total
	if byTime {
		max = cfg.Duration.Milliseconds()
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(cfg.System+" "+cfg.Label),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	)
	done := make(chan struct{})
	exited := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(exited)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				_ = bar.Finish()
				return
			case <-t.C:
				if byTime {
					_ = bar.Set64(min(time.Since(start).Milliseconds(), max))
				} else {
					_ = bar.Set64(min(r.done.Load(), max))
				}
			}
		}
	}()
	return func() { close(done); <-exited }
}

// printResult prints res as a table.
func printResult(w io.Writer, res *Result) {
	mode := "closed loop"
	if res.Mode == "open" {
		mode = fmt.Sprintf("open loop at %.0f ops/s offered", res.OfferedRate)
	}
	fmt.Fprintf(w, "%s %s (%s): %d clients, %d conns, %s keys over %d, %d B keys, %d B values",
		res.System, res.Label, mode, res.Clients, res.Conns, res.Dist, res.KeySpace, res.KeySize, res.ValueSize)
	if res.ReadLevel != "" {
		fmt.Fprintf(w, ", %s reads", res.ReadLevel)
	}
	if res.BatchSize > 0 {
		fmt.Fprintf(w, ", %d keys per batch", res.BatchSize)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tops/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	line := func(name string, l Latency) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", name, l.Count,
			float64(l.Count)/res.ElapsedSec, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	for _, op := range sortedKeys(res.PerOp) {
		line(op, res.PerOp[op])
	}
	line("all", res.Latency)
	tw.Flush()
	fmt.Fprintf(w, "elapsed %.2fs, %.1f ops/s", res.ElapsedSec, res.OpsPerSec)
	if res.KeysPerSec > 0 {
		fmt.Fprintf(w, ", %.0f keys/s", res.KeysPerSec)
	}
	if res.Mode == "open" && res.OfferedRate > 0 {
		fmt.Fprintf(w, " (%.0f%% of offered)", 100*res.OpsPerSec/res.OfferedRate)
	}
	fmt.Fprintln(w)
	if res.ErrorCount == 0 {
		fmt.Fprintln(w, "errors: none")
	} else {
		var parts []string
		for _, k := range sortedKeys(res.Errors) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, res.Errors[k]))
		}
		fmt.Fprintf(w, "errors: %d (%s)\n", res.ErrorCount, strings.Join(parts, ", "))
	}
	if res.Misses > 0 {
		fmt.Fprintf(w, "reads of absent keys: %d\n", res.Misses)
	}
	if res.Workload == "cas" {
		fmt.Fprintf(w, "cas: %d swapped, %d lost to a concurrent write\n", res.Swapped, res.NotSwapped)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
}

func appendLine(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
