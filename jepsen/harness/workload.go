package harness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/strata-kv/strata/client"
)

// Env is what a workload runs against.
type Env struct {
	// Endpoints are every node's client address, by node index.
	Endpoints []string
	// Prefixes are key prefixes, valid UTF-8, one in each user shard's
	// range, so that a workload can spread its keys over the shards.
	Prefixes []string
	// Clients is how many concurrent clients a workload runs.
	Clients int
	// OpTimeout bounds each operation.
	OpTimeout time.Duration
	// Seed seeds the workload's random choices.
	Seed uint64
	// Dir is the run directory, for the workload's artifacts.
	Dir string
	// Stats counts every operation.
	Stats *Stats
}

// newClient returns the Go client of client number i: even clients talk to
// every node, odd ones to one node each.
func (e *Env) newClient(i int) (*client.Client, error) {
	eps := e.Endpoints
	if i%2 == 1 {
		eps = []string{e.Endpoints[(i/2)%len(e.Endpoints)]}
	}
	return client.New(client.Config{Endpoints: eps, DialTimeout: e.OpTimeout})
}

// CheckResult is a workload's verdict.
type CheckResult struct {
	Workload string `json:"workload"`
	// Valid is "ok", "violation" or "unknown" (the checker could not
	// decide, or the final read failed).
	Valid   string `json:"valid"`
	Summary string `json:"summary"`
	// Details are the workload's own figures.
	Details map[string]any `json:"details,omitempty"`
}

// The values of CheckResult.Valid.
const (
	ValidOK        = "ok"
	ValidViolation = "violation"
	ValidUnknown   = "unknown"
)

// Workload generates operations, reads the final state and checks it.
type Workload interface {
	// Name is the workload's registered name.
	Name() string
	// Run runs env.Clients concurrent clients until ctx ends and waits
	// for them.
	Run(ctx context.Context, env *Env) error
	// Final reads the final state, after the cluster has healed.
	Final(ctx context.Context, env *Env) error
	// Check checks everything recorded and writes its artifacts to
	// env.Dir.
	Check(env *Env) CheckResult
}

// ErrNotImplemented is returned by the workloads that need transactions.
var ErrNotImplemented = errors.New("jepsen: not implemented until transactions land")

var registry = struct {
	sync.Mutex
	m map[string]func() (Workload, error)
}{m: map[string]func() (Workload, error){
	"register":    func() (Workload, error) { return &Register{}, nil },
	"set":         func() (Workload, error) { return &Set{}, nil },
	"bank":        notYet("bank"),
	"list-append": notYet("list-append"),
}}

func notYet(name string) func() (Workload, error) {
	return func() (Workload, error) {
		return nil, fmt.Errorf("jepsen: workload %s: %w (it needs multi-key transactions; register it with RegisterWorkload)", name, ErrNotImplemented)
	}
}

// RegisterWorkload registers (or replaces) the workload name. The
// transactions work fills in bank and list-append with it.
func RegisterWorkload(name string, f func() (Workload, error)) {
	registry.Lock()
	defer registry.Unlock()
	registry.m[name] = f
}

// NewWorkload returns the registered workload name.
func NewWorkload(name string) (Workload, error) {
	registry.Lock()
	f, ok := registry.m[name]
	registry.Unlock()
	if !ok {
		return nil, fmt.Errorf("jepsen: unknown workload %q (known: %v)", name, WorkloadNames())
	}
	return f()
}

// WorkloadNames lists the registered workloads.
func WorkloadNames() []string {
	registry.Lock()
	defer registry.Unlock()
	return slices.Sorted(maps.Keys(registry.m))
}

// runClients runs f for clients 0..n-1 concurrently and waits for them. A
// panic in a client is returned as an error rather than crashing the
// harness with nodes and rules left behind.
func runClients(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Errorf("jepsen: client %d panicked: %v", i, r)
				}
			}()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
