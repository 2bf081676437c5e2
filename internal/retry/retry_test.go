package retry

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock whose timers fire at once, moving its time forward
// by the wait, or, if held, never fire. It records every wait.
type fakeClock struct {
	held    bool
	waiting chan time.Duration // if not nil, gets each wait as it starts
	mu      struct {
		sync.Mutex
		now   time.Time
		waits []time.Duration
	}
}

type fakeTimer struct{ c chan time.Time }

func (t fakeTimer) C() <-chan time.Time { return t.c }
func (t fakeTimer) Stop() bool          { return true }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.waits = append(c.mu.waits, d)
	t := fakeTimer{make(chan time.Time, 1)}
	if !c.held {
		c.mu.now = c.mu.now.Add(d)
		t.c <- c.mu.now
	}
	if c.waiting != nil {
		c.waiting <- d
	}
	return t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.now = c.mu.now.Add(d)
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.mu.waits)
}

func ms(n ...int) []time.Duration {
	var ds []time.Duration
	for _, v := range n {
		ds = append(ds, time.Duration(v)*time.Millisecond)
	}
	return ds
}

func TestRetrierCurve(t *testing.T) {
	clock := &fakeClock{}
	opts := Options{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2,
		Jitter: NoJitter, MaxAttempts: 6, Clock: clock}
	r := Start(t.Context(), opts)
	attempts := 0
	for r.Next() {
		attempts++
		if r.Attempt() != attempts {
			t.Fatalf("Attempt = %d during attempt %d", r.Attempt(), attempts)
		}
	}
	if attempts != 6 || !errors.Is(r.Err(), ErrExhausted) {
		t.Fatalf("%d attempts, Err %v; want 6, ErrExhausted", attempts, r.Err())
	}
	if got, want := clock.waits(), ms(10, 20, 40, 50, 50); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	if r.Next() {
		t.Fatal("Next after the loop stopped")
	}
}

func TestRetrierJitter(t *testing.T) {
	clock := &fakeClock{}
	r := Start(t.Context(), Options{Initial: 100 * time.Millisecond, Multiplier: 1, Jitter: 0.5,
		MaxAttempts: 201, Clock: clock})
	for r.Next() {
	}
	waits := clock.waits()
	for _, d := range waits {
		if d < 50*time.Millisecond || d > 150*time.Millisecond+1 {
			t.Fatalf("wait %v outside 100ms ± 50%%", d)
		}
	}
	if slices.Min(waits) == slices.Max(waits) {
		t.Fatalf("200 jittered waits all %v", waits[0])
	}
	// The default jitter is on.
	clock = &fakeClock{}
	r = Start(t.Context(), Options{Initial: 100 * time.Millisecond, Multiplier: 1, MaxAttempts: 51, Clock: clock})
	for r.Next() {
	}
	if waits := clock.waits(); slices.Min(waits) == slices.Max(waits) {
		t.Fatalf("default options: 50 waits all %v, want jitter", waits[0])
	}
}

func TestRetrierFirstAttemptAtOnce(t *testing.T) {
	clock := &fakeClock{held: true}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := Start(ctx, Options{Clock: clock})
	if !r.Next() {
		t.Fatal("first Next returned false")
	}
	if r.Next() || !errors.Is(r.Err(), context.Canceled) {
		t.Fatalf("second Next under a cancelled context: Err %v", r.Err())
	}
	if len(clock.waits()) != 0 {
		t.Fatalf("waited %v", clock.waits())
	}
}

// TestRetrierStops checks that a wait ends when the context ends or the
// closer closes.
func TestRetrierStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		want error
	}{{"context", context.Canceled}, {"closer", ErrClosed}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{held: true, waiting: make(chan time.Duration, 1)}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			closer := make(chan struct{})
			r := Start(ctx, Options{Clock: clock, Closer: closer})
			r.Next()
			done := make(chan bool)
			go func() { done <- r.Next() }()
			<-clock.waiting
			if tc.want == ErrClosed {
				close(closer)
			} else {
				cancel()
			}
			if <-done || !errors.Is(r.Err(), tc.want) {
				t.Fatalf("Err = %v, want %v", r.Err(), tc.want)
			}
		})
	}
}

func TestRetrierMaxElapsed(t *testing.T) {
	clock := &fakeClock{}
	r := Start(t.Context(), Options{Initial: 100 * time.Millisecond, Multiplier: 1, Jitter: NoJitter,
		MaxElapsed: 330 * time.Millisecond, Clock: clock})
	attempts := 0
	for r.Next() {
		attempts++
		clock.advance(10 * time.Millisecond) // the attempt's own time counts
	}
	if got, want := clock.waits(), ms(100, 100, 100); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	if attempts != 4 || !errors.Is(r.Err(), ErrExhausted) {
		t.Fatalf("%d attempts, Err %v; want 4, ErrExhausted", attempts, r.Err())
	}
}

func TestRetrierReset(t *testing.T) {
	clock := &fakeClock{}
	r := Start(t.Context(), Options{Initial: time.Millisecond, Jitter: NoJitter, MaxAttempts: 5, Clock: clock})
	for r.Next() {
		if r.Attempt() == 3 {
			r.Reset()
		}
	}
	if got, want := clock.waits(), ms(1, 2, 1, 2); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
}

var errFlaky = errors.New("flaky")

func TestDo(t *testing.T) {
	opts := Options{Clock: &fakeClock{}, MaxAttempts: 5}
	calls := 0
	err := Do(t.Context(), opts, func(ctx context.Context) error {
		if calls++; calls < 3 {
			return errFlaky
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls; want nil after 3", err, calls)
	}

	calls = 0
	err = Do(t.Context(), opts, func(ctx context.Context) error { calls++; return errFlaky })
	if calls != 5 || !errors.Is(err, errFlaky) || !errors.Is(err, ErrExhausted) {
		t.Fatalf("Do = %v after %d calls; want flaky and exhausted after 5", err, calls)
	}

	calls = 0
	err = Do(t.Context(), opts, func(ctx context.Context) error { calls++; return Permanent(errFlaky) })
	if calls != 1 || err != errFlaky {
		t.Fatalf("Do = %v after %d calls; want the permanent error itself after 1", err, calls)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	if err := (Options{Jitter: NoJitter}).Validate(); err != nil {
		t.Fatalf("NoJitter: %v", err)
	}
	for _, o := range []Options{{Initial: -1}, {Multiplier: 0.5}, {Jitter: 2}, {MaxAttempts: -1}} {
		if o.Validate() == nil {
			t.Errorf("Validate accepted %+v", o)
		}
		// Start still works, on defaults.
		clock := &fakeClock{}
		o.Clock, o.MaxAttempts = clock, 3
		for r := Start(t.Context(), o); r.Next(); {
		}
		if len(clock.waits()) != 2 {
			t.Errorf("%+v: waits %v", o, clock.waits())
		}
	}
}
