package tso

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// MaxBatch is the most timestamps one call to Oracle.Next or Fetcher.Fetch
// may ask for.
const MaxBatch = 1 << 16

var (
	// ErrClosed is returned by calls on a closed Oracle or Client.
	ErrClosed = errors.New("tso: closed")
	// ErrBatchSize is returned for a batch size outside [1, MaxBatch].
	ErrBatchSize = errors.New("tso: batch size out of range")
	// ErrExhausted is returned when no timestamp is left below Max.
	ErrExhausted = errors.New("tso: timestamps exhausted")
)

// Persister stores the oracle's high-water mark, the limit below which it may
// hand out timestamps. In a cluster it is a raft write and a read on the
// system shard.
type Persister interface {
	// LoadLimit returns the highest limit saved so far, or Zero if none was.
	// It must see every SaveLimit that returned nil, on any node.
	LoadLimit(ctx context.Context) (Timestamp, error)
	// SaveLimit durably records limit; once it returns nil the limit survives
	// a crash of every node. A limit below the one already saved must leave
	// the saved one in place: after an ambiguous failure a higher limit may
	// be saved than the oracle knows of.
	SaveLimit(ctx context.Context, limit Timestamp) error
}

// OracleOptions configure an Oracle. The zero value is valid.
type OracleOptions struct {
	// Clock is the wall clock timestamps follow. Default SystemClock{}.
	Clock Clock
	// Window is how far past the last timestamp handed out the oracle saves
	// its limit. A larger window means fewer saves and a larger jump after a
	// restart. Default 3 s.
	Window time.Duration
	// RenewBefore starts saving the next window, in the background, once
	// less than this is left of the current one. Default Window/3; it must
	// be below Window.
	RenewBefore time.Duration
}

func (o *OracleOptions) ensureDefaults() error {
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Window == 0 {
		o.Window = 3 * time.Second
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = o.Window / 3
	}
	if o.Window < time.Millisecond || o.RenewBefore < 0 || o.RenewBefore >= o.Window {
		return fmt.Errorf("tso: invalid options: Window %v must be ≥ 1ms and RenewBefore %v in [0, Window)",
			o.Window, o.RenewBefore)
	}
	return nil
}

// Oracle hands out strictly increasing timestamps. It runs on the system
// shard's leader; the other nodes reach it through a Client.
//
// The rule: a batch of n timestamps starts at max(FromTime(now), last+1),
// where last is the highest timestamp handed out so far, and ends below the
// persisted limit. When the batch would reach the limit, the caller waits
// for a new limit (last + Window) to be saved first. Once less than
// RenewBefore is left, the next window is saved in the background, so the
// common path never waits for a save. At most one save runs at a time.
// Open starts strictly above the persisted limit, so a new oracle, on a new
// leader or after every node was killed, never goes back.
//
// When the wall clock jumps back, timestamps keep rising above last (the
// logical counter ticks and carries into the physical part); when it jumps
// far forward, the first batch past the limit waits for a new window.
//
// Two oracles must not serve at the same time: the owner closes the Oracle
// as soon as its replica stops being the system shard's leader, and refuses
// to serve batches while leadership is in doubt (see the package Caveats).
type Oracle struct {
	clock     Clock
	persister Persister
	window    time.Duration
	renew     time.Duration

	ctx    context.Context // the saves run under it; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the save in flight

	mu struct {
		sync.Mutex
		// last is the highest timestamp handed out, or the limit loaded at
		// Open before the first batch. Every later timestamp is above it.
		last Timestamp
		// limit is the persisted high-water mark: every timestamp handed
		// out is below it. Invariant: last < limit once Open returns.
		limit Timestamp
		// save is the SaveLimit in flight, or nil.
		save   *save
		closed bool
	}
}

// save is one SaveLimit call. err is set before done closes.
type save struct {
	target Timestamp
	done   chan struct{}
	err    error
}

// Open loads the persisted limit and saves the first window above it, so
// every timestamp the new oracle hands out is above every one handed out
// before. Close it when its replica loses leadership.
func Open(ctx context.Context, p Persister, opts OracleOptions) (*Oracle, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	limit, err := p.LoadLimit(ctx)
	if err != nil {
		return nil, fmt.Errorf("tso: loading limit: %w", err)
	}
	if limit == Max {
		return nil, ErrExhausted
	}
	o := &Oracle{clock: opts.Clock, persister: p, window: opts.Window, renew: opts.RenewBefore}
	o.mu.last, o.mu.limit = limit, limit
	target := o.windowEnd(max(FromTime(o.clock.Now()), limit+1))
	if err := p.SaveLimit(ctx, target); err != nil {
		return nil, fmt.Errorf("tso: saving limit %v: %w", target, err)
	}
	o.mu.limit = target
	o.ctx, o.cancel = context.WithCancel(context.Background())
	return o, nil
}

// Next hands out n consecutive timestamps and returns the first of them:
// the batch is [first, first+n). Every timestamp is above every one handed
// out before the call, at or above the wall clock, and below the persisted
// limit. Next waits only when the batch needs a window not yet saved.
func (o *Oracle) Next(ctx context.Context, n int) (Timestamp, error) {
	if n < 1 || n > MaxBatch {
		return Zero, fmt.Errorf("%w: %d", ErrBatchSize, n)
	}
	for {
		o.mu.Lock()
		if o.mu.closed {
			o.mu.Unlock()
			return Zero, ErrClosed
		}
		first := max(FromTime(o.clock.Now()), o.mu.last+1)
		if first > Max-Timestamp(n) {
			o.mu.Unlock()
			return Zero, ErrExhausted
		}
		last := first + Timestamp(n) - 1
		if last < o.mu.limit {
			o.mu.last = last
			if o.mu.save == nil && o.leftMsLocked(last) < uint64(o.renew.Milliseconds()) {
				o.startSaveLocked(o.windowEnd(last))
			}
			o.mu.Unlock()
			return first, nil
		}
		// The batch needs the next window: wait for a save that may cover
		// it, then look again.
		s := o.mu.save
		if s == nil {
			s = o.startSaveLocked(o.windowEnd(last))
		}
		o.mu.Unlock()
		select {
		case <-s.done:
			if s.err != nil {
				return Zero, s.err
			}
		case <-ctx.Done():
			return Zero, ctx.Err()
		}
	}
}

// Last returns the highest timestamp handed out so far (or, before the first
// batch, the limit loaded at Open).
func (o *Oracle) Last() Timestamp {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.last
}

// Close stops the oracle: later calls return ErrClosed, and a save in flight
// is cancelled and waited for. Close is idempotent.
func (o *Oracle) Close() error {
	o.mu.Lock()
	o.mu.closed = true
	o.mu.Unlock()
	o.cancel()
	o.wg.Wait()
	return nil
}

// windowEnd returns the limit to save so that the next Window past ts may be
// handed out.
func (o *Oracle) windowEnd(ts Timestamp) Timestamp {
	return New(ts.Physical()+uint64(o.window.Milliseconds()), 0)
}

// leftMsLocked returns how many milliseconds of the window are left after
// last, which is below the limit.
func (o *Oracle) leftMsLocked(last Timestamp) uint64 {
	return o.mu.limit.Physical() - last.Physical()
}

// startSaveLocked starts saving target as the new limit, in a goroutine that
// Close waits for.
func (o *Oracle) startSaveLocked(target Timestamp) *save {
	s := &save{target: target, done: make(chan struct{})}
	o.mu.save = s
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		err := o.persister.SaveLimit(o.ctx, target)
		o.mu.Lock()
		switch {
		case err != nil && o.mu.closed:
			s.err = ErrClosed
		case err != nil:
			s.err = fmt.Errorf("tso: saving limit %v: %w", target, err)
		default:
			o.mu.limit = max(o.mu.limit, target)
		}
		o.mu.save = nil
		o.mu.Unlock()
		close(s.done)
	}()
	return s
}
