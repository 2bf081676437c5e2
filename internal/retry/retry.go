package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Retrier is one retry loop:
//
//	for r := retry.Start(ctx, opts); r.Next(); {
//		if err = try(ctx); err == nil {
//			break
//		}
//	}
//
// A Retrier is not safe for concurrent use.
type Retrier struct {
	ctx     context.Context
	opts    Options
	backoff *backoff.ExponentialBackOff
	start   time.Time
	attempt int   // attempts started
	err     error // why Next returned false
}

// Start starts a retry loop under ctx.
func Start(ctx context.Context, opts Options) *Retrier {
	opts = opts.withDefaults()
	return &Retrier{ctx: ctx, opts: opts, backoff: newBackOff(opts), start: opts.Clock.Now()}
}

// Next reports whether to make another attempt, after waiting the backoff.
// The first call returns true at once, so the loop's body always runs once
// (and sees the context's error itself if ctx has already ended). Next
// returns false when ctx ends, the Closer closes, or MaxAttempts or
// MaxElapsed is used up; Err says which.
func (r *Retrier) Next() bool {
	if r.err != nil {
		return false
	}
	if r.attempt == 0 {
		r.attempt++
		return true
	}
	if r.opts.MaxAttempts > 0 && r.attempt >= r.opts.MaxAttempts {
		r.err = fmt.Errorf("%w: %d attempts", ErrExhausted, r.attempt)
		return false
	}
	d := r.backoff.NextBackOff()
	if r.opts.MaxElapsed > 0 {
		left := r.opts.MaxElapsed - r.opts.Clock.Now().Sub(r.start)
		if left <= 0 {
			r.err = fmt.Errorf("%w: %v elapsed", ErrExhausted, r.opts.MaxElapsed)
			return false
		}
		d = min(d, left)
	}
	if err := sleep(r.ctx, r.opts.Clock, r.opts.Closer, d); err != nil {
		r.err = err
		return false
	}
	r.attempt++
	return true
}

// Attempt returns the number of attempts started: 1 during the first.
func (r *Retrier) Attempt() int { return r.attempt }

// Reset makes the next wait start from Initial again (for example after a
// not-leader hint that names the new leader). The budget stays spent:
// attempts and elapsed time still count toward MaxAttempts and MaxElapsed.
func (r *Retrier) Reset() { r.backoff.Reset() }

// Err returns nil while the loop runs, and after Next returned false why it
// stopped: ctx's error, ErrClosed, or an error wrapping ErrExhausted.
func (r *Retrier) Err() error { return r.err }

// Permanent marks err as not worth retrying: Do returns it (unwrapped) at
// once.
func Permanent(err error) error { return backoff.Permanent(err) }

// Do calls fn until it returns nil or a Permanent error, waiting the backoff
// between calls; ctx is passed to fn. When the loop stops first, Do returns
// fn's last error wrapped together with the reason (ctx's error,
// ErrClosed, ErrExhausted), so errors.Is finds both.
func Do(ctx context.Context, opts Options, fn func(context.Context) error) error {
	r := Start(ctx, opts)
	var err error
	for r.Next() {
		if err = fn(ctx); err == nil {
			return nil
		}
		if p, ok := errors.AsType[*backoff.PermanentError](err); ok {
			return p.Err
		}
	}
	return fmt.Errorf("%w (after %d attempts: %w)", err, r.Attempt(), r.Err())
}

// newBackOff returns the exponential backoff of opts (with defaults).
func newBackOff(opts Options) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     opts.Initial,
		RandomizationFactor: opts.Jitter,
		Multiplier:          opts.Multiplier,
		MaxInterval:         opts.Max,
	}
	b.Reset()
	return b
}
