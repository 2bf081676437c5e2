package raftnode

import (
	"context"
)

// DestroyGroup drops the local replica of group with its raft state and
// its data, as applying this node's own removal would (KeepDataOnRemoval
// is honoured and OnGroupRemoved called). It is for a replica that is no
// longer a member of its group but does not know it, because its node was
// down while it was removed: left in place, it would replay its old log,
// removal included. Destroying a member's replica loses one copy of the
// group's data, so the caller must know from the group's leader that this
// node is not a member.
//
// The raft loop destroys the replica between two cycles, when no Ready of
// the group is in flight; DestroyGroup waits for it. It returns
// ErrUnknownGroup if the group is not hosted here. If ctx ends first the
// replica may still be destroyed.
func (n *Node) DestroyGroup(ctx context.Context, groupID uint64) error {
	if err := n.Err(); err != nil {
		return stoppedErr(err)
	}
	if _, err := n.group(groupID); err != nil {
		return err
	}
	ch := make(chan error, 1)
	n.mu.Lock()
	if n.mu.destroys == nil {
		n.mu.destroys = make(map[uint64][]chan error)
	}
	n.mu.destroys[groupID] = append(n.mu.destroys[groupID], ch)
	n.mu.Unlock()
	n.signal()
	select {
	case err := <-ch:
		return err
	case <-n.stopped:
		return stoppedErr(n.Err())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// destroyRequested destroys the replicas DestroyGroup was asked to. The
// loop calls it at the start of a cycle, when no Ready is in flight.
func (n *Node) destroyRequested() error {
	n.mu.Lock()
	reqs := n.mu.destroys
	n.mu.destroys = nil
	n.mu.Unlock()
	for id, waiters := range reqs {
		g, err := n.group(id)
		if err == nil {
			g.mu.Lock()
			g.mu.removed = true // no more Readies
			g.mu.Unlock()
			err = n.destroyGroup(g)
		}
		for _, ch := range waiters {
			ch <- err
		}
		if err != nil && g != nil {
			return err // a storage failure: the node stops
		}
	}
	return nil
}
