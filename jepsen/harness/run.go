package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strata-kv/strata/client"
)

// Config is one run.
type Config struct {
	// Kvnode is the kvnode binary. Required.
	Kvnode string
	// Dir is the run directory (created; results stay there). Required.
	Dir string
	// Workloads are the workloads to run concurrently. Default: register.
	Workloads []string
	// Nemeses are combined: each round starts every one of them. Empty:
	// no faults.
	Nemeses []string
	// Nodes is 3 or 5. Default: 3.
	Nodes int
	// FaultTime is how long the nemeses run. Default: 20s.
	FaultTime time.Duration
	// Clients is how many clients each workload runs. Default: 8.
	Clients int
	// OpTimeout bounds each operation. Default: 1s.
	OpTimeout time.Duration
	// Seed seeds every random choice. Default: random.
	Seed uint64
	// IPBase and ClientPort place the nodes (see ClusterConfig). Runs
	// at the same time need different IPBases.
	IPBase, ClientPort int
	// Shards is the number of user shards. Default: 3.
	Shards int
	// Env is added to every node's environment.
	Env []string
	// CheckTimeout bounds each linearizability check. Default: 2 minutes.
	CheckTimeout time.Duration
	// ExpectViolation marks a run that must find a violation (a checker
	// test): the summary reads it so.
	ExpectViolation bool
	// Out receives progress lines and the summary. Default: io.Discard.
	Out io.Writer
	// KeepData keeps the nodes' data directories (under Dir/data).
	KeepData bool
	// PanicAfterFirstFault panics in the nemesis loop once the first fault
	// is in place; the cleanup test uses it.
	PanicAfterFirstFault bool
}

func (c *Config) ensureDefaults() error {
	if c.Kvnode == "" || c.Dir == "" {
		return errors.New("jepsen: Config needs Kvnode and Dir")
	}
	if len(c.Workloads) == 0 {
		c.Workloads = []string{"register"}
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.FaultTime == 0 {
		c.FaultTime = 20 * time.Second
	}
	if c.Clients == 0 {
		c.Clients = 8
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = time.Second
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64() % 1_000_000
	}
	if c.IPBase == 0 {
		c.IPBase = 11
	}
	if c.Shards == 0 {
		c.Shards = 3
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return nil
}

// Chain is the iptables chain of runs whose first node is 127.0.0.<ipBase>.
func Chain(ipBase int) string { return fmt.Sprintf("STRATA-JEPSEN-%d", ipBase) }

// The verdicts of a run.
const (
	VerdictOK          = "ok"
	VerdictViolation   = "violation"
	VerdictUnknown     = "unknown"
	VerdictError       = "error"
	VerdictInterrupted = "interrupted"
)

// Result is result.json.
type Result struct {
	Name            string            `json:"name"`
	Dir             string            `json:"dir"`
	Workloads       []string          `json:"workloads"`
	Nemeses         []string          `json:"nemeses"`
	Nodes           int               `json:"nodes"`
	Seed            uint64            `json:"seed"`
	Env             []string          `json:"node_env,omitempty"`
	ExpectViolation bool              `json:"expect_violation"`
	Verdict         string            `json:"verdict"`
	Error           string            `json:"error,omitempty"`
	Started         time.Time         `json:"started"`
	Seconds         float64           `json:"seconds"`
	FaultSeconds    float64           `json:"fault_seconds"`
	Ops             Counts            `json:"ops"`
	OpsByWorkload   map[string]Counts `json:"ops_by_workload"`
	Errors          map[string]int    `json:"errors"`
	Availability    Availability      `json:"availability"`
	PerSecond       []Counts          `json:"per_second"`
	Faults          []Interval        `json:"faults"`
	Checks          []CheckResult     `json:"checks"`
	Warnings        []string          `json:"warnings,omitempty"`
	Cleanup         string            `json:"cleanup"`
}

// Passed reports whether the run did what it should: no violation (or,
// for an expected-failure run, a violation found).
func (r *Result) Passed() bool {
	if r.ExpectViolation {
		return r.Verdict == VerdictViolation
	}
	return r.Verdict == VerdictOK
}

// timeline writes the nemesis timeline as JSON lines.
type timeline struct {
	mu    sync.Mutex
	f     *os.File
	start time.Time
	out   io.Writer
}

type timelineEvent struct {
	Time    time.Time `json:"time"`
	T       float64   `json:"t"`
	Event   string    `json:"event"`
	Nemesis string    `json:"nemesis,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

func (t *timeline) log(event, nemesis, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	ev := timelineEvent{Time: now, T: now.Sub(t.start).Seconds(), Event: event, Nemesis: nemesis, Detail: detail}
	if t.f != nil {
		b, _ := json.Marshal(ev)
		t.f.Write(append(b, '\n'))
	}
	name := ""
	if nemesis != "" {
		name = nemesis + ": "
	}
	fmt.Fprintf(t.out, "  %6.1fs %-6s %s%s\n", ev.T, event, name, detail)
}

// Run runs one test: starts the cluster, runs the workloads under the
// nemeses, heals, reads the final state, tears everything down and checks.
// Whatever happens (an error, ctx cancelled by a signal, a panic) it kills
// every node it started, removes its iptables chains and the nodes' data
// directories before returning. The result is written to Dir/result.json.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	for _, w := range cfg.Workloads {
		if _, err := NewWorkload(w); err != nil {
			return nil, err
		}
	}
	nems, err := NewNemeses(cfg.Nemeses)
	if err != nil {
		return nil, err
	}
	// Nemeses that act on nodes started with a debug hook (power-loss)
	// have every node started with it.
	for _, kv := range NodeEnv(cfg.Nemeses) {
		if !slices.Contains(cfg.Env, kv) {
			cfg.Env = append(slices.Clone(cfg.Env), kv)
		}
	}
	if err := Preflight(ctx, os.Geteuid()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	res = &Result{
		Name: filepath.Base(cfg.Dir), Dir: cfg.Dir, Workloads: cfg.Workloads, Nemeses: cfg.Nemeses,
		Nodes: cfg.Nodes, Seed: cfg.Seed, Env: cfg.Env, ExpectViolation: cfg.ExpectViolation,
		Started: start, Verdict: VerdictError,
	}
	tlf, err := os.Create(filepath.Join(cfg.Dir, "timeline.jsonl"))
	if err != nil {
		return nil, err
	}
	tl := &timeline{f: tlf, start: start, out: cfg.Out}
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		res.Warnings = append(res.Warnings, msg)
		tl.log("warn", "", msg)
	}

	var dataDir string
	if cfg.KeepData {
		dataDir = filepath.Join(cfg.Dir, "data")
	} else if dataDir, err = os.MkdirTemp("", "strata-jepsen-data-*"); err != nil {
		return nil, err
	}
	cl, err := NewCluster(ClusterConfig{
		Kvnode: cfg.Kvnode, Nodes: cfg.Nodes, IPBase: cfg.IPBase, ClientPort: cfg.ClientPort,
		Shards: cfg.Shards, DataDir: dataDir, LogDir: cfg.Dir, Env: cfg.Env,
	})
	if err != nil {
		return nil, err
	}
	chain := Chain(cfg.IPBase)
	var net *Net
	var admin *client.Client
	cleaned := false
	cleanup := func() {
		if cleaned {
			return
		}
		cleaned = true
		if admin != nil {
			admin.Close()
		}
		cl.Close()
		var left []string
		if net != nil {
			if err := net.Close(); err != nil {
				left = append(left, err.Error())
			}
		}
		if l := Leftovers(context.Background(), chain); l != "" {
			left = append(left, l)
		}
		if !cfg.KeepData {
			if err := os.RemoveAll(dataDir); err != nil {
				left = append(left, err.Error())
			}
		}
		for _, n := range cl.Nodes {
			if n.Running() {
				left = append(left, fmt.Sprintf("node %d still runs", n.Index+1))
			}
		}
		res.Cleanup = "ok: no node process, iptables rule or data directory left"
		if len(left) > 0 {
			res.Cleanup = "LEFT BEHIND: " + strings.Join(left, "; ")
		}
		tl.log("info", "", "cleanup: "+res.Cleanup)
	}
	// On a panic: clean up, then let it go on.
	var stats *Stats
	defer func() {
		cleanup()
		res.Seconds = time.Since(start).Seconds()
		if stats != nil && res.Ops.Total == 0 {
			res.Ops, res.OpsByWorkload, res.Errors, res.PerSecond = stats.Snapshot()
		}
		if err != nil && res.Error == "" {
			res.Error = err.Error()
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				res.Verdict = VerdictInterrupted
			}
		}
		writeResult(cfg.Dir, res)
		tlf.Close()
	}()

	tl.log("info", "", fmt.Sprintf("run %s: %d nodes from 127.0.0.%d, workloads %v, nemeses %v, seed %d, node env %v, data in %s",
		res.Name, cfg.Nodes, cfg.IPBase, cfg.Workloads, cfg.Nemeses, cfg.Seed, cfg.Env, dataDir))
	if net, err = NewNet(ctx, chain, cl.IPs(), cl.Gids()); err != nil {
		return res, err
	}
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
	err = cl.StartAll(sctx)
	scancel()
	if err != nil {
		return res, err
	}
	tl.log("info", "", fmt.Sprintf("%d nodes ready in %v", cfg.Nodes, time.Since(start).Round(time.Millisecond)))
	for _, kv := range cfg.Env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "STRATA_DEBUG_") {
			continue
		}
		for _, n := range cl.Nodes {
			if !cl.HookApplied(n, name) {
				return res, fmt.Errorf("jepsen: node %d was started with %s but its log has no %q banner: kvnode does not apply the debug hooks (is applyDebugEnv called in cmd/kvnode/start.go before strata.Open?)",
					n.Index+1, kv, HookBanner+name)
			}
		}
	}
	if admin, err = client.New(client.Config{Endpoints: cl.Endpoints(), DialTimeout: time.Second}); err != nil {
		return res, err
	}
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	prefixes, err := shardPrefixes(pctx, admin)
	pcancel()
	if err != nil {
		return res, err
	}
	stats = NewStats(start)
	env := &Env{
		Endpoints: cl.Endpoints(), Prefixes: prefixes, Clients: cfg.Clients, OpTimeout: cfg.OpTimeout,
		Seed: cfg.Seed, Dir: cfg.Dir, Stats: stats,
	}
	var wls []Workload
	for _, name := range cfg.Workloads {
		w, _ := NewWorkload(name)
		if r, ok := w.(*Register); ok {
			r.CheckTimeout = cfg.CheckTimeout
		}
		wls = append(wls, w)
	}

	// The workloads run until wcancel.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var wg sync.WaitGroup
	werrs := make([]error, len(wls))
	for i, w := range wls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			werrs[i] = w.Run(wctx, env)
		}()
	}
	stopWorkloads := func() error {
		wcancel()
		wg.Wait()
		return errors.Join(werrs...)
	}

	// The nemesis loop, on this goroutine.
	ne := &NemesisEnv{Cluster: cl, Net: net, Admin: admin, Rng: rand.New(rand.NewPCG(cfg.Seed, 0xfa17)), Warn: warn}
	err = nemesisLoop(ctx, cfg, nems, ne, tl, res)
	if err != nil {
		stopWorkloads()
		return res, err
	}
	hctx, hcancel := context.WithTimeout(ctx, 5*time.Minute)
	err = HealAll(hctx, cl, net)
	hcancel()
	if err != nil {
		stopWorkloads()
		return res, err
	}
	tl.log("info", "", "healed: every link restored, every node running without debug settings and ready")
	if !sleepCtx(ctx, 3*time.Second) {
		stopWorkloads()
		return res, ctx.Err()
	}
	if err := stopWorkloads(); err != nil {
		return res, err
	}
	tl.log("info", "", "clients stopped; final reads")
	fctx, fcancel := context.WithTimeout(ctx, 90*time.Second)
	var finalErrs []error
	for _, w := range wls {
		if err := w.Final(fctx, env); err != nil {
			finalErrs = append(finalErrs, err)
		}
	}
	fcancel()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	for _, e := range finalErrs {
		warn("%v", e)
	}
	cleanup() // free the machine before checking, which can take a while

	total, byW, errs, secs := stats.Snapshot()
	res.Ops, res.OpsByWorkload, res.Errors, res.PerSecond = total, byW, errs, secs
	res.Availability = ComputeAvailability(secs, res.Faults)
	tl.log("info", "", fmt.Sprintf("checking %d operations", total.Total))
	res.Verdict = VerdictOK
	for _, w := range wls {
		c := w.Check(env)
		res.Checks = append(res.Checks, c)
		tl.log("check", "", fmt.Sprintf("%s: %s: %s", c.Workload, c.Valid, firstLine(c.Summary)))
		switch {
		case c.Valid == ValidViolation:
			res.Verdict = VerdictViolation
		case c.Valid == ValidUnknown && res.Verdict == VerdictOK:
			res.Verdict = VerdictUnknown
		}
	}
	return res, nil
}

// nemesisLoop runs rounds of faults for cfg.FaultTime: a quiet spell, every
// nemesis started, a hold, every nemesis stopped in reverse order.
func nemesisLoop(ctx context.Context, cfg Config, nems []Nemesis, ne *NemesisEnv, tl *timeline, res *Result) error {
	faultStart := time.Now()
	end := faultStart.Add(cfg.FaultTime)
	if len(nems) == 0 {
		tl.log("info", "", fmt.Sprintf("no nemesis: %v of quiet operation", cfg.FaultTime))
		if !sleepCtx(ctx, cfg.FaultTime) {
			return ctx.Err()
		}
		return nil
	}
	defer func() { res.FaultSeconds = time.Since(faultStart).Seconds() }()
	for time.Now().Before(end) {
		if !sleepCtx(ctx, time.Duration(800+ne.Rng.IntN(1200))*time.Millisecond) {
			return ctx.Err()
		}
		ne.claimed = map[int]bool{}
		from := time.Since(tl.start)
		var started []Nemesis
		var startErr error
		for _, n := range nems {
			desc, err := n.Start(ctx, ne)
			if err != nil {
				startErr = fmt.Errorf("jepsen: nemesis %s: start: %w", n.Name(), err)
				break
			}
			started = append(started, n)
			tl.log("start", n.Name(), desc)
		}
		if cfg.PanicAfterFirstFault {
			panic("jepsen: panic injected after the first fault (cleanup test)")
		}
		if startErr == nil {
			hold := time.Duration(2000+ne.Rng.IntN(2000)) * time.Millisecond
			if !sleepCtx(ctx, hold) {
				startErr = ctx.Err()
			}
		}
		if ctx.Err() != nil {
			// Interrupted: the cleanup kills every node and removes every
			// rule; healing first would only delay it.
			return ctx.Err()
		}
		var stopErrs []error
		// Stopped in start order: links heal before killed nodes restart
		// and wait to be ready.
		for _, n := range started {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			desc, err := n.Stop(sctx, ne)
			cancel()
			if err != nil {
				stopErrs = append(stopErrs, fmt.Errorf("jepsen: nemesis %s: stop: %w", n.Name(), err))
				continue
			}
			tl.log("stop", n.Name(), desc)
		}
		res.Faults = append(res.Faults, Interval{From: from, To: time.Since(tl.start)})
		if err := errors.Join(append([]error{startErr}, stopErrs...)...); err != nil {
			return err
		}
	}
	return nil
}

// shardPrefixes waits until the cluster reports its user shards and returns
// one valid UTF-8 key prefix inside each shard's range.
func shardPrefixes(ctx context.Context, admin *client.Client) ([]string, error) {
	// Candidates spread over the byte range; the last ones start with the
	// UTF-8 lead bytes 0xC3 and 0xE4.
	var cands []string
	for _, r := range "0AHPX`hpxé中" {
		cands = append(cands, string(r))
	}
	for {
		st, err := admin.Status(ctx)
		if err == nil {
			type rng struct{ start, end []byte }
			var shards []rng
			for _, sh := range st.GetShards() {
				if !sh.GetSystem() {
					shards = append(shards, rng{sh.GetStart(), sh.GetEnd()})
				}
			}
			sort.Slice(shards, func(i, j int) bool { return bytes.Compare(shards[i].start, shards[j].start) < 0 })
			var out []string
			for _, s := range shards {
				for _, c := range cands {
					if bytes.Compare([]byte(c), s.start) >= 0 && (len(s.end) == 0 || bytes.Compare([]byte(c), s.end) < 0) {
						out = append(out, c)
						break
					}
				}
			}
			if len(out) > 0 {
				return out, nil
			}
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return nil, fmt.Errorf("jepsen: no user shards reported (last status error: %v): %w", err, ctx.Err())
		}
	}
}

func writeResult(dir string, res *Result) {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(dir, "result.json"), append(b, '\n'), 0o644)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
