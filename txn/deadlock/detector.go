package deadlock

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrDeadlock is matched (errors.Is) by every [*DeadlockError].
var ErrDeadlock = errors.New("deadlock: deadlock")

// ErrInvalidOptions is returned by [New] for options out of range.
var ErrInvalidOptions = errors.New("deadlock: invalid options")

// TxnID names a waiter or a holder. It is opaque to the detector.
type TxnID uint64

// Edge is one wait: Waiter waits for a lock on Key held by Holder.
type Edge struct {
	Waiter TxnID
	Holder TxnID
	Key    []byte
}

func (e Edge) String() string {
	return fmt.Sprintf("%d -> %d on %q", e.Waiter, e.Holder, e.Key)
}

// DeadlockError reports the cycle that a Detect would have closed.
type DeadlockError struct {
	// Victim is the transaction that must abort to break the cycle. It is
	// always the waiter of the refused Detect (see the package doc).
	Victim TxnID
	// Cycle is the wait-for cycle, one Edge per hop: Cycle[0] is the
	// refused wait Victim -> holder, each edge's Holder is the next edge's
	// Waiter, and the last edge's Holder is Victim. Where a waiter waits
	// for its holder on several keys, the edge names the first of them.
	Cycle []Edge
}

func (e *DeadlockError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deadlock: txn %d is the victim of the cycle", e.Victim)
	for i, edge := range e.Cycle {
		if i == 0 {
			b.WriteString(" ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(edge.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrDeadlock) true.
func (e *DeadlockError) Is(target error) bool { return target == ErrDeadlock }

// Options configures a Detector. The zero value is valid.
type Options struct {
	// TTL is how long an edge lives after its last Detect. Default 3s
	// (TiKV's); a waiter that waits longer must call Detect again within
	// the TTL. Negative is invalid.
	TTL time.Duration
}

// DefaultTTL is the default Options.TTL.
const DefaultTTL = 3 * time.Second

func (o *Options) ensureDefaults() {
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
}

// Detector is a wait-for graph that refuses the edge closing a cycle.
// Create it with New. It is safe for concurrent use.
type Detector struct {
	ttl time.Duration

	mu struct {
		sync.Mutex
		// nodes holds every transaction that waits or is waited for, and
		// nothing else: a node with no edge either way is deleted.
		nodes map[TxnID]*node
		// edges is the number of (waiter, holder) pairs in nodes.
		edges int
		// epoch marks the nodes visited by the current search
		// (node.seen == epoch); bumped once per search.
		epoch uint64
		// queue is the search's scratch space, kept between calls.
		queue []*node
	}
}

// node is one transaction of the graph.
type node struct {
	id TxnID
	// out is what this transaction waits for, in the order of the first
	// Detect of each holder. At most one edge per holder.
	out []*edge
	// in is the set of transactions with an edge to this one.
	in map[TxnID]struct{}
	// seen and parent are the search's marks: parent is the node the
	// search came from, valid while seen is the current epoch.
	seen   uint64
	parent *node
	via    *edge
}

// edge is the wait of one waiter for one holder, on one or more keys.
type edge struct {
	holder TxnID
	// keys are the keys waited on, in the order of their first Detect;
	// never empty (an edge without keys is removed).
	keys [][]byte
	// lastSeen is the time of the last Detect of this edge.
	lastSeen time.Time
}

// New returns an empty Detector.
func New(opts Options) (*Detector, error) {
	if opts.TTL < 0 {
		return nil, fmt.Errorf("%w: TTL %v is negative", ErrInvalidOptions, opts.TTL)
	}
	opts.ensureDefaults()
	d := &Detector{ttl: opts.TTL}
	d.mu.nodes = make(map[TxnID]*node)
	return d, nil
}

// Detect records that waiter waits for holder's lock on key, at time now.
// It returns nil when the wait is recorded (or was already, in which case its
// time is refreshed), and a *DeadlockError when the wait would close a
// cycle: then nothing is recorded and the waiter must abort. A transaction
// that waits for itself is a cycle of one edge. Detect copies key.
func (d *Detector) Detect(now time.Time, waiter, holder TxnID, key []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if waiter == holder {
		return &DeadlockError{Victim: waiter, Cycle: []Edge{{Waiter: waiter, Holder: holder, Key: bytes.Clone(key)}}}
	}
	if w := d.mu.nodes[waiter]; w != nil {
		if e := w.find(holder); e != nil {
			if !d.expired(e, now) {
				if now.After(e.lastSeen) {
					e.lastSeen = now
				}
				if !slices.ContainsFunc(e.keys, func(k []byte) bool { return bytes.Equal(k, key) }) {
					e.keys = append(e.keys, bytes.Clone(key))
				}
				return nil
			}
			d.removeEdgeLocked(w, e)
		}
	}
	if path := d.searchLocked(now, holder, waiter); path != nil {
		cycle := make([]Edge, 0, len(path)+1)
		cycle = append(cycle, Edge{Waiter: waiter, Holder: holder, Key: bytes.Clone(key)})
		cycle = append(cycle, path...)
		return &DeadlockError{Victim: waiter, Cycle: cycle}
	}
	w := d.nodeLocked(waiter)
	h := d.nodeLocked(holder)
	w.out = append(w.out, &edge{holder: holder, keys: [][]byte{bytes.Clone(key)}, lastSeen: now})
	if h.in == nil {
		h.in = make(map[TxnID]struct{})
	}
	h.in[waiter] = struct{}{}
	d.mu.edges++
	return nil
}

// Remove records that waiter no longer waits for holder's lock on key. It
// is a no-op when no such wait is recorded.
func (d *Detector) Remove(waiter, holder TxnID, key []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.mu.nodes[waiter]
	if w == nil {
		return
	}
	e := w.find(holder)
	if e == nil {
		return
	}
	e.keys = slices.DeleteFunc(e.keys, func(k []byte) bool { return bytes.Equal(k, key) })
	if len(e.keys) == 0 {
		d.removeEdgeLocked(w, e)
	}
}

// CleanUp removes every wait of txn and every wait for txn: call it when
// txn ends (commits, aborts, or its lease ends).
func (d *Detector) CleanUp(txn TxnID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.mu.nodes[txn]
	if n == nil {
		return
	}
	for len(n.out) > 0 {
		d.removeEdgeLocked(n, n.out[0])
	}
	for waiter := range n.in {
		w := d.mu.nodes[waiter]
		d.removeEdgeLocked(w, w.find(txn))
	}
}

// Expire removes every edge whose last Detect is TTL or more before now, and
// returns how many (waiter, holder) edges it removed. Detect already
// ignores such edges; Expire frees their memory, so call it about once per
// TTL.
func (d *Detector) Expire(now time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	removed := 0
	for _, n := range d.mu.nodes {
		removed += d.pruneLocked(n, now)
	}
	return removed
}

// Len returns the number of (waiter, holder) edges, expired or not.
func (d *Detector) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.edges
}

// Edges returns every recorded wait, one Edge per key, sorted by waiter,
// holder and key. Expired waits not yet removed are included; call Expire
// first to leave them out.
func (d *Detector) Edges() []Edge {
	d.mu.Lock()
	defer d.mu.Unlock()
	var edges []Edge
	for _, n := range d.mu.nodes {
		for _, e := range n.out {
			for _, k := range e.keys {
				edges = append(edges, Edge{Waiter: n.id, Holder: e.holder, Key: bytes.Clone(k)})
			}
		}
	}
	slices.SortFunc(edges, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.Waiter, b.Waiter), cmp.Compare(a.Holder, b.Holder), bytes.Compare(a.Key, b.Key))
	})
	return edges
}

// searchLocked returns the shortest path of live edges from from to to, one
// Edge per hop, or nil if there is none. It drops the expired edges it
// meets.
func (d *Detector) searchLocked(now time.Time, from, to TxnID) []Edge {
	start := d.mu.nodes[from]
	if start == nil {
		return nil
	}
	d.mu.epoch++
	start.seen, start.parent, start.via = d.mu.epoch, nil, nil
	queue := append(d.mu.queue[:0], start)
	defer func() { d.mu.queue = queue[:0] }()
	for i := 0; i < len(queue); i++ {
		cur := queue[i]
		d.pruneLocked(cur, now)
		for _, e := range cur.out {
			next := d.mu.nodes[e.holder]
			if next.seen == d.mu.epoch {
				continue
			}
			next.seen, next.parent, next.via = d.mu.epoch, cur, e
			if next.id == to {
				return pathTo(next)
			}
			queue = append(queue, next)
		}
	}
	return nil
}

// pathTo returns the edges the search took from its start to n.
func pathTo(n *node) []Edge {
	var path []Edge
	for ; n.parent != nil; n = n.parent {
		path = append(path, Edge{Waiter: n.parent.id, Holder: n.id, Key: bytes.Clone(n.via.keys[0])})
	}
	slices.Reverse(path)
	return path
}

// pruneLocked removes n's expired outgoing edges and returns how many. It
// may delete n from the graph, and the nodes n waited for, but n's fields
// stay readable.
func (d *Detector) pruneLocked(n *node, now time.Time) int {
	removed := 0
	for i := 0; i < len(n.out); {
		if d.expired(n.out[i], now) {
			d.removeEdgeLocked(n, n.out[i])
			removed++
			continue
		}
		i++
	}
	return removed
}

func (d *Detector) expired(e *edge, now time.Time) bool {
	return now.Sub(e.lastSeen) >= d.ttl
}

// nodeLocked returns the node of id, creating it if needed.
func (d *Detector) nodeLocked(id TxnID) *node {
	n := d.mu.nodes[id]
	if n == nil {
		n = &node{id: id}
		d.mu.nodes[id] = n
	}
	return n
}

// removeEdgeLocked removes e, an edge out of w, and deletes the nodes left
// with no edge. The order of w's other edges is kept.
func (d *Detector) removeEdgeLocked(w *node, e *edge) {
	i := slices.Index(w.out, e)
	w.out = slices.Delete(w.out, i, i+1)
	h := d.mu.nodes[e.holder]
	delete(h.in, w.id)
	d.mu.edges--
	d.dropIfIsolatedLocked(w)
	d.dropIfIsolatedLocked(h)
}

func (d *Detector) dropIfIsolatedLocked(n *node) {
	if len(n.out) == 0 && len(n.in) == 0 {
		delete(d.mu.nodes, n.id)
	}
}

// find returns n's edge to holder, or nil.
func (n *node) find(holder TxnID) *edge {
	for _, e := range n.out {
		if e.holder == holder {
			return e
		}
	}
	return nil
}
