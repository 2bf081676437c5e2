package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/strata-kv/strata/client"
	"github.com/strata-kv/strata/linearizability"
)

// Register is the register workload: get, put and compare-and-swap on a
// small set of keys, every written value unique, checked per key for
// linearizability.
type Register struct {
	// Keys is how many keys. Default: 12.
	Keys int
	// CheckTimeout bounds the linearizability check. Default: 2 minutes.
	CheckTimeout time.Duration

	rec   *linearizability.Recorder
	keys  [][]byte
	final int // final reads that succeeded
	want  int // final reads attempted
}

var _ Workload = (*Register)(nil)

// Name implements Workload.
func (r *Register) Name() string { return "register" }

func (r *Register) init(env *Env) {
	if r.Keys == 0 {
		r.Keys = 12
	}
	if r.CheckTimeout == 0 {
		r.CheckTimeout = 2 * time.Minute
	}
	if r.rec == nil {
		r.rec = linearizability.NewRecorder(Classify)
	}
	if r.keys == nil {
		for k := range r.Keys {
			p := ""
			if len(env.Prefixes) > 0 {
				p = env.Prefixes[k%len(env.Prefixes)]
			}
			r.keys = append(r.keys, []byte(fmt.Sprintf("%sreg/%02d", p, k)))
		}
	}
}

// countingClient counts every call of a linearizability.Client in Stats.
type countingClient struct {
	c     linearizability.Client
	stats *Stats
	name  string
}

func (c *countingClient) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, err := c.c.Get(ctx, key)
	c.stats.Record(c.name, err, false)
	return v, err
}

func (c *countingClient) Put(ctx context.Context, key, value []byte) error {
	err := c.c.Put(ctx, key, value)
	c.stats.Record(c.name, err, true)
	return err
}

func (c *countingClient) Delete(ctx context.Context, key []byte) error {
	err := c.c.Delete(ctx, key)
	c.stats.Record(c.name, err, true)
	return err
}

func (c *countingClient) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	ok, err := c.c.CompareAndSwap(ctx, key, old, new)
	c.stats.Record(c.name, err, true)
	return ok, err
}

// Run implements Workload.
func (r *Register) Run(ctx context.Context, env *Env) error {
	r.init(env)
	return runClients(env.Clients, func(i int) error {
		gc, err := env.newClient(i)
		if err != nil {
			return err
		}
		defer gc.Close()
		cl := r.rec.Client(i, &countingClient{c: gc, stats: env.Stats, name: r.Name()})
		rng := rand.New(rand.NewPCG(env.Seed, uint64(i)))
		last := map[string][]byte{}
		for n := 0; ctx.Err() == nil; n++ {
			key := r.keys[rng.IntN(len(r.keys))]
			val := []byte(fmt.Sprintf("c%d-%d", i, n)) // unique per write
			opCtx, cancel := context.WithTimeout(context.Background(), env.OpTimeout)
			switch p := rng.IntN(100); {
			case p < 50:
				v, err := cl.Get(opCtx, key)
				switch {
				case err == nil:
					last[string(key)] = v
				case errors.Is(err, client.ErrNotFound):
					delete(last, string(key))
				}
			case p < 75:
				_ = cl.Put(opCtx, key, val)
			default:
				_, _ = cl.CompareAndSwap(opCtx, key, last[string(key)], val)
			}
			cancel()
		}
		return nil
	})
}

// Final implements Workload: every key is read through a client of each
// node (client IDs after the workload's), retrying until it succeeds.
func (r *Register) Final(ctx context.Context, env *Env) error {
	r.init(env)
	var errs []error
	for ni, ep := range env.Endpoints {
		gc, err := client.New(client.Config{Endpoints: []string{ep}, DialTimeout: env.OpTimeout})
		if err != nil {
			return err
		}
		cl := r.rec.Client(env.Clients+ni, &countingClient{c: gc, stats: env.Stats, name: r.Name() + "-final"})
		for _, k := range r.keys {
			r.want++
			var err error
			for ctx.Err() == nil {
				opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = cl.Get(opCtx, k)
				cancel()
				if err == nil || errors.Is(err, client.ErrNotFound) {
					err = nil
					r.final++
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("final read of %q through %s: %w", k, ep, err))
			}
		}
		gc.Close()
	}
	if len(errs) > 0 {
		return fmt.Errorf("jepsen: register: %d final reads failed; first: %w", len(errs), errs[0])
	}
	return nil
}

// Check implements Workload: the history goes to history.json, and on
// failure the visualisation next to it.
func (r *Register) Check(env *Env) CheckResult {
	r.init(env)
	h := r.rec.History()
	out := CheckResult{Workload: r.Name(), Details: map[string]any{}}
	histPath := filepath.Join(env.Dir, "history.json")
	if err := h.Save(histPath); err != nil {
		out.Details["history_error"] = err.Error()
	} else {
		out.Details["history"] = histPath
	}
	res := linearizability.Check(h, linearizability.CheckOptions{Timeout: r.CheckTimeout, VisualizeDir: env.Dir})
	out.Details["ops_checked"] = res.Ops
	out.Details["indeterminate"] = res.Indeterminate
	out.Details["dropped"] = res.Dropped
	out.Details["keys"] = res.Partitions
	out.Details["check_seconds"] = res.Elapsed.Seconds()
	out.Details["final_reads"] = fmt.Sprintf("%d/%d", r.final, r.want)
	if res.VisualizationPath != "" {
		out.Details["visualization"] = res.VisualizationPath
	}
	switch res.Verdict {
	case linearizability.Ok:
		out.Valid = ValidOK
		out.Summary = fmt.Sprintf("linearizable: %d ops on %d keys (%d indeterminate)", res.Ops, res.Partitions, res.Indeterminate)
		if r.final < r.want {
			out.Valid = ValidUnknown
			out.Summary += fmt.Sprintf("; but only %d of %d final reads succeeded", r.final, r.want)
		}
	case linearizability.Illegal:
		out.Valid = ValidViolation
		out.Summary = "NOT LINEARIZABLE: " + res.Summary
	default:
		out.Valid = ValidUnknown
		out.Summary = "no verdict: " + res.Summary
	}
	return out
}
