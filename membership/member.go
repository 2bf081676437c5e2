package membership

import (
	"strconv"
	"time"
)

// State is the liveness of a member as seen by the local node.
type State int

const (
	// Alive: the member answers probes (or has just joined).
	Alive State = iota + 1
	// Suspect: the member failed a probe and may be declared dead. Never
	// reported with memberlist v0.7.0, which does not expose suspicion (see
	// the package Caveats).
	Suspect
	// Dead: the member stopped answering and the suspicion timeout ended
	// without it refuting. It may come back (a pause or partition ended, or a
	// restart with the same node ID).
	Dead
	// Left: the member announced it was leaving (Membership.Leave).
	Left
)

// String returns "alive", "suspect", "dead", "left", or "state(<n>)".
func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	case Left:
		return "left"
	default:
		return "state(" + strconv.Itoa(int(s)) + ")"
	}
}

// Member is a node of the cluster as seen by the local node.
type Member struct {
	Meta
	// GossipAddr is the host:port the member gossips on.
	GossipAddr string
	// State is the member's liveness.
	State State
	// Since is when the local node saw State (or the meta) change.
	Since time.Time
}
