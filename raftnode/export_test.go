package raftnode

// SetBeforeDestroy makes n call f before it destroys a removed replica; an
// error from f stops the node there, as a crash at that point would.
func SetBeforeDestroy(n *Node, f func(group uint64) error) { n.testHooks.beforeDestroy.Store(&f) }
