package raftnode

import (
	"slices"
	"sync"
	"time"

	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/storage"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// group is one replica of a raft group hosted on the node.
type group struct {
	id uint64
	// replicaID is the replica's raft ID: one incarnation of the group's
	// replica on this node (package replicaid). Fixed for its life.
	replicaID uint64
	spans     []Span
	keepData  bool // GroupConfig.KeepDataOnRemoval
	log       *storage.RaftLog

	// Loop-owned state: touched only by the loop goroutine (and by
	// CreateGroup before the group is published).
	applied       storage.AppliedState
	lastApplyTerm uint64 // term of the last applied entry
	lastLeader    uint64 // leader last reported to the Observer

	mu struct {
		sync.Mutex
		rn        *raft.RawNode
		proposals map[uint64]*proposal
		// queued are proposals waiting for the loop to hand them to raft
		// together, in one message (see flushProposalsLocked).
		queued []*proposal
		reads  readQueue
		// appliedIndex mirrors applied.Index for readers waiting on it.
		appliedIndex uint64
		// snapIn holds received snapshots, by index, that raft was stepped
		// with since the last Ready: the next Ready takes the one raft
		// accepted, if any, and drops the rest.
		snapIn map[uint64]*inboundSnapshot
		// confState mirrors the membership raft applies (conf changes,
		// snapshots once persisted), for checking senders.
		confState *raftpb.ConfState
		// snapOut holds Pebble snapshots built for raft, waiting to be sent.
		snapOut []*outboundSnapshot
		// removed: this node is no longer a member and the replica is
		// being destroyed. Set by the loop before destroyGroup deletes
		// anything, and never cleared: once set, no read is released,
		// nothing is stepped, and Read fails a read that overlapped it.
		removed bool
	}
}

// proposal is a command waiting for its result.
type proposal struct {
	id   uint64
	term uint64 // the term the leader proposed it in
	// done is closed once the proposal is resolved; r holds the outcome
	// from then on. resolve is called once, by whoever removes the
	// proposal from its group's map (under the group's lock).
	done chan struct{}
	r    proposalResult
	data []byte // the entry's payload while queued
}

func newProposal(id uint64) *proposal {
	return &proposal{id: id, done: make(chan struct{})}
}

// resolve records the proposal's outcome and wakes its waiters.
func (p *proposal) resolve(r proposalResult) {
	p.r = r
	close(p.done)
}

type proposalResult struct {
	res Result
	err error
}

// readQueue batches ReadIndex requests: every read that arrives while one
// ReadIndex round is in flight joins the next round.
type readQueue struct {
	next     []chan error // waiting for a round to start
	inflight *readRound   // the round raft is working on
	ready    []*readRound // rounds with a known index, waiting for apply
}

type readRound struct {
	ctx     uint64
	index   uint64
	started time.Time
	waiters []chan error
}

// leaderLocked returns whether the replica leads, the leader it knows
// (0 if none) and the current term.
func (g *group) leaderLocked() (leader bool, lead, term uint64) {
	st := g.mu.rn.BasicStatus()
	return st.RaftState == raft.StateLeader, replicaid.Node(st.Lead), st.GetTerm()
}

// replicaOfLocked returns the raft ID under which node is a member of the
// group as the replica last applied it, and whether it is a voter. ok is
// false if node is no member.
func (g *group) replicaOfLocked(node uint64) (id uint64, voter, ok bool) {
	cs := g.mu.confState
	for _, ids := range [][]uint64{cs.GetVoters(), cs.GetVotersOutgoing(), cs.GetLearners(), cs.GetLearnersNext()} {
		for _, r := range ids {
			if replicaid.Node(r) == node {
				return r, slices.Contains(cs.GetVoters(), r), true
			}
		}
	}
	return 0, false, false
}

// isMember reports whether replica (a raft ID) is in cs in any role.
func isMember(cs *raftpb.ConfState, node uint64) bool {
	for _, ids := range [][]uint64{cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext()} {
		for _, id := range ids {
			if id == node {
				return true
			}
		}
	}
	return false
}

// acceptsFromLocked reports whether the replica takes raft messages from
// replica (a raft ID): a member of the group in any role. An older or newer
// incarnation of a member is not one. A new replica that knows no
// members yet (it waits for its first snapshot) takes them from anyone, as
// it must to hear from the leader that added it.
//
// A replica whose membership lags behind the group's drops the messages of
// members added since: if such a member leads, the replica cannot catch up
// until another member leads. Certificates that prove a sender, not a
// membership check, will lift that.
func (g *group) acceptsFromLocked(replica uint64) bool {
	cs := g.mu.confState
	if len(cs.GetVoters()) == 0 && len(cs.GetLearners()) == 0 && len(cs.GetVotersOutgoing()) == 0 {
		return true
	}
	return isMember(cs, replica)
}

// failProposalsBefore fails, with ErrProposalDropped, every proposal of a
// term below term: an entry of term has been applied, so no entry of an
// earlier term can still commit after it. Called with g.mu held.
func (g *group) failProposalsBeforeLocked(term uint64) {
	for id, p := range g.mu.proposals {
		if p.term < term {
			p.resolve(proposalResult{err: ErrProposalDropped})
			delete(g.mu.proposals, id)
		}
	}
}

// failReadsLocked fails every waiting read with err.
func (g *group) failReadsLocked(err error) {
	q := &g.mu.reads
	for _, w := range q.next {
		w <- err
	}
	q.next = nil
	if q.inflight != nil {
		for _, w := range q.inflight.waiters {
			w <- err
		}
		q.inflight = nil
	}
	for _, r := range q.ready {
		for _, w := range r.waiters {
			w <- err
		}
	}
	q.ready = nil
}
