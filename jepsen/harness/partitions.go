package harness

import (
	"math/rand/v2"
	"slices"
)

// The partition shapes are pure functions from node indexes to the directed
// links to cut, so they can be tested without iptables.

// between returns every directed link between nodes of different groups.
func between(groups ...[]int) []Link {
	var out []Link
	for i, a := range groups {
		for j, b := range groups {
			if i == j {
				continue
			}
			for _, x := range a {
				for _, y := range b {
					out = append(out, Link{x, y})
				}
			}
		}
	}
	return out
}

// others returns 0..n-1 without the nodes in except.
func others(n int, except ...int) []int {
	var out []int
	for i := range n {
		if !slices.Contains(except, i) {
			out = append(out, i)
		}
	}
	return out
}

// halvesLinks splits n nodes at random into a minority of n/2 and a
// majority, cut from each other.
func halvesLinks(n int, rng *rand.Rand) (minority, majority []int, links []Link) {
	perm := rng.Perm(n)
	minority, majority = slices.Clone(perm[:n/2]), slices.Clone(perm[n/2:])
	slices.Sort(minority)
	slices.Sort(majority)
	return minority, majority, between(minority, majority)
}

// isolateLinks cuts node k from every other node.
func isolateLinks(n, k int) []Link {
	return between([]int{k}, others(n, k))
}

// bridgeLinks splits n nodes into two halves around a bridge node that
// still talks to both; the halves do not talk to each other. With 3 nodes
// the halves are single nodes.
func bridgeLinks(n int, rng *rand.Rand) (bridge int, a, b []int, links []Link) {
	perm := rng.Perm(n)
	bridge = perm[0]
	rest := perm[1:]
	a, b = slices.Clone(rest[:len(rest)/2]), slices.Clone(rest[len(rest)/2:])
	slices.Sort(a)
	slices.Sort(b)
	return bridge, a, b, between(a, b)
}

// ringLinks gives every node a view of a majority (itself and the next
// nodes around a ring of the given order) that no other node shares: node
// order[i] hears only order[i], order[i+1], ..., order[i+m-1] (m = n/2+1)
// and drops what the others send it. Cuts are one-way.
func ringLinks(order []int) []Link {
	n := len(order)
	m := n/2 + 1
	var out []Link
	for i, to := range order {
		hears := map[int]bool{}
		for k := range m {
			hears[order[(i+k)%n]] = true
		}
		for _, from := range order {
			if !hears[from] {
				out = append(out, Link{from, to})
			}
		}
	}
	return out
}

// oneWayLinks cuts every link out of node k (mute: it hears everyone,
// no one hears it) or into it (deaf).
func oneWayLinks(n, k int, mute bool) []Link {
	var out []Link
	for _, o := range others(n, k) {
		if mute {
			out = append(out, Link{k, o})
		} else {
			out = append(out, Link{o, k})
		}
	}
	return out
}
