// Package transport moves bytes between Strata nodes over gRPC: raft messages
// of all groups, snapshots, and client requests forwarded to another node.
//
// # What it owns
//
//   - One long-lived outbound stream per peer (the Raft RPC) that carries the
//     raft messages of every group to that peer. Each node dials its own
//     outbound stream to each peer, so a pair of nodes talks over two streams,
//     one per direction; replies travel on the other node's stream.
//   - Per peer: a bounded queue and one sender goroutine that drains it and
//     sends everything available as one batch, so one gRPC send carries many
//     raft messages. Order per peer is preserved.
//   - Reconnection with exponential backoff. While a peer is unreachable its
//     queued messages are dropped (raft retransmits) and the Handler's
//     ReportUnreachable is called, at most once per Config.UnreachableInterval.
//   - Snapshot streaming (the Snapshot RPC): the body is cut into chunks, each
//     compressed as one zstd frame; the receiver hands the decompressed body to
//     Handler.HandleSnapshot as an io.Reader and returns its error to the
//     sender.
//   - Forward, a unary RPC with opaque request and response bytes.
//
// # What it must not do
//
// It knows nothing of groups, their state, leaders or membership: a group ID
// is an opaque number it carries next to each message. It never blocks raft:
// Send only enqueues and drops (counted) when a queue is full or the peer is
// unknown; encoding and I/O happen on the per-peer goroutines. Handler methods
// are never called from inside Send, AddPeer or RemovePeer, so a handler may
// take locks that the caller of Send holds.
//
// # Goroutines
//
// The gRPC server and each peer's sender goroutine are owned by the GRPC
// value. RemovePeer (and AddPeer with a new address) stops that peer's
// goroutine without waiting for it, because it may be inside
// Handler.ReportUnreachable; Close stops and waits for all of them, including
// inbound RPC handlers and HandleSnapshot calls. An inbound snapshot runs the
// handler on a goroutine owned by that RPC, which waits for it.
//
// # Caveats
//
//   - Send takes ownership of the messages: they are encoded later, on the
//     peer's goroutine, so the caller must not modify them after Send.
//   - A message is counted as sent once it was handed to gRPC; delivery is not
//     acknowledged (raft does not need it).
//   - Connections are plaintext for now; TLS for peers belongs to a later
//     security layer.
package transport
