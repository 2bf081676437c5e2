package transport

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"

	"github.com/strata-kv/strata/transport/transportpb"
)

// encodeOverhead is room left in a gRPC message for the batch framing around
// the encoded raft messages.
const encodeOverhead = 1 << 10

// peer is the outbound side towards one node: a connection, a queue, and the
// sender goroutine (run) that owns the Raft stream.
type peer struct {
	t      *GRPC
	id     uint64
	addr   string
	conn   *grpc.ClientConn
	client transportpb.TransportClient

	queue  chan Envelope
	ctx    context.Context // cancelled by stop
	cancel context.CancelFunc

	connected atomic.Bool // an outbound stream is open
	overflow  atomic.Bool // Send dropped on a full queue since the last report
	sent      atomic.Uint64
	dropped   atomic.Uint64

	lastReport time.Time // owned by run
}

func newPeer(t *GRPC, id uint64, addr string) (*peer, error) {
	cfg := t.cfg
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  cfg.ReconnectBackoff,
				Multiplier: 2,
				Jitter:     0.2,
				MaxDelay:   cfg.MaxReconnectBackoff,
			},
			MinConnectTimeout: cfg.DialTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                cfg.KeepaliveInterval,
			Timeout:             cfg.KeepaliveInterval,
			PermitWithoutStream: true,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMessageBytes)),
		grpc.WithStatsHandler(sentTracker{}),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &peer{
		t:      t,
		id:     id,
		addr:   addr,
		conn:   conn,
		client: transportpb.NewTransportClient(conn),
		queue:  make(chan Envelope, cfg.QueueSize),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// enqueue adds env to the queue without blocking, or drops it.
func (p *peer) enqueue(env Envelope) {
	select {
	case p.queue <- env:
	default:
		p.dropped.Add(1)
		p.t.stats.droppedQueueFull.Add(1)
		p.overflow.Store(true)
	}
}

// stop tells the sender to stop; it closes the connection on its way out.
// stop does not wait: the sender may be inside Handler.ReportUnreachable,
// and the caller may hold locks the handler needs. GRPC.Close waits.
func (p *peer) stop() { p.cancel() }

// run is the sender goroutine: it keeps a Raft stream open and drains the
// queue into it, reconnecting with exponential backoff. It closes the
// connection when it returns.
func (p *peer) run() {
	defer func() { _ = p.conn.Close() }()
	cfg := p.t.cfg
	backoff := cfg.ReconnectBackoff
	for p.ctx.Err() == nil {
		start := time.Now()
		p.stream()
		if p.ctx.Err() != nil {
			return
		}
		if time.Since(start) > cfg.MaxReconnectBackoff {
			backoff = cfg.ReconnectBackoff // the stream was healthy for a while
		}
		p.reportUnreachable()
		p.dropFor(backoff)
		backoff = min(2*backoff, cfg.MaxReconnectBackoff)
	}
}

// stream opens a Raft stream and sends batches on it until it fails or the
// peer stops. Messages lost with a failed send are counted as dropped.
func (p *peer) stream() {
	cfg := p.t.cfg
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	// The stream's context lives as long as the stream, so bound the dial
	// with a timer instead of a deadline.
	dialTimer := time.AfterFunc(cfg.DialTimeout, cancel)
	s, err := p.client.Raft(ctx)
	if !dialTimer.Stop() || err != nil {
		return
	}
	p.connected.Store(true)
	defer p.connected.Store(false)

	var carry *transportpb.Envelope // encoded, did not fit the previous batch
	for {
		batch := &transportpb.RaftBatch{From: cfg.NodeID, To: p.id}
		size := 0
		if carry != nil {
			batch.Envelopes = append(batch.Envelopes, carry)
			size, carry = len(carry.Message), nil
		}
		// Wait for the first message, then take whatever else is queued.
		for len(batch.Envelopes) == 0 {
			select {
			case <-ctx.Done():
				_ = s.CloseSend()
				return
			case env := <-p.queue:
				if e := p.encode(env); e != nil {
					batch.Envelopes = append(batch.Envelopes, e)
					size = len(e.Message)
				}
			}
		}
	drain:
		for size < cfg.MaxBatchBytes {
			select {
			case env := <-p.queue:
				e := p.encode(env)
				if e == nil {
					continue
				}
				if size+len(e.Message) > cfg.MaxBatchBytes {
					carry = e
					break drain
				}
				batch.Envelopes = append(batch.Envelopes, e)
				size += len(e.Message)
			default:
				break drain
			}
		}
		n := uint64(len(batch.Envelopes))
		if err := s.Send(batch); err != nil {
			if carry != nil {
				n++
			}
			p.dropped.Add(n)
			p.t.stats.droppedDisconnected.Add(n)
			return
		}
		p.sent.Add(n)
		p.t.stats.messagesSent.Add(n)
		p.t.stats.batchesSent.Add(1)
		p.t.stats.bytesSent.Add(uint64(size))
		if p.overflow.Swap(false) {
			p.reportUnreachable()
		}
	}
}

// encode marshals env's message, or drops it (counted) and returns nil.
func (p *peer) encode(env Envelope) *transportpb.Envelope {
	b, err := proto.Marshal(env.Msg)
	if err != nil || len(b) > p.t.cfg.MaxMessageBytes-encodeOverhead {
		p.dropped.Add(1)
		p.t.stats.droppedInvalid.Add(1)
		return nil
	}
	return &transportpb.Envelope{Group: env.Group, Message: b}
}

// dropFor waits d while the peer is unreachable, dropping what is queued.
func (p *peer) dropFor(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-timer.C:
			return
		case <-p.queue:
			p.dropped.Add(1)
			p.t.stats.droppedDisconnected.Add(1)
			p.reportUnreachable()
		}
	}
}

// reportUnreachable calls Handler.ReportUnreachable, at most once per
// Config.UnreachableInterval. Only run calls it.
func (p *peer) reportUnreachable() {
	now := time.Now()
	if !p.lastReport.IsZero() && now.Sub(p.lastReport) < p.t.cfg.UnreachableInterval {
		return
	}
	p.lastReport = now
	p.t.stats.unreachableReports.Add(1)
	p.t.cfg.Handler.ReportUnreachable(p.id)
}

// sentKey is the context key of a call's sent flag (an *atomic.Bool).
type sentKey struct{}

// sentTracker is a gRPC stats handler that sets a call's sent flag once
// gRPC has queued the call's headers on a connection: before that no byte
// of the call can have reached the peer, so a call that fails without the
// flag was certainly not sent. (gRPC reports OutHeader right after it puts
// the headers on the connection's write queue.)
type sentTracker struct{}

func (sentTracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (sentTracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.OutHeader); ok {
		if sent, ok := ctx.Value(sentKey{}).(*atomic.Bool); ok {
			sent.Store(true)
		}
	}
}

func (sentTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (sentTracker) HandleConn(context.Context, stats.ConnStats) {}

// forwardReadyWait bounds how long Forward waits for a connection that is
// not ready before reporting ErrNotSent.
const forwardReadyWait = 250 * time.Millisecond

// waitReady returns nil once the peer's connection is ready, or ErrNotSent
// if it does not become ready within forwardReadyWait (or ctx ends). A call
// made only after it returned nil can be told apart from one that was
// never sent: with the connection not ready, gRPC would fail it fast
// without sending anything, but the error would not say so.
func (p *peer) waitReady(ctx context.Context) error {
	if p.conn.GetState() == connectivity.Ready {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, forwardReadyWait)
	defer cancel()
	p.conn.Connect()
	for {
		s := p.conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if s == connectivity.Shutdown || !p.conn.WaitForStateChange(ctx, s) {
			return ErrNotSent
		}
	}
}

// Probe connects to peer id and returns nil once the connection is ready,
// or ErrNotSent as soon as an attempt failed (the peer is down: a refused
// connection fails in a moment; a connection already in backoff after a
// failure reports it at once) or ctx ends first. Unlike Forward's short
// wait, it lets a slow but live peer take as long as ctx allows, so a
// caller can tell a peer that is down from one that is slow to connect.
func (t *GRPC) Probe(ctx context.Context, id uint64) error {
	p, err := t.peer(id)
	if err != nil {
		return fmt.Errorf("transport: probe node %d: %w", id, err)
	}
	p.conn.Connect()
	for {
		switch s := p.conn.GetState(); s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return fmt.Errorf("transport: probe node %d: %w (%v)", id, ErrNotSent, s)
		default:
			if !p.conn.WaitForStateChange(ctx, s) {
				return fmt.Errorf("transport: probe node %d: %w: %w", id, ErrNotSent, ctx.Err())
			}
		}
	}
}
