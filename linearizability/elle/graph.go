package elle

import (
	"fmt"
	"slices"
	"strings"
)

// depBit is a set of DepKinds.
type depBit uint8

const (
	bitWW depBit = 1 << iota
	bitWR
	bitRW
	bitProcess
	bitRealtime

	bitsData  = bitWW | bitWR | bitRW
	bitsOrder = bitProcess | bitRealtime
)

// byPreference lists the kinds in the order a cycle's edge is labelled
// with, when it has several: the data dependencies that make the weakest
// anomaly first, rw last.
var byPreference = []struct {
	bit  depBit
	kind DepKind
}{{bitWW, WW}, {bitWR, WR}, {bitProcess, Process}, {bitRealtime, Realtime}, {bitRW, RW}}

// reason is what an edge of one kind was inferred from, for its
// explanation. ww: a then b appended to key; wr: a read last; rw: a read
// last (none if !hasA), b appended next.
type reason struct {
	key  int
	a, b int
	hasA bool
}

// edge is every dependency from one transaction to another.
type edge struct {
	from, to int
	bits     depBit
	// why holds the first reason seen of each kind, by bit position.
	why [5]reason
}

// graph is the dependency graph; nodes are the indexes of the history.
type graph struct {
	edges []edge
	out   [][]int // out[n]: indexes into edges
	index map[[2]int]int
}

func newGraph(n int) *graph {
	return &graph{out: make([][]int, n), index: make(map[[2]int]int)}
}

// add adds a dependency of one kind (bit); self-dependencies are dropped.
func (g *graph) add(from, to int, bit depBit, r reason) {
	if from == to {
		return
	}
	i, ok := g.index[[2]int{from, to}]
	if !ok {
		i = len(g.edges)
		g.index[[2]int{from, to}] = i
		g.edges = append(g.edges, edge{from: from, to: to})
		g.out[from] = append(g.out[from], i)
	}
	e := &g.edges[i]
	if e.bits&bit == 0 {
		e.bits |= bit
		e.why[bitIndex(bit)] = r
	}
}

func bitIndex(b depBit) int {
	i := 0
	for b > 1 {
		b >>= 1
		i++
	}
	return i
}

// sccs returns the strongly connected components of two or more nodes of
// the subgraph of nodes (in) and edges with a kind in mask, by Tarjan's
// algorithm. in nil means every node.
func (g *graph) sccs(nodes []int, in func(int) bool, mask depBit) [][]int {
	index := make(map[int]int, len(nodes))
	low := make(map[int]int, len(nodes))
	onStack := make(map[int]bool)
	var stack []int
	var comps [][]int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, ei := range g.out[v] {
			e := &g.edges[ei]
			if e.bits&mask == 0 || (in != nil && !in(e.to)) {
				continue
			}
			if _, seen := index[e.to]; !seen {
				visit(e.to)
				low[v] = min(low[v], low[e.to])
			} else if onStack[e.to] {
				low[v] = min(low[v], index[e.to])
			}
		}
		if low[v] != index[v] {
			return
		}
		var comp []int
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp = append(comp, w)
			if w == v {
				break
			}
		}
		if len(comp) > 1 {
			slices.Sort(comp)
			comps = append(comps, comp)
		}
	}
	for _, v := range nodes {
		if _, seen := index[v]; !seen {
			visit(v)
		}
	}
	return comps
}

// bfs searches the subgraph of nodes in and edges in mask from src. It
// returns the edge each reached node was first reached by (-1 for src),
// and the nodes reached in the order reached.
func (g *graph) bfs(src int, in func(int) bool, mask depBit) (via map[int]int, order []int) {
	via = map[int]int{src: -1}
	order = []int{src}
	for i := 0; i < len(order); i++ {
		for _, ei := range g.out[order[i]] {
			e := &g.edges[ei]
			if e.bits&mask == 0 || !in(e.to) {
				continue
			}
			if _, seen := via[e.to]; !seen {
				via[e.to] = ei
				order = append(order, e.to)
			}
		}
	}
	return via, order
}

// pathTo returns the edges of the path bfs found to dst, or nil.
func pathTo(g *graph, via map[int]int, dst int) []int {
	if _, ok := via[dst]; !ok {
		return nil
	}
	var path []int
	for n := dst; via[n] >= 0; n = g.edges[via[n]].from {
		path = append(path, via[n])
	}
	slices.Reverse(path)
	return path
}

// hop is one labelled edge of a cycle.
type hop struct {
	edge int
	bit  depBit
	kind DepKind
}

// findCycles reports one cycle for each strongly connected component of
// the graph: the weakest anomaly it holds.
func (c *checker) findCycles() {
	all := make([]int, len(c.h))
	for i := range all {
		all[i] = i
	}
	for _, comp := range c.g.sccs(all, nil, bitsData|bitsOrder) {
		inComp := make(map[int]bool, len(comp))
		for _, n := range comp {
			inComp[n] = true
		}
		in := func(n int) bool { return inComp[n] }
		// Data edges alone first; then with realtime and process edges,
		// which are only present if Options asked for them.
		cycle := c.weakestCycle(comp, in, 0)
		if cycle == nil && (c.opts.Realtime || c.opts.Process) {
			cycle = c.weakestCycle(comp, in, bitsOrder)
		}
		if cycle != nil {
			c.report(c.cycleAnomaly(cycle))
		}
	}
}

// weakestCycle returns a shortest cycle among comp's nodes of the weakest
// kind present, using data edges and the extra kinds, or nil.
func (c *checker) weakestCycle(comp []int, in func(int) bool, extra depBit) []hop {
	// G0, then G1c: a cycle in a subgraph without rw edges.
	for _, mask := range []depBit{bitWW | extra, bitWW | bitWR | extra} {
		for _, sub := range c.g.sccs(comp, in, mask) {
			inSub := make(map[int]bool, len(sub))
			for _, n := range sub {
				inSub[n] = true
			}
			if cycle := c.shortestThrough(sub[0], func(n int) bool { return inSub[n] }, mask); cycle != nil {
				return c.label(cycle, mask, false)
			}
		}
	}
	// G-single: an rw edge u -> v closed by a path v ~> u without rw;
	// then G2: by any path.
	for _, mask := range []depBit{bitWW | bitWR | extra, bitsData | extra} {
		if cycle := c.shortestWithRW(comp, in, mask); cycle != nil {
			return c.label(cycle, mask, true)
		}
	}
	return nil
}

// shortestThrough returns a shortest cycle through n in the subgraph, as
// edge indexes, or nil.
func (c *checker) shortestThrough(n int, in func(int) bool, mask depBit) []int {
	via, order := c.g.bfs(n, in, mask)
	// The first node reached with an edge back to n closes a shortest
	// cycle: nodes come in order of distance.
	for _, m := range order {
		for _, ei := range c.g.out[m] {
			if e := &c.g.edges[ei]; e.to == n && e.bits&mask != 0 {
				return append(pathTo(c.g, via, m), ei)
			}
		}
	}
	return nil
}

// searchBudget bounds the edges shortestWithRW visits in one component.
// Past it the search keeps the shortest cycle found so far, if any.
const searchBudget = 1 << 22

// shortestWithRW returns a shortest cycle made of one rw edge u -> v of
// comp and a path v ~> u in mask, or nil. One search per distinct v, up to
// searchBudget.
func (c *checker) shortestWithRW(comp []int, in func(int) bool, mask depBit) []int {
	rwInto := make(map[int][]int) // v -> rw edges u -> v
	var targets []int
	for _, u := range comp {
		for _, ei := range c.g.out[u] {
			if e := &c.g.edges[ei]; e.bits&bitRW != 0 && in(e.to) {
				if rwInto[e.to] == nil {
					targets = append(targets, e.to)
				}
				rwInto[e.to] = append(rwInto[e.to], ei)
			}
		}
	}
	var best []int
	visited := 0
	for _, v := range targets {
		if visited > searchBudget {
			break
		}
		via, order := c.g.bfs(v, in, mask)
		for _, n := range order {
			visited += len(c.g.out[n])
		}
		for _, rw := range rwInto[v] {
			u := c.g.edges[rw].from
			if _, ok := via[u]; !ok {
				continue
			}
			if p := pathTo(c.g, via, u); best == nil || len(p)+1 < len(best) {
				best = append([]int{rw}, p...)
			}
		}
		if len(best) == 2 {
			break // no cycle is shorter
		}
	}
	return best
}

// label names each edge of a cycle with its preferred kind in mask. A
// cycle from shortestWithRW starts with its rw edge (firstRW), which mask
// may leave out.
func (c *checker) label(cycle []int, mask depBit, firstRW bool) []hop {
	hops := make([]hop, len(cycle))
	for i, ei := range cycle {
		if i == 0 && firstRW {
			hops[i] = hop{edge: ei, bit: bitRW, kind: RW}
			continue
		}
		bits := c.g.edges[ei].bits & mask
		for _, p := range byPreference {
			if bits&p.bit != 0 {
				hops[i] = hop{edge: ei, bit: p.bit, kind: p.kind}
				break
			}
		}
	}
	return hops
}

// cycleAnomaly classifies a labelled cycle and explains it.
func (c *checker) cycleAnomaly(cycle []hop) Anomaly {
	var rw, wr int
	var realtime, process bool
	a := Anomaly{}
	for _, h := range cycle {
		e := &c.g.edges[h.edge]
		switch h.kind {
		case RW:
			rw++
		case WR:
			wr++
		case Realtime:
			realtime = true
		case Process:
			process = true
		}
		r := e.why[bitIndex(h.bit)]
		d := Dep{From: e.from, To: e.to, Kind: h.kind, Why: c.why(e.from, e.to, h.kind, r)}
		if h.bit&bitsData != 0 {
			d.Key = c.keys[r.key]
		}
		a.Cycle = append(a.Cycle, d)
		a.Txns = append(a.Txns, e.from)
	}
	var what string
	switch {
	case rw == 0 && wr == 0:
		a.Kind, what = G0, "a cycle of writes (ww) alone"
	case rw == 0:
		a.Kind, what = G1c, "a cycle of writes and reads (ww, wr) without an anti-dependency"
	case rw == 1:
		a.Kind, what = GSingle, "a cycle with exactly one anti-dependency (rw)"
	default:
		a.Kind, what = G2, fmt.Sprintf("a cycle with %d anti-dependencies (rw)", rw)
	}
	switch {
	case realtime:
		a.Kind += "-realtime"
		what += ", closed by realtime order"
	case process:
		a.Kind += "-process"
		what += ", closed by process order"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s:", a.Kind, what)
	for _, t := range a.Txns {
		fmt.Fprintf(&b, " T%d ->", t)
	}
	fmt.Fprintf(&b, " T%d\n", a.Txns[0])
	for _, d := range a.Cycle {
		fmt.Fprintf(&b, "%s\n", d.Why)
	}
	a.Explanation = b.String()
	return a
}
