package main

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency bounds of the histograms, in microseconds, and their precision.
const (
	histMin    = 1
	histMax    = 120_000_000 // 2 minutes
	histDigits = 3
)

// Operation kinds, the keys of Result.PerOp.
const (
	opRead   = "read"
	opUpdate = "update"
	opScan   = "scan"
	opBatch  = "batch"
	opRMW    = "read-modify-write"
)

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
		Mean:  h.Mean() / 1000,
	}
}

// Result is what a run measured.
type Result struct {
	Label     string   `json:"label"`
	System    string   `json:"system"`
	Workload  string   `json:"workload"`
	Endpoints []string `json:"endpoints"`
	ReadLevel string   `json:"read_level,omitempty"`
	ReadRatio float64  `json:"read_ratio,omitempty"`
	Mode      string   `json:"mode"` // "closed" or "open"
	// OfferedRate is the open-loop rate, operations per second.
	OfferedRate float64 `json:"offered_rate,omitempty"`
	Clients     int     `json:"clients"`
	Conns       int     `json:"conns"`
	KeySpace    int64   `json:"key_space"`
	KeySize     int     `json:"key_size"`
	ValueSize   int     `json:"value_size"`
	Dist        string  `json:"dist"`
	BatchSize   int     `json:"batch_size,omitempty"`
	HotKeys     int64   `json:"hot_keys,omitempty"`
	Seed        uint64  `json:"seed"`
	Start       string  `json:"start"`

	ElapsedSec float64 `json:"elapsed_s"`
	// Ops counts the operations that succeeded; Errors the failed ones,
	// by kind.
	Ops        int64            `json:"ops"`
	OpsPerSec  float64          `json:"ops_per_sec"`
	KeysPerSec float64          `json:"keys_per_sec,omitempty"` // batch and load: keys written per second
	ErrorCount int64            `json:"error_count"`
	Errors     map[string]int64 `json:"errors"`
	// Latency of the operations that succeeded (open loop: from when each
	// was due).
	Latency Latency            `json:"latency"`
	PerOp   map[string]Latency `json:"per_op,omitempty"`
	// Misses are reads of absent keys (not errors). Swapped and NotSwapped
	// count cas outcomes.
	Misses      int64    `json:"misses,omitempty"`
	Swapped     int64    `json:"swapped,omitempty"`
	NotSwapped  int64    `json:"not_swapped,omitempty"`
	Interrupted bool     `json:"interrupted,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

// worker is one client's state; only its goroutine touches it until the
// run ends.
type worker struct {
	id      int
	t       target
	rng     *rand.Rand
	hists   map[string]*hdrhistogram.Histogram
	errs    map[string]int64
	misses  int64
	swapped int64
	noswap  int64
	keys    int64 // keys written by batch and load
	valbuf  []byte
	seq     uint64
	keybuf  [][]byte
	idx     []int64
	seen    map[int64]struct{}
}

func (w *worker) record(op string, d time.Duration) {
	h := w.hists[op]
	if h == nil {
		h = hdrhistogram.New(histMin, histMax, histDigits)
		w.hists[op] = h
	}
	us := max(d.Microseconds(), histMin)
	_ = h.RecordValue(min(us, histMax)) // clamped: cannot fail
}

// value returns a value of n bytes, unique to this worker and call in
// its first 16 bytes (cas must write something new), random after.
func (w *worker) value(n int) []byte {
	w.seq++
	off := w.rng.IntN(len(w.valbuf) - n + 1)
	v := w.valbuf[off : off+n : off+n]
	v = append([]byte(nil), v...)
	binary.BigEndian.PutUint64(v[0:8], uint64(w.id))
	binary.BigEndian.PutUint64(v[8:16], w.seq)
	return v
}

// runner runs one Config against a set of targets.
type runner struct {
	cfg     *Config
	targets []target
	chooser keyChooser
	issued  atomic.Int64 // operations (open loop: slots) taken
	done    atomic.Int64 // operations finished, for the progress bar
	chunks  int64        // load: batches to write
}

func newRunner(cfg *Config, targets []target) (*runner, error) {
	ch, err := newChooser(cfg.Dist, cfg.KeySpace)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, targets: targets, chooser: ch}
	if cfg.Workload == "load" {
		b := int64(cfg.BatchSize)
		r.chunks = (cfg.KeySpace + b - 1) / b
	}
	return r, nil
}

// total is how many operations the run will do, or 0 if it is bounded by
// time.
func (r *runner) total() int64 {
	if r.cfg.Workload == "load" {
		return r.chunks
	}
	return r.cfg.Ops
}

// run runs the load until the operations or the duration are done or ctx
// ends, and returns the merged result.
func (r *runner) run(ctx context.Context) *Result {
	cfg := r.cfg
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	ws := make([]*worker, cfg.Clients)
	var wg sync.WaitGroup
	for i := range ws {
		w := &worker{
			id:    i,
			t:     r.targets[i%len(r.targets)],
			rng:   rand.New(rand.NewPCG(seed, uint64(i)+1)),
			hists: map[string]*hdrhistogram.Histogram{},
			errs:  map[string]int64{},
			seen:  map[int64]struct{}{},
		}
		w.valbuf = make([]byte, 2*cfg.ValueSize+64)
		for j := range w.valbuf {
			w.valbuf[j] = byte(w.rng.Uint32())
		}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, w, start, deadline)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return r.merge(ws, start, elapsed, seed, ctx.Err() != nil)
}

// loop is one client's run.
func (r *runner) loop(ctx context.Context, w *worker, start, deadline time.Time) {
	cfg := r.cfg
	total := r.total()
	for ctx.Err() == nil {
		slot := r.issued.Add(1) - 1
		if total > 0 && slot >= total {
			return
		}
		began := time.Now()
		if cfg.Rate > 0 {
			due := scheduledAt(start, cfg.Rate, slot)
			if total == 0 && !due.Before(deadline) {
				return
			}
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			began = due
		} else if total == 0 && !began.Before(deadline) {
			return
		}
		op, err := r.do(ctx, w, slot)
		if ctx.Err() != nil {
			return // interrupted: the last operation does not count
		}
		if err != nil {
			w.errs[errorKind(err)]++
		} else {
			w.record(op, time.Since(began))
		}
		r.done.Add(1)
	}
}

func (r *runner) key(w *worker, i int64) []byte {
	return encodeKey(make([]byte, 0, r.cfg.KeySize), i, r.cfg.KeySize)
}

// do runs one operation of the workload and returns its kind.
func (r *runner) do(ctx context.Context, w *worker, slot int64) (string, error) {
	cfg := r.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	switch cfg.Workload {
	case "put":
		return opUpdate, w.t.put(ctx, r.key(w, r.chooser.next(w.rng)), w.value(cfg.ValueSize))
	case "get":
		return opRead, r.read(ctx, w)
	case "mixed":
		if w.rng.Float64() < cfg.ReadRatio {
			return opRead, r.read(ctx, w)
		}
		return opUpdate, w.t.put(ctx, r.key(w, r.chooser.next(w.rng)), w.value(cfg.ValueSize))
	case "scan":
		if w.rng.Float64() < cfg.ScanRatio {
			_, err := w.t.scan(ctx, r.key(w, r.chooser.next(w.rng)), 1+w.rng.IntN(cfg.ScanLength))
			return opScan, err
		}
		return opUpdate, w.t.put(ctx, r.key(w, r.chooser.next(w.rng)), w.value(cfg.ValueSize))
	case "batch":
		if len(w.idx) != cfg.BatchSize {
			w.idx = make([]int64, cfg.BatchSize)
		}
		distinctKeys(w.rng, r.chooser, cfg.KeySpace, w.idx, w.seen)
		return opBatch, r.writeBatch(ctx, w, w.idx)
	case "load":
		b := int64(cfg.BatchSize)
		lo, hi := slot*b, min((slot+1)*b, cfg.KeySpace)
		w.idx = w.idx[:0]
		for i := lo; i < hi; i++ {
			w.idx = append(w.idx, i)
		}
		return opBatch, r.writeBatch(ctx, w, w.idx)
	case "cas":
		ok, err := w.t.readModifyWrite(ctx, r.key(w, w.rng.Int64N(cfg.HotKeys)), w.value(cfg.ValueSize))
		if err == nil {
			if ok {
				w.swapped++
			} else {
				w.noswap++
			}
		}
		return opRMW, err
	}
	panic("kvbench: unknown workload " + cfg.Workload) // validate checked it
}

func (r *runner) read(ctx context.Context, w *worker) error {
	found, err := w.t.get(ctx, r.key(w, r.chooser.next(w.rng)))
	if err == nil && !found {
		w.misses++
	}
	return err
}

func (r *runner) writeBatch(ctx context.Context, w *worker, idx []int64) error {
	keys := w.keybuf[:0]
	for _, i := range idx {
		keys = append(keys, r.key(w, i))
	}
	w.keybuf = keys
	err := w.t.batch(ctx, keys, w.value(r.cfg.ValueSize))
	if err == nil {
		w.keys += int64(len(keys))
	}
	return err
}

func (r *runner) merge(ws []*worker, start time.Time, elapsed time.Duration, seed uint64, interrupted bool) *Result {
	cfg := r.cfg
	res := &Result{
		Label: cfg.Label, System: cfg.System, Workload: cfg.Workload, Endpoints: cfg.Endpoints,
		Mode: "closed", Clients: cfg.Clients, Conns: cfg.Conns, KeySpace: cfg.KeySpace,
		KeySize: cfg.KeySize, ValueSize: cfg.ValueSize, Dist: cfg.Dist, Seed: seed,
		Start: start.UTC().Format(time.RFC3339), ElapsedSec: elapsed.Seconds(),
		Errors: map[string]int64{}, Interrupted: interrupted,
	}
	switch cfg.Workload {
	case "get", "mixed", "scan":
		res.ReadLevel = cfg.ReadLevel
	case "batch", "load":
		res.BatchSize = cfg.BatchSize
	case "cas":
		res.HotKeys = cfg.HotKeys
	}
	if cfg.Workload == "mixed" {
		res.ReadRatio = cfg.ReadRatio
	}
	if cfg.Rate > 0 {
		res.Mode, res.OfferedRate = "open", cfg.Rate
	}
	all := hdrhistogram.New(histMin, histMax, histDigits)
	per := map[string]*hdrhistogram.Histogram{}
	var keys int64
	for _, w := range ws {
		for op, h := range w.hists {
			all.Merge(h)
			if per[op] == nil {
				per[op] = hdrhistogram.New(histMin, histMax, histDigits)
			}
			per[op].Merge(h)
		}
		for k, n := range w.errs {
			res.Errors[k] += n
			res.ErrorCount += n
		}
		res.Misses += w.misses
		res.Swapped += w.swapped
		res.NotSwapped += w.noswap
		keys += w.keys
	}
	res.Ops = all.TotalCount()
	res.Latency = latencyOf(all)
	if len(per) > 1 {
		res.PerOp = map[string]Latency{}
		for op, h := range per {
			res.PerOp[op] = latencyOf(h)
		}
	}
	if s := elapsed.Seconds(); s > 0 {
		res.OpsPerSec = float64(res.Ops) / s
		if keys > 0 {
			res.KeysPerSec = float64(keys) / s
		}
	}
	if cfg.System == "strata" && cfg.Workload == "batch" {
		res.Notes = append(res.Notes, "a Strata batch is atomic per shard only (applied shard by shard); an etcd batch is one atomic Txn")
	}
	if cfg.Workload == "cas" {
		res.Notes = append(res.Notes, "each cas operation is a read then a compare-and-swap on what it read (etcd: Txn comparing the mod revision)")
	}
	if interrupted {
		res.Notes = append(res.Notes, "interrupted before the end of the run")
	}
	return res
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
