package elle

import (
	"fmt"
	"strings"
)

// Kind names an anomaly.
type Kind string

// The anomalies Check reports. A cycle whose edges are not all data
// dependencies (it needs a realtime or process edge, see Options) is
// reported with the kind of its data edges and a suffix: "G-single-realtime"
// when it has a realtime edge, else "-process".
const (
	// G0, write cycle: a cycle of ww edges only.
	G0 Kind = "G0"
	// G1a, aborted read: an OK transaction read a value appended by a
	// failed one.
	G1a Kind = "G1a"
	// G1b, intermediate read: an OK transaction read a list ending in a
	// value that was not the last one its transaction appended to that key.
	G1b Kind = "G1b"
	// G1c, circular information flow: a cycle of ww and wr edges, at least
	// one wr.
	G1c Kind = "G1c"
	// GSingle, read skew and lost update: a cycle with exactly one rw edge.
	GSingle Kind = "G-single"
	// G2, write skew: a cycle with two or more rw edges.
	G2 Kind = "G2"
	// Internal: a read disagreed with its own transaction's earlier
	// operations on the key (it missed its own append, or changed
	// between two reads with no append in between).
	Internal Kind = "internal"
	// IncompatibleOrder: two reads of one key of which neither is a prefix
	// of the other, so no single order of appends explains both.
	IncompatibleOrder Kind = "incompatible-order"
	// DuplicateElements: a read returned a list holding one value twice,
	// though every value is appended once.
	DuplicateElements Kind = "duplicate-elements"
	// GarbageRead: a read returned a value that no transaction appended.
	GarbageRead Kind = "garbage-read"
)

// DepKind names a dependency edge between two transactions.
type DepKind string

// The dependency edges. ww, wr and rw are inferred from the data;
// realtime and process only when Options asks for them.
const (
	// WW: To appended the element right after one From appended (From's
	// write precedes To's in the key's version order).
	WW DepKind = "ww"
	// WR: To read a list whose last element From appended (To saw From's
	// write).
	WR DepKind = "wr"
	// RW, anti-dependency: From read a list, and To appended the element
	// that came next (From did not see To's write, which is therefore
	// later).
	RW DepKind = "rw"
	// Realtime: From completed before To was invoked.
	Realtime DepKind = "realtime"
	// Process: From and To ran in this order on one process.
	Process DepKind = "process"
)

// Dep is one edge of a reported cycle.
type Dep struct {
	From int     `json:"from"`
	To   int     `json:"to"`
	Kind DepKind `json:"kind"`
	// Key is the key the edge was inferred from; empty for realtime and
	// process edges.
	Key string `json:"key,omitempty"`
	// Why says in words what the history shows.
	Why string `json:"why"`
}

// Anomaly is one violation found in a history.
type Anomaly struct {
	Kind Kind `json:"kind"`
	// Txns are the transactions involved: for a cycle, in cycle order
	// (Txns[i] is Cycle[i].From); otherwise as the explanation names them.
	Txns []int `json:"txns"`
	// Key is the key of a non-cycle anomaly.
	Key string `json:"key,omitempty"`
	// Cycle is the dependency cycle of G0, G1c, G-single and G2: each
	// Dep's To is the next Dep's From, and the last To is the first From.
	Cycle []Dep `json:"cycle,omitempty"`
	// Explanation says in words what is wrong, one line per edge for a
	// cycle.
	Explanation string `json:"explanation"`
}

// Result is the outcome of Check.
type Result struct {
	// Valid is true when no anomaly was found.
	Valid bool `json:"valid"`
	// Anomalies are the violations found, sorted by kind (G0 first, in
	// the order of the Kind constants, realtime and process variants after
	// their base kind), then by transaction. Every strongly connected
	// component of the dependency graph yields at most one cycle: the
	// weakest kind it holds, shortest first.
	Anomalies []Anomaly `json:"anomalies,omitempty"`
	// Txns is the number of transactions checked, and Deps the number of
	// pairs of transactions with at least one edge between them.
	Txns int `json:"txns"`
	Deps int `json:"deps"`
}

// ByKind returns the anomalies grouped by kind.
func (r Result) ByKind() map[Kind][]Anomaly {
	m := make(map[Kind][]Anomaly)
	for _, a := range r.Anomalies {
		m[a.Kind] = append(m[a.Kind], a)
	}
	return m
}

// maxPrinted bounds the anomalies of each kind that String prints.
const maxPrinted = 5

// String is a report for a human: the verdict, then up to a few anomalies
// of each kind with their explanations.
func (r Result) String() string {
	var b strings.Builder
	if r.Valid {
		fmt.Fprintf(&b, "valid: %d transactions, %d dependencies, no anomaly\n", r.Txns, r.Deps)
		return b.String()
	}
	noun := "anomalies"
	if len(r.Anomalies) == 1 {
		noun = "anomaly"
	}
	fmt.Fprintf(&b, "invalid: %d transactions, %d dependencies, %d %s\n", r.Txns, r.Deps, len(r.Anomalies), noun)
	printed := make(map[Kind]int)
	for _, a := range r.Anomalies {
		printed[a.Kind]++
		switch n := printed[a.Kind]; {
		case n <= maxPrinted:
			fmt.Fprintf(&b, "%s\n", indent(a.Explanation))
		case n == maxPrinted+1:
			fmt.Fprintf(&b, "  (more %s not shown)\n", a.Kind)
		}
	}
	return b.String()
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
