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
}

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
	cancel context.CancelFunc // stops run
	done   chan struct{}      // closed when run returned

	// mu guards the oracle's handover between run and the serving calls.
	// It is never held across a call into raftnode or the oracle: the hook
	// takes it from raftnode's loop.
	mu struct {
		sync.Mutex
		// oracle is open and serves while the replica leads in term; nil
		// when not leading or not open yet.
		oracle *tso.Oracle
		term   uint64
		// cancelOpen cancels the tso.Open in flight, or is nil.
		cancelOpen context.CancelFunc
	}
}

// StartLeaderTasks starts the system shard's leader tasks on s and has s
// serve GetTimestamp from them. Call it once, before the node starts, and
// feed it raftnode's OnLeaderChange through LeaderChanged. Close stops it.
func (s *Store) StartLeaderTasks(opts LeaderOptions) *LeaderTasks {
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
	lt.mu.Unlock()
	return nil
}

// closeOracle closes the open oracle, if any.
func (lt *LeaderTasks) closeOracle() {
	lt.mu.Lock()
	o := lt.mu.oracle
	lt.mu.oracle, lt.mu.term = nil, 0
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
// that does not know it yet still has its oracle open. So after Next the
// batch is confirmed with a ReadIndex round (a quorum still follows this
// replica, so no later leader has opened its oracle, which starts above
// this one's persisted limit) and the replica must still lead in the term
// the oracle was opened in; else the batch is discarded, unused.
func (s *Store) getTimestamp(ctx context.Context, shard uint64, r *kvpb.GetTimestampRequest) (*kvpb.ResponseUnion_GetTimestamp, error) {
	if shard != s.cfg.SystemShard {
		return nil, fmt.Errorf("%w: timestamps come from the system shard %d, not shard %d", kvpb.ErrBadBatch, s.cfg.SystemShard, shard)
	}
	lt := s.leader.Load()
	if lt == nil {
		return nil, fmt.Errorf("%w: no timestamp oracle on node %d", kvpb.ErrUnavailable, s.cfg.NodeID)
	}
	o, term := lt.oracle()
	if o == nil {
		return nil, lt.notServing()
	}
	first, err := o.Next(ctx, int(r.GetCount()))
	switch {
	case errors.Is(err, tso.ErrClosed):
		return nil, lt.notServing()
	case err != nil && ctx.Err() == nil:
		// A failed save of the limit: nothing was handed out, so the
		// request may be sent again, even if the save itself was
		// ambiguous (%v: that ambiguity is not this request's).
		return nil, fmt.Errorf("%w: timestamp oracle: %v", kvpb.ErrUnavailable, err)
	case err != nil:
		return nil, err
	}
	if err := s.cfg.Node.ReadIndex(ctx, shard); err != nil {
		return nil, err
	}
	st, err := s.cfg.Node.Status(shard)
	if err != nil {
		return nil, err
	}
	if !st.IsLeader || st.Term != term {
		lt.poke()
		return nil, &raftnode.NotLeaderError{Group: shard, Leader: st.Leader}
	}
	return &kvpb.ResponseUnion_GetTimestamp{GetTimestamp: &kvpb.GetTimestampResponse{First: uint64(first)}}, nil
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
