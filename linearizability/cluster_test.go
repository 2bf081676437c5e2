package linearizability_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
	"github.com/strata-kv/strata/linearizability"
	"github.com/strata-kv/strata/transport/faultnet"
)

// classify maps the embedded API's errors to what they mean for a history.
func classify(err error) linearizability.ErrorClass {
	switch {
	case errors.Is(err, strata.ErrNotFound):
		return linearizability.NotFound
	case errors.Is(err, strata.ErrAmbiguous):
		return linearizability.Ambiguous
	default:
		// Validation, closed DB, and deadlines reached while retrying
		// definite failures (no leader, dropped proposals, requests not
		// sent): the write certainly did not happen.
		return linearizability.Definite
	}
}

// chaosConfig is one randomized run.
type chaosConfig struct {
	nodes, shards, clients, keys int
	duration                     time.Duration
	seed                         uint64
	nemesis                      bool
	unsafeReads                  bool
}

// seeds returns the seeds to run: STRATA_SEED=<n> runs exactly that one;
// otherwise STRATA_SEEDS (default def) seeds from a random start.
func seeds(t *testing.T, def int) []uint64 {
	if s := os.Getenv("STRATA_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STRATA_SEED=%q: %v", s, err)
		}
		return []uint64{seed}
	}
	n := def
	if s := os.Getenv("STRATA_SEEDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("STRATA_SEEDS=%q: want a positive count", s)
		}
	}
	start := rand.Uint64() % 1_000_000
	out := make([]uint64, n)
	for i := range out {
		out[i] = start + uint64(i)
	}
	return out
}

// router is a linearizability.Client that sends each call to a random
// live node of the cluster.
type router struct {
	mu  *sync.Mutex
	c   *testcluster.Cluster
	rng *rand.Rand
}

func (r *router) pick() (*strata.DB, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.c.Live()
	if len(live) == 0 {
		return nil, strata.ErrClosed
	}
	return r.c.DB(live[r.rng.IntN(len(live))]), nil
}

func (r *router) Get(ctx context.Context, key []byte) ([]byte, error) {
	db, err := r.pick()
	if err != nil {
		return nil, err
	}
	return db.Get(ctx, key)
}

func (r *router) Put(ctx context.Context, key, value []byte) error {
	db, err := r.pick()
	if err != nil {
		return err
	}
	return db.Put(ctx, key, value)
}

func (r *router) Delete(ctx context.Context, key []byte) error {
	db, err := r.pick()
	if err != nil {
		return err
	}
	return db.Delete(ctx, key)
}

func (r *router) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	db, err := r.pick()
	if err != nil {
		return false, err
	}
	return db.CompareAndSwap(ctx, key, old, new)
}

// runChaos runs concurrent clients against a cluster under the nemesis,
// heals everything, reads every key through every node, and checks the
// whole history.
func runChaos(t *testing.T, cfg chaosConfig) linearizability.Result {
	t.Helper()
	t.Logf("seed %d (reproduce with STRATA_SEED=%d)", cfg.seed, cfg.seed)
	net := faultnet.New(cfg.seed)
	defer net.Close()
	var mu sync.Mutex // guards the cluster's node set against the nemesis
	c := testcluster.StartFaulty(t, cfg.nodes, strata.Options{
		Shards:           cfg.shards,
		LogRetain:        100, // small, so crashed nodes catch up by snapshot
		UnsafeLocalReads: cfg.unsafeReads,
	}, net)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}

	rec := linearizability.NewRecorder(classify)
	keys := make([][]byte, cfg.keys)
	for i := range keys {
		// Spread the keys over the shards by their first byte.
		keys[i] = []byte(fmt.Sprintf("%c-key-%d", byte(i*256/cfg.keys), i))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < cfg.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(i)))
			cl := rec.Client(i, &router{mu: &mu, c: c, rng: rng})
			last := map[string][]byte{}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				key := keys[rng.IntN(len(keys))]
				val := []byte(fmt.Sprintf("c%d-%d", i, n)) // unique per write
				opCtx, opCancel := context.WithTimeout(ctx, 500*time.Millisecond)
				switch p := rng.IntN(100); {
				case p < 40:
					if v, err := cl.Get(opCtx, key); err == nil {
						last[string(key)] = v
					}
				case p < 70:
					_ = cl.Put(opCtx, key, val)
				case p < 80:
					_ = cl.Delete(opCtx, key)
				default:
					_, _ = cl.CompareAndSwap(opCtx, key, last[string(key)], val)
				}
				opCancel()
			}
		}()
	}

	// The nemesis: a new fault every few hundred milliseconds.
	nrng := rand.New(rand.NewPCG(cfg.seed, 0xfa17))
	deadline := time.Now().Add(cfg.duration)
	var crashed []uint64
	restartAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range crashed {
			c.Restart(id)
		}
		crashed = nil
	}
	for cfg.nemesis && time.Now().Before(deadline) {
		time.Sleep(time.Duration(200+nrng.IntN(400)) * time.Millisecond)
		net.Heal()
		restartAll()
		ids := c.IDs()
		switch nrng.IntN(5) {
		case 0: // random halves
			nrng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			cut := 1 + nrng.IntN(len(ids)-1)
			net.Partition(ids[:cut], ids[cut:])
		case 1: // isolate one node
			k := nrng.IntN(len(ids))
			net.Partition(ids[k:k+1], append(append([]uint64(nil), ids[:k]...), ids[k+1:]...))
		case 2: // one-way link
			a, b := ids[nrng.IntN(len(ids))], ids[nrng.IntN(len(ids))]
			if a != b {
				net.BlockOneWay(a, b)
			}
		case 3: // lossy, slow, duplicating, reordering network
			net.SetFaults(0.2, 0.1, 20*time.Millisecond)
		case 4: // crash a node; it restarts at the next step
			id := ids[nrng.IntN(len(ids))]
			mu.Lock()
			c.Crash(id)
			mu.Unlock()
			crashed = append(crashed, id)
		}
		t.Logf("%s nemesis: %s, crashed %v", time.Now().Format("15:04:05.000"), net.Describe(), crashed)
	}
	if !cfg.nemesis {
		time.Sleep(cfg.duration)
	}
	net.Heal()
	restartAll()
	// Let the clients run on the healed cluster for a moment, then stop.
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	// Final reads of every key through every node are part of the history:
	// they must agree with the model.
	for _, id := range c.Live() {
		cl := rec.Client(1000+int(id), c.DB(id))
		for _, k := range keys {
			if _, err := cl.Get(ctx, k); err != nil && !errors.Is(err, strata.ErrNotFound) {
				t.Fatalf("final read of %q on node %d: %v", k, id, err)
			}
		}
	}
	if !cfg.unsafeReads {
		if err := c.WaitConverged(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := rec.History()
	res := linearizability.Check(h, linearizability.CheckOptions{Timeout: 2 * time.Minute, VisualizeDir: t.TempDir()})
	share := 0.0
	if res.Ops > 0 {
		share = float64(res.Indeterminate) / float64(res.Ops)
	}
	t.Logf("%v; %.1f%% indeterminate; network %+v", res, 100*share, net.Stats())
	if res.Verdict != linearizability.Ok {
		path := fmt.Sprintf("%s/history-seed-%d.json", t.TempDir(), cfg.seed)
		if err := h.Save(path); err == nil {
			t.Logf("history saved to %s", path)
		}
	}
	return res
}

// TestRandomizedClusters checks, with faults active, that every history of
// a 3-node and a 5-node cluster is linearizable.
func TestRandomizedClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized cluster runs take seconds each")
	}
	for _, nodes := range []int{3, 5} {
		for _, seed := range seeds(t, 2) {
			t.Run(fmt.Sprintf("nodes=%d/seed=%d", nodes, seed), func(t *testing.T) {
				res := runChaos(t, chaosConfig{nodes: nodes, shards: 3, clients: 8, keys: 6,
					duration: 4 * time.Second, seed: seed, nemesis: true})
				if res.Verdict != linearizability.Ok {
					t.Fatalf("not linearizable (seed %d):\n%s\nvisualisation: %s", seed, res.Summary, res.VisualizationPath)
				}
			})
		}
	}
}

// TestUnsafeLocalReadsAreCaught proves the checker can fail: with reads
// served from local state without ReadIndex, the tests must report a
// violation within a few seeds.
func TestUnsafeLocalReadsAreCaught(t *testing.T) {
	const maxSeeds = 5
	for i, seed := range seeds(t, maxSeeds) {
		res := runChaos(t, chaosConfig{nodes: 3, shards: 2, clients: 8, keys: 4,
			duration: 3 * time.Second, seed: seed, nemesis: true, unsafeReads: true})
		if res.Verdict == linearizability.Illegal {
			t.Logf("unsafe local reads caught on seed %d after %d run(s):\n%s", seed, i+1, res.Summary)
			return
		}
	}
	t.Fatalf("unsafe local reads were not caught in %d seeds", maxSeeds)
}
