package transport

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// recorder is a Handler that records what it receives.
type recorder struct {
	mu          sync.Mutex
	msgs        map[uint64][]Envelope // by sender
	calls       int                   // HandleMessages calls
	unreachable map[uint64]int

	// Optional behaviour; nil means accept / echo.
	snapshot func(ctx context.Context, env Envelope, body io.Reader) error
	forward  func(ctx context.Context, req []byte) ([]byte, error)
}

func newRecorder() *recorder {
	return &recorder{msgs: map[uint64][]Envelope{}, unreachable: map[uint64]int{}}
}

func (r *recorder) HandleMessages(from uint64, envs []Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.msgs[from] = append(r.msgs[from], envs...)
}

func (r *recorder) HandleSnapshot(ctx context.Context, env Envelope, body io.Reader) error {
	if r.snapshot != nil {
		return r.snapshot(ctx, env, body)
	}
	_, err := io.Copy(io.Discard, body)
	return err
}

func (r *recorder) HandleForward(ctx context.Context, req []byte) ([]byte, error) {
	if r.forward != nil {
		return r.forward(ctx, req)
	}
	return append([]byte("echo:"), req...), nil
}

func (r *recorder) ReportUnreachable(peer uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable[peer]++
}

func (r *recorder) received(from uint64) []Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Envelope(nil), r.msgs[from]...)
}

func (r *recorder) count(from uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs[from])
}

func (r *recorder) unreachableCount(peer uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[peer]
}

// newTestTransport starts a transport on a free loopback port and closes it
// when the test ends. mutate, if not nil, adjusts the config.
func newTestTransport(tb testing.TB, id uint64, h Handler, mutate func(*Config)) *GRPC {
	tb.Helper()
	cfg := Config{NodeID: id, ListenAddr: "127.0.0.1:0", Handler: h}
	if f, ok := h.(ForwardHandler); ok {
		cfg.Forward = f
	}
	if mutate != nil {
		mutate(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = tr.Close() })
	return tr
}

// connect makes every transport a peer of every other.
func connect(trs ...*GRPC) {
	for _, a := range trs {
		for _, b := range trs {
			if a != b {
				a.AddPeer(b.cfg.NodeID, b.Addr())
			}
		}
	}
}

// msgApp returns a small MsgApp of group from `from` to `to` with the given
// index and one 64-byte entry.
func msgApp(from, to, group, index uint64) Envelope {
	return Envelope{Group: group, Msg: &raftpb.Message{
		Type:    raftpb.MsgApp.Enum(),
		From:    proto.Uint64(from),
		To:      proto.Uint64(to),
		Term:    proto.Uint64(1),
		Index:   proto.Uint64(index),
		LogTerm: proto.Uint64(1),
		Commit:  proto.Uint64(index),
		Entries: []*raftpb.Entry{{
			Term:  proto.Uint64(1),
			Index: proto.Uint64(index + 1),
			Data:  make([]byte, 64),
		}},
	}}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
