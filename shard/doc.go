// Package shard owns shard descriptors (which key range a shard holds and
// which nodes replicate it), their encoding in the system shard, the initial
// split of the key space, and routing a key to its shard.
//
// Shards are static for now: the descriptors are written once, when a
// cluster is bootstrapped. Splits, merges and placement come later and will
// change descriptors through the system shard.
//
// It must not talk to raft or the network; callers read and write
// descriptors through the system shard.
package shard
