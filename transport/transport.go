package transport

import (
	"context"
	"errors"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// Errors returned by the transport. Errors that came back from the remote node
// are gRPC status errors (wrapped); status.Code still finds their code.
var (
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("transport: closed")
	// ErrUnknownPeer is returned when the destination was never added with
	// AddPeer (or was removed).
	ErrUnknownPeer = errors.New("transport: unknown peer")
	// ErrNotSent is returned by Forward when the request was certainly not
	// sent: the connection to the peer was not ready, or the call failed
	// before gRPC queued it on a connection. The caller may retry even a
	// non-idempotent request.
	ErrNotSent = errors.New("transport: peer unreachable, request not sent")
	// ErrInvalidConfig is returned (wrapped, with the reasons) by New.
	ErrInvalidConfig = errors.New("transport: invalid config")
)

// Envelope is one raft message of one group. Msg.To is the destination
// replica's raft ID, Msg.From the sender's: the node of each is in the ID's
// low bits (package replicaid), and the transport routes by it.
type Envelope struct {
	Group uint64
	Msg   *raftpb.Message
}

// Handler receives inbound raft traffic. It is implemented by raftnode.
type Handler interface {
	// HandleMessages is called with a batch of raft messages received from
	// node `from`. It must not block for long. The handler owns envs and the
	// messages in it.
	HandleMessages(from uint64, envs []Envelope)
	// HandleSnapshot is called for an inbound snapshot: env carries the
	// MsgSnap (its Snapshot metadata), body streams the decompressed snapshot
	// payload, which the handler reads to io.EOF. A nil return tells the
	// sender it was applied/accepted. ctx is cancelled if the sender goes
	// away.
	HandleSnapshot(ctx context.Context, env Envelope, body io.Reader) error
	// ReportUnreachable is called when messages to peer could not be
	// delivered (dial failure, broken stream, full queue). It is called from
	// the transport's own goroutines, never from inside Send.
	ReportUnreachable(peer uint64)
}

// ForwardHandler serves the requests other nodes forward (Transport.Forward).
// It is implemented by package replica.
type ForwardHandler interface {
	// HandleForward executes a forwarded request (opaque bytes) and returns
	// the opaque response. A gRPC status error is passed to the caller as
	// is; any other error reaches it as codes.Unknown with the error's text.
	HandleForward(ctx context.Context, req []byte) ([]byte, error)
}

// Transport is what raftnode uses to reach other nodes. The gRPC
// implementation (GRPC) and test wrappers (fault injection) implement it.
type Transport interface {
	// AddPeer makes peer id reachable at addr. It is idempotent; a changed
	// addr replaces the old connection.
	AddPeer(id uint64, addr string)
	// RemovePeer forgets peer id and stops its goroutines.
	RemovePeer(id uint64)
	// Send never blocks: it groups envs by the node of Msg.To and enqueues them per
	// peer; it drops (and counts) envelopes when a peer's queue is full or
	// the peer is unknown. It takes ownership of the messages.
	Send(envs []Envelope)
	// SendSnapshot streams a snapshot to env.Msg.To and blocks until the
	// receiver's HandleSnapshot returned; it returns that error.
	SendSnapshot(ctx context.Context, env Envelope, body io.Reader) error
	// Forward is a unary call to node `to`'s ForwardHandler.
	Forward(ctx context.Context, to uint64, req []byte) ([]byte, error)
	// Close stops everything and waits for the transport's goroutines.
	Close() error
}

var _ Transport = (*GRPC)(nil)
