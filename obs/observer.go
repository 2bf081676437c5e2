package obs

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-kv/strata/raftnode"
)

// Proposal results, the values of the result label of
// strata_proposals_total.
const (
	ResultOK        = "ok"
	ResultDropped   = "dropped"    // certainly not applied; safe to retry
	ResultNotLeader = "not_leader" // proposed on a follower
	ResultAmbiguous = "ambiguous"  // may or may not have applied
	ResultCanceled  = "canceled"   // the caller's context ended
	ResultStopped   = "stopped"    // the node is closed or failed
	ResultError     = "error"      // anything else
)

// Observer is a raftnode.Observer that records into Prometheus metrics.
// Its methods are cheap and never block.
type Observer struct {
	proposals      map[string]prometheus.Counter // by result, resolved once
	proposalTime   prometheus.Histogram
	applyTime      prometheus.Histogram
	fsyncTime      prometheus.Histogram
	persistGroups  prometheus.Histogram
	persistEntries prometheus.Histogram
	leaderChanges  prometheus.Counter
}

var _ raftnode.Observer = (*Observer)(nil)

// NewObserver registers on reg and returns an Observer that records
//
//   - strata_proposals_total{result}: proposals by outcome (see the Result
//     constants);
//   - strata_proposal_duration_seconds: from Propose to its outcome;
//   - strata_apply_duration_seconds: one apply batch;
//   - strata_fsync_duration_seconds: persist batches that were fsynced;
//   - strata_persist_batch_groups, strata_persist_batch_entries: groups and
//     entries per persist batch (group commit);
//   - strata_leader_changes_total: times a local replica learned of a new
//     leader (transitions to "no leader known" are not counted).
func NewObserver(reg prometheus.Registerer) (*Observer, error) {
	proposals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_proposals_total",
		Help: "Raft proposals made on this node, by outcome.",
	}, []string{"result"})
	o := &Observer{
		proposals: map[string]prometheus.Counter{},
		proposalTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_proposal_duration_seconds",
			Help:    "Time from a raft proposal to its outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17), // 100µs .. ~6.5s
		}),
		applyTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_apply_duration_seconds",
			Help:    "Time to apply one batch of committed raft entries.",
			Buckets: prometheus.ExponentialBuckets(0.00002, 2, 17), // 20µs .. ~1.3s
		}),
		fsyncTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_fsync_duration_seconds",
			Help:    "Time to persist one batch of raft state with fsync (group commit).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 17), // 50µs .. ~3.3s
		}),
		persistGroups: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_persist_batch_groups",
			Help:    "Raft groups whose state one persist batch carried.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
		}),
		persistEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_persist_batch_entries",
			Help:    "Raft log entries one persist batch carried.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 .. 8192
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_leader_changes_total",
			Help: "Times a local replica learned of a new leader.",
		}),
	}
	for _, r := range []string{ResultOK, ResultDropped, ResultNotLeader, ResultAmbiguous, ResultCanceled, ResultStopped, ResultError} {
		o.proposals[r] = proposals.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{proposals, o.proposalTime, o.applyTime, o.fsyncTime, o.persistGroups, o.persistEntries, o.leaderChanges} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// ProposalDone implements raftnode.Observer.
func (o *Observer) ProposalDone(_ uint64, d time.Duration, err error) {
	o.proposals[proposalResult(err)].Inc()
	o.proposalTime.Observe(d.Seconds())
}

// Persisted implements raftnode.Observer.
func (o *Observer) Persisted(groups, entries int, synced bool, d time.Duration) {
	o.persistGroups.Observe(float64(groups))
	o.persistEntries.Observe(float64(entries))
	if synced {
		o.fsyncTime.Observe(d.Seconds())
	}
}

// Applied implements raftnode.Observer.
func (o *Observer) Applied(_ int, d time.Duration) {
	o.applyTime.Observe(d.Seconds())
}

// LeaderChanged implements raftnode.Observer.
func (o *Observer) LeaderChanged(_, leader uint64) {
	if leader != 0 {
		o.leaderChanges.Inc()
	}
}

// proposalResult classifies a proposal's error.
func proposalResult(err error) string {
	var nl *raftnode.NotLeaderError
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, raftnode.ErrProposalDropped):
		return ResultDropped
	case errors.As(err, &nl):
		return ResultNotLeader
	case errors.Is(err, raftnode.ErrAmbiguous):
		return ResultAmbiguous
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ResultCanceled
	case errors.Is(err, raftnode.ErrStopped):
		return ResultStopped
	default:
		return ResultError
	}
}
