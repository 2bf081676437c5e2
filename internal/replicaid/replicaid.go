// Package replicaid defines the raft replica IDs of Strata's groups: a
// replica's ID names one incarnation of a group's replica on a node, so
// that a node removed from a group and added back never reuses an ID that
// raft has seen (etcd raft forbids it).
//
// An ID is incarnation<<NodeBits | node. The node is recovered from the
// low NodeBits bits, so the transport routes by it without a table. The
// initial members of a group have incarnation 0: their raft ID is their
// node ID, as on-disk groups from before incarnations have it.
package replicaid

// NodeBits is the number of low bits of a replica ID that hold the node ID.
const NodeBits = 24

// MaxNode is the largest node ID.
const MaxNode = 1<<NodeBits - 1

// MaxIncarnation is the largest incarnation.
const MaxIncarnation = 1<<(64-NodeBits) - 1

// Make returns the replica ID of the given incarnation of node's replica.
// node must be in [1, MaxNode] and incarnation at most MaxIncarnation.
func Make(incarnation, node uint64) uint64 { return incarnation<<NodeBits | node }

// Node returns the node that hosts replica id.
func Node(id uint64) uint64 { return id & MaxNode }

// Incarnation returns the incarnation of replica id.
func Incarnation(id uint64) uint64 { return id >> NodeBits }
