package obs

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
)

// Sources are where the stats collector reads a node's counters at each
// scrape. A nil source is skipped with its metrics.
type Sources struct {
	// Node returns the raft node's counters (raftnode.Node.Stats).
	Node func() raftnode.Stats
	// Engine returns the storage engine's counters (storage.Engine.Stats).
	Engine func() storage.Stats
	// Transport returns the peer transport's counters
	// (strata.DB.TransportStats); nil for a node without peers.
	Transport func() transport.Stats
	// Replicas returns how many replicas the node hosts and how many of
	// them lead their group.
	Replicas func() (hosted, leading int)
}

// RegisterStats registers on reg a collector that reads src at each
// scrape:
//
//   - from Node: strata_raft_persist_cycles_total, strata_raft_fsyncs_total,
//     strata_raft_entries_persisted_total, strata_raft_entries_applied_total,
//     strata_raft_read_index_total, strata_raft_read_rounds_total,
//     strata_raft_unknown_group_drops_total, strata_raft_non_member_drops_total,
//     strata_raft_invalid_message_drops_total, strata_raft_snapshots_sent_total,
//     strata_raft_snapshots_send_failed_total,
//     strata_raft_snapshots_received_total,
//     strata_raft_log_truncations_total;
//   - from Engine: strata_engine_commits_total, strata_engine_fsyncs_total,
//     strata_engine_fsync_seconds_total, strata_engine_disk_usage_bytes;
//   - from Transport: strata_transport_messages_sent_total{peer},
//     strata_transport_messages_dropped_total{peer},
//     strata_transport_peer_connected{peer},
//     strata_transport_messages_dropped_by_reason_total{reason},
//     strata_transport_messages_received_total,
//     strata_transport_snapshots_sent_total,
//     strata_transport_snapshots_received_total,
//     strata_transport_forwards_sent_total,
//     strata_transport_forwards_not_sent_total,
//     strata_transport_forwards_received_total;
//   - from Replicas: strata_replicas, strata_replicas_leading.
func RegisterStats(reg prometheus.Registerer, src Sources) error {
	return reg.Register(newStatsCollector(src))
}

type statsCollector struct {
	src Sources

	raft      []counterDesc[raftnode.Stats]
	engine    []counterDesc[storage.Stats]
	diskUsage *prometheus.Desc

	peerSent, peerDropped, peerConnected *prometheus.Desc
	droppedByReason                      *prometheus.Desc
	transport                            []counterDesc[transport.Stats]

	replicas, leading *prometheus.Desc
}

// counterDesc is a counter read from one field of a stats struct.
type counterDesc[S any] struct {
	desc  *prometheus.Desc
	value func(S) float64
}

func counter[S any](name, help string, value func(S) float64) counterDesc[S] {
	return counterDesc[S]{desc: prometheus.NewDesc(name, help, nil, nil), value: value}
}

func newStatsCollector(src Sources) *statsCollector {
	type rs = raftnode.Stats
	type es = storage.Stats
	type ts = transport.Stats
	return &statsCollector{
		src: src,
		raft: []counterDesc[rs]{
			counter("strata_raft_persist_cycles_total", "Loop cycles that persisted raft state.", func(s rs) float64 { return float64(s.Cycles) }),
			counter("strata_raft_fsyncs_total", "Fsyncs of raft state (one per persist batch at most).", func(s rs) float64 { return float64(s.Syncs) }),
			counter("strata_raft_entries_persisted_total", "Raft entries persisted.", func(s rs) float64 { return float64(s.EntriesSynced) }),
			counter("strata_raft_entries_applied_total", "Raft entries applied.", func(s rs) float64 { return float64(s.Applied) }),
			counter("strata_raft_read_index_total", "Linearizable reads (ReadIndex calls).", func(s rs) float64 { return float64(s.Reads) }),
			counter("strata_raft_read_rounds_total", "ReadIndex rounds; reads share rounds.", func(s rs) float64 { return float64(s.ReadRounds) }),
			counter("strata_raft_unknown_group_drops_total", "Inbound raft messages dropped for groups not hosted here.", func(s rs) float64 { return float64(s.UnknownGroupDrops) }),
			counter("strata_raft_non_member_drops_total", "Inbound raft messages and snapshots dropped: their sender is not a member of the group.", func(s rs) float64 { return float64(s.NonMemberDrops) }),
			counter("strata_raft_invalid_message_drops_total", "Inbound raft messages dropped: a kind no peer sends on the raft stream.", func(s rs) float64 { return float64(s.InvalidMessageDrops) }),
			counter("strata_raft_snapshots_sent_total", "Raft snapshots sent to followers.", func(s rs) float64 { return float64(s.SnapshotsSent) }),
			counter("strata_raft_snapshots_send_failed_total", "Raft snapshots whose sending failed.", func(s rs) float64 { return float64(s.SnapshotsFailed) }),
			counter("strata_raft_snapshots_received_total", "Raft snapshots received and applied.", func(s rs) float64 { return float64(s.SnapshotsReceived) }),
			counter("strata_raft_log_truncations_total", "Raft log truncations.", func(s rs) float64 { return float64(s.Truncations) }),
		},
		engine: []counterDesc[es]{
			counter("strata_engine_commits_total", "Pebble batches committed.", func(s es) float64 { return float64(s.Commits) }),
			counter("strata_engine_fsyncs_total", "Pebble batches committed with fsync.", func(s es) float64 { return float64(s.Syncs) }),
			counter("strata_engine_fsync_seconds_total", "Time spent in synced Pebble commits.", func(s es) float64 { return s.SyncTime.Seconds() }),
		},
		diskUsage:       prometheus.NewDesc("strata_engine_disk_usage_bytes", "Bytes of Pebble files.", nil, nil),
		peerSent:        prometheus.NewDesc("strata_transport_messages_sent_total", "Raft messages handed to a peer's stream.", []string{"peer"}, nil),
		peerDropped:     prometheus.NewDesc("strata_transport_messages_dropped_total", "Raft messages dropped for a peer.", []string{"peer"}, nil),
		peerConnected:   prometheus.NewDesc("strata_transport_peer_connected", "1 if an outbound stream to the peer is open.", []string{"peer"}, nil),
		droppedByReason: prometheus.NewDesc("strata_transport_messages_dropped_by_reason_total", "Raft messages dropped, by reason.", []string{"reason"}, nil),
		transport: []counterDesc[ts]{
			counter("strata_transport_messages_received_total", "Raft messages received from peers.", func(s ts) float64 { return float64(s.MessagesReceived) }),
			counter("strata_transport_snapshots_sent_total", "Snapshots streamed to peers and accepted.", func(s ts) float64 { return float64(s.SnapshotsSent) }),
			counter("strata_transport_snapshots_received_total", "Snapshots received from peers and accepted.", func(s ts) float64 { return float64(s.SnapshotsReceived) }),
			counter("strata_transport_forwards_sent_total", "Requests forwarded to another node that it answered.", func(s ts) float64 { return float64(s.ForwardsSent) }),
			counter("strata_transport_forwards_not_sent_total", "Forwards given up unsent: the peer's connection was not ready.", func(s ts) float64 { return float64(s.ForwardsNotSent) }),
			counter("strata_transport_forwards_received_total", "Requests other nodes forwarded to this one.", func(s ts) float64 { return float64(s.ForwardsReceived) }),
		},
		replicas: prometheus.NewDesc("strata_replicas", "Replicas (raft groups) hosted by this node.", nil, nil),
		leading:  prometheus.NewDesc("strata_replicas_leading", "Replicas of this node that lead their group.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.src.Node != nil {
		for _, d := range c.raft {
			ch <- d.desc
		}
	}
	if c.src.Engine != nil {
		for _, d := range c.engine {
			ch <- d.desc
		}
		ch <- c.diskUsage
	}
	if c.src.Transport != nil {
		ch <- c.peerSent
		ch <- c.peerDropped
		ch <- c.peerConnected
		ch <- c.droppedByReason
		for _, d := range c.transport {
			ch <- d.desc
		}
	}
	if c.src.Replicas != nil {
		ch <- c.replicas
		ch <- c.leading
	}
}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Node != nil {
		s := c.src.Node()
		for _, d := range c.raft {
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, d.value(s))
		}
	}
	if c.src.Engine != nil {
		s := c.src.Engine()
		for _, d := range c.engine {
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, d.value(s))
		}
		ch <- prometheus.MustNewConstMetric(c.diskUsage, prometheus.GaugeValue, float64(s.DiskUsage))
	}
	if c.src.Transport != nil {
		s := c.src.Transport()
		for id, p := range s.Peers {
			peer := strconv.FormatUint(id, 10)
			connected := 0.0
			if p.Connected {
				connected = 1
			}
			ch <- prometheus.MustNewConstMetric(c.peerSent, prometheus.CounterValue, float64(p.Sent), peer)
			ch <- prometheus.MustNewConstMetric(c.peerDropped, prometheus.CounterValue, float64(p.Dropped), peer)
			ch <- prometheus.MustNewConstMetric(c.peerConnected, prometheus.GaugeValue, connected, peer)
		}
		for reason, n := range map[string]uint64{
			"queue_full":   s.DroppedQueueFull,
			"unknown_peer": s.DroppedUnknownPeer,
			"disconnected": s.DroppedDisconnected,
			"invalid":      s.DroppedInvalid,
		} {
			ch <- prometheus.MustNewConstMetric(c.droppedByReason, prometheus.CounterValue, float64(n), reason)
		}
		for _, d := range c.transport {
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, d.value(s))
		}
	}
	if c.src.Replicas != nil {
		hosted, leading := c.src.Replicas()
		ch <- prometheus.MustNewConstMetric(c.replicas, prometheus.GaugeValue, float64(hosted))
		ch <- prometheus.MustNewConstMetric(c.leading, prometheus.GaugeValue, float64(leading))
	}
}
