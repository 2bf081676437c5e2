// Package elle checks histories of list-append transactions for isolation
// anomalies, in the style of Elle (Kingsbury and Alvaro, "Elle: Inferring
// Isolation Anomalies from Experimental Observations", VLDB 2020).
//
// A workload runs transactions of two micro-operations on lists: append a
// value to the list at a key, and read the whole list. Values appended to a
// key are unique, so every read names exactly the appends it saw, in order.
// From a [History] of such transactions (each OK, failed or indeterminate)
// [Check] infers:
//
//   - the version order of each key: its longest read, of which every other
//     read must be a prefix (else incompatible-order);
//   - ww edges: T1 appended a value and T2 appended the next one;
//   - wr edges: T2 read a list whose last element T1 appended;
//   - rw edges (anti-dependencies): T1 read a list, and T2 appended the
//     element that came next, which T1 did not see;
//   - optionally realtime and process edges ([Options]).
//
// It then reports, each with the transactions, keys and edges that show
// it: G1a (a read saw a failed transaction's append), G1b (a read ended in
// a value its writer later appended after), internal inconsistencies (a
// read that disagrees with its own transaction's earlier operations),
// duplicate elements, reads of values nobody appended, and the cycles of
// the dependency graph. The graph is split into strongly connected
// components (Tarjan); in each component the search tries the stricter edge
// sets first, ww alone (G0), then ww and wr (G1c), then one rw edge closed
// by ww and wr (G-single), then any (G2), and reports a shortest cycle
// (breadth-first) of the first kind found, so the anomaly reported is the
// weakest one present. Reads of a key after the same transaction appended
// to it shape the version order but make no edges, as in Elle.
//
// Serializability forbids all of these; snapshot isolation permits G2
// (write skew) and nothing else here; read committed permits G-single and G2
// too. Strict serializability also forbids the realtime cycles.
//
// Indeterminate (Info) transactions are counted as possibly committed: their
// appends can be observed and make edges, but a read of them is never G1a,
// and their own reads are unknown. Failed transactions are left out of the
// graph; a read of their appends is G1a.
//
// # What it owns and must not do
//
// The package owns the inference and the report. It is pure: no I/O, no
// clock, no goroutines, and nothing about Strata, raft or how a history was
// recorded; a workload (jepsen/) builds the History and decides what its
// errors mean (OK, Fail or Info).
//
// # Caveats
//
// Values are ints and keys strings. Only the longest read of a key orders
// its appends: an append nobody read makes no ww or rw edge. One cycle is
// reported per strongly connected component, so a component holding both a
// G0 and a G2 reports only the G0. The search for a cycle with rw edges
// runs one breadth-first search per rw target in a component, up to a
// budget of edges visited: in a huge component it may stop before it finds
// the G-single there is, and report a G2 (or the longer of two cycles).
package elle
