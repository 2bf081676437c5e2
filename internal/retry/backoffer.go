package retry

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Config is one cause of retrying with its own backoff, as in TiKV's
// client: a request that meets the cause again backs off further on that
// cause's curve, independently of the others. In Options, MaxAttempts caps
// the backoffs of this cause and MaxElapsed its total sleep, per request.
type Config struct {
	// Name identifies the cause in errors and String; it keys the cause's
	// state in a Backoffer.
	Name    string
	Options Options
}

// The causes of retrying in Strata. Callers may define their own.
var (
	// ShardMiss: the shard cache was stale (shard mismatch, key outside the
	// shard); re-split and retry soon. No jitter: the next try is cheap.
	ShardMiss = Config{Name: "shardMiss", Options: Options{
		Initial: 2 * time.Millisecond, Max: 500 * time.Millisecond, Jitter: NoJitter}}
	// NotLeader: the replica is not the leader, or none is known yet (an
	// election runs).
	NotLeader = Config{Name: "notLeader", Options: Options{
		Initial: 2 * time.Millisecond, Max: 100 * time.Millisecond}}
	// RPC: a node could not be reached (dial failure, connection reset,
	// unavailable).
	RPC = Config{Name: "rpc", Options: Options{
		Initial: 20 * time.Millisecond, Max: time.Second, Jitter: 0.5}}
	// Oracle: the timestamp oracle could not be reached or is not serving.
	Oracle = Config{Name: "oracle", Options: Options{
		Initial: 20 * time.Millisecond, Max: time.Second, Jitter: 0.5}}
	// TxnLock: a transaction met a lock it must wait out or resolve.
	TxnLock = Config{Name: "txnLock", Options: Options{
		Initial: 50 * time.Millisecond, Max: 3 * time.Second, Jitter: 0.5}}
)

// BackofferOptions configure a Backoffer. The zero value is valid.
type BackofferOptions struct {
	// MaxSleep caps the total sleep of the request across all causes; the
	// last sleep is cut short to fit. Default 0, unlimited: the context's
	// deadline is the usual bound.
	MaxSleep time.Duration
	// Closer, when closed, stops the backoffs (for example when the DB
	// closes). Default nil, never.
	Closer <-chan struct{}
	// Clock is for tests. Default the system clock.
	Clock Clock
}

// Backoffer holds one request's backoff state per cause and its total
// sleep. A request that retries for several causes creates one Backoffer
// and calls Backoff with the cause of each failure:
//
//	bo := retry.NewBackoffer(ctx, retry.BackofferOptions{MaxSleep: 10 * time.Second})
//	for {
//		err := send(ctx, req)
//		switch {
//		case err == nil:
//			return nil
//		case errors.Is(err, kvpb.ErrNotLeader):
//			err = bo.Backoff(retry.NotLeader, err)
//		case errors.Is(err, transport.ErrUnreachable):
//			err = bo.Backoff(retry.RPC, err)
//		default:
//			return err
//		}
//		if err != nil {
//			return err
//		}
//	}
//
// A Backoffer is not safe for concurrent use.
type Backoffer struct {
	ctx    context.Context
	opts   BackofferOptions
	slept  time.Duration
	causes map[string]*cause
}

// cause is the state of one Config in a Backoffer.
type cause struct {
	backoff  *backoff.ExponentialBackOff
	attempts int
	slept    time.Duration
}

// NewBackoffer returns a Backoffer for one request under ctx.
func NewBackoffer(ctx context.Context, opts BackofferOptions) *Backoffer {
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	opts.MaxSleep = max(opts.MaxSleep, 0)
	return &Backoffer{ctx: ctx, opts: opts, causes: make(map[string]*cause)}
}

// Backoff sleeps before the caller retries after err, whose cause is cfg.
// It returns nil when the caller should retry, or err wrapped together with
// the reason to stop: ctx's error, ErrClosed, or ErrExhausted when cfg's
// budget (MaxAttempts, MaxElapsed) or the request's MaxSleep is used up.
func (b *Backoffer) Backoff(cfg Config, err error) error {
	c := b.causes[cfg.Name]
	opts := cfg.Options.withDefaults()
	if c == nil {
		c = &cause{backoff: newBackOff(opts)}
		b.causes[cfg.Name] = c
	}
	stop := func(reason error) error {
		return fmt.Errorf("%w (%s after %d backoffs, %v slept in all: %w)", err, cfg.Name, c.attempts, b.slept, reason)
	}
	if reason := stopped(b.ctx, b.opts.Closer); reason != nil {
		return stop(reason)
	}
	if opts.MaxAttempts > 0 && c.attempts >= opts.MaxAttempts {
		return stop(fmt.Errorf("%w: %d backoffs", ErrExhausted, c.attempts))
	}
	d := c.backoff.NextBackOff()
	if opts.MaxElapsed > 0 {
		left := opts.MaxElapsed - c.slept
		if left <= 0 {
			return stop(fmt.Errorf("%w: %v slept on %s", ErrExhausted, c.slept, cfg.Name))
		}
		d = min(d, left)
	}
	if b.opts.MaxSleep > 0 {
		left := b.opts.MaxSleep - b.slept
		if left <= 0 {
			return stop(fmt.Errorf("%w: %v slept", ErrExhausted, b.slept))
		}
		d = min(d, left)
	}
	if reason := sleep(b.ctx, b.opts.Clock, b.opts.Closer, d); reason != nil {
		return stop(reason)
	}
	c.attempts++
	c.slept += d
	b.slept += d
	return nil
}

// Reset makes cfg's next backoff start from Initial again (for example
// after a not-leader hint that named the new leader). Its budget stays
// spent: the backoffs taken and the time slept still count.
func (b *Backoffer) Reset(cfg Config) {
	if c := b.causes[cfg.Name]; c != nil {
		c.backoff.Reset()
	}
}

// Slept returns the total time slept.
func (b *Backoffer) Slept() time.Duration { return b.slept }

// Attempts returns the number of backoffs taken for cfg.
func (b *Backoffer) Attempts(cfg Config) int {
	if c := b.causes[cfg.Name]; c != nil {
		return c.attempts
	}
	return 0
}

// String summarizes the backoffs, e.g. "notLeader×3 rpc×1, slept 46ms".
func (b *Backoffer) String() string {
	var parts []string
	for name, c := range b.causes {
		parts = append(parts, fmt.Sprintf("%s×%d", name, c.attempts))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ") + fmt.Sprintf(", slept %v", b.slept)
}
