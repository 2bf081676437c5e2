// Package router decides, on a node, which replica serves a request and how
// it gets there: it splits a batch by shard, sends each part to the local
// replica (package replica) when this node can serve it, or forwards it to
// another node over the transport, follows not-leader hints, remembers
// which replica last served a shard, and is the one place on a node that
// decides whether a failure is retried and whether it is ambiguous.
//
// # Who retries what
//
//   - The router retries, with per-cause backoff from internal/retry and
//     until the caller's context ends or the node closes: a replica that
//     does not lead (kvpb.NotLeaderError, following its hint), a dropped
//     proposal (kvpb.ErrProposalDropped: it certainly did not apply), a
//     node that has no replica of the shard or a different view of it
//     (kvpb.ShardMismatchError), a node that cannot serve now
//     (kvpb.ErrUnavailable), and a forward that certainly never reached its
//     node (transport.ErrNotSent). When it gives up, the error wraps both the
//     last failure and the reason (the context's error), so callers still
//     find the typed error (errors.As) of the last attempt.
//   - A batch it routed by its shard cache (one with no shard set by the
//     caller) carries the generation of the descriptor it was routed by.
//     A replica that refuses it as routed by a stale view (a
//     kvpb.ShardMismatchError whose descriptor of the shard has another
//     generation, or does not hold the batch's keys) sends the current
//     descriptors back; the cache learns them (cache.go) and the refused
//     part, which had no effect, is routed again, alone: the parts of the
//     batch that were served are not sent again.
//   - It never retries a write whose outcome is unknown: a forward that
//     failed after it was sent, or a proposal whose context ended, is
//     kvpb.ErrAmbiguous, returned at once.
//   - A node that receives a forwarded batch serves it on its own replica
//     and never forwards it again: one forward per attempt at most.
//   - The Go client (package client) retries only failures to reach a node;
//     the node's router does the rest. Nothing else in a node retries a
//     request.
//
// It must not evaluate requests (package replica and statemachine do) nor
// hold shard state beyond routing caches.
package router
