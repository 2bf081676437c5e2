// Package raftnode hosts many raft groups on one node: it owns their
// RawNodes, one scheduler loop that drives all of them, proposals and their
// results, the apply path, linearizable reads (ReadIndex), snapshots and
// membership changes.
//
// # The loop
//
// One goroutine (the loop) collects Ready from every group with work,
// persists the entries and hard states of all of them in ONE Pebble batch
// with ONE fsync (group commit), then sends their messages, then applies
// their committed entries through the StateMachine in one more batch, then
// advances them. Other goroutines only Step, Tick, Propose or ReadIndex a
// group under that group's mutex and signal the loop.
//
// # Proposals
//
// Propose queues the command on its group; the loop hands every command
// queued since its last cycle to raft in one message, so a follower gets
// them in one append and answers them with one response (raft would
// otherwise send an append per proposal to every follower).
//
// A proposal is accepted only by the group's leader (forwarding is off), so
// an entry proposed in term T is either committed by a leader of term T or
// never. Once a replica applies an entry of a later term, every proposal of
// an earlier term that has not been applied never will be: it fails with
// ErrProposalDropped, which callers may retry. A proposal whose context ends
// first fails with ErrAmbiguous: it may or may not apply.
//
// # What it must not do
//
// raftnode knows nothing of keys, MVCC or shards' key ranges beyond the
// Pebble spans a group's state lives in; the StateMachine interprets
// commands. It never blocks on the network: the Transport queues.
package raftnode
