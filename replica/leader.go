package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/statemachine"
	"github.com/strata-kv/strata/txn/tso"
)

// LeaderOptions configure the tasks that run on the system shard's leader.
// The zero value is valid.
type LeaderOptions struct {
	// Oracle configures the timestamp oracle (its clock, window). Default:
	// tso's defaults (the system clock, a 3 s window).
	Oracle tso.OracleOptions
	// OracleLease is how long a newly opened oracle waits before its first
	// batch, and bounds how long a confirmation of leadership lets it serve
	// without another (see getTimestamp). It adds to the time writes wait
	// after the system shard's leader changes. Default 500 ms.
	OracleLease time.Duration
}

// DefaultOracleLease is LeaderOptions.OracleLease's default.
const DefaultOracleLease = 500 * time.Millisecond

// leaseServeFraction is the part of OracleLease that a confirmation lets
// the oracle serve for: the rest is the margin for the rates of two nodes'
// monotonic clocks to differ.
const leaseServeFraction = 0.9

// LeaderTasks runs the tasks that belong to the system shard's leader: the
// timestamp oracle. It opens the oracle when the local replica becomes
// leader and closes it when the replica loses leadership; the Store serves
// GetTimestamp from it.
//
// One goroutine (run) owns opening and closing the oracle. It wakes on
// LeaderChanged (raftnode's OnLeaderChange hook), on a serving call that
// found the term changed, and to retry a failed open; each time it reads
// the replica's role and term from raftnode and brings the oracle in line.
type LeaderTasks struct {
	s    *Store
	opts LeaderOptions

	wake   chan struct{} // capacity 1: a pending wake-up
	ctx    context.Context
	cancel context.CancelFunc // stops run and a renewal in flight
	done   chan struct{}      // closed when run returned
	renews sync.WaitGroup     // the renewal in flight

	// mu guards the oracle's handover between run and the serving calls.
	// It is never held across a call into raftnode or the oracle: the hook
	// takes it from raftnode's loop.
	mu struct {
		sync.Mutex
		// oracle is open and serves while the replica leads in term; nil
		// when not leading or not open yet.
		oracle *tso.Oracle
		term   uint64
		// serveFrom is when the oracle may hand out its first batch:
		// OracleLease after it opened, once every older oracle's lease
		// has run out.
		serveFrom time.Time
		// leaseUntil is when the last confirmation of leadership in term
		// stops covering batches; renewing is true while a renewal runs.
		leaseUntil time.Time
		renewing   bool
		// cancelOpen cancels the tso.Open in flight, or is nil.
		cancelOpen context.CancelFunc
	}
}

// StartLeaderTasks starts the system shard's leader tasks on s and has s
// serve GetTimestamp from them. Call it once, before the node starts, and
// feed it raftnode's OnLeaderChange through LeaderChanged. Close stops it.
func (s *Store) StartLeaderTasks(opts LeaderOptions) *LeaderTasks {
	if opts.OracleLease <= 0 {
		opts.OracleLease = DefaultOracleLease
	}
	lt := &LeaderTasks{s: s, opts: opts, wake: make(chan struct{}, 1), done: make(chan struct{})}
	lt.ctx, lt.cancel = context.WithCancel(context.Background())
	s.leader.Store(lt)
	go lt.run()
	lt.poke()
	return lt
}

// LeaderChanged is raftnode's OnLeaderChange hook: it never blocks. When
// the system shard's replica learns of another leader, an open in flight is
// cancelled, and run looks at the new state.
func (lt *LeaderTasks) LeaderChanged(group, leader uint64) {
	if group != lt.s.cfg.SystemShard {
		return
	}
	if leader != lt.s.cfg.NodeID {
		lt.mu.Lock()
		if lt.mu.cancelOpen != nil {
			lt.mu.cancelOpen()
		}
		lt.mu.Unlock()
	}
	lt.poke()
}

// Close stops the tasks and closes the oracle. It is idempotent.
func (lt *LeaderTasks) Close() error {
	lt.cancel()
	<-lt.done
	lt.renews.Wait()
	return nil
}

// Last returns the highest timestamp the local oracle handed out, and
// whether an oracle is open here (this node leads the system shard).
func (lt *LeaderTasks) Last() (tso.Timestamp, bool) {
	o, _ := lt.oracle()
	if o == nil {
		return tso.Zero, false
	}
	return o.Last(), true
}

// poke wakes run without blocking.
func (lt *LeaderTasks) poke() {
	select {
	case lt.wake <- struct{}{}:
	default:
	}
}

// oracle returns the open oracle and the term it serves in (nil if none).
func (lt *LeaderTasks) oracle() (*tso.Oracle, uint64) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.mu.oracle, lt.mu.term
}

// Open retry delays after a failed open while still leading.
const (
	openRetryMin = 20 * time.Millisecond
	openRetryMax = time.Second
)

// run owns the oracle's lifetime: it opens and closes it as the replica's
// leadership changes, until Close.
func (lt *LeaderTasks) run() {
	defer close(lt.done)
	defer lt.closeOracle()
	var (
		retry <-chan time.Time
		delay = openRetryMin
	)
	for {
		select {
		case <-lt.ctx.Done():
			return
		case <-lt.wake:
		case <-retry:
		}
		retry = nil
		if err := lt.reconcile(); err != nil {
			if lt.ctx.Err() != nil {
				return
			}
			retry = time.After(delay)
			delay = min(2*delay, openRetryMax)
			continue
		}
		delay = openRetryMin
	}
}

// reconcile closes an oracle the replica may no longer serve from and, if
// the replica leads, opens one for its term. An error means the open failed
// while the replica led: try again later.
func (lt *LeaderTasks) reconcile() error {
	st, err := lt.s.cfg.Node.Status(lt.s.cfg.SystemShard)
	leading := err == nil && st.IsLeader
	if o, term := lt.oracle(); o != nil {
		if leading && term == st.Term {
			return nil
		}
		lt.closeOracle()
	}
	if !leading {
		return nil
	}
	// The oracle loads the limit with a linearizable read, so it starts
	// after the replica applied everything committed before its term.
	ctx, cancel := context.WithCancel(lt.ctx)
	lt.mu.Lock()
	lt.mu.cancelOpen = cancel
	lt.mu.Unlock()
	o, err := tso.Open(ctx, limitStore{lt.s}, lt.opts.Oracle)
	lt.mu.Lock()
	lt.mu.cancelOpen = nil
	lt.mu.Unlock()
	cancel()
	if err != nil {
		return err
	}
	// Leadership may have moved while it opened: serve only if the replica
	// still leads in the term it opened in.
	if now, err := lt.s.cfg.Node.Status(lt.s.cfg.SystemShard); err != nil || !now.IsLeader || now.Term != st.Term {
		_ = o.Close()
		lt.poke()
		return nil
	}
	lt.mu.Lock()
	lt.mu.oracle, lt.mu.term = o, st.Term
	lt.mu.serveFrom, lt.mu.leaseUntil = time.Now().Add(lt.opts.OracleLease), time.Time{}
	lt.mu.Unlock()
	return nil
}

// closeOracle closes the open oracle, if any.
func (lt *LeaderTasks) closeOracle() {
	lt.mu.Lock()
	o := lt.mu.oracle
	lt.mu.oracle, lt.mu.term = nil, 0
	lt.mu.leaseUntil = time.Time{}
	lt.mu.Unlock()
	if o != nil {
		_ = o.Close()
	}
}

// getTimestamp serves a GetTimestamp request on the system shard's leader
// from the open oracle. A node that does not lead fails with
// *raftnode.NotLeaderError; a leader whose oracle is not open yet with
// kvpb.ErrUnavailable; both are retried by the router.
//
// Two oracles must never serve at once (tso's Caveats): a deposed leader
// that does not know it yet still has its oracle open. Every batch is
// handed out (Next) under a lease, then checked to be still inside it:
//
//   - A ReadIndex round started at time s confirms that at s no later
//     leader had been elected (a quorum still followed this replica). It
//     lets the oracle serve until s + OracleLease·leaseServeFraction.
//   - A new leader's oracle waits OracleLease after it opened (after its
//     election) before its first batch, so it starts after every lease of
//     an older leader ran out, given that monotonic clocks run at rates
//     within (1 − leaseServeFraction) of each other. Wall clocks play no
//     part: they may jump.
//
// A batch handed out after its oracle's lease ran out is checked by a
// ReadIndex round of its own before it is answered, else discarded unused.
// A batch answered late (its node paused after the check) is harmless: the
// write that asked for it started its fetch before the check, so reads at
// the new oracle's later timestamps wait for it (docs/time.md). While a
// lease covers the batches, the next one is confirmed in the background
// once half of it is left, so a loaded oracle confirms a few times per
// lease and not per batch.
func (s *Store) getTimestamp(ctx context.Context, shard uint64, r *kvpb.GetTimestampRequest) (*kvpb.ResponseUnion_GetTimestamp, error) {
	if shard != s.cfg.SystemShard {
		return nil, fmt.Errorf("%w: timestamps come from the system shard %d, not shard %d", kvpb.ErrBadBatch, s.cfg.SystemShard, shard)
	}
	lt := s.leader.Load()
	if lt == nil {
		return nil, fmt.Errorf("%w: no timestamp oracle on node %d", kvpb.ErrUnavailable, s.cfg.NodeID)
	}
	first, err := lt.Timestamps(ctx, int(r.GetCount()))
	if err != nil {
		return nil, err
	}
	return &kvpb.ResponseUnion_GetTimestamp{GetTimestamp: &kvpb.GetTimestampResponse{First: uint64(first)}}, nil
}

// Timestamps hands out n timestamps from the local oracle, as a
// GetTimestamp request served here does (see getTimestamp), and returns the
// first: the batch is [first, first+n). A node that does not lead the
// system shard fails with *raftnode.NotLeaderError, a leader whose oracle
// is not open yet with kvpb.ErrUnavailable. The node's own oracle client
// calls it directly while the node leads, sparing a request's encoding.
func (lt *LeaderTasks) Timestamps(ctx context.Context, n int) (tso.Timestamp, error) {
	o, term, from := lt.serving()
	if o == nil {
		return tso.Zero, lt.notServing()
	}
	if wait := time.Until(from); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return tso.Zero, ctx.Err()
		}
	}
	first, err := o.Next(ctx, n)
	switch {
	case errors.Is(err, tso.ErrClosed):
		return tso.Zero, lt.notServing()
	case err != nil && ctx.Err() == nil:
		// A failed save of the limit: nothing was handed out, so the
		// request may be sent again, even if the save itself was
		// ambiguous (%v: that ambiguity is not this request's).
		return tso.Zero, fmt.Errorf("%w: timestamp oracle: %v", kvpb.ErrUnavailable, err)
	case err != nil:
		return tso.Zero, err
	}
	if !lt.leased(term) {
		if err := lt.confirm(ctx, term); err != nil {
			return tso.Zero, err
		}
	}
	return first, nil
}

// serving returns the open oracle, the term it serves in and when it may
// serve from (nil if none is open).
func (lt *LeaderTasks) serving() (*tso.Oracle, uint64, time.Time) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.mu.oracle, lt.mu.term, lt.mu.serveFrom
}

// leased reports whether a confirmation of leadership in term covers a
// batch handed out now. If less than half of the lease is left it starts a
// renewal in the background, unless one runs.
func (lt *LeaderTasks) leased(term uint64) bool {
	now := time.Now()
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.mu.oracle == nil || lt.mu.term != term || !now.Before(lt.mu.leaseUntil) {
		return false
	}
	if !lt.mu.renewing && lt.mu.leaseUntil.Sub(now) < lt.opts.OracleLease/2 {
		lt.mu.renewing = true
		lt.renews.Add(1)
		go func() {
			defer lt.renews.Done()
			_ = lt.confirm(lt.ctx, term) // a failure leaves the lease to run out
			lt.mu.Lock()
			lt.mu.renewing = false
			lt.mu.Unlock()
		}()
	}
	return true
}

// confirm runs a ReadIndex round on the system shard and, if the replica
// still leads in term after it, extends the lease from the round's start.
func (lt *LeaderTasks) confirm(ctx context.Context, term uint64) error {
	id := lt.s.cfg.SystemShard
	start := time.Now()
	if err := lt.s.cfg.Node.ReadIndex(ctx, id); err != nil {
		return err
	}
	st, err := lt.s.cfg.Node.Status(id)
	if err != nil {
		return err
	}
	if !st.IsLeader || st.Term != term {
		lt.poke()
		return &raftnode.NotLeaderError{Group: id, Leader: st.Leader}
	}
	until := start.Add(time.Duration(leaseServeFraction * float64(lt.opts.OracleLease)))
	lt.mu.Lock()
	if lt.mu.oracle != nil && lt.mu.term == term && until.After(lt.mu.leaseUntil) {
		lt.mu.leaseUntil = until
	}
	lt.mu.Unlock()
	return nil
}

// notServing is the error for a call that found no open oracle: not leader
// (with the leader it knows), or a leader whose oracle is still opening.
func (lt *LeaderTasks) notServing() error {
	id := lt.s.cfg.SystemShard
	st, err := lt.s.cfg.Node.Status(id)
	if err != nil {
		return err
	}
	if !st.IsLeader {
		return &raftnode.NotLeaderError{Group: id, Leader: st.Leader}
	}
	lt.poke()
	return fmt.Errorf("%w: the timestamp oracle of node %d is opening", kvpb.ErrUnavailable, lt.s.cfg.NodeID)
}

// limitStore is the oracle's tso.Persister: the limit lives in system key
// kvpb.TSOLimitKey on the system shard, written by a TSOLimit command and
// read linearizably on the local replica (the oracle runs on the leader).
type limitStore struct{ s *Store }

var _ tso.Persister = limitStore{}

// LoadLimit reads the limit after a ReadIndex round, whatever the Store's
// UnsafeLocalReads: the oracle must see every limit saved before.
func (p limitStore) LoadLimit(ctx context.Context) (tso.Timestamp, error) {
	id := p.s.cfg.SystemShard
	var limit uint64
	err := p.s.cfg.Node.Read(ctx, id, func(r pebble.Reader) error {
		var err error
		limit, err = statemachine.LoadTSOLimit(r)
		return err
	})
	if err != nil {
		return tso.Zero, p.s.kvError(id, err)
	}
	return tso.Timestamp(limit), nil
}

// SaveLimit proposes a TSOLimit command on the system shard and waits until
// it applied.
func (p limitStore) SaveLimit(ctx context.Context, limit tso.Timestamp) error {
	ba := &kvpb.BatchRequest{Header: &kvpb.Header{ShardId: p.s.cfg.SystemShard}, Requests: []*kvpb.RequestUnion{{
		Value: &kvpb.RequestUnion_TsoLimit{TsoLimit: &kvpb.TSOLimitRequest{Limit: uint64(limit)}}}}}
	_, err := p.s.Send(ctx, ba)
	return err
}
