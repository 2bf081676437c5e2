// Package statemachine is Strata's replicated key-value state machine: the
// commands a client write becomes (put, delete, compare-and-swap, system
// writes), their encoding inside raft entries, and the deterministic rules
// by which every replica applies them to Pebble through package mvcc.
//
// It must not do I/O beyond the batch it is handed, read clocks or random
// sources, or know which node it runs on: replicas applying the same
// commands must end in the same state.
package statemachine
