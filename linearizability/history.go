package linearizability

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"unicode/utf8"
)

// Kind names an operation.
type Kind string

// The operations of the key-value model.
const (
	KindGet    Kind = "get"
	KindPut    Kind = "put"
	KindDelete Kind = "delete"
	KindCAS    Kind = "cas"
)

// Input is what a client asked for.
type Input struct {
	Kind Kind   `json:"kind"`
	Key  string `json:"key"`
	// Value is the value written by a put, or the new value of a cas.
	Value string `json:"value,omitempty"`
	// Old is the value a cas expects; nil means the key must be absent.
	Old *string `json:"old,omitempty"`
}

// Output is what a client was told.
type Output struct {
	// Value is the value a get read; nil means the key was absent.
	Value *string `json:"value,omitempty"`
	// OK reports whether a cas swapped.
	OK bool `json:"ok,omitempty"`
	// Ambiguous marks a write that failed in a way that leaves open
	// whether it took effect. Its other output fields are meaningless.
	Ambiguous bool `json:"ambiguous,omitempty"`
}

// Operation is one call and its return.
type Operation struct {
	// ClientID identifies the caller; zero-indexed and dense, because the
	// visualisation draws one row per client.
	ClientID int    `json:"client"`
	Input    Input  `json:"input"`
	Output   Output `json:"output"`
	// Call and Return are nanoseconds on one monotonic clock. For an
	// ambiguous operation Return is when the client gave up; the checker
	// ignores it and treats the operation as returning at the end of the
	// history.
	Call   int64 `json:"call"`
	Return int64 `json:"return"`
}

// History is a set of operations, in no required order.
type History []Operation

// historyVersion is the version of the JSON file format written by Save.
const historyVersion = 1

type historyFile struct {
	Version int         `json:"version"`
	Ops     []Operation `json:"ops"`
}

// Save writes h to path as JSON. It fails rather than silently corrupt a key
// or value that is not valid UTF-8, which JSON cannot carry.
func (h History) Save(path string) error {
	for i, op := range h {
		if err := op.checkUTF8(); err != nil {
			return fmt.Errorf("linearizability: save op %d: %w", i, err)
		}
	}
	data, err := json.MarshalIndent(historyFile{Version: historyVersion, Ops: h}, "", "  ")
	if err != nil {
		return fmt.Errorf("linearizability: save: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("linearizability: save: %w", err)
	}
	return nil
}

// Load reads a history written by Save.
func Load(path string) (History, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("linearizability: load: %w", err)
	}
	var f historyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("linearizability: load %s: %w", path, err)
	}
	if f.Version != historyVersion {
		return nil, fmt.Errorf("linearizability: load %s: unsupported version %d", path, f.Version)
	}
	for i, op := range f.Ops {
		if err := op.validate(); err != nil {
			return nil, fmt.Errorf("linearizability: load %s: op %d: %w", path, i, err)
		}
	}
	return History(f.Ops), nil
}

func (op Operation) validate() error {
	switch op.Input.Kind {
	case KindGet, KindPut, KindDelete, KindCAS:
	default:
		return fmt.Errorf("unknown kind %q", op.Input.Kind)
	}
	if op.ClientID < 0 {
		return fmt.Errorf("negative client id %d", op.ClientID)
	}
	if !op.Output.Ambiguous && op.Return < op.Call {
		return fmt.Errorf("returns at %d before its call at %d", op.Return, op.Call)
	}
	return nil
}

var errNotUTF8 = errors.New("key or value is not valid UTF-8")

func (op Operation) checkUTF8() error {
	ok := utf8.ValidString(op.Input.Key) && utf8.ValidString(op.Input.Value)
	if op.Input.Old != nil {
		ok = ok && utf8.ValidString(*op.Input.Old)
	}
	if op.Output.Value != nil {
		ok = ok && utf8.ValidString(*op.Output.Value)
	}
	if !ok {
		return errNotUTF8
	}
	return nil
}
