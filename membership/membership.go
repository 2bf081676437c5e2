package membership

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Membership is this node's place in the gossip cluster. Its methods are safe
// for concurrent use.
type Membership struct {
	cfg        Config
	name       string // memberlist node name, NodeName(cfg.Meta.NodeID)
	ml         *memberlist.Memberlist
	gossipAddr string // set once in New

	// joinConflict is set when, during New's join, the cluster reported this
	// node's name live at another address.
	joinConflict atomic.Bool

	// stopped is set when Close or Leave starts stopping; events seen after
	// it are dropped. cbMu is held (read) by event callbacks, so that taking
	// it for writing waits for the ones in flight.
	stopped atomic.Bool
	cbMu    sync.RWMutex

	// lifeMu serializes Leave and Close; closed is true once memberlist is
	// shut down.
	lifeMu sync.Mutex
	closed bool

	// metaMu serializes UpdateMeta.
	metaMu sync.Mutex

	mu struct {
		sync.Mutex
		meta    Meta
		leaving bool   // set by Leave
		encoded []byte // encodeMeta of meta and leaving, gossiped by NodeMeta
		// members by node ID, including this node and members dead or
		// left less than ForgetAfter ago.
		members map[uint64]Member
	}
}

// New validates cfg, starts gossiping on cfg.BindAddr and, if cfg.Join is
// not empty, joins the cluster through those addresses. Errors wrap
// ErrInvalidConfig, ErrJoinFailed or ErrDuplicateNodeID, or report that the
// gossip address could not be bound.
//
// New retries the join for up to JoinTimeout while no address answers, and
// also while the cluster has this node's ID live at another gossip address:
// that is either a second process with the same ID (New fails with
// ErrDuplicateNodeID) or this node's previous run, restarted on a new
// address before the cluster declared it dead. In the second case the
// cluster accepts the new address once the old one has been dead for
// DeadNodeReclaim (at the next push/pull sync, which may be after New
// returns).
func New(cfg Config) (*Membership, error) {
	cfg, prof := cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Membership{cfg: cfg, name: NodeName(cfg.Meta.NodeID)}
	m.mu.meta = cfg.Meta
	m.mu.encoded = encodeMeta(wireMeta{Meta: cfg.Meta})
	m.mu.members = make(map[uint64]Member)

	mlc := memberlist.DefaultLANConfig()
	mlc.Name = m.name
	host, port, _ := splitIPPort(cfg.BindAddr) // validated
	if host == "" {
		host = "0.0.0.0"
	}
	mlc.BindAddr, mlc.BindPort = host, port
	mlc.AdvertiseAddr, mlc.AdvertisePort = "", port
	if cfg.AdvertiseAddr != "" {
		ahost, aport, _ := splitIPPort(cfg.AdvertiseAddr) // validated
		if aport == 0 {
			aport = port // memberlist replaces it with the picked port when port is 0
		}
		mlc.AdvertiseAddr, mlc.AdvertisePort = ahost, aport
	}
	mlc.ProbeInterval = cfg.ProbeInterval
	mlc.ProbeTimeout = cfg.ProbeTimeout
	mlc.SuspicionMult = cfg.SuspicionMult
	mlc.GossipInterval = cfg.GossipInterval
	mlc.PushPullInterval = cfg.PushPullInterval
	mlc.DeadNodeReclaimTime = cfg.DeadNodeReclaim
	mlc.GossipToTheDeadTime = prof.gossipToTheDeadTime
	mlc.TCPTimeout = prof.tcpTimeout
	h := &hooks{m: m}
	mlc.Delegate = h
	mlc.Events = h
	mlc.Conflict = h
	mlc.Alive = h
	mlc.Logger = log.New(&levelFilter{dst: cfg.Logger, all: cfg.LogGossip}, "", 0)

	ml, err := memberlist.Create(mlc)
	if err != nil {
		return nil, fmt.Errorf("membership: start gossip on %s: %w", cfg.BindAddr, err)
	}
	m.ml = ml
	// The local node's address is written once, by Create.
	m.gossipAddr = ml.LocalNode().Address()

	if err := m.join(prof.joinBackoff); err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// join contacts cfg.Join (without this node's own address) until one answers
// without reporting this node's ID live elsewhere, or JoinTimeout passes.
func (m *Membership) join(backoff time.Duration) error {
	var addrs []string
	for _, a := range m.cfg.Join {
		if a != m.gossipAddr && a != m.cfg.BindAddr && a != m.cfg.AdvertiseAddr {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	deadline := time.Now().Add(m.cfg.JoinTimeout)
	for attempt := 1; ; attempt++ {
		m.joinConflict.Store(false)
		// One address at a time, to report each one's failure.
		joined, errs := 0, make([]string, 0, len(addrs))
		for _, a := range addrs {
			if _, err := m.ml.Join([]string{a}); err != nil {
				errs = append(errs, joinErrorText(err))
			} else {
				joined++
			}
		}
		conflict := m.joinConflict.Load()
		if joined > 0 && !conflict {
			return nil
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			if conflict {
				return fmt.Errorf("%w: node %d (%s, gossip %s): the cluster reached through %v has it live at another address (see log); if that process is gone, retry once it is declared dead",
					ErrDuplicateNodeID, m.cfg.Meta.NodeID, m.name, m.gossipAddr, addrs)
			}
			return fmt.Errorf("%w: none of %v answered in %d attempts over %v; last errors: %s",
				ErrJoinFailed, addrs, attempt, m.cfg.JoinTimeout, strings.Join(errs, "; "))
		}
		time.Sleep(min(backoff, remaining))
		backoff = min(2*backoff, time.Second)
	}
}

// joinErrorText returns memberlist's join error on one line: it is a
// hashicorp/go-multierror whose text spans several.
func joinErrorText(err error) string {
	var multi interface{ WrappedErrors() []error }
	if errors.As(err, &multi) {
		var parts []string
		for _, e := range multi.WrappedErrors() {
			parts = append(parts, e.Error())
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// Members returns every member the local node knows of, this node included,
// dead and departed members too until ForgetAfter, sorted by NodeID.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(time.Now())
	out := make([]Member, 0, len(m.mu.members))
	for _, mem := range m.mu.members {
		out = append(out, mem)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out
}

// Member returns the member with the given node ID, if known.
func (m *Membership) Member(nodeID uint64) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(time.Now())
	mem, ok := m.mu.members[nodeID]
	return mem, ok
}

// forgetLocked drops members dead or left for longer than ForgetAfter.
func (m *Membership) forgetLocked(now time.Time) {
	for id, mem := range m.mu.members {
		if (mem.State == Dead || mem.State == Left) && now.Sub(mem.Since) > m.cfg.ForgetAfter {
			delete(m.mu.members, id)
		}
	}
}

// GossipAddr returns the host:port this node gossips on, as advertised to
// the others: the address to give a new node in Config.Join.
func (m *Membership) GossipAddr() string { return m.gossipAddr }

// UpdateMeta changes what this node gossips about itself, for example after
// an address changed. The node ID cannot change. It waits up to
// BroadcastTimeout for the update to go out; on ErrBroadcastTimeout the new
// meta is in effect locally and still spreads by gossip.
func (m *Membership) UpdateMeta(meta Meta) error {
	if err := meta.validate(); err != nil {
		return err
	}
	if meta.NodeID != m.cfg.Meta.NodeID {
		return fmt.Errorf("%w: NodeID cannot change (from %d to %d)", ErrInvalidMeta, m.cfg.Meta.NodeID, meta.NodeID)
	}
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	if m.stopped.Load() {
		return ErrClosed
	}
	m.mu.Lock()
	m.mu.meta = meta
	m.mu.encoded = encodeMeta(wireMeta{Meta: meta, leaving: m.mu.leaving})
	m.mu.Unlock()
	if err := m.ml.UpdateNode(m.cfg.BroadcastTimeout); err != nil {
		if m.stopped.Load() {
			return ErrClosed
		}
		return fmt.Errorf("%w: meta update not sent within %v: %v", ErrBroadcastTimeout, m.cfg.BroadcastTimeout, err)
	}
	return nil
}

// Leave announces that this node leaves the cluster, so the others report it
// Left rather than Dead, then shuts down as Close does. It waits for the
// announcement to go out until ctx is done (without a deadline, up to
// BroadcastTimeout), then for LeavePropagateDelay. It shuts down even when
// it returns an error, in which case the others may report the node Dead.
// After Close or Leave it returns ErrClosed.
func (m *Membership) Leave(ctx context.Context) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.closed {
		return ErrClosed
	}
	defer func() { _ = m.stopLocked() }()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(m.cfg.BroadcastTimeout)
	}
	// within runs a memberlist call that takes a timeout (0 = none) with
	// what is left until deadline.
	within := func(what string, f func(time.Duration) error) error {
		left := time.Until(deadline)
		if ctx.Err() != nil || left <= 0 {
			return fmt.Errorf("membership: leave: %s: %w", what, cmp.Or(ctx.Err(), context.DeadlineExceeded))
		}
		if err := f(left); err != nil {
			return fmt.Errorf("membership: leave: %s within %v: %w", what, left, err)
		}
		return nil
	}

	// First gossip the leaving flag, so that the others tell this leave
	// from a death when memberlist reports the node gone (see wireMeta).
	m.metaMu.Lock()
	m.mu.Lock()
	m.mu.leaving = true
	m.mu.encoded = encodeMeta(wireMeta{Meta: m.mu.meta, leaving: true})
	m.mu.Unlock()
	err := within("announcing intent", m.ml.UpdateNode)
	m.metaMu.Unlock()
	// Then leave, even if the intent went out late: the others still stop
	// probing this node.
	if lerr := within("announcing leave", m.ml.Leave); err == nil {
		err = lerr
	}
	if err == nil {
		t := time.NewTimer(m.cfg.LeavePropagateDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return err
}

// Close shuts down without announcing a leave: the others detect this node
// as Dead after the suspicion timeout, as after a crash. Close is idempotent.
func (m *Membership) Close() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	return m.stopLocked()
}

func (m *Membership) stop() {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	_ = m.stopLocked()
}

// stopLocked drops further events, waits for event callbacks in flight and
// shuts memberlist down.
func (m *Membership) stopLocked() error {
	if m.closed {
		return nil
	}
	m.closed = true
	m.stopped.Store(true)
	m.cbMu.Lock()
	//lint:ignore SA2001 empty critical section: waits for callbacks in flight.
	m.cbMu.Unlock()
	if err := m.ml.Shutdown(); err != nil {
		return fmt.Errorf("membership: shutdown: %w", err)
	}
	return nil
}

// hooks receives memberlist's callbacks, keeping them off Membership's API.
type hooks struct{ m *Membership }

var (
	_ memberlist.Delegate         = (*hooks)(nil)
	_ memberlist.EventDelegate    = (*hooks)(nil)
	_ memberlist.ConflictDelegate = (*hooks)(nil)
	_ memberlist.AliveDelegate    = (*hooks)(nil)
)

// NodeMeta returns the encoded local meta (validated to fit limit).
func (h *hooks) NodeMeta(limit int) []byte {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if len(h.m.mu.encoded) > limit {
		return nil // cannot happen: validate enforces maxMetaSize
	}
	return slices.Clone(h.m.mu.encoded)
}

func (h *hooks) NotifyMsg([]byte)                           {}
func (h *hooks) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (h *hooks) LocalState(join bool) []byte                { return nil }
func (h *hooks) MergeRemoteState(buf []byte, join bool)     {}

// NotifyAlive admits a node only if its meta decodes, is valid, and names
// the node: a node that fails is never added to memberlist's view.
// memberlist logs the returned error as a warning.
func (h *hooks) NotifyAlive(n *memberlist.Node) error {
	w, err := decodeMeta(n.Meta)
	if err == nil {
		err = w.validate()
	}
	if err == nil && n.Name != NodeName(w.NodeID) {
		err = fmt.Errorf("%w: node name %q does not match node ID %d", ErrInvalidMeta, n.Name, w.NodeID)
	}
	if err != nil {
		return fmt.Errorf("%w (from %s)", err, n.Address())
	}
	return nil
}

func (h *hooks) NotifyJoin(n *memberlist.Node)   { h.event(n, Alive) }
func (h *hooks) NotifyUpdate(n *memberlist.Node) { h.event(n, Alive) }

// NotifyLeave reports a member that memberlist declared dead or that left:
// it left if the last meta it gossiped carries the leaving flag.
func (h *hooks) NotifyLeave(n *memberlist.Node) { h.event(n, Dead) }

// event records a member's new state and reports it if anything visible
// changed. memberlist calls it with its node lock held, one call at a time.
func (h *hooks) event(n *memberlist.Node, state State) {
	m := h.m
	m.cbMu.RLock()
	defer m.cbMu.RUnlock()
	if m.stopped.Load() {
		return
	}
	w, err := decodeMeta(n.Meta)
	if err != nil { // cannot happen: NotifyAlive admits only decodable meta
		m.cfg.Logger.Printf("membership: ignoring event for %q: %v", n.Name, err)
		return
	}
	if state == Dead && w.leaving {
		state = Left
	}
	mem := Member{Meta: w.Meta, GossipAddr: n.Address(), State: state, Since: time.Now()}
	m.mu.Lock()
	old, ok := m.mu.members[mem.NodeID]
	changed := !ok || old.Meta != mem.Meta || old.GossipAddr != mem.GossipAddr || old.State != mem.State
	if changed {
		m.mu.members[mem.NodeID] = mem
	}
	m.mu.Unlock()
	if changed && m.cfg.OnChange != nil {
		m.cfg.OnChange(mem)
	}
}

// NotifyConflict is called when a node claims the name of a member that is
// not dead from another address; memberlist has already rejected it.
func (h *hooks) NotifyConflict(existing, other *memberlist.Node) {
	m := h.m
	if existing.Name == m.name {
		// The cluster says this node's ID is live elsewhere: New fails.
		m.joinConflict.Store(true)
		m.cfg.Logger.Printf("membership: node ID %s of this node (gossip %s) is reported live at %s by the cluster: two processes with the same NodeID, or a previous run of this node not yet declared dead",
			idOf(m.name), existing.Address(), other.Address())
		return
	}
	m.cfg.Logger.Printf("membership: rejected %s at %s: node ID %s is live at %s (two processes with the same NodeID?)",
		other.Name, other.Address(), idOf(other.Name), existing.Address())
}

// idOf returns the node ID part of a node name, for messages.
func idOf(name string) string {
	if id, ok := strings.CutPrefix(name, "node-"); ok {
		if _, err := strconv.ParseUint(id, 10, 64); err == nil {
			return id
		}
	}
	return strconv.Quote(name)
}

// levelFilter passes memberlist's log lines to dst: warnings and errors
// only, unless all. memberlist writes one line per Write, tagged with its
// level ("[DEBUG]", "[INFO]", "[WARN]", "[ERR]").
type levelFilter struct {
	dst *log.Logger
	all bool
}

func (f *levelFilter) Write(p []byte) (int, error) {
	if f.all || bytes.Contains(p, []byte("[WARN]")) || bytes.Contains(p, []byte("[ERR")) {
		_ = f.dst.Output(2, string(bytes.TrimSuffix(p, []byte("\n"))))
	}
	return len(p), nil
}
