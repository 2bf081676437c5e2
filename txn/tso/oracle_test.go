package tso

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openOracle(t *testing.T, ctx context.Context, p Persister, clock Clock) *Oracle {
	t.Helper()
	o, err := Open(ctx, p, OracleOptions{Clock: clock, Window: 3 * time.Second, RenewBefore: time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// TestOracleModel runs a seeded random sequence of batches, wall clock jumps
// both ways, save failures and oracle restarts (with Close, and abandoned as
// after a SIGKILL), and checks every batch against the rule: above every
// timestamp handed out before, at or above the wall clock, below the
// persisted limit.
func TestOracleModel(t *testing.T) {
	ctx := testContext(t)
	rng := testRand(t)
	clock := newManualClock()
	p := &memPersister{}
	opts := OracleOptions{Clock: clock, Window: 3 * time.Second, RenewBefore: time.Second}
	o := openOracle(t, ctx, p, clock)
	var last Timestamp // highest timestamp handed out by any oracle
	var batches, failures, restarts int
	for range 5000 {
		switch r := rng.IntN(100); {
		case r < 55:
			n := 1 + rng.IntN(300)
			if rng.IntN(50) == 0 {
				n = MaxBatch
			}
			wall := FromTime(clock.Now())
			first, err := o.Next(ctx, n)
			if err != nil {
				if !errors.Is(err, errInjected) {
					t.Fatalf("Next(%d): %v", n, err)
				}
				failures++
				continue
			}
			batches++
			end := first + Timestamp(n) - 1
			switch {
			case first <= last:
				t.Fatalf("batch %v..%v not above %v", first, end, last)
			case first < wall:
				t.Fatalf("batch %v below the wall clock %v", first, wall)
			case end >= p.limit():
				t.Fatalf("batch %v..%v not below the persisted limit %v", first, end, p.limit())
			}
			last = end
		case r < 75:
			clock.Advance(time.Duration(rng.IntN(50)) * time.Millisecond)
		case r < 85:
			clock.Advance(-time.Duration(rng.IntN(10_000)) * time.Millisecond)
		case r < 92:
			clock.Advance(time.Duration(rng.IntN(20_000)) * time.Millisecond)
		case r < 95:
			p.mu.Lock()
			p.mu.failNext = 1 + rng.IntN(2)
			p.mu.Unlock()
		default:
			restarts++
			if rng.IntN(2) == 0 {
				o.Close()
			} // else abandoned, as if the process was killed; cleanup closes it
			var err error
			for o, err = Open(ctx, p, opts); err != nil; o, err = Open(ctx, p, opts) {
				if !errors.Is(err, errInjected) {
					t.Fatalf("Open: %v", err)
				}
				failures++
			}
			t.Cleanup(func() { o.Close() })
			if got := o.Last(); got < last {
				t.Fatalf("reopened oracle's Last %v below %v", got, last)
			}
		}
	}
	p.mu.Lock()
	saves := p.mu.saves
	p.mu.Unlock()
	t.Logf("%d batches, %d failed saves seen, %d restarts, %d saves", batches, failures, restarts, saves)
}

// TestOracleConcurrent has workers take batches while the wall clock jumps
// and the oracle restarts, and checks real-time order (a batch taken after
// another was acknowledged is above it) and that no two batches overlap.
func TestOracleConcurrent(t *testing.T) {
	ctx := testContext(t)
	rng := testRand(t)
	clock := newManualClock()
	p := &memPersister{}
	var cur struct {
		sync.RWMutex // held for reading during Next, for writing to restart
		o            *Oracle
	}
	cur.o = openOracle(t, ctx, p, clock)
	var acked atomic.Uint64 // highest timestamp acknowledged to a worker
	type batch struct{ first, end Timestamp }
	const workers, calls = 4, 400
	got := make([][]batch, workers)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < calls; i++ {
				n := 1 + i%7
				before := Timestamp(acked.Load())
				cur.RLock()
				first, err := cur.o.Next(ctx, n)
				cur.RUnlock()
				if err != nil {
					t.Errorf("worker %d: Next: %v", w, err)
					return
				}
				if first <= before {
					t.Errorf("worker %d: batch at %v not above %v, acknowledged before it began", w, first, before)
					return
				}
				end := first + Timestamp(n) - 1
				got[w] = append(got[w], batch{first, end})
				for a := acked.Load(); a < uint64(end) && !acked.CompareAndSwap(a, uint64(end)); a = acked.Load() {
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	var steps, restarts int
	for running := true; running; steps++ {
		select {
		case <-done:
			running = false
		default:
		}
		switch rng.IntN(4) {
		case 0:
			clock.Advance(-time.Duration(rng.IntN(5000)) * time.Millisecond)
		case 1:
			clock.Advance(time.Duration(rng.IntN(5000)) * time.Millisecond)
		case 2:
			clock.Advance(time.Millisecond)
		case 3:
			restarts++
			cur.Lock()
			cur.o.Close()
			cur.o = openOracle(t, ctx, p, clock)
			cur.Unlock()
		}
	}
	all := slices.Concat(got...)
	t.Logf("%d batches during %d clock moves and restarts (%d restarts)", len(all), steps, restarts)
	slices.SortFunc(all, func(a, b batch) int { return cmp.Compare(a.first, b.first) })
	for i := 1; i < len(all); i++ {
		if all[i].first <= all[i-1].end {
			t.Fatalf("batches overlap: %v..%v and %v..%v", all[i-1].first, all[i-1].end, all[i].first, all[i].end)
		}
	}
}

// TestOracleRenewsInBackground checks that the common path does not wait
// for a save, that at most one save runs at a time, and that no batch is
// handed out at or above the persisted limit while the save is held up.
func TestOracleRenewsInBackground(t *testing.T) {
	ctx := testContext(t)
	clock := newManualClock()
	p := &memPersister{}
	o := openOracle(t, ctx, p, clock)
	limit := p.limit()
	gate, started := make(chan struct{}), make(chan struct{}, 10)
	p.mu.Lock()
	p.mu.gate, p.mu.started = gate, started
	p.mu.Unlock()

	if _, err := o.Next(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2500 * time.Millisecond) // 500 ms of the window left
	for range 10 {
		if _, err := o.Next(ctx, 100); err != nil { // returns although the save is held
			t.Fatal(err)
		}
	}
	<-started
	clock.Advance(time.Second) // past the limit
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if ts, err := o.Next(cancelled, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next past the limit %v while the save is held = %v, %v; want to wait", limit, ts, err)
	}
	p.mu.Lock()
	saves, maxIn := p.mu.saves, p.mu.maxIn
	p.mu.Unlock()
	if saves != 2 || maxIn != 1 {
		t.Fatalf("saves = %d (want 2: Open and one renewal), most at once = %d (want 1)", saves, maxIn)
	}
	close(gate)
	first, err := o.Next(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if first < FromTime(clock.Now()) || first >= p.limit() || p.limit() <= limit {
		t.Fatalf("after the save: %v with limit %v (was %v), wall %v", first, p.limit(), limit, FromTime(clock.Now()))
	}
}

// TestOracleClockBackwards checks that after the wall clock jumps back the
// logical counter keeps timestamps rising, and carries into the physical
// part when full.
func TestOracleClockBackwards(t *testing.T) {
	ctx := testContext(t)
	clock := newManualClock()
	o := openOracle(t, ctx, &memPersister{}, clock)
	prev, err := o.Next(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	start := prev
	clock.Advance(-10 * time.Second)
	for range 5 { // 5 × 65536 logical ticks pass 2^18
		first, err := o.Next(ctx, MaxBatch)
		if err != nil {
			t.Fatal(err)
		}
		if first != prev+1 {
			t.Fatalf("after a backward jump got %v, want %v", first, prev+1)
		}
		prev = first + MaxBatch - 1
	}
	if prev.Physical() != start.Physical()+1 {
		t.Fatalf("logical overflow: got %v, want physical %d", prev, start.Physical()+1)
	}
}

// TestOracleStartsAboveLimit checks that a new oracle starts above a saved
// limit far ahead of its wall clock (a previous leader's clock ran fast).
func TestOracleStartsAboveLimit(t *testing.T) {
	ctx := testContext(t)
	clock := newManualClock()
	p := &memPersister{}
	saved := FromTime(clock.Now().Add(time.Hour)) + 42
	p.mu.limit = saved
	o := openOracle(t, ctx, p, clock)
	first, err := o.Next(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if first != saved+1 {
		t.Fatalf("first = %v, want %v", first, saved+1)
	}
}

func TestOracleErrors(t *testing.T) {
	ctx := testContext(t)
	if _, err := Open(ctx, &memPersister{}, OracleOptions{Window: time.Second, RenewBefore: time.Second}); err == nil {
		t.Fatal("Open accepted RenewBefore = Window")
	}
	p := &memPersister{}
	p.mu.failNext = 1
	if _, err := Open(ctx, p, OracleOptions{}); !errors.Is(err, errInjected) {
		t.Fatalf("Open with a failing save = %v", err)
	}
	o := openOracle(t, ctx, p, newManualClock())
	for _, n := range []int{0, -1, MaxBatch + 1} {
		if _, err := o.Next(ctx, n); !errors.Is(err, ErrBatchSize) {
			t.Fatalf("Next(%d) = %v", n, err)
		}
	}
	o.Close()
	if _, err := o.Next(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
}

// TestOracleCloseWhileWaiting checks that a batch waiting for a save ends
// with ErrClosed when the oracle closes.
func TestOracleCloseWhileWaiting(t *testing.T) {
	ctx := testContext(t)
	clock := newManualClock()
	p := &memPersister{}
	o := openOracle(t, ctx, p, clock)
	started := make(chan struct{}, 1)
	p.mu.Lock()
	p.mu.gate, p.mu.started = make(chan struct{}), started
	p.mu.Unlock()
	clock.Advance(time.Minute) // past the limit
	errc := make(chan error, 1)
	go func() {
		_, err := o.Next(ctx, 1)
		errc <- err
	}()
	<-started
	o.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next during Close = %v, want ErrClosed", err)
	}
}
