package faultnet_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata/transport"
	"github.com/strata-kv/strata/transport/faultnet"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// sink is an inner transport that records what gets through.
type sink struct {
	mu       sync.Mutex
	sent     map[uint64]int // by destination
	forwards int
}

func (s *sink) AddPeer(uint64, string) {}
func (s *sink) RemovePeer(uint64)      {}
func (s *sink) Close() error           { return nil }
func (s *sink) Send(envs []transport.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range envs {
		s.sent[e.Msg.GetTo()]++
	}
}
func (s *sink) SendSnapshot(context.Context, transport.Envelope, io.Reader) error { return nil }
func (s *sink) Forward(context.Context, uint64, []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forwards++
	return []byte("ok"), nil
}
func (s *sink) count(to uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[to]
}

func msgs(to uint64, n int) []transport.Envelope {
	envs := make([]transport.Envelope, n)
	for i := range envs {
		envs[i] = transport.Envelope{Group: 1, Msg: &raftpb.Message{To: proto.Uint64(to), From: proto.Uint64(1)}}
	}
	return envs
}

func TestPartitionLossAndHeal(t *testing.T) {
	net := faultnet.New(1)
	defer net.Close()
	in := &sink{sent: map[uint64]int{}}
	l := net.Wrap(1, in)

	l.Send(msgs(2, 10))
	if got := in.count(2); got != 10 {
		t.Fatalf("healthy network delivered %d of 10", got)
	}
	net.Partition([]uint64{1}, []uint64{2, 3})
	l.Send(msgs(2, 10))
	if got := in.count(2); got != 10 {
		t.Fatalf("partitioned link delivered %d more", got-10)
	}
	if _, err := l.Forward(context.Background(), 2, nil); !errors.Is(err, transport.ErrNotSent) {
		t.Fatalf("forward across a partition: %v, want ErrNotSent", err)
	}
	net.Heal()
	net.BlockOneWay(2, 1)
	// The request goes out, the reply is lost: ambiguous for the caller.
	if _, err := l.Forward(context.Background(), 2, nil); !errors.Is(err, faultnet.ErrReplyLost) {
		t.Fatalf("forward with the way back blocked: %v, want ErrReplyLost", err)
	}
	net.Heal()
	net.SetFaults(0.5, 0, 0)
	l.Send(msgs(3, 1000))
	if got := in.count(3); got < 400 || got > 600 {
		t.Fatalf("with 50%% loss %d of 1000 arrived", got)
	}
	net.Heal()
	net.SetFaults(0, 1, 5*time.Millisecond)
	l.Send(msgs(4, 10))
	for deadline := time.Now().Add(5 * time.Second); in.count(4) < 20 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := in.count(4); got != 20 {
		t.Fatalf("with duplication %d of 20 copies arrived", got)
	}
	net.SetDown(1, true)
	st := net.Stats()
	if st.Blocked == 0 || st.Lost == 0 || st.Dup == 0 || st.ForwardRepliesLost != 1 {
		t.Fatalf("counters do not reflect the faults: %+v", st)
	}
}
