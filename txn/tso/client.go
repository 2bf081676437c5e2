package tso

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrWentBack is returned by Client.Get when the oracle answered with a
// timestamp at or below one this client already handed out: two oracles
// served at once, or a persister lost a limit. The client refuses rather
// than break the order of timestamps.
var ErrWentBack = errors.New("tso: oracle went back")

// Fetcher fetches timestamps from the oracle, for example over the transport
// from the system shard's leader.
type Fetcher interface {
	// Fetch returns the first of n consecutive timestamps [first, first+n),
	// 1 ≤ n ≤ MaxBatch, all above every timestamp fetched before.
	Fetch(ctx context.Context, n int) (first Timestamp, err error)
}

// FetcherFunc adapts a function to Fetcher; FetcherFunc(oracle.Next) serves
// a Client from a local Oracle.
type FetcherFunc func(ctx context.Context, n int) (Timestamp, error)

var _ Fetcher = FetcherFunc(nil)

// Fetch calls f(ctx, n).
func (f FetcherFunc) Fetch(ctx context.Context, n int) (Timestamp, error) { return f(ctx, n) }

// Client is a node's oracle client. It coalesces concurrent requests: one
// fetch is in flight at a time, and callers that arrive meanwhile wait for
// the next one, which asks for as many timestamps as there are waiters.
type Client struct {
	fetcher Fetcher

	ctx    context.Context // the fetches run under it; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the fetch loop, while it runs

	mu struct {
		sync.Mutex
		// pending wait for the next fetch, in arrival order.
		pending []*request
		// fetching is true while the fetch loop runs; only it starts fetches.
		fetching bool
		// live counts the requests of the fetch in flight still waiting;
		// when it drops to zero, cancelFetch cancels the fetch.
		live        int
		cancelFetch context.CancelFunc
		// last is the highest timestamp fetched: the next fetch must start
		// above it.
		last   Timestamp
		closed bool
	}
}

// request is one Get or GetN. ts and err are set before done closes.
type request struct {
	n        int // timestamps wanted: [ts, ts+n)
	done     chan struct{}
	ts       Timestamp
	err      error
	inFlight bool // in the fetch in flight (else pending)
	gone     bool // the caller stopped waiting
}

// NewClient returns a client that fetches through f. Close it to stop its
// fetch loop.
func NewClient(f Fetcher) *Client {
	c := &Client{fetcher: f}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Get returns a timestamp above every timestamp handed out (by any client of
// the same oracle) before Get was called. It waits for the next fetch, or
// until ctx ends.
func (c *Client) Get(ctx context.Context) (Timestamp, error) { return c.GetN(ctx, 1) }

// GetN is Get for n consecutive timestamps (1 <= n <= MaxBatch): it returns
// the first, and the n timestamps from it on are the caller's. It shares a
// fetch with the other callers waiting, as Get does.
func (c *Client) GetN(ctx context.Context, n int) (Timestamp, error) {
	if n < 1 || n > MaxBatch {
		return Zero, fmt.Errorf("tso: GetN of %d timestamps, want 1 to %d", n, MaxBatch)
	}
	r := &request{n: n, done: make(chan struct{})}
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return Zero, ErrClosed
	}
	c.mu.pending = append(c.mu.pending, r)
	if !c.mu.fetching {
		c.mu.fetching = true
		c.wg.Add(1)
		go c.run()
	}
	c.mu.Unlock()

	select {
	case <-r.done:
		return r.ts, r.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-r.done:
		return r.ts, r.err
	default:
	}
	r.gone = true
	if r.inFlight {
		c.mu.live--
		if c.mu.live == 0 {
			c.mu.cancelFetch()
		}
	}
	return Zero, ctx.Err()
}

// Close stops the client: waiting and later calls return ErrClosed, and the
// fetch in flight is cancelled and waited for.
func (c *Client) Close() error {
	c.mu.Lock()
	c.mu.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// run is the fetch loop: it fetches for the pending requests until none is
// left. Only one runs at a time.
func (c *Client) run() {
	defer c.wg.Done()
	for {
		batch, ctx := c.takeBatch()
		if batch == nil {
			return
		}
		total := 0
		for _, r := range batch {
			total += r.n
		}
		first, err := c.fetcher.Fetch(ctx, total)
		c.deliver(batch, total, first, err)
	}
}

// takeBatch takes up to MaxBatch pending requests whose callers still wait,
// and the context to fetch them under. It returns nil, and ends the fetch
// loop, when none is left or the client is closed.
func (c *Client) takeBatch() ([]*request, context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		for _, r := range c.mu.pending {
			r.err = ErrClosed
			close(r.done)
		}
		c.mu.pending = nil
	}
	var batch []*request
	i, total := 0, 0
	for ; i < len(c.mu.pending); i++ {
		r := c.mu.pending[i]
		if r.gone {
			continue
		}
		if total+r.n > MaxBatch {
			break
		}
		r.inFlight = true
		batch = append(batch, r)
		total += r.n
	}
	c.mu.pending = c.mu.pending[i:]
	if len(batch) == 0 {
		c.mu.pending = nil
		c.mu.fetching = false
		return nil, nil
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.mu.live, c.mu.cancelFetch = len(batch), cancel
	return batch, ctx
}

// deliver hands the fetched timestamps [first, first+total) out in arrival
// order, each request its n, or err to every request of the batch.
func (c *Client) deliver(batch []*request, total int, first Timestamp, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.cancelFetch()
	c.mu.live, c.mu.cancelFetch = 0, nil
	switch {
	case err != nil && c.mu.closed:
		err = ErrClosed
	case err != nil:
		err = fmt.Errorf("tso: fetching %d timestamps: %w", total, err)
	case first <= c.mu.last:
		err = fmt.Errorf("%w: fetched %v after %v", ErrWentBack, first, c.mu.last)
	case first > Max-Timestamp(total)+1:
		err = fmt.Errorf("%w: fetched %v for %d", ErrExhausted, first, total)
	default:
		c.mu.last = first + Timestamp(total) - 1
	}
	next := first
	for _, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.ts = next
			next += Timestamp(r.n)
		}
		close(r.done)
	}
}
