package transport

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/transport/transportpb"
)

// GRPC is the gRPC implementation of Transport. Create it with New.
type GRPC struct {
	cfg    Config
	lis    net.Listener
	server *grpc.Server
	stats  counters

	// enc and dec compress and decompress snapshot chunks. EncodeAll and
	// DecodeAll are safe for concurrent use; both are expensive to create.
	enc *zstd.Encoder
	dec *zstd.Decoder

	// wg counts the goroutines the transport owns: the server's Serve and
	// every peer's sender. Close waits for it.
	wg sync.WaitGroup

	mu struct {
		sync.RWMutex
		closed bool
		peers  map[uint64]*peer
	}
}

// New validates cfg, fills in its defaults, listens on cfg.ListenAddr and
// starts serving.
func New(cfg Config) (*GRPC, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	concurrency := min(runtime.GOMAXPROCS(0), 4)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(concurrency))
	if err != nil {
		return nil, fmt.Errorf("transport: zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(concurrency),
		zstd.WithDecoderMaxMemory(uint64(cfg.MaxMessageBytes)))
	if err != nil {
		return nil, fmt.Errorf("transport: zstd decoder: %w", err)
	}
	lis, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		dec.Close()
		return nil, fmt.Errorf("transport: listen on %s: %w", cfg.ListenAddr, err)
	}
	t := &GRPC{cfg: cfg, lis: lis, enc: enc, dec: dec}
	t.mu.peers = make(map[uint64]*peer)
	t.server = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.KeepaliveInterval / 2,
			PermitWithoutStream: true,
		}),
		grpc.WaitForHandlers(true),
	)
	transportpb.RegisterTransportServer(t.server, &server{t: t})
	t.wg.Go(func() {
		// Serve returns when Close stops the server; an earlier error means
		// the listener broke, and peers will see this node as unreachable.
		_ = t.server.Serve(lis)
	})
	return t, nil
}

// Addr returns the address the transport listens on.
func (t *GRPC) Addr() string { return t.lis.Addr().String() }

// Stats returns the transport's counters.
func (t *GRPC) Stats() Stats {
	s := t.stats.snapshot()
	t.mu.RLock()
	defer t.mu.RUnlock()
	s.Peers = make(map[uint64]PeerStats, len(t.mu.peers))
	for id, p := range t.mu.peers {
		s.Peers[id] = PeerStats{
			Addr:      p.addr,
			Connected: p.connected.Load(),
			Sent:      p.sent.Load(),
			Dropped:   p.dropped.Load(),
		}
	}
	return s
}

// AddPeer makes peer id reachable at addr and starts its sender. It is
// idempotent; a changed addr replaces the old connection (messages queued for
// the old one are dropped). ID 0 is ignored, as are calls after Close. It
// does not wait for the old sender to stop (see RemovePeer).
func (t *GRPC) AddPeer(id uint64, addr string) {
	if id == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.mu.peers[id]
	if t.mu.closed || (old != nil && old.addr == addr) {
		return
	}
	if old != nil {
		old.stop()
		delete(t.mu.peers, id)
	}
	p, err := newPeer(t, id, addr)
	if err != nil {
		// Only a malformed target gets here. Leave the peer unknown: sends
		// to it are dropped and counted, and raft learns of it by silence.
		return
	}
	t.mu.peers[id] = p
	t.wg.Go(p.run)
}

// RemovePeer forgets peer id and stops its sender, which closes the
// connection; in-flight SendSnapshot and Forward calls to it fail. It does not
// wait for the sender to exit, so it is safe to call while holding locks that
// the Handler takes; Close waits for every sender.
func (t *GRPC) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.mu.peers[id]; p != nil {
		p.stop()
		delete(t.mu.peers, id)
	}
}

// Send enqueues each envelope on the queue of its destination, Msg.To. It
// never blocks: envelopes to unknown peers or full queues are dropped and
// counted. Send takes ownership of the messages.
func (t *GRPC) Send(envs []Envelope) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var p *peer // the peer of the previous envelope; raft emits runs per peer
	for _, env := range envs {
		if env.Msg == nil {
			t.stats.droppedInvalid.Add(1)
			continue
		}
		to := replicaid.Node(env.Msg.GetTo())
		if p == nil || p.id != to {
			p = t.mu.peers[to]
			if p == nil {
				t.stats.droppedUnknownPeer.Add(1)
				continue
			}
		}
		p.enqueue(env)
	}
}

// Forward sends req to node to, which answers with its ForwardHandler.
// ctx bounds the call; its deadline travels to the remote handler.
func (t *GRPC) Forward(ctx context.Context, to uint64, req []byte) ([]byte, error) {
	p, err := t.peer(to)
	if err != nil {
		return nil, fmt.Errorf("transport: forward to node %d: %w", to, err)
	}
	if err := p.waitReady(ctx); err != nil {
		t.stats.forwardsNotSent.Add(1)
		return nil, fmt.Errorf("transport: forward to node %d: %w", to, err)
	}
	var sent atomic.Bool
	resp, err := p.client.Forward(context.WithValue(ctx, sentKey{}, &sent), &transportpb.ForwardRequest{
		From:    t.cfg.NodeID,
		To:      to,
		Request: req,
	})
	if err != nil && !sent.Load() {
		// Failed before it was queued on a connection, e.g. the peer went
		// away after waitReady saw its connection ready.
		t.stats.forwardsNotSent.Add(1)
		return nil, fmt.Errorf("transport: forward to node %d: %w: %w", to, ErrNotSent, callError(ctx, err))
	}
	if err != nil {
		return nil, fmt.Errorf("transport: forward to node %d: %w", to, callError(ctx, err))
	}
	t.stats.forwardsSent.Add(1)
	return resp.GetResponse(), nil
}

// goAwayGrace is how long Close lets peers take in the server's GOAWAY
// before it cuts the connections.
const goAwayGrace = 100 * time.Millisecond

// Close stops the server and every peer and waits for all the transport's
// goroutines, including inbound handlers. It is idempotent. Since it waits for
// calls into the Handler to return, it must not be called from the Handler or
// while holding locks the Handler takes.
func (t *GRPC) Close() error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return nil
	}
	t.mu.closed = true
	for id, p := range t.mu.peers {
		p.stop()
		delete(t.mu.peers, id)
	}
	t.mu.Unlock()

	// GracefulStop first sends every client a GOAWAY, so that peers stop
	// starting calls (forwards) on connections about to close: such a call
	// fails unsent, where one caught by the close would be ambiguous. The
	// inbound raft streams never end on their own, so Stop ends them after
	// a moment; with WaitForHandlers it returns once every handler has.
	graceful := make(chan struct{})
	go func() {
		t.server.GracefulStop()
		close(graceful)
	}()
	select {
	case <-graceful:
	case <-time.After(goAwayGrace):
	}
	t.server.Stop()
	<-graceful
	t.wg.Wait()
	t.dec.Close()
	return t.enc.Close()
}

// callError is the error of a failed call made with ctx: ctx's own error if it
// is done, else the call's status error.
func callError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if _, ok := ctx.Deadline(); ok && status.Code(err) == codes.DeadlineExceeded {
		// gRPC sends the remaining time rounded down, so the remote side can
		// give up a moment before ctx expires here.
		return context.DeadlineExceeded
	}
	return err
}

// peer returns the current peer id, or an error.
func (t *GRPC) peer(id uint64) (*peer, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.mu.closed {
		return nil, ErrClosed
	}
	p := t.mu.peers[id]
	if p == nil {
		return nil, ErrUnknownPeer
	}
	return p, nil
}
