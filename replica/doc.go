// Package replica serves the batches addressed to the shard replicas this
// node hosts: it checks that a batch belongs to the replica (the shard is
// hosted here, every key lies in the shard's range), dispatches reads,
// writes and admin requests, and turns raftnode's outcomes into the typed
// errors of package kvpb.
//
// Reads are confirmed with ReadIndex (or, at the serializable level,
// answered from the local state) and evaluated by package statemachine on
// the node's storage; writes become one kvpb.ReplicatedCommand proposed to
// the shard's raft group; admin requests (membership, leadership, progress)
// run on the shard's leader.
//
// Leader-only tasks run in LeaderTasks (leader.go): while this node leads
// the system shard it runs the timestamp oracle (package txn/tso), opened
// when the replica becomes leader (raftnode's OnLeaderChange hook wakes it)
// and closed when it stops leading. The oracle's limit is a TSOLimit write
// on the system shard, read back linearizably; every GetTimestamp batch is
// confirmed afterwards by a ReadIndex round and a same-term check, so a
// deposed leader never hands out timestamps.
//
// It must not route, forward or retry: a batch for a shard this node cannot
// serve fails with a typed error (kvpb.NotLeaderError, kvpb.ShardMismatchError,
// kvpb.ErrProposalDropped, kvpb.ErrUnavailable, kvpb.ErrAmbiguous) and the
// router decides what to do next. It must not decide what a command does:
// evaluation and apply rules live in package statemachine.
package replica
