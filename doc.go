// Package strata is the embedding API of Strata, a Raft-replicated, sharded
// key-value database: Open a node on a directory, then Get, Put, Delete,
// Scan and CompareAndSwap byte keys.
//
//	db, err := strata.Open(strata.Options{Dir: "data"})
//	if err != nil { ... }
//	defer db.Close()
//	err = db.Put(ctx, []byte("k"), []byte("v"))
//	v, err := db.Get(ctx, []byte("k"))
//
// A DB opened with only Dir is a single node that needs no network. With
// NodeID, PeerAddr and InitialCluster it is one member of a cluster: every
// call works on every member, which forwards it to the leader of the key's
// shard and rides through elections within the context's deadline.
//
// The package is the thin embedding API: each call builds a typed request
// (internal/kvpb) and sends it through the node's router (package router),
// which serves it on a local replica (package replica) or forwards it. It
// holds no codec, retry loop or evaluation of its own.
//
// # Consistency
//
// Every Get, Put, Delete and CompareAndSwap is linearizable: writes commit
// through raft at a commit timestamp from the cluster's timestamp oracle,
// and reads confirm leadership with ReadIndex before reading. A Scan is one
// consistent cut: every shard is read at one timestamp. Snapshot and
// SnapshotAt read the whole database at one timestamp, within
// Options.HistoryRetention; docs/time.md states the rules timestamps keep.
//
// # Caveats
//
// An error wrapping ErrAmbiguous means a write may or may not have been
// applied (for example the context ended while it was in flight); read the
// key to find out. Shards are fixed when a cluster is first created.
package strata
