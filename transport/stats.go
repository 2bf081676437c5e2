package transport

import "sync/atomic"

// Stats are the transport's counters since New. Message counts are raft
// messages (envelopes); bytes are encoded raft messages and compressed
// snapshot chunks.
type Stats struct {
	MessagesSent    uint64 // envelopes handed to a peer's stream
	BatchesSent     uint64 // stream sends; MessagesSent/BatchesSent is the batching factor
	BytesSent       uint64 // encoded raft message bytes sent
	MessagesDropped uint64 // sum of the Dropped* counters below

	DroppedQueueFull    uint64 // Send found the peer's queue full
	DroppedUnknownPeer  uint64 // Send to a peer never added, removed, or after Close
	DroppedDisconnected uint64 // dequeued while the peer was unreachable, or lost with a failed stream send
	DroppedInvalid      uint64 // nil message, encoding failure, or larger than MaxMessageBytes

	MessagesReceived  uint64 // envelopes passed to Handler.HandleMessages
	BatchesReceived   uint64
	BytesReceived     uint64 // encoded raft message bytes received
	MalformedReceived uint64 // inbound envelopes or batches dropped as malformed

	SnapshotsSent       uint64 // SendSnapshot calls that the receiver accepted
	SnapshotsSendFailed uint64 // SendSnapshot calls that returned an error
	SnapshotBytesSent   uint64 // compressed snapshot bytes sent
	SnapshotsReceived   uint64 // inbound snapshots the handler accepted
	SnapshotsRecvFailed uint64 // inbound snapshots that failed (handler error, bad stream)
	ForwardsSent        uint64
	ForwardsNotSent     uint64 // forwards given up unsent: the peer's connection was not ready
	ForwardsReceived    uint64
	UnreachableReports  uint64 // calls to Handler.ReportUnreachable

	Peers map[uint64]PeerStats
}

// PeerStats are the counters of one current peer.
type PeerStats struct {
	Addr      string
	Connected bool   // an outbound stream is open
	Sent      uint64 // envelopes handed to the stream
	Dropped   uint64 // envelopes dropped for this peer (queue full, disconnected, invalid)
}

// counters are the live counters behind Stats.
type counters struct {
	messagesSent, batchesSent, bytesSent                        atomic.Uint64
	droppedQueueFull, droppedUnknownPeer                        atomic.Uint64
	droppedDisconnected, droppedInvalid                         atomic.Uint64
	messagesReceived, batchesReceived, bytesReceived, malformed atomic.Uint64
	snapshotsSent, snapshotsSendFailed, snapshotBytesSent       atomic.Uint64
	snapshotsReceived, snapshotsRecvFailed                      atomic.Uint64
	forwardsSent, forwardsReceived, unreachableReports          atomic.Uint64
	forwardsNotSent                                             atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		MessagesSent:        c.messagesSent.Load(),
		BatchesSent:         c.batchesSent.Load(),
		BytesSent:           c.bytesSent.Load(),
		DroppedQueueFull:    c.droppedQueueFull.Load(),
		DroppedUnknownPeer:  c.droppedUnknownPeer.Load(),
		DroppedDisconnected: c.droppedDisconnected.Load(),
		DroppedInvalid:      c.droppedInvalid.Load(),
		MessagesReceived:    c.messagesReceived.Load(),
		BatchesReceived:     c.batchesReceived.Load(),
		BytesReceived:       c.bytesReceived.Load(),
		MalformedReceived:   c.malformed.Load(),
		SnapshotsSent:       c.snapshotsSent.Load(),
		SnapshotsSendFailed: c.snapshotsSendFailed.Load(),
		SnapshotBytesSent:   c.snapshotBytesSent.Load(),
		SnapshotsReceived:   c.snapshotsReceived.Load(),
		SnapshotsRecvFailed: c.snapshotsRecvFailed.Load(),
		ForwardsSent:        c.forwardsSent.Load(),
		ForwardsNotSent:     c.forwardsNotSent.Load(),
		ForwardsReceived:    c.forwardsReceived.Load(),
		UnreachableReports:  c.unreachableReports.Load(),
	}
	s.MessagesDropped = s.DroppedQueueFull + s.DroppedUnknownPeer + s.DroppedDisconnected + s.DroppedInvalid
	return s
}
