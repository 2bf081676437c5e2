package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Initial log position of a group bootstrapped from configuration. Raft's
// own bootstrap starts at 1; starting later leaves room below and makes a
// bootstrapped group distinguishable from an empty one.
const (
	initialIndex = 10
	initialTerm  = 5
)

// Node hosts the raft groups of one node.
type Node struct {
	cfg Config
	eng *storage.Engine
	sm  StateMachine

	// tr is set by Start; nil means no network (single node).
	tr transport.Transport

	nextID atomic.Uint64 // proposal and read-round IDs

	mu struct {
		sync.RWMutex
		groups map[uint64]*group
		// destroys are the DestroyGroup calls waiting for the loop, by
		// group.
		destroys map[uint64][]chan error
	}
	// createMu serializes CreateGroup. CreateGroup holds it, and not mu,
	// across its storage writes: a failed write stops the node, and
	// stopping takes mu.
	createMu sync.Mutex

	work    chan struct{} // signals the loop; capacity 1
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the node stopped for any reason
	stopErr atomic.Pointer[error]

	stopOnce sync.Once
	wg       sync.WaitGroup // the loop, the ticker, snapshot senders

	stats stats

	// testHooks are set by tests only (export_test.go).
	testHooks struct {
		// beforeDestroy, if set, runs before destroyGroup deletes
		// anything; an error stops the node there, as a crash would.
		beforeDestroy atomic.Pointer[func(group uint64) error]
	}
}

// New creates a node. Groups are added with CreateGroup; Start begins
// driving them.
func New(cfg Config) (*Node, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		eng:     cfg.Engine,
		sm:      cfg.StateMachine,
		work:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	n.mu.groups = make(map[uint64]*group)
	// IDs only need to be unique among this node's outstanding proposals
	// and reads; a random start keeps them unique across restarts too.
	n.nextID.Store(rand.Uint64() >> 1)
	n.eng.OnStop(func(err error) { n.fail(err) })
	return n, nil
}

// Start begins the loop and the ticker. tr may be nil for a node without
// peers.
func (n *Node) Start(tr transport.Transport) {
	n.tr = tr
	n.wg.Add(2)
	go n.loop()
	go n.ticker()
}

// ID returns the node ID.
func (n *Node) ID() uint64 { return n.cfg.NodeID }

// Engine returns the node's storage engine.
func (n *Node) Engine() *storage.Engine { return n.eng }

// Close stops the node and waits for its goroutines. Waiting calls fail
// with ErrStopped. It does not close the engine or the transport.
func (n *Node) Close() error {
	n.fail(ErrStopped)
	n.wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range n.mu.groups {
		g.mu.Lock()
		for _, s := range g.mu.snapOut {
			s.release()
		}
		g.mu.snapOut = nil
		g.mu.Unlock()
	}
	return nil
}

// Err returns why the node stopped, or nil while it runs.
func (n *Node) Err() error {
	if p := n.stopErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Done is closed when the node stops.
func (n *Node) Done() <-chan struct{} { return n.stopped }

// fail stops the node with cause. The first cause wins.
func (n *Node) fail(cause error) {
	n.stopOnce.Do(func() {
		n.stopErr.Store(&cause)
		close(n.stop)
		close(n.stopped)
		if !errors.Is(cause, ErrStopped) && n.cfg.OnStop != nil {
			n.cfg.OnStop(cause)
		}
		n.mu.RLock()
		defer n.mu.RUnlock()
		for _, g := range n.mu.groups {
			g.mu.Lock()
			for id, p := range g.mu.proposals {
				p.resolve(proposalResult{err: fmt.Errorf("%w: %w", ErrAmbiguous, stoppedErr(cause))})
				delete(g.mu.proposals, id)
			}
			g.failReadsLocked(stoppedErr(cause))
			g.mu.Unlock()
		}
	})
}

func stoppedErr(cause error) error {
	if errors.Is(cause, ErrStopped) {
		return ErrStopped
	}
	return fmt.Errorf("%w: %w", ErrStopped, cause)
}

func (n *Node) signal() {
	select {
	case n.work <- struct{}{}:
	default:
	}
}

func (n *Node) group(id uint64) (*group, error) {
	n.mu.RLock()
	g := n.mu.groups[id]
	n.mu.RUnlock()
	if g == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownGroup, id)
	}
	return g, nil
}

// Groups returns the IDs of the hosted groups in ascending order.
func (n *Node) Groups() []uint64 {
	n.mu.RLock()
	ids := make([]uint64, 0, len(n.mu.groups))
	for id := range n.mu.groups {
		ids = append(ids, id)
	}
	n.mu.RUnlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// CreateGroup starts hosting a replica of a group, recovering its state
// from storage, bootstrapping it from cfg.Peers when it has none, or
// starting it empty to be filled by a snapshot. A recovered replica that
// its group had removed this node from (the node stopped before it
// destroyed it) is destroyed by the loop once started, as at runtime:
// data, raft state, then Config.OnGroupRemoved.
func (n *Node) CreateGroup(cfg GroupConfig) error {
	if cfg.ID == 0 {
		return errors.New("raftnode: group ID must be > 0")
	}
	if err := n.Err(); err != nil {
		return err
	}
	n.createMu.Lock()
	defer n.createMu.Unlock()
	n.mu.RLock()
	_, ok := n.mu.groups[cfg.ID]
	n.mu.RUnlock()
	if ok {
		return fmt.Errorf("%w: %d", ErrGroupExists, cfg.ID)
	}
	rl, err := storage.OpenRaftLog(n.eng, cfg.ID)
	if err != nil {
		return err
	}
	applied, err := storage.LoadAppliedState(n.eng.Reader(), cfg.ID)
	if err != nil {
		return err
	}
	first, last := rl.Bounds()
	fresh := last == 0 && first == 1 && raft.IsEmptyHardState(rl.HardState())
	replicaID, stored, err := n.replicaID(cfg, fresh)
	if err != nil {
		return err
	}
	bootstrapped := false
	if fresh && (len(cfg.Peers) > 0 || !stored) {
		b := n.eng.NewBatch()
		if !stored {
			// Recorded before the replica says anything under its ID, so
			// a restart recovers it with the same one.
			if err := b.Set(storage.ReplicaIDKey(cfg.ID), binary.BigEndian.AppendUint64(nil, replicaID), nil); err != nil {
				b.Close()
				return err
			}
		}
		var cs *raftpb.ConfState
		if len(cfg.Peers) > 0 {
			cs = &raftpb.ConfState{Voters: append([]uint64(nil), cfg.Peers...)}
			if err := rl.StageInitial(b, initialIndex, initialTerm, cs); err != nil {
				b.Close()
				return err
			}
		}
		if err := n.eng.Commit(b, true); err != nil {
			b.Close()
			rl.Discard()
			return fmt.Errorf("raftnode: group %d: bootstrap: %w", cfg.ID, err)
		}
		b.Close()
		if cs != nil {
			rl.Persisted()
			applied = storage.AppliedState{Index: initialIndex, Term: initialTerm, ConfState: cs}
			bootstrapped = true
		}
	}
	rl.EnsureCommit(applied.Index)
	g := &group{id: cfg.ID, replicaID: replicaID, spans: cfg.Spans, keepData: cfg.KeepDataOnRemoval, log: rl, applied: applied, lastApplyTerm: applied.Term}
	rl.SetSnapshotter(func() (*raftpb.Snapshot, error) { return n.buildSnapshot(g) })
	readOnly := raft.ReadOnlySafe
	if n.cfg.UnsafeLeaseReads {
		readOnly = raft.ReadOnlyLeaseBased
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        replicaID,
		ElectionTick:              n.cfg.ElectionTicks,
		HeartbeatTick:             n.cfg.HeartbeatTicks,
		Storage:                   rl,
		Applied:                   applied.Index,
		MaxSizePerMsg:             n.cfg.MaxSizePerMsg,
		MaxCommittedSizePerReady:  64 << 20,
		MaxUncommittedEntriesSize: 256 << 20,
		MaxInflightMsgs:           n.cfg.MaxInflightMsgs,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            readOnly,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    n.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("raftnode: group %d: %w", cfg.ID, err)
	}
	g.mu.rn = rn
	g.mu.proposals = make(map[uint64]*proposal)
	g.mu.snapIn = make(map[uint64]*inboundSnapshot)
	g.mu.appliedIndex = applied.Index
	g.mu.confState = applied.ConfState
	// A replica whose applied membership lacks this node was removed, and
	// the node stopped before destroyGroup finished (the applied state
	// with the removal is written before the destruction, which is one
	// batch). Queue it for the loop to destroy as it would have. A replica
	// with no membership at all is new, waiting for its first snapshot.
	if len(applied.ConfState.GetVoters()) > 0 && !isMember(applied.ConfState, replicaID) {
		g.mu.removed = true
	}
	// A freshly bootstrapped group campaigns at once on one chosen member,
	// spreading the first leaders over the nodes instead of waiting for an
	// election timeout.
	if bootstrapped && cfg.Peers[int(cfg.ID%uint64(len(cfg.Peers)))] == n.cfg.NodeID {
		if err := rn.Campaign(); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// Checked under mu: fail records its cause before it takes mu to fail
	// the groups' waiters, so a group published here is one it sees.
	if err := n.Err(); err != nil {
		return stoppedErr(err)
	}
	n.mu.groups[cfg.ID] = g
	n.signal()
	return nil
}

// replicaID returns the raft ID of the replica cfg describes, and whether
// storage records it already. A replica with state keeps the ID it was
// created with (recorded, or its node ID for an initial member); a new one
// takes cfg.ReplicaID, or the node ID, if the group's tombstone allows.
func (n *Node) replicaID(cfg GroupConfig, fresh bool) (id uint64, stored bool, err error) {
	r := n.eng.Reader()
	v, err := storage.Get(r, storage.ReplicaIDKey(cfg.ID))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		id = n.cfg.NodeID
		stored = !fresh || cfg.ReplicaID == 0 || cfg.ReplicaID == n.cfg.NodeID // nothing to record
	case err != nil:
		return 0, false, err
	case len(v) != 8:
		return 0, false, fmt.Errorf("raftnode: group %d: replica ID is %d bytes, want 8", cfg.ID, len(v))
	default:
		id, stored = binary.BigEndian.Uint64(v), true
	}
	switch {
	case fresh && !stored:
		id = cfg.ReplicaID
	case fresh && cfg.ReplicaID > id:
		// A replica created under an older ID that never said anything
		// (no raft state but its ID: say the call that created it failed
		// before the replica was saved as hosted) may take a newer one.
		id, stored = cfg.ReplicaID, false
	}
	if cfg.ReplicaID != 0 && cfg.ReplicaID != id {
		return 0, false, fmt.Errorf("%w: group %d: local replica is %#x, not %#x", ErrStaleReplica, cfg.ID, id, cfg.ReplicaID)
	}
	if replicaid.Node(id) != n.cfg.NodeID {
		return 0, false, fmt.Errorf("raftnode: group %d: replica ID %#x is not one of node %d", cfg.ID, id, n.cfg.NodeID)
	}
	floor, err := loadTombstone(r, cfg.ID)
	if err != nil {
		return 0, false, err
	}
	if id < floor {
		return 0, false, fmt.Errorf("%w: group %d: replica %#x was destroyed here (tombstone %#x)", ErrStaleReplica, cfg.ID, id, floor)
	}
	return id, stored, nil
}

// loadTombstone returns the lowest replica ID of group the node may host
// (0 if it never destroyed one).
func loadTombstone(r pebble.Reader, group uint64) (uint64, error) {
	v, err := storage.Get(r, storage.TombstoneKey(group))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftnode: group %d: tombstone is %d bytes, want 8", group, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// stageTombstone stages in b the tombstone of g's replica, which is being
// destroyed: the next incarnation of this node's replica is the lowest it
// may host.
func (n *Node) stageTombstone(b *pebble.Batch, g *group) error {
	floor, err := loadTombstone(n.eng.Reader(), g.id)
	if err != nil {
		return err
	}
	next := replicaid.Make(replicaid.Incarnation(g.replicaID)+1, n.cfg.NodeID)
	if next <= floor {
		return nil
	}
	return b.Set(storage.TombstoneKey(g.id), binary.BigEndian.AppendUint64(nil, next), nil)
}

// encodeProposal prefixes cmd with the proposal ID.
func encodeProposal(id uint64, cmd []byte) []byte {
	data := make([]byte, 8+len(cmd))
	binary.BigEndian.PutUint64(data, id)
	copy(data[8:], cmd)
	return data
}

// Propose replicates cmd in group and returns its Result once applied.
// It fails with *NotLeaderError on a follower, ErrProposalDropped when the
// command certainly will not apply, and ErrAmbiguous when ctx ends first.
func (n *Node) Propose(ctx context.Context, groupID uint64, cmd []byte) (Result, error) {
	return n.propose(ctx, groupID, func(g *group, p *proposal) error {
		// Queued for the loop, which hands every proposal queued since its
		// last cycle to raft at once: one append message per follower
		// carries them all, rather than one message per proposal.
		p.data = encodeProposal(p.id, cmd)
		g.mu.queued = append(g.mu.queued, p)
		return nil
	})
}

// ChangeMembership proposes a membership change, whose node IDs are raft
// replica IDs (package replicaid), and waits until it applied. AddLearner,
// PromoteVoter and RemoveMember name nodes instead and find their IDs.
func (n *Node) ChangeMembership(ctx context.Context, groupID uint64, cc *raftpb.ConfChangeV2) error {
	return n.changeMembership(ctx, groupID, func(*group) (*raftpb.ConfChangeV2, error) { return cc, nil })
}

// changeMembership proposes the change that build returns, called under
// the group's lock just before the change is stepped into raft, and waits
// until it applied.
func (n *Node) changeMembership(ctx context.Context, groupID uint64, build func(*group) (*raftpb.ConfChangeV2, error)) error {
	_, err := n.propose(ctx, groupID, func(g *group, p *proposal) error {
		rn := g.mu.rn
		cc, err := build(g)
		if err != nil {
			return err
		}
		c := proto.Clone(cc).(*raftpb.ConfChangeV2)
		c.Context = binary.BigEndian.AppendUint64(nil, p.id)
		data, err := proto.Marshal(c)
		if err != nil {
			return err
		}
		// Raft does not fail a conf change it refuses (another one is
		// pending, or the group is in a joint config): it appends an empty
		// entry in its place, and the caller would wait for good. Step the
		// proposal here (as ProposeConfChange does) to see the swap.
		m := &raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(),
			Entries: []*raftpb.Entry{{Type: raftpb.EntryType_EntryConfChangeV2.Enum(), Data: data}}}
		if err := rn.Step(m); err != nil {
			return err
		}
		if m.GetEntries()[0].GetType() != raftpb.EntryType_EntryConfChangeV2 {
			return raft.ErrProposalDropped
		}
		return nil
	})
	return err
}

// AddLearner adds a new replica on node, which must not be a member, as a
// non-voting member of group, and returns its raft replica ID: the node
// must host it under that ID (GroupConfig.ReplicaID).
//
// Every replica added gets a new ID, never one raft has seen in the group:
// its incarnation is the leader's applied index when the change enters the
// log. Raft appends a conf change only once every earlier one is applied
// (one change at a time), so that index is at least the index of the entry
// that added the node's previous replica, which is above that replica's
// incarnation.
func (n *Node) AddLearner(ctx context.Context, groupID, node uint64) (uint64, error) {
	if node == 0 || node > replicaid.MaxNode {
		return 0, fmt.Errorf("raftnode: node ID %d out of [1, %d]", node, replicaid.MaxNode)
	}
	var id uint64
	err := n.changeMembership(ctx, groupID, func(g *group) (*raftpb.ConfChangeV2, error) {
		if old, _, ok := g.replicaOfLocked(node); ok {
			return nil, fmt.Errorf("raftnode: group %d: node %d is a member already (replica %#x)", groupID, node, old)
		}
		inc := g.mu.appliedIndex
		if inc > replicaid.MaxIncarnation {
			return nil, fmt.Errorf("raftnode: group %d: applied index %d exceeds the largest incarnation", groupID, inc)
		}
		id = replicaid.Make(inc, node)
		return simpleChange(raftpb.ConfChangeAddLearnerNode, id), nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// PromoteVoter makes node's replica, a learner of group, a voter.
func (n *Node) PromoteVoter(ctx context.Context, groupID, node uint64) error {
	return n.changeMembership(ctx, groupID, func(g *group) (*raftpb.ConfChangeV2, error) {
		id, _, ok := g.replicaOfLocked(node)
		if !ok {
			return nil, fmt.Errorf("%w: node %d in group %d", ErrNotMember, node, groupID)
		}
		return simpleChange(raftpb.ConfChangeAddNode, id), nil
	})
}

// RemoveMember removes node's replica from group.
func (n *Node) RemoveMember(ctx context.Context, groupID, node uint64) error {
	return n.changeMembership(ctx, groupID, func(g *group) (*raftpb.ConfChangeV2, error) {
		id, _, ok := g.replicaOfLocked(node)
		if !ok {
			return nil, fmt.Errorf("%w: node %d in group %d", ErrNotMember, node, groupID)
		}
		return simpleChange(raftpb.ConfChangeRemoveNode, id), nil
	})
}

func simpleChange(t raftpb.ConfChangeType, replica uint64) *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: t.Enum(), NodeId: proto.Uint64(replica)}}}
}

func (n *Node) propose(ctx context.Context, groupID uint64, do func(*group, *proposal) error) (res Result, err error) {
	start := time.Now()
	defer func() { n.cfg.Observer.ProposalDone(groupID, time.Since(start), err) }()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	g, p, err := n.enqueue(groupID, 0, do)
	if err != nil {
		return Result{}, err
	}
	select {
	case <-p.done:
		return p.r.res, p.r.err
	case <-ctx.Done():
		g.mu.Lock()
		delete(g.mu.proposals, p.id)
		g.mu.Unlock()
		// The loop may have delivered the result meanwhile.
		select {
		case <-p.done:
			return p.r.res, p.r.err
		default:
		}
		return Result{}, fmt.Errorf("%w: %w", ErrAmbiguous, ctx.Err())
	}
}

// enqueue runs do (which queues p for the loop or steps it into raft) on
// groupID's replica if it leads, in term wantTerm if that is not 0, and
// registers p to be resolved by the loop.
func (n *Node) enqueue(groupID, wantTerm uint64, do func(*group, *proposal) error) (*group, *proposal, error) {
	if err := n.Err(); err != nil {
		return nil, nil, stoppedErr(err)
	}
	g, err := n.group(groupID)
	if err != nil {
		return nil, nil, err
	}
	p := newProposal(n.nextID.Add(1))
	g.mu.Lock()
	// Checked again under g.mu: fail records its cause before it fails the
	// waiters of each group under that group's lock, so a proposal it did
	// not see sees the cause here instead of waiting forever.
	if err := n.Err(); err != nil {
		g.mu.Unlock()
		return nil, nil, stoppedErr(err)
	}
	leader, lead, term := g.leaderLocked()
	if !leader {
		g.mu.Unlock()
		return nil, nil, &NotLeaderError{Group: groupID, Leader: lead}
	}
	if wantTerm != 0 && term != wantTerm {
		g.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: term %d began after term %d", ErrProposalDropped, term, wantTerm)
	}
	p.term = term
	if err := do(g, p); err != nil {
		g.mu.Unlock()
		if errors.Is(err, raft.ErrProposalDropped) {
			return nil, nil, ErrProposalDropped
		}
		return nil, nil, err
	}
	g.mu.proposals[p.id] = p
	g.mu.Unlock()
	n.stats.proposals.Add(1)
	n.signal()
	return g, p, nil
}

// Proposal is a command queued by ProposeAsync. Raft resolves it exactly
// once: applied (its Result), certainly not applied (ErrProposalDropped,
// *NotLeaderError), or with an unknown outcome (ErrAmbiguous: the node
// stopped, or the replica was removed or caught up by a snapshot).
type Proposal struct {
	n     *Node
	group uint64
	p     *proposal
	start time.Time
}

// Done is closed once the proposal is resolved.
func (h *Proposal) Done() <-chan struct{} { return h.p.done }

// Wait returns the proposal's outcome once it is resolved. If ctx ends
// first it fails with ErrAmbiguous; the proposal stays queued and is still
// resolved, and Done still closes, as if nobody had waited.
func (h *Proposal) Wait(ctx context.Context) (res Result, err error) {
	defer func() { h.n.cfg.Observer.ProposalDone(h.group, time.Since(h.start), err) }()
	select {
	case <-h.p.done:
		return h.p.r.res, h.p.r.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%w: %w", ErrAmbiguous, ctx.Err())
	}
}

// ProposeAsync queues cmd on the local replica of group, which must lead
// it in term (0: any term), and returns at once. Commands queued by
// ProposeAsync from one goroutine enter the log in the order queued, in
// that term. It fails with *NotLeaderError on a follower and with
// ErrProposalDropped if the replica leads a later term: a command queued
// in a term certainly never applies in another order than its term's.
func (n *Node) ProposeAsync(groupID, term uint64, cmd []byte) (*Proposal, error) {
	start := time.Now()
	_, p, err := n.enqueue(groupID, term, func(g *group, p *proposal) error {
		p.data = encodeProposal(p.id, cmd)
		g.mu.queued = append(g.mu.queued, p)
		return nil
	})
	if err != nil {
		n.cfg.Observer.ProposalDone(groupID, time.Since(start), err)
		return nil, err
	}
	return &Proposal{n: n, group: groupID, p: p, start: start}, nil
}

// Term returns the local replica of group's current term and whether it
// leads in it.
func (n *Node) Term(groupID uint64) (term uint64, leader bool, err error) {
	g, err := n.group(groupID)
	if err != nil {
		return 0, false, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	leader, _, term = g.leaderLocked()
	return term, leader, nil
}

// ReadIndex returns once the local replica of group, which must be the
// leader, has applied everything committed before the call: a read of the
// group's state after it is linearizable. Concurrent calls share one
// ReadIndex round.
//
// The replica may be removed from the group, and its data deleted, between
// ReadIndex's return and the caller's read of storage: a caller that reads
// the group's data should use Read, which detects that.
func (n *Node) ReadIndex(ctx context.Context, groupID uint64) error {
	_, err := n.readIndex(ctx, groupID)
	return err
}

// Read runs read on the node's storage once the local replica of group,
// which must be the leader, has applied everything committed before the
// call (as ReadIndex), and checks afterwards that the replica was not
// removed meanwhile. If it was, its data may have been deleted under read:
// Read then fails with a *NotLeaderError (safe to retry on the leader) and
// the caller must discard what read saw. read must finish its reads before
// it returns, and must not keep r.
func (n *Node) Read(ctx context.Context, groupID uint64, read func(r pebble.Reader) error) error {
	g, err := n.readIndex(ctx, groupID)
	if err != nil {
		return err
	}
	if err := read(n.eng.Reader()); err != nil {
		return err
	}
	// g.mu.removed is set (under g.mu) before destroyGroup deletes
	// anything. So if it is not set now, the deletes of the replica's
	// destruction had not been committed when read ran, and read saw the
	// replica's data.
	g.mu.Lock()
	removed := g.mu.removed
	g.mu.Unlock()
	if removed {
		return &NotLeaderError{Group: groupID}
	}
	return nil
}

// readIndex is ReadIndex; it returns the replica that confirmed the read.
func (n *Node) readIndex(ctx context.Context, groupID uint64) (*group, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := n.Err(); err != nil {
		return nil, stoppedErr(err)
	}
	g, err := n.group(groupID)
	if err != nil {
		return nil, err
	}
	ch := make(chan error, 1)
	g.mu.Lock()
	if err := n.Err(); err != nil { // under g.mu: see propose
		g.mu.Unlock()
		return nil, stoppedErr(err)
	}
	if leader, lead, _ := g.leaderLocked(); !leader || g.mu.removed {
		g.mu.Unlock()
		return nil, &NotLeaderError{Group: groupID, Leader: lead}
	}
	g.mu.reads.next = append(g.mu.reads.next, ch)
	if g.mu.reads.inflight == nil {
		n.startReadRoundLocked(g)
	}
	g.mu.Unlock()
	n.stats.reads.Add(1)
	n.signal()
	select {
	case err := <-ch:
		return g, err
	case <-ctx.Done():
		// The waiter stays queued; its buffered channel absorbs the answer.
		return nil, ctx.Err()
	}
}

// startReadRoundLocked moves the queued reads into a new ReadIndex round.
func (n *Node) startReadRoundLocked(g *group) {
	r := &readRound{ctx: n.nextID.Add(1), started: time.Now(), waiters: g.mu.reads.next}
	g.mu.reads.next = nil
	g.mu.reads.inflight = r
	g.mu.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, r.ctx))
	n.stats.readRounds.Add(1)
}

// TransferLeader asks the leader of group to hand leadership to node. It
// returns at once; watch Status for the outcome.
func (n *Node) TransferLeader(groupID, to uint64) error {
	g, err := n.group(groupID)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if leader, lead, _ := g.leaderLocked(); !leader {
		return &NotLeaderError{Group: groupID, Leader: lead}
	}
	id, voter, ok := g.replicaOfLocked(to)
	if !ok || !voter {
		return fmt.Errorf("%w: node %d is no voter of group %d", ErrNotMember, to, groupID)
	}
	g.mu.rn.TransferLeader(id)
	n.signal()
	return nil
}

// Campaign makes the local replica of group start an election.
func (n *Node) Campaign(groupID uint64) error {
	g, err := n.group(groupID)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	defer n.signal()
	return g.mu.rn.Campaign()
}

// GroupStatus is a summary of the local replica of a group.
type GroupStatus struct {
	ID         uint64
	Leader     uint64 // 0 if unknown
	IsLeader   bool
	Term       uint64
	Commit     uint64
	Applied    uint64
	FirstIndex uint64 // first entry still in the log
	LastIndex  uint64
	Voters     []uint64          // node IDs
	Learners   []uint64          // node IDs
	Progress   map[uint64]uint64 // on the leader: each member node's match index
	// ReplicaID is the local replica's raft ID; Replicas maps each member
	// node to the raft ID of its replica (package replicaid).
	ReplicaID uint64
	Replicas  map[uint64]uint64
}

// Status returns the status of the local replica of group.
func (n *Node) Status(groupID uint64) (GroupStatus, error) {
	g, err := n.group(groupID)
	if err != nil {
		return GroupStatus{}, err
	}
	g.mu.Lock()
	st := g.mu.rn.Status()
	applied := g.mu.appliedIndex
	g.mu.Unlock()
	first, last := g.log.Bounds()
	gs := GroupStatus{
		ID: groupID, Leader: replicaid.Node(st.Lead), IsLeader: st.RaftState == raft.StateLeader,
		Term: st.GetTerm(), Commit: st.GetCommit(), Applied: applied, FirstIndex: first, LastIndex: last,
		ReplicaID: g.replicaID, Replicas: map[uint64]uint64{},
	}
	for _, id := range st.Config.Voters[0].Slice() {
		gs.Voters = append(gs.Voters, replicaid.Node(id))
		gs.Replicas[replicaid.Node(id)] = id
	}
	for id := range st.Config.Learners {
		gs.Learners = append(gs.Learners, replicaid.Node(id))
		gs.Replicas[replicaid.Node(id)] = id
	}
	sort.Slice(gs.Voters, func(i, j int) bool { return gs.Voters[i] < gs.Voters[j] })
	sort.Slice(gs.Learners, func(i, j int) bool { return gs.Learners[i] < gs.Learners[j] })
	if gs.IsLeader {
		gs.Progress = make(map[uint64]uint64, len(st.Progress))
		for id, pr := range st.Progress {
			gs.Progress[replicaid.Node(id)] = pr.Match
		}
	}
	return gs, nil
}

// Leader returns the leader of group as the local replica knows it (0 if
// unknown) and whether it is this node.
func (n *Node) Leader(groupID uint64) (uint64, bool, error) {
	g, err := n.group(groupID)
	if err != nil {
		return 0, false, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	leader, lead, _ := g.leaderLocked()
	return lead, leader, nil
}

// AppliedIndex returns the applied index of the local replica of group.
// It fails with ErrStopped once the node stopped: a stopped replica applies
// nothing more, so what it holds may be arbitrarily stale.
func (n *Node) AppliedIndex(groupID uint64) (uint64, error) {
	if err := n.Err(); err != nil {
		return 0, stoppedErr(err)
	}
	g, err := n.group(groupID)
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.appliedIndex, nil
}

func (n *Node) ticker() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.mu.RLock()
		for _, g := range n.mu.groups {
			g.mu.Lock()
			g.mu.rn.Tick()
			n.retryStaleReadLocked(g)
			g.mu.Unlock()
		}
		n.mu.RUnlock()
		n.signal()
	}
}

// retryStaleReadLocked restarts a ReadIndex round that raft dropped (its
// messages were lost or leadership moved): after an election timeout the
// round's waiters join a fresh one.
func (n *Node) retryStaleReadLocked(g *group) {
	r := g.mu.reads.inflight
	if r == nil {
		return
	}
	if leader, lead, _ := g.leaderLocked(); !leader {
		g.failReadsLocked(&NotLeaderError{Group: g.id, Leader: lead})
		return
	}
	if time.Since(r.started) < time.Duration(n.cfg.ElectionTicks)*n.cfg.TickInterval {
		return
	}
	g.mu.reads.next = append(r.waiters, g.mu.reads.next...)
	g.mu.reads.inflight = nil
	n.startReadRoundLocked(g)
}

// Transport handler.

var _ transport.Handler = (*Node)(nil)

// HandleMessages steps inbound raft messages into their groups. Dropped,
// and counted in Stats, are messages for a group the node does not host,
// messages from a sender that is not a member of the group (see
// acceptsFromLocked), and messages no correct peer sends on this stream: a
// MsgSnap (snapshots come through HandleSnapshot, with their data), a
// MsgProp (proposals are never forwarded), one whose sender is not from;
// and messages addressed to another incarnation of the local replica
// (StaleReplicaDrops): an old leader's to a replica since destroyed and
// re-created, or a new leader's to one that replaced a stale replica.
func (n *Node) HandleMessages(from uint64, envs []transport.Envelope) {
	if n.Err() != nil {
		return
	}
	for _, env := range envs {
		m := env.Msg
		g, err := n.group(env.Group)
		if err != nil {
			n.stats.unknownGroup.Add(1)
			continue
		}
		if t := m.GetType(); t == raftpb.MsgSnap || t == raftpb.MsgProp || replicaid.Node(m.GetFrom()) != from {
			n.stats.invalidMsg.Add(1)
			continue
		}
		if m.GetTo() != g.replicaID {
			n.stats.staleReplica.Add(1)
			continue
		}
		g.mu.Lock()
		switch {
		case g.mu.removed:
		case !g.acceptsFromLocked(m.GetFrom()):
			n.stats.nonMember.Add(1)
		default:
			// Step fails only for messages raft ignores (e.g. a response
			// from a removed peer, or a local message type); drop them.
			_ = g.mu.rn.Step(m)
		}
		g.mu.Unlock()
	}
	n.signal()
}

// ReportUnreachable tells every group that node peer is unreachable, so
// raft stops pipelining appends to its replica.
func (n *Node) ReportUnreachable(peer uint64) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, g := range n.mu.groups {
		g.mu.Lock()
		if id, _, ok := g.replicaOfLocked(peer); ok {
			g.mu.rn.ReportUnreachable(id)
		}
		g.mu.Unlock()
	}
}
