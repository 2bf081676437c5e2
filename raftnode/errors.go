package raftnode

import (
	"errors"
	"fmt"
)

var (
	// ErrStopped is returned by calls on a node that is closed or whose
	// storage failed.
	ErrStopped = errors.New("raftnode: node stopped")
	// ErrProposalDropped means the proposal certainly did not and will not
	// apply (no leader, leadership changed before it committed, leader
	// transfer in progress). It is safe to retry.
	ErrProposalDropped = errors.New("raftnode: proposal dropped")
	// ErrAmbiguous means the proposal may or may not have applied, usually
	// because the caller's context ended first.
	ErrAmbiguous = errors.New("raftnode: proposal outcome unknown")
	// ErrUnknownGroup means the node hosts no replica of the group.
	ErrUnknownGroup = errors.New("raftnode: unknown group")
	// ErrGroupExists is returned when creating a group the node already hosts.
	ErrGroupExists = errors.New("raftnode: group already exists")
	// ErrStaleReplica means a replica ID is older than one the node hosts
	// or hosted for the group (a tombstone): the node never hosts an
	// incarnation of a replica again once it destroyed it.
	ErrStaleReplica = errors.New("raftnode: stale replica ID")
	// ErrNotMember is returned by a membership change that names a node
	// that is not a member of the group in the role the change needs.
	ErrNotMember = errors.New("raftnode: node is not a member")
)

// NotLeaderError reports a call that needs the leader made on another
// replica. Leader is the leader's node ID, or 0 if unknown.
type NotLeaderError struct {
	Group  uint64
	Leader uint64
}

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return fmt.Sprintf("raftnode: not leader of group %d (leader unknown)", e.Group)
	}
	return fmt.Sprintf("raftnode: not leader of group %d (leader is node %d)", e.Group, e.Leader)
}
