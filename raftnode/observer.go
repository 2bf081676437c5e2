package raftnode

import "time"

// Observer receives the node's timings and events, for metrics. Every
// method is called on a hot path (the loop, or a proposer's goroutine) and
// must be cheap and never block.
type Observer interface {
	// ProposalDone reports a Propose call that reached its proposal's
	// outcome or gave up: d from the call to its return, err its error.
	ProposalDone(group uint64, d time.Duration, err error)
	// Persisted reports one persist batch of the loop: how many groups and
	// entries it carried, whether it was fsynced, and how long it took.
	Persisted(groups, entries int, synced bool, d time.Duration)
	// Applied reports one apply batch: entries applied and how long it took.
	Applied(entries int, d time.Duration)
	// LeaderChanged reports that the local replica of group learned of a
	// new leader (0: none known).
	LeaderChanged(group, leader uint64)
}

// nopObserver is the default Observer.
type nopObserver struct{}

func (nopObserver) ProposalDone(uint64, time.Duration, error) {}
func (nopObserver) Persisted(int, int, bool, time.Duration)   {}
func (nopObserver) Applied(int, time.Duration)                {}
func (nopObserver) LeaderChanged(uint64, uint64)              {}
