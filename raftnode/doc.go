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
// A proposal is accepted only by the group's leader (forwarding is off, and
// proposals arriving from peers are dropped), which appends it as an entry
// of its current term T. That entry may still commit after the leader of T
// is gone: a later leader whose log holds it commits it along with its own
// entries. But it commits, if ever, at its index, before every entry of a
// later term, since terms never decrease along a raft log. So once a
// replica applies an entry of a term above T, every entry of term T that
// will ever commit has been applied, and a proposal of term T not applied
// by then never will be: it fails with ErrProposalDropped, which callers
// may retry. A proposal whose context ends first fails with ErrAmbiguous:
// it may or may not apply.
//
// # Replica IDs
//
// etcd raft forbids reusing a replica ID: a vote cast, a match index
// tracked or a message sent under an ID belongs to that replica's log. A
// node removed from a group and added back (perhaps wiped in between) is
// therefore a new replica with a new raft ID, as CockroachDB gives each
// replica a new ReplicaID. An ID is incarnation<<24 | node ID (package
// internal/replicaid): the transport and this package find the node in
// the low bits, so no table maps IDs to nodes, and node IDs are below 2^24.
// Initial members are incarnation 0, so their raft ID is their node ID,
// which keeps groups written before incarnations valid.
//
// AddLearner picks the incarnation: the leader's applied index when the
// change enters its log. That needs no counter in the replicated state and
// is still never reused: raft appends a conf change only once every earlier
// one is applied, so the index is at least that of the entry that added the
// node's previous replica, which is above the previous incarnation. (The
// price is 40 bits of incarnation, so AddLearner fails on a group past
// 2^40 applied entries.) The node hosts the learner under that ID
// (GroupConfig.ReplicaID), stored with its raft state.
//
// Messages addressed to another incarnation than the local replica, and
// messages from a replica the local membership does not list (an older
// incarnation of a member included), are dropped and counted. Destroying a
// replica leaves a tombstone, kept across restarts: the lowest replica ID
// the node may host for the group next. CreateGroup refuses anything below
// it with ErrStaleReplica.
//
// # What it must not do
//
// raftnode knows nothing of keys, MVCC or shards' key ranges beyond the
// Pebble spans a group's state lives in; the StateMachine interprets
// commands. It never blocks on the network: the Transport queues.
package raftnode
