package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-kv/strata/transport/transportpb"
)

// exchange runs n transports that each send perGroup messages of each of
// groups groups to every other one, in calls of 64 envelopes, and checks that
// all arrive in order and batched.
func exchange(t *testing.T, n int, groups, perGroup uint64) {
	recs := make([]*recorder, n)
	trs := make([]*GRPC, n)
	for i := range n {
		recs[i] = newRecorder()
		// A queue that holds everything, so that the test can demand no drops.
		trs[i] = newTestTransport(t, uint64(i+1), recs[i], func(c *Config) { c.QueueSize = 1 << 16 })
	}
	connect(trs...)
	// Wait for the streams, so that batching is measured on live senders
	// rather than on queues filled before the first connection.
	for _, tr := range trs {
		waitFor(t, 5*time.Second, "streams up", func() bool {
			for _, ps := range tr.Stats().Peers {
				if !ps.Connected {
					return false
				}
			}
			return true
		})
	}

	var wg sync.WaitGroup
	for i, tr := range trs {
		from := uint64(i + 1)
		wg.Go(func() {
			var envs []Envelope
			for idx := uint64(1); idx <= perGroup; idx++ {
				for g := uint64(1); g <= groups; g++ {
					for to := uint64(1); to <= uint64(n); to++ {
						if to != from {
							envs = append(envs, msgApp(from, to, g, idx))
						}
					}
					if len(envs) >= 64 {
						tr.Send(envs)
						envs = nil
					}
				}
			}
			tr.Send(envs)
		})
	}
	wg.Wait()

	want := int(groups * perGroup)
	for i, rec := range recs {
		to := uint64(i + 1)
		for from := uint64(1); from <= uint64(n); from++ {
			if from == to {
				continue
			}
			waitFor(t, 20*time.Second, fmt.Sprintf("%d messages %d->%d", want, from, to), func() bool {
				return rec.count(from) >= want
			})
			next := map[uint64]uint64{} // group -> next expected index
			for _, env := range rec.received(from) {
				g, m := env.Group, env.Msg
				if m.GetFrom() != from || m.GetTo() != to || m.GetType() != raftpb.MsgApp {
					t.Fatalf("%d->%d: unexpected message %v", from, to, m)
				}
				if next[g] == 0 {
					next[g] = 1
				}
				if m.GetIndex() != next[g] {
					t.Fatalf("%d->%d group %d: got index %d, want %d (reordered or lost)", from, to, g, m.GetIndex(), next[g])
				}
				next[g]++
			}
			if len(next) != int(groups) {
				t.Fatalf("%d->%d: messages of %d groups, want %d", from, to, len(next), groups)
			}
		}
	}
	for i, tr := range trs {
		s := tr.Stats()
		wantSent := uint64(want * (n - 1))
		if s.MessagesSent != wantSent || s.MessagesDropped != 0 {
			t.Errorf("node %d: sent %d dropped %d, want %d and 0", i+1, s.MessagesSent, s.MessagesDropped, wantSent)
		}
		if s.BatchesSent >= s.MessagesSent {
			t.Errorf("node %d: %d batches for %d messages: not batched", i+1, s.BatchesSent, s.MessagesSent)
		}
		recs[i].mu.Lock()
		calls := recs[i].calls
		recs[i].mu.Unlock()
		if uint64(calls) >= s.MessagesSent {
			t.Errorf("node %d: %d HandleMessages calls for %d messages: not batched", i+1, calls, s.MessagesSent)
		}
		t.Logf("node %d: %d messages in %d batches, %d bytes; handler calls %d",
			i+1, s.MessagesSent, s.BatchesSent, s.BytesSent, calls)
	}
}

func TestExchangeTwoNodes(t *testing.T)   { exchange(t, 2, 8, 2000) }
func TestExchangeThreeNodes(t *testing.T) { exchange(t, 3, 5, 1000) }

func TestReconnect(t *testing.T) {
	fast := func(c *Config) {
		c.ReconnectBackoff = 10 * time.Millisecond
		c.MaxReconnectBackoff = 100 * time.Millisecond
		c.UnreachableInterval = 50 * time.Millisecond
	}
	rec1, rec2 := newRecorder(), newRecorder()
	n1 := newTestTransport(t, 1, rec1, fast)
	n2 := newTestTransport(t, 2, rec2, fast)
	connect(n1, n2)

	idx := uint64(0)
	send := func() { idx++; n1.Send([]Envelope{msgApp(1, 2, 7, idx)}) }
	send()
	waitFor(t, 5*time.Second, "first message", func() bool { return rec2.count(1) == 1 })

	addr := n2.Addr()
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "ReportUnreachable(2) while node 2 is down", func() bool {
		send()
		time.Sleep(5 * time.Millisecond)
		return rec1.unreachableCount(2) > 0
	})
	if s := n1.Stats(); s.DroppedDisconnected == 0 || s.Peers[2].Dropped == 0 {
		t.Errorf("no message counted as dropped while disconnected: %+v", s)
	}

	// Node 2 comes back on the same address.
	rec2b := newRecorder()
	newTestTransport(t, 2, rec2b, func(c *Config) { fast(c); c.ListenAddr = addr })
	waitFor(t, 5*time.Second, "messages after reconnect", func() bool {
		send()
		time.Sleep(5 * time.Millisecond)
		return rec2b.count(1) >= 3
	})
	// Order still holds across the reconnect.
	got := rec2b.received(1)
	for i := 1; i < len(got); i++ {
		if got[i].Msg.GetIndex() <= got[i-1].Msg.GetIndex() {
			t.Fatalf("reordered after reconnect: %d after %d", got[i].Msg.GetIndex(), got[i-1].Msg.GetIndex())
		}
	}
	waitFor(t, 5*time.Second, "peer 2 connected", func() bool { return n1.Stats().Peers[2].Connected })
}

// compressible returns n bytes of seeded random text over a small vocabulary.
func compressible(seed uint64, n int) []byte {
	words := []string{"raft ", "shard ", "pebble ", "lease ", "strata ", "mvcc ", "snapshot ", "\n"}
	r := rand.New(rand.NewPCG(seed, seed))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		fmt.Fprintf(&b, "%d ", r.Uint32()%1000)
	}
	return b.Bytes()[:n]
}

func snapEnv(from, to, group uint64) Envelope {
	return Envelope{Group: group, Msg: &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(),
		From: proto.Uint64(from),
		To:   proto.Uint64(to),
		Term: proto.Uint64(3),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(1000),
			Term:      proto.Uint64(3),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		}},
	}}
}

func TestSnapshot(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	data := compressible(seed, 5<<20+12345) // not a multiple of the chunk size
	want := sha256.Sum256(data)

	rec1, rec2 := newRecorder(), newRecorder()
	n1 := newTestTransport(t, 1, rec1, nil)
	n2 := newTestTransport(t, 2, rec2, nil)
	connect(n1, n2)
	ctx := context.Background()

	t.Run("intact", func(t *testing.T) {
		var gotEnv Envelope
		var gotSum [32]byte
		var gotLen int
		rec2.snapshot = func(ctx context.Context, env Envelope, body io.Reader) error {
			h := sha256.New()
			n, err := io.Copy(h, body)
			gotEnv, gotLen = env, int(n)
			copy(gotSum[:], h.Sum(nil))
			return err
		}
		before := n1.Stats().SnapshotBytesSent
		if err := n1.SendSnapshot(ctx, snapEnv(1, 2, 42), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if gotLen != len(data) || gotSum != want {
			t.Fatalf("received %d bytes (hash match %v), want %d", gotLen, gotSum == want, len(data))
		}
		if gotEnv.Group != 42 || gotEnv.Msg.GetType() != raftpb.MsgSnap || gotEnv.Msg.GetSnapshot().GetMetadata().GetIndex() != 1000 {
			t.Fatalf("envelope not carried: %v", gotEnv)
		}
		wire := n1.Stats().SnapshotBytesSent - before
		if wire >= uint64(len(data))/2 {
			t.Errorf("%d bytes on the wire for %d bytes of compressible data", wire, len(data))
		}
		t.Logf("%d bytes sent as %d (%.1f%%)", len(data), wire, 100*float64(wire)/float64(len(data)))
		if s := n2.Stats(); s.SnapshotsReceived != 1 {
			t.Errorf("SnapshotsReceived = %d", s.SnapshotsReceived)
		}
	})

	t.Run("handler error reaches sender", func(t *testing.T) {
		rec2.snapshot = func(ctx context.Context, env Envelope, body io.Reader) error {
			// Read a little, then fail before the sender is done.
			if _, err := io.ReadFull(body, make([]byte, 1000)); err != nil {
				return err
			}
			return status.Error(codes.ResourceExhausted, "disk full")
		}
		err := n1.SendSnapshot(ctx, snapEnv(1, 2, 42), bytes.NewReader(data))
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("got %v, want ResourceExhausted", err)
		}
		rec2.snapshot = func(ctx context.Context, env Envelope, body io.Reader) error {
			_, _ = io.Copy(io.Discard, body)
			return errors.New("cannot apply")
		}
		err = n1.SendSnapshot(ctx, snapEnv(1, 2, 42), bytes.NewReader(data[:2<<20]))
		if status.Code(err) != codes.Unknown {
			t.Fatalf("got %v, want Unknown", err)
		}
	})

	t.Run("body read error aborts", func(t *testing.T) {
		handled := make(chan error, 1)
		rec2.snapshot = func(ctx context.Context, env Envelope, body io.Reader) error {
			_, err := io.Copy(io.Discard, body)
			handled <- err
			return err
		}
		errBody := errors.New("body broke")
		body := io.MultiReader(bytes.NewReader(data[:2<<20]), iotestErrReader{errBody})
		err := n1.SendSnapshot(ctx, snapEnv(1, 2, 42), body)
		if !errors.Is(err, errBody) {
			t.Fatalf("got %v, want the body's error", err)
		}
		if herr := <-handled; herr == nil {
			t.Fatal("handler read a complete body from an aborted transfer")
		}
	})

	t.Run("unknown peer", func(t *testing.T) {
		err := n1.SendSnapshot(ctx, snapEnv(1, 9, 42), bytes.NewReader(data))
		if !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("got %v, want ErrUnknownPeer", err)
		}
	})
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestForward(t *testing.T) {
	rec1, rec2 := newRecorder(), newRecorder()
	n1 := newTestTransport(t, 1, rec1, nil)
	n2 := newTestTransport(t, 2, rec2, nil)
	connect(n1, n2)
	ctx := context.Background()

	resp, err := n1.Forward(ctx, 2, []byte("get k"))
	if err != nil || string(resp) != "echo:get k" {
		t.Fatalf("Forward = %q, %v", resp, err)
	}

	rec2.forward = func(ctx context.Context, req []byte) ([]byte, error) {
		return nil, status.Error(codes.FailedPrecondition, "not leader")
	}
	if _, err := n1.Forward(ctx, 2, nil); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("got %v, want FailedPrecondition", err)
	}

	sawDeadline := make(chan bool, 1)
	rec2.forward = func(ctx context.Context, req []byte) ([]byte, error) {
		_, ok := ctx.Deadline()
		sawDeadline <- ok
		<-ctx.Done()
		return nil, ctx.Err()
	}
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = n1.Forward(dctx, 2, []byte("slow"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if errors.Is(err, ErrNotSent) {
		t.Fatalf("a call the peer received failed with %v; it was sent", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("deadline not honoured: returned after %v", d)
	}
	if !<-sawDeadline {
		t.Error("the remote handler's context had no deadline")
	}

	if _, err := n1.Forward(ctx, 9, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("got %v, want ErrUnknownPeer", err)
	}

	// A call that fails before gRPC queues it on the (ready) connection was
	// not sent, and says so.
	rec2.forward = func(ctx context.Context, req []byte) ([]byte, error) {
		t.Error("the peer received a call made with a cancelled context")
		return nil, nil
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	before := n1.Stats().ForwardsNotSent
	_, err = n1.Forward(cctx, 2, []byte("never"))
	if !errors.Is(err, ErrNotSent) || !errors.Is(err, context.Canceled) {
		t.Fatalf("forward with a cancelled context: %v, want ErrNotSent and Canceled", err)
	}
	if n := n1.Stats().ForwardsNotSent - before; n != 1 {
		t.Errorf("ForwardsNotSent rose by %d, want 1", n)
	}
}

func TestSendDrops(t *testing.T) {
	rec1, rec2 := newRecorder(), newRecorder()
	n1 := newTestTransport(t, 1, rec1, func(c *Config) { c.QueueSize = 4 })
	n2 := newTestTransport(t, 2, rec2, nil)
	connect(n1, n2)

	n1.Send([]Envelope{msgApp(1, 99, 1, 1), {Group: 1}})
	s := n1.Stats()
	if s.DroppedUnknownPeer != 1 || s.DroppedInvalid != 1 || s.MessagesDropped != 2 {
		t.Fatalf("unknown peer / nil message not counted: %+v", s)
	}

	var envs []Envelope
	for i := range uint64(10000) {
		envs = append(envs, msgApp(1, 2, 1, i+1))
	}
	n1.Send(envs)
	s = n1.Stats()
	if s.DroppedQueueFull == 0 || s.Peers[2].Dropped != s.DroppedQueueFull {
		t.Fatalf("full queue not counted: %+v", s)
	}
	// The overflow is reported once the sender gets to it.
	waitFor(t, 5*time.Second, "ReportUnreachable after overflow", func() bool {
		n1.Send([]Envelope{msgApp(1, 2, 1, 20000)})
		time.Sleep(5 * time.Millisecond)
		return rec1.unreachableCount(2) > 0
	})

	n1.RemovePeer(2)
	before := n1.Stats().DroppedUnknownPeer
	n1.Send([]Envelope{msgApp(1, 2, 1, 1)})
	if got := n1.Stats().DroppedUnknownPeer; got != before+1 {
		t.Fatalf("send to removed peer: DroppedUnknownPeer %d, want %d", got, before+1)
	}
}

func TestAddPeerReplacesAddress(t *testing.T) {
	rec1, rec2 := newRecorder(), newRecorder()
	n1 := newTestTransport(t, 1, rec1, func(c *Config) { c.ReconnectBackoff = 10 * time.Millisecond })
	n2 := newTestTransport(t, 2, rec2, nil)
	n1.AddPeer(2, "127.0.0.1:1") // nothing listens there
	n1.AddPeer(2, "127.0.0.1:1") // idempotent
	n1.AddPeer(2, n2.Addr())
	if got := n1.Stats().Peers[2].Addr; got != n2.Addr() {
		t.Fatalf("peer address %q, want %q", got, n2.Addr())
	}
	n1.Send([]Envelope{msgApp(1, 2, 1, 1)})
	waitFor(t, 5*time.Second, "message on the new address", func() bool { return rec2.count(1) == 1 })
}

// rawStream opens a Raft stream to tr with a plain gRPC client.
func rawStream(t *testing.T, tr *GRPC) transportpb.Transport_RaftClient {
	conn, err := grpc.NewClient(tr.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s, err := transportpb.NewTransportClient(conn).Raft(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMalformedInbound(t *testing.T) {
	rec := newRecorder()
	n1 := newTestTransport(t, 1, rec, nil)

	good, err := proto.Marshal(msgApp(2, 1, 5, 1).Msg)
	if err != nil {
		t.Fatal(err)
	}
	wrongTo, _ := proto.Marshal(msgApp(2, 3, 5, 1).Msg)
	wrongFrom, _ := proto.Marshal(msgApp(4, 1, 5, 1).Msg)

	s := rawStream(t, n1)
	batches := []*transportpb.RaftBatch{
		{From: 2, To: 1, Envelopes: []*transportpb.Envelope{
			{Group: 5, Message: []byte{0xff, 0xff, 0xff}}, // garbage
			{Group: 5, Message: wrongTo},
			{Group: 5, Message: wrongFrom},
			{Group: 5, Message: good},
		}},
		{From: 0, To: 1, Envelopes: []*transportpb.Envelope{{Group: 5, Message: good}}}, // no sender
		{From: 2, To: 1, Envelopes: []*transportpb.Envelope{{Group: 5, Message: good}}},
	}
	for _, b := range batches {
		if err := s.Send(b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the two good messages", func() bool { return rec.count(2) == 2 })
	if got := n1.Stats().MalformedReceived; got != 4 {
		t.Fatalf("MalformedReceived = %d, want 4", got)
	}
	if _, err := s.CloseAndRecv(); err != nil {
		t.Fatalf("stream end: %v", err)
	}

	// A stream meant for another node is refused.
	s = rawStream(t, n1)
	if err := s.Send(&transportpb.RaftBatch{From: 2, To: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CloseAndRecv(); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("got %v, want FailedPrecondition", err)
	}
}

func TestConfigValidation(t *testing.T) {
	h := newRecorder()
	for name, cfg := range map[string]Config{
		"zero node":        {ListenAddr: "127.0.0.1:0", Handler: h},
		"no handler":       {NodeID: 1, ListenAddr: "127.0.0.1:0"},
		"bad address":      {NodeID: 1, ListenAddr: "localhost", Handler: h},
		"negative queue":   {NodeID: 1, ListenAddr: "127.0.0.1:0", Handler: h, QueueSize: -1},
		"backoff inverted": {NodeID: 1, ListenAddr: "127.0.0.1:0", Handler: h, ReconnectBackoff: time.Second, MaxReconnectBackoff: time.Millisecond},
		"chunk too large":  {NodeID: 1, ListenAddr: "127.0.0.1:0", Handler: h, SnapshotChunkSize: 64 << 20},
		"batch over limit": {NodeID: 1, ListenAddr: "127.0.0.1:0", Handler: h, MaxBatchBytes: 2 << 20, MaxMessageBytes: 1 << 20, SnapshotChunkSize: 1 << 10},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
	tr := newTestTransport(t, 1, h, nil)
	if tr.cfg.QueueSize != DefaultQueueSize || tr.cfg.SnapshotChunkSize != DefaultSnapshotChunkSize ||
		tr.cfg.ReconnectBackoff != DefaultReconnectBackoff || tr.cfg.MaxReconnectBackoff != DefaultMaxReconnectBackoff {
		t.Errorf("defaults not filled in: %+v", tr.cfg)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	runtime.GC()
	before := runtime.NumGoroutine()

	recs := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	var trs []*GRPC
	for i, rec := range recs {
		tr, err := New(Config{NodeID: uint64(i + 1), ListenAddr: "127.0.0.1:0", Handler: rec, Forward: rec})
		if err != nil {
			t.Fatal(err)
		}
		trs = append(trs, tr)
	}
	connect(trs...)
	for i, tr := range trs {
		from := uint64(i + 1)
		var envs []Envelope
		for to := uint64(1); to <= 3; to++ {
			if to != from {
				envs = append(envs, msgApp(from, to, 1, 1))
			}
		}
		tr.Send(envs)
	}
	waitFor(t, 5*time.Second, "traffic", func() bool { return recs[0].count(2) == 1 && recs[0].count(3) == 1 })
	if _, err := trs[0].Forward(t.Context(), 2, []byte("x")); err != nil {
		t.Fatal(err)
	}
	trs[0].RemovePeer(3)
	trs[0].AddPeer(3, "127.0.0.1:1")

	// A snapshot whose handler blocks until the transfer is abandoned: Close
	// of the receiver must still return, and the sender must see an error.
	recs[1].snapshot = func(ctx context.Context, env Envelope, body io.Reader) error {
		<-ctx.Done()
		return ctx.Err()
	}
	snapErr := make(chan error, 1)
	go func() {
		snapErr <- trs[0].SendSnapshot(t.Context(), snapEnv(1, 2, 1), bytes.NewReader(compressible(1, 3<<20)))
	}()
	waitFor(t, 5*time.Second, "snapshot in flight", func() bool { return trs[1].Stats().SnapshotsRecvFailed == 0 && trs[0].Stats().SnapshotBytesSent > 0 })

	for _, tr := range trs {
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-snapErr; err == nil {
		t.Error("snapshot to a closed node succeeded")
	}

	// Calls after Close fail or drop, without panicking; Close is idempotent.
	trs[0].Send([]Envelope{msgApp(1, 2, 1, 2)})
	if _, err := trs[0].Forward(t.Context(), 2, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Forward after Close: %v, want ErrClosed", err)
	}
	trs[0].AddPeer(2, trs[1].Addr())
	if err := trs[0].Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	waitFor(t, 5*time.Second, "goroutines to exit", func() bool {
		return runtime.NumGoroutine() <= before+2
	})
}

// blockingUnreachable blocks ReportUnreachable until release is closed.
type blockingUnreachable struct {
	*recorder
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *blockingUnreachable) ReportUnreachable(peer uint64) {
	h.once.Do(func() { close(h.entered) })
	<-h.release
}

// TestRemovePeerDoesNotWaitForHandler: raftnode may remove a peer while
// holding locks its ReportUnreachable takes, so RemovePeer must not wait for
// a sender stuck in the handler.
func TestRemovePeerDoesNotWaitForHandler(t *testing.T) {
	h := &blockingUnreachable{recorder: newRecorder(), entered: make(chan struct{}), release: make(chan struct{})}
	n1 := newTestTransport(t, 1, h, func(c *Config) { c.DialTimeout = 100 * time.Millisecond })
	n1.AddPeer(2, "127.0.0.1:1") // nothing listens there
	n1.Send([]Envelope{msgApp(1, 2, 1, 1)})
	select {
	case <-h.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("ReportUnreachable not called for an unreachable peer")
	}
	removed := make(chan struct{})
	go func() { n1.RemovePeer(2); close(removed) }()
	select {
	case <-removed:
	case <-time.After(5 * time.Second):
		t.Fatal("RemovePeer waited for a handler call")
	}
	close(h.release)
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
}
