package raftnode

// SetBeforeDestroy makes n call f before it destroys a removed replica; an
// error from f stops the node there, as a crash at that point would.
func SetBeforeDestroy(n *Node, f func(group uint64) error) { n.testHooks.beforeDestroy.Store(&f) }

// SnapshotsStaged returns how many received snapshots n holds for group,
// waiting for raft to hand them back.
func SnapshotsStaged(n *Node, group uint64) int {
	g, err := n.group(group)
	if err != nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.mu.snapIn)
}
