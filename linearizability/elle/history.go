package elle

import (
	"errors"
	"fmt"
)

// ErrInvalidHistory is wrapped by the error Check returns for a history it
// cannot judge (an unknown status or operation, a value appended twice to
// one key).
var ErrInvalidHistory = errors.New("elle: invalid history")

// Status is how a transaction ended, as far as its client knows.
type Status string

// The statuses of a transaction.
const (
	// OK: the transaction committed, and its reads are what it saw.
	OK Status = "ok"
	// Fail: the transaction certainly did not commit (it aborted, or was
	// refused before it started). Nothing it appended may be seen.
	Fail Status = "fail"
	// Info: the outcome is unknown (a timeout, a lost connection). The
	// transaction may have committed; its reads are unknown and ignored.
	Info Status = "info"
)

// OpKind names a micro-operation.
type OpKind string

// The micro-operations of a list-append transaction.
const (
	// Append appends Value to the list at Key.
	Append OpKind = "append"
	// Read reads the whole list at Key into List.
	Read OpKind = "r"
)

// Op is one micro-operation of a transaction.
type Op struct {
	Kind OpKind `json:"f"`
	Key  string `json:"k"`
	// Value is the value an Append appends. Values appended to one key
	// must be unique across the whole history.
	Value int `json:"v,omitempty"`
	// List is what a Read of an OK transaction returned, oldest element
	// first; nil is the empty list. Ignored for other statuses.
	List []int `json:"list,omitempty"`
}

// Txn is one transaction: its micro-operations in the order it ran them.
type Txn struct {
	// Process is the client that ran the transaction. A process runs one
	// transaction at a time; after an Info it should not run another
	// (Jepsen gives the client a new process), because the Info one may
	// still be running.
	Process int `json:"process"`
	// Invoke and Complete are when the client called and was answered,
	// on one clock (nanoseconds, or any increasing counter). Only the
	// realtime edges use them; Complete is ignored for an Info
	// transaction, which may take effect at any time after Invoke.
	Invoke   int64  `json:"invoke"`
	Complete int64  `json:"complete"`
	Status   Status `json:"status"`
	Ops      []Op   `json:"ops"`
}

// History is a set of transactions in no required order. A transaction is
// named by its index: T3 is History[3].
type History []Txn

// validate checks what Check relies on.
func (h History) validate() error {
	type kv struct {
		key   string
		value int
	}
	appender := make(map[kv]int)
	for i, t := range h {
		switch t.Status {
		case OK, Fail, Info:
		default:
			return fmt.Errorf("%w: T%d has status %q", ErrInvalidHistory, i, t.Status)
		}
		for _, op := range t.Ops {
			switch op.Kind {
			case Read:
			case Append:
				k := kv{op.Key, op.Value}
				if j, dup := appender[k]; dup {
					return fmt.Errorf("%w: T%d and T%d both append %d to %q", ErrInvalidHistory, j, i, op.Value, op.Key)
				}
				appender[k] = i
			default:
				return fmt.Errorf("%w: T%d has an operation %q", ErrInvalidHistory, i, op.Kind)
			}
		}
	}
	return nil
}
