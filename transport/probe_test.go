package transport

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestProbe: a live peer is ready; a peer whose address refuses
// connections fails at once rather than at the context's deadline.
func TestProbe(t *testing.T) {
	n1 := newTestTransport(t, 1, newRecorder(), nil)
	n2 := newTestTransport(t, 2, newRecorder(), nil)
	connect(n1, n2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n1.Probe(ctx, 2); err != nil {
		t.Fatalf("Probe of a live peer: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	n1.AddPeer(3, dead)
	if err := n1.Probe(ctx, 3); !errors.Is(err, ErrNotSent) || ctx.Err() != nil {
		t.Fatalf("Probe of a peer that refuses connections: %v (context %v)", err, ctx.Err())
	}
	if err := n1.Probe(ctx, 9); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Probe of an unknown peer: %v", err)
	}
}
