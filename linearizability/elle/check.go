package elle

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Options configures Check. The zero value is valid: data dependencies only.
type Options struct {
	// Realtime adds an edge from every OK transaction to every transaction
	// invoked after it completed, which checks strict serializability
	// rather than serializability. Default off.
	Realtime bool
	// Process adds an edge between consecutive transactions of one
	// process, which checks that each client sees its own earlier
	// transactions. Default off.
	Process bool
}

// Check infers the dependencies between the transactions of h and reports
// the anomalies they show. It returns an error wrapping ErrInvalidHistory
// for a history it cannot judge; an anomalous history is a Result with
// Valid false, not an error.
func Check(h History, opts Options) (Result, error) {
	if err := h.validate(); err != nil {
		return Result{}, err
	}
	c := &checker{h: h, opts: opts, g: newGraph(len(h)), keyIndex: make(map[string]int)}
	c.indexAppends()
	c.checkInternal()
	c.inferData()
	if opts.Realtime {
		c.addRealtime()
	}
	if opts.Process {
		c.addProcess()
	}
	c.findCycles()
	slices.SortStableFunc(c.anomalies, func(a, b Anomaly) int {
		return cmp.Or(cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)), cmp.Compare(a.Kind, b.Kind), slices.Compare(a.Txns, b.Txns))
	})
	return Result{
		Valid:     len(c.anomalies) == 0,
		Anomalies: c.anomalies,
		Txns:      len(h),
		Deps:      len(c.g.edges),
	}, nil
}

var kindOrder = []Kind{G0, G1a, G1b, G1c, GSingle, G2, Internal, IncompatibleOrder, DuplicateElements, GarbageRead}

// kindRank orders kinds for the report; a realtime or process variant
// sorts with its base kind.
func kindRank(k Kind) int {
	for i, base := range kindOrder {
		if k == base || strings.HasPrefix(string(k), string(base)+"-") && !slices.Contains(kindOrder, k) {
			return i
		}
	}
	return len(kindOrder)
}

// checker holds the state of one Check.
type checker struct {
	h    History
	opts Options
	g    *graph

	keys     []string
	keyIndex map[string]int
	// writers[k][v] is the append of value v to key k.
	writers []map[int]write
	// reads[k] are the reads of key k by OK transactions.
	reads [][]read

	anomalies []Anomaly
}

// write is one append.
type write struct {
	txn int
	// final: no later append of the same transaction to the same key.
	final bool
}

// read is one read by an OK transaction.
type read struct {
	txn  int
	list []int
	// external: the transaction had not appended to the key before it.
	external bool
}

func (c *checker) key(k string) int {
	i, ok := c.keyIndex[k]
	if !ok {
		i = len(c.keys)
		c.keyIndex[k] = i
		c.keys = append(c.keys, k)
		c.writers = append(c.writers, make(map[int]write))
		c.reads = append(c.reads, nil)
	}
	return i
}

// indexAppends records who appended each value and each OK read.
func (c *checker) indexAppends() {
	for i, t := range c.h {
		lastAppend := make(map[int]int) // key -> value
		for _, op := range t.Ops {
			k := c.key(op.Key)
			switch op.Kind {
			case Append:
				if v, ok := lastAppend[k]; ok {
					c.writers[k][v] = write{txn: i, final: false}
				}
				lastAppend[k] = op.Value
				c.writers[k][op.Value] = write{txn: i, final: true}
			case Read:
				if t.Status == OK {
					_, appended := lastAppend[k]
					c.reads[k] = append(c.reads[k], read{txn: i, list: op.List, external: !appended})
				}
			}
		}
	}
}

// checkInternal reports the reads of OK transactions that disagree with
// the same transaction's earlier operations on the key: after a read and
// some appends, a read must return the first read plus those appends; after
// appends alone, it must end with them.
func (c *checker) checkInternal() {
	type state struct {
		read bool  // want holds a whole list; else only the appends since the start
		want []int // the list expected, or its known suffix
	}
	for i, t := range c.h {
		if t.Status != OK {
			continue
		}
		states := make(map[string]*state)
		for _, op := range t.Ops {
			st := states[op.Key]
			if st == nil {
				st = &state{}
				states[op.Key] = st
			}
			switch op.Kind {
			case Append:
				st.want = append(st.want, op.Value)
			case Read:
				ok := slices.Equal(op.List, st.want)
				if !st.read {
					ok = len(op.List) >= len(st.want) && slices.Equal(op.List[len(op.List)-len(st.want):], st.want)
				}
				if !ok {
					want := listString(st.want)
					if !st.read {
						want = "a list ending in " + want
					}
					c.report(Anomaly{Kind: Internal, Txns: []int{i}, Key: op.Key, Explanation: fmt.Sprintf(
						"internal: %s read %q = %s, but its own earlier operations on %q mean it should have read %s",
						c.name(i), op.Key, listString(op.List), op.Key, want)})
				}
				st.read, st.want = true, slices.Clone(op.List)
			}
		}
	}
}

// committable reports whether a transaction may have committed: its
// appends can be seen and it is a node of the dependency graph.
func (c *checker) committable(txn int) bool { return c.h[txn].Status != Fail }

// inferData checks every read against the appends and the other reads of
// its key, and adds the ww, wr and rw edges.
func (c *checker) inferData() {
	for k := range c.keys {
		order := c.checkReads(k)
		// next[i] is the index in order of the first element at or after
		// i appended by a transaction that may have committed.
		next := make([]int, len(order)+1)
		next[len(order)] = len(order)
		for i := len(order) - 1; i >= 0; i-- {
			next[i] = next[i+1]
			if w, ok := c.writers[k][order[i]]; ok && c.committable(w.txn) {
				next[i] = i
			}
		}
		// ww: consecutive appends of transactions that may have committed.
		for i := next[0]; i < len(order); {
			j := next[i+1]
			if j == len(order) {
				break
			}
			a, b := order[i], order[j]
			c.g.add(c.writers[k][a].txn, c.writers[k][b].txn, bitWW, reason{key: k, a: a, b: b, hasA: true})
			i = j
		}
		for _, r := range c.reads[k] {
			if !r.external {
				continue
			}
			// wr: the appender of the last element read.
			if n := len(r.list); n > 0 {
				if w, ok := c.writers[k][r.list[n-1]]; ok && c.committable(w.txn) {
					c.g.add(w.txn, r.txn, bitWR, reason{key: k, a: r.list[n-1], hasA: true})
				}
			}
			// rw: the appender of the element after what was read.
			if !isPrefix(r.list, order) {
				continue
			}
			j := next[len(r.list)]
			if j == len(order) {
				continue
			}
			rs := reason{key: k, b: order[j]}
			if n := len(r.list); n > 0 {
				rs.a, rs.hasA = r.list[n-1], true
			}
			c.g.add(r.txn, c.writers[k][order[j]].txn, bitRW, rs)
		}
	}
}

// checkReads reports the anomalies that single reads of key k show, and
// returns k's version order: its longest read.
func (c *checker) checkReads(k int) []int {
	var longest read
	for _, r := range c.reads[k] {
		if len(r.list) > len(longest.list) {
			longest = r
		}
	}
	order := longest.list
	key := c.keys[k]
	seen := make(map[int]bool, len(order))
	// Most reads are prefixes of the order: scan the order once and give
	// each of them the faults that lie within its length.
	inOrder := c.scanList(k, order, seen)
	for _, r := range c.reads[k] {
		prefix := isPrefix(r.list, order)
		f := inOrder
		if !prefix {
			f = c.scanList(k, r.list, seen)
		}
		if i := f.dup; i < len(r.list) {
			c.report(Anomaly{Kind: DuplicateElements, Txns: []int{r.txn}, Key: key, Explanation: fmt.Sprintf(
				"duplicate-elements: %s read %q = %s, which holds %d twice, though it was appended once",
				c.name(r.txn), key, listString(r.list), r.list[i])})
		}
		if i := f.garbage; i < len(r.list) {
			c.report(Anomaly{Kind: GarbageRead, Txns: []int{r.txn}, Key: key, Explanation: fmt.Sprintf(
				"garbage-read: %s read %q = %s, but no transaction appended %d",
				c.name(r.txn), key, listString(r.list), r.list[i])})
		}
		if i := f.aborted; i < len(r.list) {
			w := c.writers[k][r.list[i]]
			c.report(Anomaly{Kind: G1a, Txns: []int{w.txn, r.txn}, Key: key, Explanation: fmt.Sprintf(
				"G1a (aborted read): %s read %q = %s, but %d was appended by %s, which failed",
				c.name(r.txn), key, listString(r.list), r.list[i], c.name(w.txn))})
		}
		if n := len(r.list); n > 0 {
			v := r.list[n-1]
			if w, ok := c.writers[k][v]; ok && !w.final && w.txn != r.txn {
				c.report(Anomaly{Kind: G1b, Txns: []int{w.txn, r.txn}, Key: key, Explanation: fmt.Sprintf(
					"G1b (intermediate read): %s read %q = %s, ending in %d, but %s appended more to %q after %d",
					c.name(r.txn), key, listString(r.list), v, c.name(w.txn), key, v)})
			}
		}
		if !prefix {
			c.report(Anomaly{Kind: IncompatibleOrder, Txns: []int{longest.txn, r.txn}, Key: key, Explanation: fmt.Sprintf(
				"incompatible-order: %s read %q = %s and %s read %s: neither is a prefix of the other, so no one order of appends explains both",
				c.name(longest.txn), key, listString(longest.list), c.name(r.txn), listString(r.list))})
		}
	}
	return order
}

// faults are the indexes of the first faulty elements of a list, each
// len(list) if there is none.
type faults struct {
	// dup: the second occurrence of a value; garbage: a value nobody
	// appended; aborted: a value appended by a failed transaction.
	dup, garbage, aborted int
}

// scanList finds the faults of a list read from key k; seen is scratch.
func (c *checker) scanList(k int, list []int, seen map[int]bool) faults {
	clear(seen)
	f := faults{dup: len(list), garbage: len(list), aborted: len(list)}
	for i, v := range list {
		if seen[v] {
			f.dup = min(f.dup, i)
		}
		seen[v] = true
		w, ok := c.writers[k][v]
		switch {
		case !ok:
			f.garbage = min(f.garbage, i)
		case c.h[w.txn].Status == Fail:
			f.aborted = min(f.aborted, i)
		}
	}
	return f
}

func (c *checker) report(a Anomaly) { c.anomalies = append(c.anomalies, a) }

// name names a transaction for a human: "T3 (process 1, ok)".
func (c *checker) name(txn int) string {
	return fmt.Sprintf("T%d (process %d, %s)", txn, c.h[txn].Process, c.h[txn].Status)
}

// addRealtime adds realtime edges, a transitive reduction of them: an edge
// from each transaction that completed, and was not yet followed by one
// that started after it and completed, to each transaction invoked later.
func (c *checker) addRealtime() {
	type event struct {
		at       int64
		complete bool
		txn      int
	}
	var events []event
	for i, t := range c.h {
		if !c.committable(i) {
			continue
		}
		events = append(events, event{at: t.Invoke, txn: i})
		if t.Status == OK {
			events = append(events, event{at: t.Complete, complete: true, txn: i})
		}
	}
	// At equal times invocations go first: a transaction that completes
	// at the instant another is invoked does not precede it.
	slices.SortFunc(events, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.at, b.at), compareBool(a.complete, b.complete), cmp.Compare(a.txn, b.txn))
	})
	var frontier []int
	preds := make(map[int][]int)
	for _, e := range events {
		if !e.complete {
			preds[e.txn] = slices.Clone(frontier)
			for _, p := range frontier {
				c.g.add(p, e.txn, bitRealtime, reason{})
			}
			continue
		}
		implied := preds[e.txn]
		frontier = slices.DeleteFunc(frontier, func(p int) bool { return slices.Contains(implied, p) })
		frontier = append(frontier, e.txn)
		delete(preds, e.txn)
	}
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

// addProcess adds an edge from each OK transaction to the next one its
// process invoked. An Info transaction gets an edge in but none out: it may
// still be running.
func (c *checker) addProcess() {
	byProcess := make(map[int][]int)
	for i, t := range c.h {
		if c.committable(i) {
			byProcess[t.Process] = append(byProcess[t.Process], i)
		}
	}
	procs := slices.Sorted(maps.Keys(byProcess))
	for _, p := range procs {
		txns := byProcess[p]
		slices.SortStableFunc(txns, func(a, b int) int { return cmp.Compare(c.h[a].Invoke, c.h[b].Invoke) })
		last := -1
		for _, t := range txns {
			if last >= 0 {
				c.g.add(last, t, bitProcess, reason{})
			}
			if c.h[t].Status == OK {
				last = t
			}
		}
	}
}

// why says in words what one edge of a cycle means.
func (c *checker) why(from, to int, kind DepKind, r reason) string {
	key := ""
	if kind == WW || kind == WR || kind == RW {
		key = c.keys[r.key]
	}
	switch kind {
	case WW:
		return fmt.Sprintf("T%d -ww-> T%d: T%d appended %d to %q and T%d appended %d, the next element",
			from, to, from, r.a, key, to, r.b)
	case WR:
		return fmt.Sprintf("T%d -wr-> T%d: T%d read %q ending in %d, which T%d appended",
			from, to, to, key, r.a, from)
	case RW:
		seen := "empty"
		if r.hasA {
			seen = fmt.Sprintf("ending in %d", r.a)
		}
		return fmt.Sprintf("T%d -rw-> T%d: T%d read %q %s, and T%d appended %d, the next element: T%d did not see it",
			from, to, from, key, seen, to, r.b, from)
	case Realtime:
		return fmt.Sprintf("T%d -realtime-> T%d: T%d completed before T%d was invoked", from, to, from, to)
	default:
		return fmt.Sprintf("T%d -process-> T%d: process %d ran T%d, then T%d", from, to, c.h[from].Process, from, to)
	}
}

func isPrefix(p, list []int) bool {
	return len(p) <= len(list) && slices.Equal(p, list[:len(p)])
}

// listString prints a list, eliding the middle of a long one.
func listString(l []int) string {
	const most = 8
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range l {
		if len(l) > most && i == most/2 {
			fmt.Fprintf(&b, " ... (%d more)", len(l)-most)
		}
		if len(l) > most && i >= most/2 && i < len(l)-most/2 {
			continue
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, v)
	}
	b.WriteByte(']')
	return b.String()
}
