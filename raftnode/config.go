package raftnode

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/storage"
	"go.etcd.io/raft/v3"
)

// Span is a Pebble key span [Start, End).
type Span struct{ Start, End []byte }

// StateMachine applies committed commands. It must be deterministic: every
// replica applies the same commands in the same order and must end in the
// same state.
type StateMachine interface {
	// Apply applies cmd, committed as entry e, into b (an indexed batch
	// shared by the entries of one apply pass, so earlier commands' writes
	// are visible). The Result goes to the proposer. A returned error means
	// the node cannot go on (a storage failure) and stops it.
	Apply(b *pebble.Batch, e Entry, cmd []byte) (Result, error)
}

// Entry describes the raft entry a command is applied from.
type Entry struct {
	// Group and Index are the entry's group and log index.
	Group, Index uint64
	// Spans are the group's Pebble spans (GroupConfig.Spans), the same on
	// every replica: a command must write only inside them. The slice is
	// the group's own; do not modify it.
	Spans []Span
}

// Result is the outcome of an applied command, delivered to its proposer.
type Result struct {
	// Data is the command's answer (e.g. whether a compare-and-swap
	// swapped), as the StateMachine encodes it.
	Data []byte
	// Err is a command-level failure (the command applied as a no-op).
	Err error
}

// GroupConfig describes a replica of a group to host.
type GroupConfig struct {
	// ID is the group ID; it must be > 0.
	ID uint64
	// Spans are the Pebble spans holding the group's replicated state. A
	// snapshot carries exactly these spans.
	Spans []Span
	// Peers are the initial voters. If set and the node has no state for
	// the group, the group is bootstrapped with them; every initial member
	// must be given the same Peers. Leave empty for a replica that will be
	// added by a membership change and filled by a snapshot. Initial
	// members are incarnation 0: their raft ID is their node ID.
	Peers []uint64
	// ReplicaID is the raft ID of the replica to host (package replicaid):
	// for a replica added by a membership change, the ID AddLearner
	// returned. 0 means the node's incarnation-0 ID (its node ID), as for
	// initial members, or, for a replica with state in storage, the ID it
	// was created with. An ID below the group's tombstone (the node
	// destroyed that incarnation or a later one) is refused with
	// ErrStaleReplica.
	ReplicaID uint64
	// KeepDataOnRemoval leaves the group's spans in place when a
	// membership change removes this node (its raft state still goes).
	// The system shard uses it: its directory doubles as the node's
	// routing cache. A later snapshot replaces the spans whole.
	KeepDataOnRemoval bool
}

// Config configures a Node. Zero values are defaults, filled in by
// ensureDefaults.
type Config struct {
	// NodeID is this node's ID, > 0. Required.
	NodeID uint64
	// Engine is the node's storage. Required.
	Engine *storage.Engine
	// StateMachine applies committed commands. Required.
	StateMachine StateMachine
	// TickInterval is the duration of one raft tick. Default: 100ms.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks. Default: 10.
	ElectionTicks int
	// HeartbeatTicks is the heartbeat interval in ticks. Default: 1.
	HeartbeatTicks int
	// UnsafeLeaseReads answers ReadIndex on the leader at once instead of
	// after a heartbeat round (raft's ReadOnlyLeaseBased). It is not safe:
	// raft's lease is counted in ticks, not time, so a leader that is cut
	// off, paused or transferring its leadership answers reads while a
	// new leader commits writes. For tests of the checkers only.
	// Default: false.
	UnsafeLeaseReads bool
	// MaxSizePerMsg bounds the entries bytes of one append message.
	// Default: 1 MiB.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds unacknowledged appends per follower. Default: 256.
	MaxInflightMsgs int
	// LogRetain is how many applied entries a group keeps in its log before
	// it truncates; a follower further behind gets a snapshot. Default: 10000.
	LogRetain uint64
	// Logger receives raft's log lines. Default: errors and warnings only.
	Logger raft.Logger
	// OnStop is called once, with the cause, when the node stops because of
	// a storage failure. Optional.
	OnStop func(error)
	// Observer receives timings and events for metrics. Default: none.
	Observer Observer
	// OnLeaderChange is called from the node's loop when the local replica
	// of group learns of a new leader (0: none known), as
	// Observer.LeaderChanged is: leader == NodeID means this replica now
	// leads. It must not block (signal a goroutine of your own); read the
	// current term and role with Status. Optional.
	OnLeaderChange func(group, leader uint64)
	// OnGroupRemoved is called after a membership change removed this node
	// from a group and the group's data was deleted. Optional.
	OnGroupRemoved func(group uint64)
}

func (c *Config) ensureDefaults() error {
	if c.NodeID == 0 || c.NodeID > replicaid.MaxNode {
		return fmt.Errorf("raftnode: Config.NodeID %d must be in [1, %d]", c.NodeID, replicaid.MaxNode)
	}
	if c.Engine == nil {
		return errors.New("raftnode: Config.Engine is required")
	}
	if c.StateMachine == nil {
		return errors.New("raftnode: Config.StateMachine is required")
	}
	if c.TickInterval == 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.HeartbeatTicks >= c.ElectionTicks {
		return errors.New("raftnode: HeartbeatTicks must be less than ElectionTicks")
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = 256
	}
	if c.LogRetain == 0 {
		c.LogRetain = 10000
	}
	if c.Logger == nil {
		c.Logger = quietLogger{}
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return nil
}
