package transport

import (
	"sync/atomic"
	"testing"
	"time"
)

// countingHandler counts inbound messages.
type countingHandler struct {
	*recorder
	n atomic.Int64
}

func (h *countingHandler) HandleMessages(from uint64, envs []Envelope) { h.n.Add(int64(len(envs))) }

// BenchmarkSendMsgApp sends small MsgApp envelopes (one 64-byte entry) from
// one transport to another over loopback, 64 per Send like a Ready loop, and
// reports delivered messages per second.
func BenchmarkSendMsgApp(b *testing.B) {
	h1, h2 := &countingHandler{recorder: newRecorder()}, &countingHandler{recorder: newRecorder()}
	n1 := newTestTransport(b, 1, h1, nil)
	n2 := newTestTransport(b, 2, h2, nil)
	connect(n1, n2)

	const perSend = 64
	envs := make([]Envelope, perSend)
	for i := range envs {
		envs[i] = msgApp(1, 2, uint64(i%8+1), uint64(i+1))
	}
	window := int64(n1.cfg.QueueSize / 2) // stay clear of drops
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sent := int64(0)
	for sent < int64(b.N) {
		for sent-h2.n.Load() > window {
			time.Sleep(10 * time.Microsecond)
		}
		k := min(perSend, int64(b.N)-sent)
		// Fresh messages each time: Send takes ownership.
		batch := make([]Envelope, k)
		for i := range batch {
			batch[i] = msgApp(1, 2, envs[i].Group, uint64(sent)+uint64(i))
		}
		n1.Send(batch)
		sent += k
	}
	for h2.n.Load() < sent {
		time.Sleep(10 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	s := n1.Stats()
	if s.MessagesDropped != 0 {
		b.Fatalf("%d messages dropped", s.MessagesDropped)
	}
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "msgs/s")
	if s.BatchesSent > 0 {
		b.ReportMetric(float64(s.MessagesSent)/float64(s.BatchesSent), "msgs/batch")
	}
}
