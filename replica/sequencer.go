package replica

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/txn/tso"
)

// fetchTimeout bounds one wave's fetch of commit timestamps.
const fetchTimeout = 10 * time.Second

// testHookWaitBelow, if set, is called when waitBelow starts.
var testHookWaitBelow func()

// sequencer gives one shard's writes their commit timestamps and enters
// them into the raft log in timestamp order, and tells reads when no write
// at or below their timestamp can still commit (docs/time.md, "The
// mechanism on a shard's leader").
//
// Writes come in waves: those that arrive while a fetch of timestamps is in
// flight wait for the next fetch, which asks the oracle for one timestamp
// per write. A wave's writes are proposed under mu in timestamp order, in
// the term the replica led when the fetch began: so within a shard the
// log's order is the timestamps' order.
type sequencer struct {
	node  *raftnode.Node
	shard uint64
	ts    tso.Fetcher
	ctx   context.Context // the store's; ends at Close
	wg    *sync.WaitGroup // the store's: the wave goroutine

	mu struct {
		sync.Mutex
		waiting  []*seqWrite
		fetching bool          // the wave goroutine runs
		wave     chan struct{} // closed when the wave in flight is proposed
		// pending are the proposed writes raft has not resolved yet, in
		// timestamp order.
		pending []*seqWrite
	}
}

type seqState int

const (
	seqWaiting   seqState = iota // waiting for a wave
	seqProposed                  // proposed (prop is set)
	seqFailed                    // not proposed (err is set)
	seqAbandoned                 // its caller gave up before a wave took it
)

// seqWrite is one write batch going through the sequencer.
type seqWrite struct {
	cmd   *kvpb.ReplicatedCommand
	ready chan struct{} // closed when proposed or failed
	// Set by the wave, under mu, before ready closes.
	state seqState
	ts    tso.Timestamp
	prop  *raftnode.Proposal
	err   error
}

func newSequencer(ctx context.Context, wg *sync.WaitGroup, node *raftnode.Node, shard uint64, ts tso.Fetcher) *sequencer {
	return &sequencer{node: node, shard: shard, ts: ts, ctx: ctx, wg: wg}
}

// submit gives cmd a commit timestamp and proposes it. It returns the
// proposal and its timestamp, or an error if it was certainly not proposed
// (raftnode's errors, or one wrapping kvpb.ErrUnavailable when no timestamp
// could be had).
func (q *sequencer) submit(ctx context.Context, cmd *kvpb.ReplicatedCommand) (*raftnode.Proposal, tso.Timestamp, error) {
	w := &seqWrite{cmd: cmd, ready: make(chan struct{})}
	q.mu.Lock()
	q.mu.waiting = append(q.mu.waiting, w)
	if !q.mu.fetching {
		q.mu.fetching = true
		q.wg.Add(1)
		go q.run()
	}
	q.mu.Unlock()
	select {
	case <-w.ready:
	case <-ctx.Done():
		q.mu.Lock()
		if w.state == seqWaiting {
			w.state = seqAbandoned
			q.mu.Unlock()
			return nil, 0, ctx.Err() // never proposed
		}
		q.mu.Unlock()
		<-w.ready // the wave took it: ready closed under mu
	}
	if w.state == seqFailed {
		return nil, 0, w.err
	}
	return w.prop, w.ts, nil
}

// run proposes waves of writes until none wait.
func (q *sequencer) run() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		batch := q.mu.waiting[:0:0]
		for _, w := range q.mu.waiting {
			if w.state == seqWaiting {
				batch = append(batch, w)
			}
		}
		q.mu.waiting = nil
		if len(batch) == 0 {
			q.mu.fetching = false
			q.mu.Unlock()
			return
		}
		wave := make(chan struct{})
		q.mu.wave = wave
		q.mu.Unlock()
		q.wave(batch)
		close(wave)
	}
}

// wave fetches timestamps for batch and proposes its writes in order.
func (q *sequencer) wave(batch []*seqWrite) {
	// The term first, the fetch after: every timestamp fetched is above
	// every timestamp of an entry an earlier leader appended (see
	// docs/time.md), and the proposals are accepted only in this term.
	term, leader, err := q.node.Term(q.shard)
	var first tso.Timestamp
	switch {
	case err != nil:
	case !leader:
		lead, _, _ := q.node.Leader(q.shard)
		err = &raftnode.NotLeaderError{Group: q.shard, Leader: lead}
	default:
		ctx, cancel := context.WithTimeout(q.ctx, fetchTimeout)
		first, err = q.ts.Fetch(ctx, len(batch))
		cancel()
		if err != nil {
			err = fmt.Errorf("%w: no commit timestamp for shard %d: %w", kvpb.ErrUnavailable, q.shard, err)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pruneLocked()
	for i, w := range batch {
		if w.state == seqAbandoned {
			continue // its timestamp stays unused
		}
		if err == nil {
			w.ts = first + tso.Timestamp(i)
			w.cmd.Header.Timestamp = uint64(w.ts)
			var data []byte
			if data, w.err = kvpb.EncodeCommand(w.cmd); w.err == nil {
				w.prop, w.err = q.node.ProposeAsync(q.shard, term, data)
			}
		} else {
			w.err = err
		}
		if w.err != nil {
			w.state = seqFailed
		} else {
			w.state = seqProposed
			q.mu.pending = append(q.mu.pending, w)
		}
		close(w.ready)
	}
}

// pruneLocked drops the resolved writes from pending.
func (q *sequencer) pruneLocked() {
	keep := q.mu.pending[:0]
	for _, w := range q.mu.pending {
		select {
		case <-w.prop.Done():
		default:
			keep = append(keep, w)
		}
	}
	clear(q.mu.pending[len(keep):])
	q.mu.pending = keep
}

// waitBelow returns once no write sequenced here with a timestamp at or
// below ts can still commit: the wave in flight when it was called has been
// proposed, and every proposed write at or below ts is resolved. A wave
// that starts later fetches timestamps above ts, which the caller got from
// the oracle before it called.
func (q *sequencer) waitBelow(ctx context.Context, ts tso.Timestamp) error {
	if testHookWaitBelow != nil {
		testHookWaitBelow()
	}
	q.mu.Lock()
	wave := q.mu.wave
	fetching := q.mu.fetching
	q.mu.Unlock()
	if fetching && wave != nil {
		select {
		case <-wave:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	q.mu.Lock()
	q.pruneLocked()
	var below []*seqWrite
	for _, w := range q.mu.pending {
		if w.ts > ts {
			break // in timestamp order
		}
		below = append(below, w)
	}
	q.mu.Unlock()
	for _, w := range below {
		select {
		case <-w.prop.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
