package strata

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/transport"
	"github.com/strata-kv/strata/txn/tso"
)

// Options configure a DB. Only Dir is required; every other field's zero
// value is its default.
type Options struct {
	// Dir holds the node's data. Required.
	Dir string
	// NodeID is this node's ID in the cluster, at most MaxNodeID (the low
	// bits of every raft replica ID are its node's ID). Default: 1.
	NodeID uint64
	// PeerAddr is the address (host:port) this node listens on for other
	// nodes. Default: none, which is only valid for a single-node cluster.
	PeerAddr string
	// InitialCluster maps every initial member's node ID to its PeerAddr.
	// Default: this node alone. It is used to bootstrap a new cluster and
	// to find the peers after a restart.
	InitialCluster map[uint64]string
	// Join makes a new node join an existing cluster instead of creating
	// one: it bootstraps nothing and serves nothing until DB.Join fetched
	// the shard directory from a member; replicas come to it by
	// AddReplica. Requires PeerAddr. Ignored once the node has joined.
	Join bool
	// Shards is the number of user shards a new cluster starts with,
	// splitting the key space evenly on the first key byte. Default: 1.
	// Ignored after the cluster was created.
	Shards int
	// SplitKeys, if set, are the initial shard boundaries instead (Shards
	// must then be 0 or len(SplitKeys)+1). Ignored after creation.
	SplitKeys [][]byte
	// ReplicationFactor is how many replicas each shard of a new cluster
	// gets, spread over the initial members. Default: 3 (or fewer members).
	// Ignored after creation.
	ReplicationFactor int
	// TickInterval is the raft tick. Default: 100ms.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks. Default: 10.
	ElectionTicks int
	// UnsafeLocalReads serves reads from the local replica without
	// confirming leadership. Reads may be stale. For tests of the checkers
	// only. Default: false.
	UnsafeLocalReads bool
	// UnsafeLeaseReads answers linearizable reads on the leader without a
	// heartbeat round (raft's ReadOnlyLeaseBased). That is NOT safe: a
	// leader cut off from its followers, paused, or handing over its
	// leadership keeps answering while a new leader commits writes, so
	// reads may be stale. It exists only so that the checkers can prove
	// they catch it. Default: false.
	UnsafeLeaseReads bool
	// LogRetain is how many applied raft entries a shard keeps before
	// truncating its log. Default: 10000.
	LogRetain uint64
	// HistoryRetention is how long versions stay readable at their
	// timestamps (by Snapshot, SnapshotAt): GC raises each shard's
	// replicated GC threshold to the oracle's time minus HistoryRetention
	// and removes only versions that no read at or above the threshold can
	// see; a read below a shard's threshold fails with ErrTimestampTooOld.
	// Default: 1 hour.
	HistoryRetention time.Duration
	// GCInterval is how often each node collects the history of the user
	// shards it leads (DB.GC), as replicated GC commands that every replica
	// applies alike. Default: 1 minute; negative disables the loop (DB.GC
	// still collects when called).
	GCInterval time.Duration
	// GCVersionsPerCommand bounds the work of one replicated GC command:
	// it examines at most about this many versions of its shard (the
	// versions of one key are never split), and a shard with more is
	// collected by a chain of commands, one key span each. Default: 10000.
	GCVersionsPerCommand int
	// Observer receives raft timings and events (proposals, persist and
	// apply batches, leader changes) for metrics. Default: none.
	Observer raftnode.Observer
	// WrapTransport, if set, wraps the node's transport to other nodes.
	// Fault-injection tests use it to partition, drop, delay, duplicate
	// and reorder messages. Default: none.
	WrapTransport func(transport.Transport) transport.Transport
	// FS is the filesystem for the data. Default: the OS. Tests use
	// Pebble's in-memory or error-injecting filesystems.
	FS vfs.FS
	// Clock is the wall clock the timestamp oracle reads while this node
	// leads the system shard. Default: the system clock. kvnode passes a
	// tso.OffsetClock so that a clock nemesis can move it.
	Clock tso.Clock
	// OracleWindow is how far ahead of the timestamps handed out the
	// oracle persists its limit (tso.OracleOptions.Window). Default: 3 s.
	OracleWindow time.Duration
	// OracleLease is how long the oracle of a new system-shard leader
	// waits before its first timestamp, so that an old leader that does
	// not know it was deposed has stopped handing timestamps out; a
	// confirmation of leadership lets the oracle serve for 90% of it. It
	// adds to the time writes wait after the system shard's leader
	// changes. It relies on the monotonic clocks of two nodes running at
	// rates within 10% of each other, not on wall clocks. Default: 500 ms.
	OracleLease time.Duration
	// MinFreeBytes is the free disk space Open requires on Dir's
	// filesystem: below it Open fails with ErrDiskFull rather than start a node that could neither
	// write nor compact. Negative disables the check. Default: 64 MiB.
	MinFreeBytes int64
}

func (o *Options) ensureDefaults() error {
	if o.Dir == "" {
		return errors.New("strata: Options.Dir is required")
	}
	if o.NodeID == 0 {
		o.NodeID = 1
	}
	if o.NodeID > MaxNodeID {
		return fmt.Errorf("strata: node ID %d is above the largest, %d", o.NodeID, MaxNodeID)
	}
	for id := range o.InitialCluster {
		if id == 0 || id > MaxNodeID {
			return fmt.Errorf("strata: InitialCluster: node ID %d is not in [1, %d]", id, MaxNodeID)
		}
	}
	if len(o.InitialCluster) == 0 {
		o.InitialCluster = map[uint64]string{o.NodeID: o.PeerAddr}
	}
	addr, ok := o.InitialCluster[o.NodeID]
	if !ok {
		return fmt.Errorf("strata: InitialCluster does not contain this node's ID %d", o.NodeID)
	}
	if o.PeerAddr == "" {
		o.PeerAddr = addr
	}
	if o.Join && o.PeerAddr == "" {
		return errors.New("strata: a joining node needs PeerAddr")
	}
	if len(o.InitialCluster) > 1 {
		if o.PeerAddr == "" {
			return errors.New("strata: PeerAddr is required in a cluster of more than one node")
		}
		for id, a := range o.InitialCluster {
			if id == 0 || a == "" {
				return fmt.Errorf("strata: InitialCluster entry %d=%q: IDs must be > 0 and addresses set", id, a)
			}
		}
	}
	if o.Shards < 0 {
		return fmt.Errorf("strata: Shards is %d, must be >= 0", o.Shards)
	}
	if o.Shards == 0 && len(o.SplitKeys) == 0 {
		o.Shards = 1
	}
	if o.ReplicationFactor < 0 {
		return fmt.Errorf("strata: ReplicationFactor is %d, must be >= 0", o.ReplicationFactor)
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = 3
	}
	if o.HistoryRetention < 0 {
		return fmt.Errorf("strata: HistoryRetention is %v, must be >= 0", o.HistoryRetention)
	}
	if o.HistoryRetention == 0 {
		o.HistoryRetention = time.Hour
	}
	if o.OracleLease < 0 {
		return fmt.Errorf("strata: OracleLease is %v, must be >= 0", o.OracleLease)
	}
	if o.GCInterval == 0 {
		o.GCInterval = time.Minute
	}
	if o.GCVersionsPerCommand < 0 {
		return fmt.Errorf("strata: GCVersionsPerCommand is %d, must be >= 0", o.GCVersionsPerCommand)
	}
	if o.GCVersionsPerCommand == 0 {
		o.GCVersionsPerCommand = 10000
	}
	return nil
}
