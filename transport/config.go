package transport

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config configures a GRPC transport. NodeID, ListenAddr and Handler are
// required; every other field has a default, filled in by New.
type Config struct {
	// NodeID is this node's ID (raft's ID); it must not be zero.
	NodeID uint64
	// ListenAddr is the host:port to serve on; "127.0.0.1:0" picks a free
	// port (see GRPC.Addr).
	ListenAddr string
	// Handler receives inbound raft traffic.
	Handler Handler
	// Forward serves forwarded requests. Default: none; a forwarded request
	// then fails with codes.Unimplemented.
	Forward ForwardHandler

	// QueueSize is the number of envelopes queued per peer before Send drops.
	// Default 4096.
	QueueSize int
	// MaxBatchBytes bounds the encoded raft messages in one stream send. A
	// single message larger than this is sent alone. Default 1 MiB.
	MaxBatchBytes int
	// MaxMessageBytes is the largest gRPC message a node accepts (a batch, a
	// snapshot chunk, a forwarded request or response). A raft message that
	// does not fit is dropped and counted. Default 64 MiB.
	MaxMessageBytes int
	// SnapshotChunkSize is the size of the uncompressed snapshot body per
	// chunk. Default 1 MiB; at most MaxMessageBytes/2.
	SnapshotChunkSize int
	// ReconnectBackoff is the first wait after a failed dial or a broken
	// stream; it doubles on every further failure up to MaxReconnectBackoff.
	// Default 50ms.
	ReconnectBackoff time.Duration
	// MaxReconnectBackoff caps the backoff. Default 2s.
	MaxReconnectBackoff time.Duration
	// DialTimeout bounds connecting to a peer. Default 2s.
	DialTimeout time.Duration
	// UnreachableInterval is the least time between two ReportUnreachable
	// calls for the same peer. Default 1s.
	UnreachableInterval time.Duration
	// KeepaliveInterval is how often an idle connection is pinged; a peer
	// that does not answer within another interval is considered gone. gRPC
	// raises values below 10s to 10s. Default 10s.
	KeepaliveInterval time.Duration
}

// Defaults, in one place.
const (
	DefaultQueueSize           = 4096
	DefaultMaxBatchBytes       = 1 << 20
	DefaultMaxMessageBytes     = 64 << 20
	DefaultSnapshotChunkSize   = 1 << 20
	DefaultReconnectBackoff    = 50 * time.Millisecond
	DefaultMaxReconnectBackoff = 2 * time.Second
	DefaultDialTimeout         = 2 * time.Second
	DefaultUnreachableInterval = time.Second
	DefaultKeepaliveInterval   = 10 * time.Second
)

// withDefaults returns c with every zero knob set to its default.
func (c Config) withDefaults() Config {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.QueueSize, DefaultQueueSize)
	setInt(&c.MaxBatchBytes, DefaultMaxBatchBytes)
	setInt(&c.MaxMessageBytes, DefaultMaxMessageBytes)
	setInt(&c.SnapshotChunkSize, DefaultSnapshotChunkSize)
	setDur(&c.ReconnectBackoff, DefaultReconnectBackoff)
	setDur(&c.MaxReconnectBackoff, DefaultMaxReconnectBackoff)
	setDur(&c.DialTimeout, DefaultDialTimeout)
	setDur(&c.UnreachableInterval, DefaultUnreachableInterval)
	setDur(&c.KeepaliveInterval, DefaultKeepaliveInterval)
	return c
}

// validate checks a config that has its defaults filled in.
func (c Config) validate() error {
	var errs []error
	if c.NodeID == 0 {
		errs = append(errs, errors.New("NodeID must not be zero"))
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("Handler is required"))
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		errs = append(errs, fmt.Errorf("ListenAddr %q is not host:port: %w", c.ListenAddr, err))
	}
	positive := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	positive("QueueSize", int64(c.QueueSize))
	positive("MaxBatchBytes", int64(c.MaxBatchBytes))
	positive("MaxMessageBytes", int64(c.MaxMessageBytes))
	positive("SnapshotChunkSize", int64(c.SnapshotChunkSize))
	positive("ReconnectBackoff", int64(c.ReconnectBackoff))
	positive("MaxReconnectBackoff", int64(c.MaxReconnectBackoff))
	positive("DialTimeout", int64(c.DialTimeout))
	positive("UnreachableInterval", int64(c.UnreachableInterval))
	positive("KeepaliveInterval", int64(c.KeepaliveInterval))
	if c.MaxReconnectBackoff < c.ReconnectBackoff {
		errs = append(errs, fmt.Errorf("MaxReconnectBackoff %v is below ReconnectBackoff %v", c.MaxReconnectBackoff, c.ReconnectBackoff))
	}
	if c.MaxBatchBytes > c.MaxMessageBytes {
		errs = append(errs, fmt.Errorf("MaxBatchBytes %d exceeds MaxMessageBytes %d", c.MaxBatchBytes, c.MaxMessageBytes))
	}
	if c.SnapshotChunkSize > c.MaxMessageBytes/2 {
		errs = append(errs, fmt.Errorf("SnapshotChunkSize %d exceeds MaxMessageBytes/2 (%d)", c.SnapshotChunkSize, c.MaxMessageBytes/2))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}
