package replicaid

import "testing"

func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint64(1))
	f.Add(uint64(MaxIncarnation), uint64(MaxNode))
	f.Fuzz(func(t *testing.T, inc, node uint64) {
		inc, node = inc&MaxIncarnation, node&MaxNode
		id := Make(inc, node)
		if Node(id) != node || Incarnation(id) != inc {
			t.Fatalf("Make(%d, %d) = %#x: node %d, incarnation %d", inc, node, id, Node(id), Incarnation(id))
		}
		if inc == 0 && id != node {
			t.Fatalf("incarnation 0 of node %d is %#x, not the node ID", node, id)
		}
		if inc < MaxIncarnation && Make(inc+1, node) <= id {
			t.Fatalf("a later incarnation of node %d sorts no higher", node)
		}
	})
}
