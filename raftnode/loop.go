package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// loop is the scheduler: it owns every group's Ready/Advance cycle.
func (n *Node) loop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case <-n.work:
		}
		if err := n.cycle(); err != nil {
			n.fail(err)
			return
		}
	}
}

// ready is one group's Ready taken in a cycle.
type ready struct {
	g    *group
	rd   raft.Ready
	snap *inboundSnapshot // data of rd.Snapshot, if any
	// delivered results, sent after the apply batch commits
	results []delivery
	// confChanged: the Ready changed the group's membership (a conf change
	// entry or a snapshot); removed: the membership after the Ready's last
	// entry lacks this node. An earlier entry of the same Ready may remove
	// the node and a later one add it back: only the end counts.
	confChanged bool
	removed     bool
	// leader: the replica leads, so its messages may go out before its own
	// entries are durable (raft thesis 10.2.1): a leader's messages carry no
	// vote, and it counts its own entries only after Advance.
	leader bool
}

type delivery struct {
	p *proposal
	r proposalResult
}

// cycle runs one round of the loop over every group with a Ready:
// persist all (one batch, one fsync), send, apply all (one batch), advance.
func (n *Node) cycle() error {
	if err := n.destroyRequested(); err != nil {
		return err
	}
	n.mu.RLock()
	groups := make([]*group, 0, len(n.mu.groups))
	for _, g := range n.mu.groups {
		groups = append(groups, g)
	}
	n.mu.RUnlock()

	var rds []*ready
	var removed []*group // marked removed by recovery, to destroy
	for _, g := range groups {
		g.mu.Lock()
		if g.mu.removed {
			// Still hosted, so not destroyed yet: a cycle destroys the
			// groups it marks before it ends, so this one was marked by
			// CreateGroup's recovery.
			removed = append(removed, g)
			g.mu.Unlock()
			continue
		}
		n.flushProposalsLocked(g)
		if g.mu.rn.HasReady() {
			r := &ready{g: g, rd: g.mu.rn.Ready()}
			r.leader = g.mu.rn.BasicStatus().RaftState == raft.StateLeader
			// Every staged snapshot was stepped before this Ready, and raft
			// hands the one it accepted back in the next Ready: those not
			// handed back were ignored (stale, older term) or superseded.
			if !raft.IsEmptySnap(r.rd.Snapshot) {
				r.snap = g.mu.snapIn[r.rd.Snapshot.GetMetadata().GetIndex()]
			}
			clear(g.mu.snapIn)
			if ss := r.rd.SoftState; ss != nil {
				lead := replicaid.Node(ss.Lead)
				if ss.RaftState != raft.StateLeader {
					g.failReadsLocked(&NotLeaderError{Group: g.id, Leader: lead})
				}
				if lead != g.lastLeader {
					g.lastLeader = lead
					n.cfg.Observer.LeaderChanged(g.id, lead)
					if n.cfg.OnLeaderChange != nil {
						n.cfg.OnLeaderChange(g.id, lead)
					}
				}
			}
			rds = append(rds, r)
		}
		g.mu.Unlock()
	}
	for _, g := range removed {
		if err := n.destroyGroup(g); err != nil {
			return err
		}
	}
	if len(rds) == 0 {
		return nil
	}
	n.stats.cycles.Add(1)

	// Committed entries that earlier cycles persisted are applied, and
	// their proposers answered, before this cycle's fsync rather than after
	// it. But raft (without async storage writes) also hands out committed
	// entries that are in this very Ready's Entries, not yet durable (a
	// follower catching up receives entries already committed): those must
	// reach the local log first, or a crash in between leaves the applied
	// index beyond the log, which raft refuses at restart. A snapshot, too,
	// must land before the entries that follow it.
	persistFirst := false
	for _, r := range rds {
		persistFirst = persistFirst || !raft.IsEmptySnap(r.rd.Snapshot) || appliesUnpersisted(&r.rd)
	}
	n.send(rds, true)
	if !persistFirst {
		if err := n.apply(rds); err != nil {
			return err
		}
	}
	if err := n.persist(rds); err != nil {
		return err
	}
	n.send(rds, false)
	if persistFirst {
		if err := n.apply(rds); err != nil {
			return err
		}
	}
	for _, r := range rds {
		r.removed = r.confChanged && !isMember(r.g.applied.ConfState, r.g.replicaID)
	}

	more := false
	for _, r := range rds {
		g := r.g
		g.mu.Lock()
		if r.removed {
			// Marked before any read is released: a read released now
			// would find the data destroyGroup deletes below (see Read).
			// destroyGroup fails the waiting reads as not-leader.
			g.mu.removed = true
		}
		for _, rs := range r.rd.ReadStates {
			n.readStateLocked(g, rs)
		}
		if !g.mu.removed {
			n.releaseReadsLocked(g)
		}
		g.mu.rn.Advance(r.rd)
		more = more || g.mu.rn.HasReady()
		g.mu.Unlock()
		if r.removed {
			if err := n.destroyGroup(g); err != nil {
				return err
			}
		}
	}
	if err := n.truncate(rds); err != nil {
		return err
	}
	if more {
		n.signal()
	}
	return nil
}

// flushProposalsLocked hands the proposals queued since the last cycle to
// raft in one MsgProp, so that the leader sends them to each follower in
// one append and each follower acknowledges them with one response. A
// proposal raft refuses, or one queued on a replica that has since lost
// leadership, fails as certainly not proposed. Called with g.mu held.
func (n *Node) flushProposalsLocked(g *group) {
	queued := g.mu.queued
	if len(queued) == 0 {
		return
	}
	leader, lead, term := g.leaderLocked()
	ents := make([]*raftpb.Entry, 0, len(queued))
	live := queued[:0]
	for _, p := range queued {
		if g.mu.proposals[p.id] != p {
			continue // its caller gave up, or it already failed
		}
		if leader && p.term != term {
			// Queued in an earlier term of this replica's leadership: a
			// proposal enters the log only in the term it was queued in
			// (see ProposeAsync).
			delete(g.mu.proposals, p.id)
			p.data = nil
			p.resolve(proposalResult{err: fmt.Errorf("%w: queued in term %d, leader of term %d", ErrProposalDropped, p.term, term)})
			continue
		}
		ents = append(ents, &raftpb.Entry{Type: raftpb.EntryType_EntryNormal.Enum(), Data: p.data})
		live = append(live, p)
	}
	var err error
	switch {
	case len(ents) == 0:
	case !leader:
		err = &NotLeaderError{Group: g.id, Leader: lead}
	default:
		m := &raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), From: proto.Uint64(g.replicaID), Entries: ents}
		if err = g.mu.rn.Step(m); errors.Is(err, raft.ErrProposalDropped) {
			err = ErrProposalDropped
		}
	}
	for _, p := range live {
		p.data = nil
		if err != nil {
			delete(g.mu.proposals, p.id)
			p.resolve(proposalResult{err: err})
			continue
		}
		p.term = term // the term raft appended it in
	}
	clear(queued)
	g.mu.queued = queued[:0]
}

// appliesUnpersisted reports whether rd commits entries that it also
// hands out to persist.
func appliesUnpersisted(rd *raft.Ready) bool {
	ce, e := rd.CommittedEntries, rd.Entries
	return len(ce) > 0 && len(e) > 0 && ce[len(ce)-1].GetIndex() >= e[0].GetIndex()
}

// persist writes the snapshots, entries and hard states of all Readies in
// one batch, with one fsync if any of them needs it. A snapshot needs it
// though raft's MustSync does not say so (raft computes it from entries,
// term and vote only): the follower acknowledges the snapshot's index as
// soon as persist returns, and the leader then sends that index as the
// commit, which raft refuses (it panics) on a log that lost it.
func (n *Node) persist(rds []*ready) error {
	b := n.eng.NewBatch()
	defer b.Close()
	sync := false
	var groupsPersisted, entries int64
	for _, r := range rds {
		rd, l := &r.rd, r.g.log
		touched := false
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := n.stageSnapshot(b, r); err != nil {
				return err
			}
			touched = true
		}
		if len(rd.Entries) > 0 {
			if err := l.StageAppend(b, rd.Entries); err != nil {
				return err
			}
			entries += int64(len(rd.Entries))
			touched = true
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := l.StageHardState(b, rd.HardState); err != nil {
				return err
			}
			touched = true
		}
		if touched {
			groupsPersisted++
		}
		sync = sync || rd.MustSync || !raft.IsEmptySnap(rd.Snapshot)
	}
	if b.Empty() {
		return nil
	}
	start := time.Now()
	if err := n.eng.Commit(b, sync); err != nil {
		for _, r := range rds {
			r.g.log.Discard()
		}
		return err
	}
	n.cfg.Observer.Persisted(int(groupsPersisted), int(entries), sync, time.Since(start))
	if sync {
		n.stats.syncs.Add(1)
	}
	n.stats.groupsPersisted.Add(groupsPersisted)
	n.stats.entriesSynced.Add(entries)
	for old := n.stats.maxBatchGroups.Load(); groupsPersisted > old; old = n.stats.maxBatchGroups.Load() {
		if n.stats.maxBatchGroups.CompareAndSwap(old, groupsPersisted) {
			break
		}
	}
	for _, r := range rds {
		r.g.log.Persisted()
		if !raft.IsEmptySnap(r.rd.Snapshot) {
			n.snapshotApplied(r)
		}
	}
	return nil
}

// send hands the messages of the Readies of leaders (leaders true) or of
// the others to the transport; snapshots go on their own goroutines.
func (n *Node) send(rds []*ready, leaders bool) {
	var envs []transport.Envelope
	for _, r := range rds {
		if r.leader != leaders {
			continue
		}
		for _, m := range r.rd.Messages {
			if m.GetType() == raftpb.MsgSnap {
				n.startSnapshotSend(r.g, m)
				continue
			}
			envs = append(envs, transport.Envelope{Group: r.g.id, Msg: m})
		}
	}
	if len(envs) > 0 && n.tr != nil {
		n.tr.Send(envs)
	}
}

// apply applies the committed entries of all Readies in one batch.
func (n *Node) apply(rds []*ready) error {
	start := time.Now()
	entries := 0
	b := n.eng.NewIndexedBatch()
	defer b.Close()
	for _, r := range rds {
		if len(r.rd.CommittedEntries) == 0 {
			continue
		}
		entries += len(r.rd.CommittedEntries)
		if err := n.applyEntries(b, r); err != nil {
			return err
		}
		if err := storage.PutAppliedState(b, r.g.id, r.g.applied); err != nil {
			return err
		}
	}
	if b.Empty() {
		return nil
	}
	// Not synced: the entries are durable in the raft log, and a restart
	// re-applies what the applied state does not cover.
	if err := n.eng.Commit(b, false); err != nil {
		return err
	}
	n.cfg.Observer.Applied(entries, time.Since(start))
	for _, r := range rds {
		if len(r.rd.CommittedEntries) == 0 {
			continue
		}
		r.g.mu.Lock()
		r.g.mu.appliedIndex = r.g.applied.Index
		r.g.mu.Unlock()
		r.g.log.ReleaseApplied(r.g.applied.Index)
		for _, d := range r.results {
			d.p.resolve(d.r)
		}
		r.results = nil
	}
	return nil
}

func (n *Node) applyEntries(b *pebble.Batch, r *ready) error {
	g := r.g
	for _, e := range r.rd.CommittedEntries {
		if e.GetIndex() <= g.applied.Index {
			continue
		}
		if t := e.GetTerm(); t > g.lastApplyTerm {
			g.mu.Lock()
			g.failProposalsBeforeLocked(t)
			g.mu.Unlock()
			g.lastApplyTerm = t
		}
		var (
			id  uint64
			res Result
		)
		switch e.GetType() {
		case raftpb.EntryNormal:
			data := e.GetData()
			if len(data) == 0 {
				break // a new leader's empty entry
			}
			if len(data) < 8 {
				return fmt.Errorf("raftnode: group %d entry %d: %d-byte payload has no proposal ID", g.id, e.GetIndex(), len(data))
			}
			id = binary.BigEndian.Uint64(data)
			var err error
			res, err = n.sm.Apply(b, Entry{Group: g.id, Index: e.GetIndex(), Spans: g.spans}, data[8:])
			if err != nil {
				return fmt.Errorf("raftnode: group %d apply %d: %w", g.id, e.GetIndex(), err)
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			cc, ctx, err := decodeConfChange(e)
			if err != nil {
				return fmt.Errorf("raftnode: group %d entry %d: %w", g.id, e.GetIndex(), err)
			}
			g.mu.Lock()
			cs := g.mu.rn.ApplyConfChange(cc)
			g.mu.confState = cs
			g.mu.Unlock()
			g.applied.ConfState = cs
			if len(ctx) == 8 {
				id = binary.BigEndian.Uint64(ctx)
			}
			r.confChanged = true
		}
		g.applied.Index, g.applied.Term = e.GetIndex(), e.GetTerm()
		n.stats.applied.Add(1)
		if id != 0 {
			g.mu.Lock()
			if p := g.mu.proposals[id]; p != nil {
				delete(g.mu.proposals, id)
				r.results = append(r.results, delivery{p: p, r: proposalResult{res: res}})
			}
			g.mu.Unlock()
		}
	}
	return nil
}

func decodeConfChange(e *raftpb.Entry) (raftpb.ConfChangeI, []byte, error) {
	if e.GetType() == raftpb.EntryConfChange {
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return nil, nil, err
		}
		return &cc, cc.GetContext(), nil
	}
	var cc raftpb.ConfChangeV2
	if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
		return nil, nil, err
	}
	return &cc, cc.GetContext(), nil
}

// readStateLocked records the index raft answered a ReadIndex round with.
func (n *Node) readStateLocked(g *group, rs raft.ReadState) {
	q := &g.mu.reads
	if q.inflight == nil || len(rs.RequestCtx) != 8 || binary.BigEndian.Uint64(rs.RequestCtx) != q.inflight.ctx {
		return // a round that was retried or failed meanwhile
	}
	q.inflight.index = rs.Index
	q.ready = append(q.ready, q.inflight)
	q.inflight = nil
	if len(q.next) > 0 {
		n.startReadRoundLocked(g)
	}
}

// releaseReadsLocked answers the reads whose index has been applied.
func (n *Node) releaseReadsLocked(g *group) {
	q := &g.mu.reads
	keep := q.ready[:0]
	for _, r := range q.ready {
		if r.index <= g.mu.appliedIndex {
			for _, w := range r.waiters {
				w <- nil
			}
			continue
		}
		keep = append(keep, r)
	}
	clear(q.ready[len(keep):])
	q.ready = keep
}

// truncate removes applied entries from logs that grew past twice
// LogRetain, keeping the last LogRetain.
func (n *Node) truncate(rds []*ready) error {
	var b *pebble.Batch
	var truncated []*group
	for _, r := range rds {
		if r.removed {
			continue
		}
		first, _ := r.g.log.Bounds()
		applied := r.g.applied.Index
		if applied < first+2*n.cfg.LogRetain {
			continue
		}
		if b == nil {
			b = n.eng.NewBatch()
			defer b.Close()
		}
		if err := r.g.log.StageTruncate(b, applied-n.cfg.LogRetain); err != nil {
			return err
		}
		truncated = append(truncated, r.g)
	}
	if b == nil {
		return nil
	}
	// Not synced: the WAL is ordered, so the truncation cannot become
	// durable without the apply batches before it.
	if err := n.eng.Commit(b, false); err != nil {
		return err
	}
	for _, g := range truncated {
		g.log.Persisted()
		n.stats.truncations.Add(1)
	}
	return nil
}

// destroyGroup drops a group this node was removed from, with its data.
func (n *Node) destroyGroup(g *group) error {
	if f := n.testHooks.beforeDestroy.Load(); f != nil {
		if err := (*f)(g.id); err != nil {
			return err
		}
	}
	n.mu.Lock()
	delete(n.mu.groups, g.id)
	n.mu.Unlock()
	g.mu.Lock()
	for id, p := range g.mu.proposals {
		p.resolve(proposalResult{err: fmt.Errorf("%w: replica removed", ErrAmbiguous)})
		delete(g.mu.proposals, id)
	}
	clear(g.mu.queued)
	g.mu.queued = nil
	g.failReadsLocked(&NotLeaderError{Group: g.id})
	for _, s := range g.mu.snapOut {
		s.release()
	}
	g.mu.snapOut = nil
	clear(g.mu.snapIn)
	g.mu.Unlock()
	b := n.eng.NewBatch()
	defer b.Close()
	if err := g.log.Destroy(b); err != nil {
		return err
	}
	// The tombstone goes in the same batch: from now on the node drops
	// messages for this incarnation and never hosts it (or an older one)
	// again, across restarts.
	if err := n.stageTombstone(b, g); err != nil {
		return err
	}
	for i := 0; i < len(g.spans) && !g.keepData; i++ {
		if err := b.DeleteRange(g.spans[i].Start, g.spans[i].End, nil); err != nil {
			return err
		}
	}
	if err := n.eng.Commit(b, true); err != nil {
		return err
	}
	if f := n.cfg.OnGroupRemoved; f != nil {
		f(g.id)
	}
	return nil
}
