// Package mvcc stores user data as versions on the node's Pebble instance.
//
// It owns:
//
//   - the versioned key encoding of user data (see storage/keys.go for the
//     node's whole layout): storage.PrefixUser | escape(user key) | 0x00 0x01 |
//     ^version (8 bytes, big-endian), so that user keys sort as their bytes and
//     the versions of one key sort newest first;
//   - the value encoding: one tag byte (0 = value, 1 = tombstone) followed by
//     the value bytes (none for a tombstone);
//   - writes of versions (Put, Delete) into any pebble.Writer, usually the
//     indexed batch of a group's apply path;
//   - reads at a timestamp (Get, Scan): the newest version at or below the
//     timestamp, one forward seek per key;
//   - garbage collection of versions superseded at or below a horizon (GC), in
//     bounded steps that say where to resume.
//
// Later it will also own write intents and locks of transactions and the
// rules that decide when a read conflicts with them.
//
// It must not know about raft, shards, groups or timestamps' origin: versions
// and spans are arguments. Which group applies a write, which shard a key
// belongs to and where a timestamp comes from are decided by the callers
// (raftnode's state machine, shard, txn and the root package).
//
// # Versions
//
// Versions are uint64 values greater than zero; a larger version is newer.
// Put and Delete reject version 0. A read at MaxTimestamp sees the newest
// version of every key.
//
// # Ownership
//
// Every slice returned by this package is a copy owned by the caller; the
// arguments may be reused as soon as a call returns.
//
// # Caveats
//
// Writing a version below one that already exists, or below a horizon that GC
// already used, is not checked here: it changes what reads at older timestamps
// see. Preventing it (write-too-old conflicts, a GC threshold) is the job of
// the transaction layer.
//
// Readers must come from a Pebble instance opened with storage.Comparer:
// point reads seek with SeekPrefixGE, whose prefix is the user key only
// under that comparer (under Pebble's default, Get would find only a
// version exactly at its timestamp).
package mvcc
