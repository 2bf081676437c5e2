// Package deadlock is the wait-for graph that finds deadlocks between
// transactions (and anything else that waits for a lock, such as issue 13's
// user locks held by leases).
//
// A waiter that must wait for a lock calls [Detector.Detect] with itself,
// the lock's holder and the key. Detect adds the edge waiter → holder unless
// the holder already waits, directly or through others, for the waiter: then
// the edge would close a cycle, Detect refuses it and returns a
// [*DeadlockError] (errors.Is(err, [ErrDeadlock])) carrying the cycle. When
// a wait ends the waiter calls [Detector.Remove]; when a transaction ends its
// owner calls [Detector.CleanUp], which drops every edge into and out of it.
//
// The design is TiKV's detect table (src/server/lock_manager/deadlock.rs):
// one detector, on the system shard's leader, holds the whole graph, which
// is kept acyclic by refusing the edge that would close a cycle. The search
// is a breadth-first walk from the holder looking for the waiter, so the
// cycle reported is a shortest one through the refused edge.
//
// # Who is the victim
//
// The victim is the waiter whose Detect would close the cycle, whatever its
// age: [DeadlockError.Victim] is always the caller's waiter. This is TiKV's
// rule, chosen over "the youngest transaction on the cycle" (the first draft
// of docs/transactions.md) because:
//
//   - It aborts exactly one transaction and always breaks the deadlock. The
//     graph was acyclic before the call, so every cycle the new edge could
//     close runs through it; refusing that one edge breaks them all. Picking
//     the youngest on one cycle may leave another cycle through the same
//     edge whose youngest is someone else, so one wait could need several
//     victims.
//   - The verdict is the return value of the victim's own Detect, so it
//     reaches the one transaction that must act, at once. Aborting anyone
//     else means telling a transaction that is parked in a wait queue on
//     another shard's leader, perhaps on another node, through a message
//     that can be lost; meanwhile the graph either holds a cycle or forgets
//     a real wait.
//   - The victim has not started to wait; no waiter already queued is
//     disturbed.
//
// So Detect takes no start timestamp: under this rule age decides nothing.
//
// The cost is that an old transaction can be the victim of a young one,
// and that nothing here stops one transaction from losing again and again;
// a caller that cares retries the victim with backoff, or with a priority
// of its own kept across retries.
//
// # Expiry
//
// A waiter that crashes never calls Remove. Every edge remembers when it was
// last detected; an edge older than [Options.TTL] is ignored by the search,
// dropped on the way, and swept by [Detector.Expire]. A waiter that waits
// longer than the TTL must call Detect again for the same holder before its
// edge expires: a repeated Detect refreshes the edge and never reports a
// deadlock for a wait already in the graph. The detector has no clock: every
// call that needs the time takes it as an argument, so tests are
// deterministic.
//
// # What it owns and must not do
//
// The package owns the graph and the search. It is pure and has no
// goroutines, no I/O and no clock. It does not abort anyone, wake waiters or
// know what a transaction or a lease is: [TxnID] is an opaque uint64 and a key
// opaque bytes, and callers that share one detector for several kinds of
// waiter must keep their ids from colliding (for example by a high bit).
// A Detector is safe for concurrent use; one mutex guards the graph, and no
// call blocks on anything but that mutex.
//
// # Caveats
//
// The graph lives in memory on one node. When the detector moves (the
// system shard's leader changes), the new one starts empty: a deadlock that
// formed before the move is found only when one of its waiters calls Detect
// again, which waiters do at least once per TTL.
package deadlock
