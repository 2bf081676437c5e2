package faultnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/transport"
)

// ErrReplyLost is returned by Forward when the request was delivered but
// its reply was dropped: the caller cannot know whether it took effect.
var ErrReplyLost = errors.New("faultnet: reply lost")

// Net is the shared network of a test cluster. Its methods are safe for
// concurrent use.
type Net struct {
	mu struct {
		sync.Mutex
		rng      *rand.Rand
		blocked  map[[2]uint64]bool // (from, to) links that drop everything
		down     map[uint64]bool    // nodes cut off from everyone (crashing); Heal keeps them
		loss     float64            // probability a message is dropped
		dup      float64            // probability a message is sent twice
		maxDelay time.Duration      // messages are delayed uniformly in [0, maxDelay)
		closed   bool
	}
	delayed sync.WaitGroup // timers of delayed messages
	statsMu sync.Mutex
	stats   Stats
}

// Stats counts what the network did.
type Stats struct {
	Sent, Blocked, Lost, Dup, Delayed   int64
	ForwardsBlocked, ForwardRepliesLost int64
}

// New returns a healed network whose randomness comes from seed.
func New(seed uint64) *Net {
	n := &Net{}
	n.mu.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n.mu.blocked = map[[2]uint64]bool{}
	n.mu.down = map[uint64]bool{}
	return n
}

// Wrap returns node self's view of the network over its real transport.
func (n *Net) Wrap(self uint64, inner transport.Transport) transport.Transport {
	return &link{net: n, self: self, inner: inner}
}

// Partition splits the nodes into groups that cannot reach each other.
// Nodes not named stay connected to everyone.
func (n *Net) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, a := range groups {
		for j, b := range groups {
			if i == j {
				continue
			}
			for _, x := range a {
				for _, y := range b {
					n.mu.blocked[[2]uint64{x, y}] = true
				}
			}
		}
	}
}

// BlockOneWay drops everything from one node to another, but not back.
func (n *Net) BlockOneWay(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.blocked[[2]uint64{from, to}] = true
}

// SetDown cuts node id off from every other node, or reconnects it. A test
// cutting a node off before it copies the node's disk for a simulated crash
// makes sure nothing the node does after the copy reaches anyone.
func (n *Net) SetDown(id uint64, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if down {
		n.mu.down[id] = true
	} else {
		delete(n.mu.down, id)
	}
}

// SetFaults sets the message loss and duplication probabilities and the
// maximum delay (random delays reorder messages).
func (n *Net) SetFaults(loss, dup float64, maxDelay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.loss, n.mu.dup, n.mu.maxDelay = loss, dup, maxDelay
}

// Heal removes every partition and fault.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.mu.blocked)
	n.mu.loss, n.mu.dup, n.mu.maxDelay = 0, 0, 0
}

// Describe returns the current faults in one line, for the test log.
func (n *Net) Describe() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("%d blocked links, loss %.2f, dup %.2f, delay <%v", len(n.mu.blocked), n.mu.loss, n.mu.dup, n.mu.maxDelay)
}

// Close stops delayed deliveries and waits for those in progress.
func (n *Net) Close() {
	n.mu.Lock()
	n.mu.closed = true
	n.mu.Unlock()
	n.delayed.Wait()
}

// Stats returns a copy of the counters.
func (n *Net) Stats() Stats {
	n.statsMu.Lock()
	defer n.statsMu.Unlock()
	return n.stats
}

func (n *Net) count(f func(*Stats)) {
	n.statsMu.Lock()
	f(&n.stats)
	n.statsMu.Unlock()
}

// fate decides what happens to one message from one node to another.
type fate struct {
	drop, blocked bool
	copies        int
	delay         time.Duration
}

func (n *Net) decide(from, to uint64) fate {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed || n.mu.blocked[[2]uint64{from, to}] || n.mu.down[from] || n.mu.down[to] {
		return fate{drop: true, blocked: true}
	}
	r := n.mu.rng
	if n.mu.loss > 0 && r.Float64() < n.mu.loss {
		return fate{drop: true}
	}
	f := fate{copies: 1}
	if n.mu.dup > 0 && r.Float64() < n.mu.dup {
		f.copies = 2
	}
	if n.mu.maxDelay > 0 {
		f.delay = time.Duration(r.Int64N(int64(n.mu.maxDelay)))
	}
	return f
}

// link is one node's transport through the network.
type link struct {
	net   *Net
	self  uint64
	inner transport.Transport
}

var _ transport.Transport = (*link)(nil)

func (l *link) AddPeer(id uint64, addr string) { l.inner.AddPeer(id, addr) }
func (l *link) RemovePeer(id uint64)           { l.inner.RemovePeer(id) }
func (l *link) Close() error                   { return l.inner.Close() }

func (l *link) Send(envs []transport.Envelope) {
	now := make([]transport.Envelope, 0, len(envs))
	for _, env := range envs {
		f := l.net.decide(l.self, replicaid.Node(env.Msg.GetTo()))
		switch {
		case f.blocked:
			l.net.count(func(s *Stats) { s.Blocked++ })
			continue
		case f.drop:
			l.net.count(func(s *Stats) { s.Lost++ })
			continue
		}
		if f.copies > 1 {
			l.net.count(func(s *Stats) { s.Dup++ })
		}
		for c := 0; c < f.copies; c++ {
			if f.delay == 0 {
				now = append(now, env)
				continue
			}
			l.net.count(func(s *Stats) { s.Delayed++ })
			l.net.delayed.Add(1)
			env := env
			time.AfterFunc(f.delay, func() {
				defer l.net.delayed.Done()
				l.net.mu.Lock()
				closed := l.net.mu.closed
				l.net.mu.Unlock()
				if !closed {
					l.inner.Send([]transport.Envelope{env})
				}
			})
		}
	}
	l.net.count(func(s *Stats) { s.Sent += int64(len(now)) })
	if len(now) > 0 {
		l.inner.Send(now)
	}
}

func (l *link) SendSnapshot(ctx context.Context, env transport.Envelope, body io.Reader) error {
	to := replicaid.Node(env.Msg.GetTo())
	if f := l.net.decide(l.self, to); f.drop {
		return fmt.Errorf("faultnet: snapshot to node %d dropped", to)
	}
	return l.inner.SendSnapshot(ctx, env, body)
}

// Forward loses the request (not sent) when the link to the peer drops it,
// and loses the reply (ambiguous) when the link back does.
func (l *link) Forward(ctx context.Context, to uint64, req []byte) ([]byte, error) {
	if f := l.net.decide(l.self, to); f.drop {
		l.net.count(func(s *Stats) { s.ForwardsBlocked++ })
		return nil, fmt.Errorf("faultnet: forward to node %d: %w", to, transport.ErrNotSent)
	}
	resp, err := l.inner.Forward(ctx, to, req)
	if f := l.net.decide(to, l.self); f.drop {
		l.net.count(func(s *Stats) { s.ForwardRepliesLost++ })
		return nil, fmt.Errorf("faultnet: forward to node %d: %w", to, ErrReplyLost)
	}
	return resp, err
}
