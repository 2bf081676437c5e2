package raftnode

import "sync/atomic"

// stats are the node's counters, updated without locks.
type stats struct {
	cycles          atomic.Int64 // loop iterations that persisted or applied something
	syncs           atomic.Int64 // fsyncs of raft state (one per cycle at most)
	groupsPersisted atomic.Int64 // group Readies persisted, summed over cycles
	entriesSynced   atomic.Int64 // entries persisted, summed over cycles
	maxBatchGroups  atomic.Int64 // largest number of groups in one persisted batch
	proposals       atomic.Int64
	applied         atomic.Int64 // entries applied
	reads           atomic.Int64 // ReadIndex calls
	readRounds      atomic.Int64 // ReadIndex rounds (reads share rounds)
	unknownGroup    atomic.Int64 // inbound messages for groups not hosted here
	nonMember       atomic.Int64 // inbound messages from senders not members of their group
	invalidMsg      atomic.Int64 // inbound messages of a kind no peer sends on the raft stream
	staleReplica    atomic.Int64 // inbound messages and snapshots for another incarnation of the local replica
	snapshotsSent   atomic.Int64
	snapshotsFailed atomic.Int64
	snapshotsRecv   atomic.Int64
	truncations     atomic.Int64
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	// Cycles is the number of loop cycles that persisted raft state.
	Cycles int64
	// Syncs is the number of fsyncs of raft state. With group commit,
	// Syncs is far below the number of proposals under concurrent load.
	Syncs int64
	// GroupsPersisted sums, over cycles, the groups whose state one batch
	// carried; GroupsPersisted/Syncs is the mean batch size in groups.
	GroupsPersisted int64
	// EntriesSynced sums the entries persisted; EntriesSynced/Syncs is the
	// mean batch size in entries.
	EntriesSynced int64
	// MaxBatchGroups is the largest number of groups in one batch.
	MaxBatchGroups int64
	Proposals      int64
	Applied        int64
	Reads          int64
	ReadRounds     int64
	// UnknownGroupDrops counts inbound messages for groups not hosted here.
	UnknownGroupDrops int64
	// NonMemberDrops counts inbound raft messages and snapshots dropped
	// because their sender is not a member (voter or learner) of the group
	// as the local replica knows it.
	NonMemberDrops int64
	// InvalidMessageDrops counts inbound raft messages no correct peer
	// sends on the raft stream (a MsgSnap without its snapshot's data, a
	// proposal, a message not from its sender) and were dropped.
	InvalidMessageDrops int64
	// StaleReplicaDrops counts inbound raft messages and snapshots dropped
	// because they were addressed to another incarnation of the local
	// replica (an older one, from before its node was removed and added
	// back, or a newer one this replica is not).
	StaleReplicaDrops int64
	SnapshotsSent     int64
	SnapshotsFailed   int64
	SnapshotsReceived int64
	Truncations       int64
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := &n.stats
	return Stats{
		Cycles: s.cycles.Load(), Syncs: s.syncs.Load(), GroupsPersisted: s.groupsPersisted.Load(),
		EntriesSynced: s.entriesSynced.Load(), MaxBatchGroups: s.maxBatchGroups.Load(),
		Proposals: s.proposals.Load(), Applied: s.applied.Load(), Reads: s.reads.Load(),
		ReadRounds: s.readRounds.Load(), UnknownGroupDrops: s.unknownGroup.Load(),
		NonMemberDrops: s.nonMember.Load(), InvalidMessageDrops: s.invalidMsg.Load(),
		StaleReplicaDrops: s.staleReplica.Load(),
		SnapshotsSent:     s.snapshotsSent.Load(), SnapshotsFailed: s.snapshotsFailed.Load(),
		SnapshotsReceived: s.snapshotsRecv.Load(), Truncations: s.truncations.Load(),
	}
}
