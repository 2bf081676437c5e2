package tso

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// heldFetcher holds each fetch until the test sends the first timestamp to
// answer with.
type heldFetcher struct {
	calls   chan int // gets n when a fetch starts
	release chan Timestamp
}

func newHeldFetcher() *heldFetcher {
	return &heldFetcher{calls: make(chan int, 100), release: make(chan Timestamp)}
}

func (f *heldFetcher) Fetch(ctx context.Context, n int) (Timestamp, error) {
	f.calls <- n
	select {
	case ts := <-f.release:
		return ts, nil
	case <-ctx.Done():
		return Zero, ctx.Err()
	}
}

// waitPending waits until n requests wait for the next fetch.
func waitPending(t *testing.T, ctx context.Context, c *Client, n int) {
	t.Helper()
	for {
		c.mu.Lock()
		got := len(c.mu.pending)
		c.mu.Unlock()
		if got >= n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%d requests pending, want %d: %v", got, n, ctx.Err())
		}
		runtime.Gosched()
	}
}

// TestClientCoalesces checks that callers arriving during a fetch are
// served together by the next fetch, which asks for one timestamp each.
func TestClientCoalesces(t *testing.T) {
	ctx := testContext(t)
	f := newHeldFetcher()
	c := NewClient(f)
	defer c.Close()
	const callers = 100
	got := make(chan Timestamp, callers)
	var wg sync.WaitGroup
	get := func() {
		defer wg.Done()
		ts, err := c.Get(ctx)
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		got <- ts
	}
	wg.Add(1)
	go get()
	if n := <-f.calls; n != 1 {
		t.Fatalf("first fetch asked for %d", n)
	}
	wg.Add(callers - 1)
	for range callers - 1 {
		go get()
	}
	waitPending(t, ctx, c, callers-1)
	f.release <- 1000
	if n := <-f.calls; n != callers-1 {
		t.Fatalf("second fetch asked for %d, want %d", n, callers-1)
	}
	f.release <- 2000
	wg.Wait()
	close(got)
	var all []Timestamp
	for ts := range got {
		all = append(all, ts)
	}
	slices.Sort(all)
	want := []Timestamp{1000}
	for i := range callers - 1 {
		want = append(want, 2000+Timestamp(i))
	}
	if !slices.Equal(all, want) {
		t.Fatalf("timestamps %v, want %v", all, want)
	}
	if len(f.calls) != 0 {
		t.Fatalf("%d more fetches than 2 for %d callers", len(f.calls), callers)
	}
}

// TestClientOverOracle runs many callers over a real oracle: every
// timestamp is unique, each caller's rise, and there are no more fetches
// than callers.
func TestClientOverOracle(t *testing.T) {
	ctx := testContext(t)
	o := openOracle(t, ctx, &memPersister{}, newManualClock())
	var fetches atomic.Int64
	c := NewClient(FetcherFunc(func(ctx context.Context, n int) (Timestamp, error) {
		fetches.Add(1)
		return o.Next(ctx, n)
	}))
	defer c.Close()
	const callers, calls = 50, 40
	got := make([][]Timestamp, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for range calls {
				ts, err := c.Get(ctx)
				if err != nil {
					t.Errorf("Get: %v", err)
					return
				}
				if n := len(got[i]); n > 0 && ts <= got[i][n-1] {
					t.Errorf("caller %d: %v after %v", i, ts, got[i][n-1])
				}
				got[i] = append(got[i], ts)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(got...)
	slices.Sort(all)
	if len(slices.Compact(all)) != callers*calls {
		t.Fatalf("timestamps not unique")
	}
	t.Logf("%d Gets in %d fetches", callers*calls, fetches.Load())
	if fetches.Load() > callers*calls {
		t.Fatalf("%d fetches for %d Gets", fetches.Load(), callers*calls)
	}
}

// TestClientCallerGivesUp checks that a caller whose context ends returns,
// that a fetch nobody waits for any more is cancelled, and that the next
// caller is served by a new fetch.
func TestClientCallerGivesUp(t *testing.T) {
	ctx := testContext(t)
	f := newHeldFetcher()
	c := NewClient(f)
	defer c.Close()
	short, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(short)
		errc <- err
	}()
	<-f.calls
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want context.Canceled", err)
	}
	// The held fetch was cancelled, so a new caller starts a new one.
	tsc := make(chan Timestamp, 1)
	go func() {
		ts, err := c.Get(ctx)
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		tsc <- ts
	}()
	if n := <-f.calls; n != 1 {
		t.Fatalf("fetch asked for %d", n)
	}
	f.release <- 7
	if ts := <-tsc; ts != 7 {
		t.Fatalf("Get = %v, want 7", ts)
	}
}

func TestClientRefusesGoingBack(t *testing.T) {
	ctx := testContext(t)
	next := Timestamp(100)
	c := NewClient(FetcherFunc(func(ctx context.Context, n int) (Timestamp, error) { return next, nil }))
	defer c.Close()
	if ts, err := c.Get(ctx); err != nil || ts != 100 {
		t.Fatalf("Get = %v, %v", ts, err)
	}
	if _, err := c.Get(ctx); !errors.Is(err, ErrWentBack) {
		t.Fatalf("Get of a repeated timestamp = %v, want ErrWentBack", err)
	}
}

func TestClientClose(t *testing.T) {
	ctx := testContext(t)
	f := newHeldFetcher()
	c := NewClient(f)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx)
		errc <- err
	}()
	<-f.calls
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Get during Close = %v, want ErrClosed", err)
	}
	if _, err := c.Get(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
}

// TestClientGetN: requests for several timestamps share a fetch with
// single ones, each gets its own consecutive run, and a count out of range
// is refused.
func TestClientGetN(t *testing.T) {
	ctx := testContext(t)
	f := newHeldFetcher()
	c := NewClient(f)
	defer c.Close()
	if _, err := c.GetN(ctx, 0); err == nil {
		t.Fatal("GetN(0) succeeded")
	}
	if _, err := c.GetN(ctx, MaxBatch+1); err == nil {
		t.Fatal("GetN(MaxBatch+1) succeeded")
	}
	first := make(chan Timestamp, 1)
	go func() {
		ts, _ := c.Get(ctx)
		first <- ts
	}()
	<-f.calls // a fetch in flight: the next callers wait for the next one
	type res struct {
		n  int
		ts Timestamp
	}
	out := make(chan res, 3)
	var wg sync.WaitGroup
	for _, n := range []int{5, 1, 3} {
		wg.Go(func() {
			ts, err := c.GetN(ctx, n)
			if err != nil {
				t.Errorf("GetN(%d): %v", n, err)
			}
			out <- res{n, ts}
		})
	}
	waitPending(t, ctx, c, 3)
	f.release <- 100
	if n := <-f.calls; n != 9 {
		t.Fatalf("second fetch asked for %d timestamps, want 9", n)
	}
	f.release <- 200
	wg.Wait()
	close(out)
	if ts := <-first; ts != 100 {
		t.Fatalf("Get = %v, want 100", ts)
	}
	used := map[Timestamp]bool{}
	for r := range out {
		for i := range r.n {
			ts := r.ts + Timestamp(i)
			if ts < 200 || ts >= 209 || used[ts] {
				t.Fatalf("GetN(%d) = %v: %v outside [200, 209) or shared", r.n, r.ts, ts)
			}
			used[ts] = true
		}
	}
}
