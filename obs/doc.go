// Package obs owns a Strata node's Prometheus metrics: what raft reports
// through [raftnode.Observer] (proposals and their outcome, apply and fsync
// latencies, group-commit batch sizes, leader changes) and collectors that
// read the node's counters when scraped (raft node, storage engine and,
// where the caller can reach it, the peer transport).
//
// It registers on a [prometheus.Registerer] the caller owns; the kvnode
// binary serves that registry at /metrics. Client requests by method and
// status code are counted by package server on the same registry, not
// here. obs holds no goroutine: counters are pushed by the observer on the
// hot path and read by collectors during a scrape.
//
// Every metric is named strata_*; see [NewObserver] and [RegisterStats] for
// the list.
package obs
