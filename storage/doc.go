// Package storage owns a node's single Pebble instance: the key layout
// (keys.go), the raft log and raft state of every group hosted on the node
// (RaftLog implements raft.Storage), applied state, and the batches that
// carry the writes of many groups to disk with one fsync.
//
// It must not interpret user data (package mvcc does), decide what a raft
// group does (package raftnode does), or talk to the network.
//
// # Durability
//
// Every batch that must be durable is committed with Sync. A failed commit
// stops the engine for good: all later commits return ErrStopped, so a node
// whose disk failed an fsync never acknowledges another write.
//
// # Caveats
//
// The in-memory view a RaftLog keeps of its log bounds (first and last index,
// hard state) is only updated by Persisted, after the batch that wrote them
// committed; callers stage writes into a batch and then call Persisted.
//
// A RaftLog keeps its newest persisted entries (up to 1,024 or 1 MiB) in
// memory, so that raft reads the entries it commits and sends without
// reading them back from Pebble; its owner releases them once applied
// (ReleaseApplied), so an idle group holds almost none. The entries Entries
// returns are shared: callers must not modify them.
package storage
