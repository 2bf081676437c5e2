package obs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/obs"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/transport"
)

// gather returns the registry's metrics by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value returns the value of the metric of family name whose labels
// include labels (name=value pairs): a counter's or gauge's value, a
// histogram's sample count.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("metric %s%v missing", name, labels)
	return 0
}

// TestMetricsAfterTraffic runs a single-node DB with the observer and the
// stats collector and checks that the metrics move with the traffic.
func TestMetricsAfterTraffic(t *testing.T) {
	reg := prometheus.NewRegistry()
	o, err := obs.NewObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), Shards: 2, Observer: o})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = obs.RegisterStats(reg, obs.Sources{
		Node:   db.Node().Stats,
		Engine: db.Node().Engine().Stats,
		Replicas: func() (int, int) {
			groups := db.Node().Groups()
			leading := 0
			for _, g := range groups {
				if st, err := db.Node().Status(g); err == nil && st.IsLeader {
					leading++
				}
			}
			return len(groups), leading
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const writes = 50
	for i := range writes {
		if err := db.Put(ctx, fmt.Appendf(nil, "key-%03d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Get(ctx, []byte("key-001")); err != nil {
		t.Fatal(err)
	}

	m := gather(t, reg)
	if n := value(t, m, "strata_proposals_total", "result", "ok"); n < writes {
		t.Errorf("strata_proposals_total{result=ok} = %v, want >= %d", n, writes)
	}
	if n := value(t, m, "strata_proposal_duration_seconds"); n < writes {
		t.Errorf("strata_proposal_duration_seconds count = %v, want >= %d", n, writes)
	}
	if n := value(t, m, "strata_proposals_total", "result", "ambiguous"); n != 0 {
		t.Errorf("strata_proposals_total{result=ambiguous} = %v, want 0", n)
	}
	for _, name := range []string{"strata_apply_duration_seconds", "strata_fsync_duration_seconds", "strata_persist_batch_groups", "strata_persist_batch_entries"} {
		if n := value(t, m, name); n < 1 {
			t.Errorf("%s count = %v, want > 0", name, n)
		}
	}
	// System shard and two user shards, each elected a leader: itself.
	if n := value(t, m, "strata_leader_changes_total"); n < 3 {
		t.Errorf("strata_leader_changes_total = %v, want >= 3", n)
	}
	if n := value(t, m, "strata_raft_entries_applied_total"); n < writes {
		t.Errorf("strata_raft_entries_applied_total = %v, want >= %d", n, writes)
	}
	if n := value(t, m, "strata_raft_read_index_total"); n < 1 {
		t.Errorf("strata_raft_read_index_total = %v, want >= 1", n)
	}
	fsyncs := value(t, m, "strata_raft_fsyncs_total")
	if fsyncs < 1 || fsyncs > value(t, m, "strata_raft_entries_persisted_total") {
		t.Errorf("strata_raft_fsyncs_total = %v, want between 1 and the entries persisted", fsyncs)
	}
	if n := value(t, m, "strata_engine_fsyncs_total"); n < fsyncs {
		t.Errorf("strata_engine_fsyncs_total = %v, want >= raft fsyncs %v", n, fsyncs)
	}
	if n := value(t, m, "strata_engine_disk_usage_bytes"); n <= 0 {
		t.Errorf("strata_engine_disk_usage_bytes = %v, want > 0", n)
	}
	if n := value(t, m, "strata_raft_unknown_group_drops_total"); n != 0 {
		t.Errorf("strata_raft_unknown_group_drops_total = %v, want 0", n)
	}
	if hosted, leading := value(t, m, "strata_replicas"), value(t, m, "strata_replicas_leading"); hosted != 3 || leading != 3 {
		t.Errorf("strata_replicas = %v, leading %v; want 3 and 3", hosted, leading)
	}
	if _, ok := m["strata_transport_messages_sent_total"]; ok {
		t.Error("transport metrics exported without a Transport source")
	}
}

// TestProposalResults checks how proposal errors are labelled.
func TestProposalResults(t *testing.T) {
	reg := prometheus.NewRegistry()
	o, err := obs.NewObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		nil,
		fmt.Errorf("x: %w", raftnode.ErrProposalDropped),
		&raftnode.NotLeaderError{Group: 2, Leader: 3},
		fmt.Errorf("%w: %w", raftnode.ErrAmbiguous, context.DeadlineExceeded),
		context.Canceled,
		raftnode.ErrStopped,
		errors.New("disk on fire"),
	} {
		o.ProposalDone(1, time.Millisecond, err)
	}
	m := gather(t, reg)
	for _, r := range []string{obs.ResultOK, obs.ResultDropped, obs.ResultNotLeader, obs.ResultAmbiguous, obs.ResultCanceled, obs.ResultStopped, obs.ResultError} {
		if n := value(t, m, "strata_proposals_total", "result", r); n != 1 {
			t.Errorf("strata_proposals_total{result=%s} = %v, want 1", r, n)
		}
	}
	o.LeaderChanged(1, 0)
	o.LeaderChanged(1, 2)
	o.Persisted(3, 7, false, time.Millisecond)
	m = gather(t, reg)
	if n := value(t, m, "strata_leader_changes_total"); n != 1 {
		t.Errorf("strata_leader_changes_total = %v, want 1 (no count for 'no leader')", n)
	}
	if n := value(t, m, "strata_fsync_duration_seconds"); n != 0 {
		t.Errorf("strata_fsync_duration_seconds count = %v after an unsynced batch, want 0", n)
	}
	if n := value(t, m, "strata_persist_batch_entries"); n != 1 {
		t.Errorf("strata_persist_batch_entries count = %v, want 1", n)
	}
}

// TestTransportStats checks the per-peer and per-reason transport metrics.
func TestTransportStats(t *testing.T) {
	reg := prometheus.NewRegistry()
	err := obs.RegisterStats(reg, obs.Sources{Transport: func() transport.Stats {
		return transport.Stats{
			MessagesReceived: 9, SnapshotsSent: 1, DroppedQueueFull: 4,
			ForwardsSent: 7, ForwardsNotSent: 2, ForwardsReceived: 6,
			Peers: map[uint64]transport.PeerStats{
				2: {Addr: "a", Connected: true, Sent: 10, Dropped: 1},
				3: {Addr: "b", Sent: 5, Dropped: 3},
			},
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := gather(t, reg)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"strata_transport_messages_sent_total", []string{"peer", "2"}, 10},
		{"strata_transport_messages_dropped_total", []string{"peer", "3"}, 3},
		{"strata_transport_peer_connected", []string{"peer", "2"}, 1},
		{"strata_transport_peer_connected", []string{"peer", "3"}, 0},
		{"strata_transport_messages_dropped_by_reason_total", []string{"reason", "queue_full"}, 4},
		{"strata_transport_messages_received_total", nil, 9},
		{"strata_transport_snapshots_sent_total", nil, 1},
		{"strata_transport_forwards_sent_total", nil, 7},
		{"strata_transport_forwards_not_sent_total", nil, 2},
		{"strata_transport_forwards_received_total", nil, 6},
	} {
		if got := value(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
