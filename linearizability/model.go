package linearizability

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// keyState is the model's state for one key. It is comparable, so porcupine's
// default == equality works.
type keyState struct {
	present bool
	value   string // meaningful only if present
}

// KVModel returns a porcupine model of a key-value store with get, put, delete
// and compare-and-swap over operations whose Input and Output are this
// package's [Input] and [Output]. It partitions by key, so its state is one
// key's value.
func KVModel() porcupine.Model {
	return porcupine.Model{
		Partition:      partitionByKey,
		PartitionEvent: partitionEventsByKey,
		Init:           func() any { return keyState{} },
		Step: func(state, input, output any) (bool, any) {
			return step(state.(keyState), input.(Input), output.(Output))
		},
		Hash: func(state any) uint64 {
			s := state.(keyState)
			h := fnv.New64a()
			if s.present {
				h.Write([]byte{1})
				h.Write([]byte(s.value))
			}
			return h.Sum64()
		},
		DescribeOperation: func(input, output any) string {
			return describeOp(input.(Input), output.(Output))
		},
		DescribeState: func(state any) string {
			s := state.(keyState)
			if !s.present {
				return "absent"
			}
			return strconv.Quote(s.value)
		},
	}
}

// step applies one operation to one key's state and reports whether the
// output is possible.
func step(s keyState, in Input, out Output) (bool, keyState) {
	switch in.Kind {
	case KindGet:
		if out.Ambiguous {
			return true, s // reads have no effect
		}
		if out.Value == nil {
			return !s.present, s
		}
		return s.present && s.value == *out.Value, s
	case KindPut:
		return true, keyState{present: true, value: in.Value}
	case KindDelete:
		return true, keyState{}
	case KindCAS:
		matches := s.present && in.Old != nil && s.value == *in.Old ||
			!s.present && in.Old == nil
		next := s
		if matches {
			next = keyState{present: true, value: in.Value}
		}
		if out.Ambiguous {
			// Placed where the comparison holds, it swapped; placed
			// where it fails (such as at the end), it did nothing.
			return true, next
		}
		return out.OK == matches, next
	default:
		return false, s
	}
}

// partitionByKey splits a history into one partition per key, in key order,
// keeping each partition's operations in their original order.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := make(map[string][]porcupine.Operation)
	for _, op := range history {
		k := op.Input.(Input).Key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		parts[i] = byKey[k]
	}
	return parts
}

// partitionEventsByKey is partitionByKey for porcupine's event form, where a
// return is matched to its call by Id.
func partitionEventsByKey(history []porcupine.Event) [][]porcupine.Event {
	byKey := make(map[string][]porcupine.Event)
	keyOf := make(map[int]string) // event id -> key
	for _, e := range history {
		if e.Kind == porcupine.CallEvent {
			keyOf[e.Id] = e.Value.(Input).Key
		}
		k := keyOf[e.Id]
		byKey[k] = append(byKey[k], e)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([][]porcupine.Event, len(keys))
	for i, k := range keys {
		parts[i] = byKey[k]
	}
	return parts
}

func describeOp(in Input, out Output) string {
	var s string
	switch in.Kind {
	case KindGet:
		s = fmt.Sprintf("get(%q) -> %s", in.Key, describeValue(out.Value))
	case KindPut:
		s = fmt.Sprintf("put(%q, %q)", in.Key, in.Value)
	case KindDelete:
		s = fmt.Sprintf("delete(%q)", in.Key)
	case KindCAS:
		s = fmt.Sprintf("cas(%q, %s, %q)", in.Key, describeValue(in.Old), in.Value)
		if !out.Ambiguous {
			s += fmt.Sprintf(" -> %t", out.OK)
		}
	default:
		s = fmt.Sprintf("%s(%q)", in.Kind, in.Key)
	}
	if out.Ambiguous {
		s += " ambiguous"
	}
	return s
}

func describeValue(v *string) string {
	if v == nil {
		return "absent"
	}
	return strconv.Quote(*v)
}
