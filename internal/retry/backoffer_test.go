package retry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

var (
	causeA = Config{Name: "a", Options: Options{Initial: time.Millisecond, Jitter: NoJitter, MaxAttempts: 3}}
	causeB = Config{Name: "b", Options: Options{Initial: 10 * time.Millisecond, Jitter: NoJitter}}
)

// TestBackofferPerCause checks that each cause keeps its own curve and
// budget.
func TestBackofferPerCause(t *testing.T) {
	clock := &fakeClock{}
	bo := NewBackoffer(t.Context(), BackofferOptions{Clock: clock})
	for _, cfg := range []Config{causeA, causeA, causeB, causeA, causeB} {
		if err := bo.Backoff(cfg, errFlaky); err != nil {
			t.Fatalf("Backoff(%s): %v", cfg.Name, err)
		}
	}
	if got, want := clock.waits(), ms(1, 2, 10, 4, 20); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	err := bo.Backoff(causeA, errFlaky) // a's 4th: over its MaxAttempts
	if !errors.Is(err, ErrExhausted) || !errors.Is(err, errFlaky) {
		t.Fatalf("4th backoff of a = %v, want flaky and exhausted", err)
	}
	if err := bo.Backoff(causeB, errFlaky); err != nil {
		t.Fatalf("b after a ran out: %v", err)
	}
	if bo.Attempts(causeA) != 3 || bo.Attempts(causeB) != 3 || bo.Slept() != 77*time.Millisecond {
		t.Fatalf("state %s", bo)
	}
	if got, want := bo.String(), "a×3 b×3, slept 77ms"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	bo.Reset(causeB)
	if err := bo.Backoff(causeB, errFlaky); err != nil || clock.waits()[6] != 10*time.Millisecond {
		t.Fatalf("after Reset: %v, waits %v", err, clock.waits())
	}
}

func TestBackofferMaxSleep(t *testing.T) {
	clock := &fakeClock{}
	bo := NewBackoffer(t.Context(), BackofferOptions{MaxSleep: 25 * time.Millisecond, Clock: clock})
	var err error
	for err == nil {
		err = bo.Backoff(causeB, errFlaky)
	}
	if !errors.Is(err, ErrExhausted) || !errors.Is(err, errFlaky) {
		t.Fatalf("err = %v", err)
	}
	if got, want := clock.waits(), ms(10, 15); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v (the last one cut to the budget)", got, want)
	}
	// A cause's own time budget.
	clock = &fakeClock{}
	capped := Config{Name: "capped", Options: Options{Initial: 10 * time.Millisecond, Multiplier: 1,
		Jitter: NoJitter, MaxElapsed: 25 * time.Millisecond}}
	bo = NewBackoffer(t.Context(), BackofferOptions{Clock: clock})
	for err = nil; err == nil; {
		err = bo.Backoff(capped, errFlaky)
	}
	if got, want := clock.waits(), ms(10, 10, 5); !errors.Is(err, ErrExhausted) || !slices.Equal(got, want) {
		t.Fatalf("err %v, waits %v; want exhausted after %v", err, got, want)
	}
}

func TestBackofferStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		want error
	}{{"context", context.Canceled}, {"closer", ErrClosed}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{held: true, waiting: make(chan time.Duration, 1)}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			closer := make(chan struct{})
			bo := NewBackoffer(ctx, BackofferOptions{Closer: closer, Clock: clock})
			errc := make(chan error)
			go func() { errc <- bo.Backoff(RPC, errFlaky) }()
			<-clock.waiting
			if tc.want == ErrClosed {
				close(closer)
			} else {
				cancel()
			}
			if err := <-errc; !errors.Is(err, tc.want) || !errors.Is(err, errFlaky) {
				t.Fatalf("Backoff = %v, want %v and flaky", err, tc.want)
			}
			if err := bo.Backoff(RPC, errFlaky); !errors.Is(err, tc.want) {
				t.Fatalf("Backoff after stop = %v", err)
			}
		})
	}
}

// TestDefaultConfigs checks that the named causes have valid options.
func TestDefaultConfigs(t *testing.T) {
	for _, cfg := range []Config{ShardMiss, NotLeader, RPC, Oracle, TxnLock} {
		if err := cfg.Options.Validate(); err != nil {
			t.Errorf("%s: %v", cfg.Name, err)
		}
	}
}

// TestSystemClock runs a short real wait, to cover the system clock.
func TestSystemClock(t *testing.T) {
	calls := 0
	err := Do(t.Context(), Options{Initial: time.Microsecond, MaxAttempts: 3}, func(context.Context) error {
		calls++
		return errFlaky
	})
	if calls != 3 || !errors.Is(err, ErrExhausted) {
		t.Fatalf("Do = %v after %d calls", err, calls)
	}
}
