package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/server"
	"google.golang.org/grpc"
)

func TestEncodeKey(t *testing.T) {
	const n, size = 10000, 16
	seen := map[string]bool{}
	firstBytes := map[byte]int{}
	for i := int64(0); i < n; i++ {
		k := encodeKey(nil, i, size)
		if len(k) != size {
			t.Fatalf("key %d is %d bytes, want %d", i, len(k), size)
		}
		if seen[string(k)] {
			t.Fatalf("key %d repeats", i)
		}
		seen[string(k)] = true
		firstBytes[k[0]]++
	}
	// The hash prefix spreads keys over the first byte, which Strata's
	// initial shards split on: every quarter of it gets about a quarter.
	var quarters [4]int
	for b, c := range firstBytes {
		quarters[b/64] += c
	}
	for q, c := range quarters {
		if c < n/4*8/10 || c > n/4*12/10 {
			t.Errorf("quarter %d of the first byte has %d of %d keys", q, c, n)
		}
	}
	if got := minKeySize(100000); got != 7 {
		t.Errorf("minKeySize(100000) = %d, want 7", got)
	}
}

func TestUniformChooser(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, draws = 10, 100000
	var counts [n]int
	c := uniformChooser{n: n}
	for range draws {
		counts[c.next(r)]++
	}
	for i, got := range counts {
		if math.Abs(float64(got)-draws/n) > 0.05*draws/n {
			t.Errorf("key %d drawn %d times, want about %d", i, got, draws/n)
		}
	}
}

func TestZipfChooser(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, draws = 1000, 200000
	z := newZipfChooser(n, defaultTheta)
	counts := make([]int, n)
	for range draws {
		k := z.next(r)
		if k < 0 || k >= n {
			t.Fatalf("drew %d, outside [0, %d)", k, n)
		}
		counts[k]++
	}
	// P(item i) = (1/(i+1)^theta) / zeta(n). Gray's generator is exact
	// for items 0 and 1 and approximates the rest with a continuous
	// curve, so item 2 gets a wider tolerance.
	for i, tol := range []float64{0.05, 0.05, 0.2} {
		want := draws / math.Pow(float64(i+1), defaultTheta) / z.zetan
		if math.Abs(float64(counts[i])-want) > tol*want {
			t.Errorf("item %d drawn %d times, want about %.0f", i, counts[i], want)
		}
	}
	// Skewed: the top 1% of items gets far more than 1% of the draws, and
	// the tail is still reached.
	top := 0
	for i := 0; i < n/100; i++ {
		top += counts[i]
	}
	if top < draws/4 {
		t.Errorf("top 1%% of items got %d of %d draws; not skewed", top, draws)
	}
	tail := 0
	for i := n / 2; i < n; i++ {
		tail += counts[i]
	}
	if tail == 0 {
		t.Error("the upper half of the key space was never drawn")
	}
}

func TestDistinctKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	z := newZipfChooser(1000, defaultTheta)
	idx := make([]int64, 1000) // all of the key space: needs the uniform fallback
	seen := map[int64]struct{}{}
	distinctKeys(r, z, 1000, idx, seen)
	got := map[int64]bool{}
	for _, k := range idx {
		if got[k] {
			t.Fatalf("key %d twice in a batch", k)
		}
		got[k] = true
	}
}

func TestScheduledAt(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tc := range []struct {
		rate float64
		i    int64
		want time.Duration
	}{
		{1000, 0, 0},
		{1000, 1, time.Millisecond},
		{1000, 1500, 1500 * time.Millisecond},
		{3, 1, 333333333 * time.Nanosecond},
		{3, 3, time.Second},
		{0.5, 2, 4 * time.Second},
		{250000, 250000, time.Second},
	} {
		if got := scheduledAt(start, tc.rate, tc.i).Sub(start); got != tc.want {
			t.Errorf("scheduledAt(rate %g, %d) = +%v, want +%v", tc.rate, tc.i, got, tc.want)
		}
	}
	// Intervals do not drift: the millionth request at 7 ops/s is due at
	// exactly 1e6/7 s, not at a million accumulated rounded intervals.
	got := scheduledAt(start, 7, 1_000_000).Sub(start)
	rate := 7.0
	want := time.Duration(float64(time.Second) * 1e6 / rate)
	if d := got - want; d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("request 1e6 at 7 ops/s due +%v, want +%v", got, want)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--endpoints is required"},
		{[]string{"--endpoints", "a:1", "--system", "redis"}, `--system "redis"`},
		{[]string{"--endpoints", "nohost"}, `"nohost" is not host:port`},
		{[]string{"--endpoints", "http://a:1"}, "is not host:port"},
		{[]string{"--endpoints", "a:1", "--workload", "nope"}, "want one of put, get"},
		{[]string{"--endpoints", "a:1", "--system", "etcd", "--read", "stale"}, `--read "stale"`},
		{[]string{"--endpoints", "a:1", "--clients", "0"}, "--clients 0"},
		{[]string{"--endpoints", "a:1", "--duration", "0s"}, "--duration 0s"},
		{[]string{"--endpoints", "a:1", "--keys", "100000", "--key-size", "5"}, "--key-size 5: want 7 to 4096"},
		{[]string{"--endpoints", "a:1", "--value-size", "8"}, "--value-size 8"},
		{[]string{"--endpoints", "a:1", "--dist", "pareto"}, "unknown key distribution"},
		{[]string{"--endpoints", "a:1", "--rate", "-1"}, "--rate -1"},
		{[]string{"--endpoints", "a:1", "--workload", "batch", "--keys", "500"}, "needs --keys >= 1000"},
		{[]string{"--endpoints", "a:1", "--read-ratio", "1.5"}, "--read-ratio 1.5"},
		{[]string{"--endpoints", "a:1", "--hot-keys", "0"}, "--hot-keys 0"},
		{[]string{"--endpoints", "a:1", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--endpoints", "a:1", "extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseFlags(tc.args, new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("parseFlags(%q): error is not one line: %q", tc.args, err)
		}
	}
	cfg, err := parseFlags([]string{"--endpoints", "a:1, b:2", "--clients", "2"}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Conns != 2 || len(cfg.Endpoints) != 2 || cfg.Label != "put" {
		t.Errorf("defaults: conns %d, endpoints %q, label %q", cfg.Conns, cfg.Endpoints, cfg.Label)
	}
}

// TestUsageExitsBeforeLoad: bad flags and an unreachable target are one
// line on stderr and a non-zero status.
func TestUsageExitsBeforeLoad(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--workload", "nope", "--endpoints", "a:1"}, &out, &errb); code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
	if n := strings.Count(errb.String(), "\n"); n != 1 {
		t.Errorf("bad flag: %d lines on stderr: %q", n, errb.String())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for _, sys := range []string{"strata", "etcd"} {
		out.Reset()
		errb.Reset()
		code := run(context.Background(), []string{"--system", sys, "--endpoints", dead, "--probe-timeout", "500ms"}, &out, &errb)
		if code != exitError {
			t.Errorf("%s unreachable: exit %d, want %d", sys, code, exitError)
		}
		if s := errb.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "not reachable") || !strings.Contains(s, "no load was sent") {
			t.Errorf("%s unreachable: stderr %q", sys, s)
		}
		if out.Len() != 0 {
			t.Errorf("%s unreachable: stdout %q", sys, out.String())
		}
	}
}

// serveStrata serves a single-node strata.DB with two shards over gRPC on
// loopback until the test ends.
func serveStrata(t *testing.T) string {
	t.Helper()
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), Shards: 2, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(lis) }()
	t.Cleanup(func() {
		g.Stop()
		<-done
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return lis.Addr().String()
}

func TestRunAgainstStrata(t *testing.T) {
	addr := serveStrata(t)
	jsonOut := filepath.Join(t.TempDir(), "runs.jsonl")
	base := []string{"--endpoints", addr, "--keys", "2000", "--progress", "off", "--seed", "7", "--json-out", jsonOut}
	runOne := func(extra ...string) *Result {
		t.Helper()
		var out, errb bytes.Buffer
		args := append(append([]string{}, base...), extra...)
		if code := run(context.Background(), append(args, "--json"), &out, &errb); code != exitOK {
			t.Fatalf("kvbench %q: exit %d: %s", extra, code, errb.String())
		}
		var r Result
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("kvbench %q: %v: %s", extra, err, out.String())
		}
		if r.ErrorCount != 0 {
			t.Errorf("kvbench %q: errors %v", extra, r.Errors)
		}
		return &r
	}

	load := runOne("--workload", "load", "--batch-size", "500", "--clients", "2")
	if load.Ops != 4 || load.KeysPerSec <= 0 {
		t.Errorf("load: %d batches, %.0f keys/s; want 4 batches", load.Ops, load.KeysPerSec)
	}
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	put := runOne("--workload", "put", "--clients", "4", "--ops", "200", "--cpuprofile", profile)
	if put.Ops != 200 || put.OpsPerSec <= 0 || put.Latency.P50 <= 0 || put.Latency.Max < put.Latency.P99 {
		t.Errorf("put: %+v", put)
	}
	if st, err := os.Stat(profile); err != nil || st.Size() == 0 {
		t.Errorf("--cpuprofile wrote no profile: %v", err)
	}
	get := runOne("--workload", "get", "--clients", "4", "--ops", "200", "--dist", "zipfian")
	if get.Ops != 200 || get.Misses != 0 {
		t.Errorf("get: %d ops, %d misses of loaded keys", get.Ops, get.Misses)
	}
	mixed := runOne("--workload", "mixed", "--read-ratio", "0.5", "--clients", "2", "--ops", "200")
	if mixed.PerOp[opRead].Count == 0 || mixed.PerOp[opUpdate].Count == 0 {
		t.Errorf("mixed: per op %+v", mixed.PerOp)
	}
	scan := runOne("--workload", "scan", "--clients", "2", "--ops", "50", "--scan-length", "10")
	if scan.Ops != 50 {
		t.Errorf("scan: %d ops", scan.Ops)
	}
	batch := runOne("--workload", "batch", "--batch-size", "100", "--clients", "1", "--ops", "5")
	if batch.Ops != 5 || batch.KeysPerSec <= 0 {
		t.Errorf("batch: %d ops, %.0f keys/s", batch.Ops, batch.KeysPerSec)
	}
	cas := runOne("--workload", "cas", "--hot-keys", "2", "--clients", "4", "--ops", "100")
	if cas.Swapped+cas.NotSwapped != 100 || cas.Swapped == 0 {
		t.Errorf("cas: %d swapped, %d not", cas.Swapped, cas.NotSwapped)
	}
	// Open loop at 200 ops/s for 1s: about 200 ops, none early.
	open := runOne("--workload", "put", "--clients", "8", "--rate", "200", "--duration", "1s")
	if open.Mode != "open" || open.Ops < 150 || open.Ops > 200 {
		t.Errorf("open loop: mode %s, %d ops in %.2fs at 200 ops/s", open.Mode, open.Ops, open.ElapsedSec)
	}

	// The table form, and the summary of the runs written to --json-out.
	var out, errb bytes.Buffer
	if code := run(context.Background(), append(base, "--workload", "put", "--ops", "20"), &out, &errb); code != exitOK {
		t.Fatalf("table: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"p99.9 ms", "ops/s", "errors: none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	md := filepath.Join(t.TempDir(), "out.md")
	js := filepath.Join(t.TempDir(), "out.json")
	if code := run(context.Background(), []string{"summarize", "--runs", jsonOut, "--md", md, "--json", js}, &out, &errb); code != exitOK {
		t.Fatalf("summarize: exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "| put |") || !strings.Contains(string(b), "missing (no etcd)") {
		t.Errorf("summary:\n%s", b)
	}
}

func TestSummarize(t *testing.T) {
	mk := func(label, sys string, ops, p99 float64) *Result {
		return &Result{Label: label, System: sys, OpsPerSec: ops, Latency: Latency{P99: p99}}
	}
	rep := summarize([]*Result{
		mk("put", "strata", 100, 10), mk("put", "etcd", 50, 20),
		mk("put", "strata", 300, 30), mk("put", "etcd", 70, 40),
		mk("put", "strata", 200, 20), mk("put", "etcd", 60, 30),
		mk("sweep-put@1000", "strata", 990, 5), mk("shards-2", "strata", 10, 1),
	})
	if len(rep.Rows) != 1 || len(rep.Sweep) != 1 || len(rep.Shards) != 1 {
		t.Fatalf("rows %d, sweep %d, shards %d", len(rep.Rows), len(rep.Sweep), len(rep.Shards))
	}
	row := rep.Rows[0]
	if row.Strata.MedianOps != 200 || row.Strata.MinOps != 100 || row.Strata.MaxOps != 300 || row.Etcd.MedianOps != 60 {
		t.Errorf("stats: strata %+v etcd %+v", row.Strata, row.Etcd)
	}
	if *row.OpsRatio != 200.0/60 || *row.P99Ratio != 20.0/30 {
		t.Errorf("ratios %v %v", *row.OpsRatio, *row.P99Ratio)
	}
	if md := markdown(rep); !strings.Contains(md, "3.33×") || !strings.Contains(md, "| 1000 |") {
		t.Errorf("markdown:\n%s", md)
	}
}
