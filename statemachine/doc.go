// Package statemachine is Strata's replicated key-value state machine: the
// commands a shard's replica runs, one file per command in the style of
// CockroachDB's batcheval, and the deterministic rules by which every
// replica applies the replicated ones.
//
// It owns:
//   - the command registry (registry.go): for each kvpb method, an Eval if
//     it is a read or an Apply if it is a write, registered by its
//     cmd_*.go file; a test checks that every read and write method of
//     package kvpb has one;
//   - the evaluation of reads (Eval): get and scan of user keys through
//     package mvcc at the header's timestamp (0: the newest), system scans
//     of system keys, and the Budget of keys and bytes the reads of one
//     batch may return, with resume keys for scans cut short;
//   - the apply rules (KV, apply.go): decode the kvpb.ReplicatedCommand of a
//     raft entry, refuse it as a whole unless every write is in the right
//     group (system writes in the system group only, user writes elsewhere)
//     and writes only inside the group's spans, then apply each write in
//     order at the entry's version and answer with a kvpb.BatchResponse;
//   - the per-group replicated state: a user group's GC threshold
//     (cmd_gc.go, GCThreshold), raised by replicated GC commands, kept in
//     the group's spans so that snapshots carry it. Reads below it are
//     refused by the replica, under the snapshot they read from.
//
// A refused command (ErrBadCommand, ErrWrongShard) applies as a no-op with
// a command-level error; only a storage failure is an error that stops the
// node. Routing, descriptor generations at evaluation, leadership and
// retries belong to the replica and router packages above.
//
// What statemachine must not do: I/O beyond the batch or reader it is
// handed; read clocks or random sources; know which node it runs on. It
// keeps no state of its own (the registry is fixed at start-up): replicas
// applying the same commands must end in the same state and give the same
// answers.
package statemachine
