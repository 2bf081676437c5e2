package tso

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// manualClock is a Clock that moves only when the test moves it.
type manualClock struct {
	mu struct {
		sync.Mutex
		now time.Time
	}
}

func newManualClock() *manualClock {
	c := &manualClock{}
	c.mu.now = time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	return c
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.now = c.mu.now.Add(d)
}

var errInjected = errors.New("injected save failure")

// memPersister is an in-memory Persister. It keeps the highest limit saved,
// can fail saves, and can hold them until the test opens its gate.
type memPersister struct {
	mu struct {
		sync.Mutex
		limit    Timestamp
		saves    int // SaveLimit calls
		inFlight int // SaveLimit calls running now
		maxIn    int // most SaveLimit calls running at once
		failNext int // fail this many of the next saves
		gate     chan struct{}
		started  chan struct{} // if not nil, gets a value when a save starts
	}
}

var _ Persister = (*memPersister)(nil)

func (p *memPersister) LoadLimit(ctx context.Context) (Timestamp, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.limit, nil
}

func (p *memPersister) SaveLimit(ctx context.Context, limit Timestamp) error {
	p.mu.Lock()
	p.mu.saves++
	p.mu.inFlight++
	p.mu.maxIn = max(p.mu.maxIn, p.mu.inFlight)
	gate, started := p.mu.gate, p.mu.started
	fail := p.mu.failNext > 0
	if fail {
		p.mu.failNext--
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.mu.inFlight--
		p.mu.Unlock()
	}()
	if started != nil {
		started <- struct{}{}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errInjected
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.limit = max(p.mu.limit, limit)
	return nil
}

func (p *memPersister) limit() Timestamp {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.limit
}

// testRand returns a generator seeded from STRATA_SEED, or from the time,
// and logs the seed.
func testRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STRATA_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("STRATA_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (STRATA_SEED=%d reproduces)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// testContext returns a context that ends with the test's deadline, if any.
func testContext(t *testing.T) context.Context {
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-5*time.Second))
		t.Cleanup(cancel)
	}
	return ctx
}
