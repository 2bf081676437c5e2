package linearizability

// Every ambiguous write stays concurrent with everything after its call, and
// porcupine must try it at every later point or nowhere, so a key with k
// floating writes can cost 2^k to prove illegal. When written values are
// unique per key (a workload should make them so), two rewrites shrink that
// without changing the verdict.
//
// Bound: if a read returned the value v, or a definite successful cas
// expected it, the unique write of v took effect before that operation
// returned. An ambiguous write of v therefore gets the earliest such return
// as its own.
//
// Drop: an ambiguous put or cas whose value nobody ever read or compared
// against took effect, if at all, where only a failed compare could notice:
// reads would have returned its value. If no definite failed cas on the key
// returned after its call, nothing can notice, and a history linearizable
// with it is linearizable without it (and the converse holds by placing it
// last), so it is dropped.

// keyValue is a value written to, or read from, a key.
type keyValue struct{ key, value string }

// pruneAmbiguous returns h with ambiguous writes bounded or dropped as above,
// and the number dropped. It does not modify h.
func pruneAmbiguous(h History) (History, int) {
	writers := make(map[keyValue]int)      // how many ops write each value
	mentioned := make(map[keyValue]bool)   // read, or compared against, by any op
	observedBy := make(map[keyValue]int64) // earliest return of a proof it took effect
	lastFailedCAS := make(map[string]int64)
	hasFailedCAS := make(map[string]bool)
	for _, op := range h {
		in, out := op.Input, op.Output
		switch in.Kind {
		case KindPut:
			writers[keyValue{in.Key, in.Value}]++
		case KindGet:
			if out.Value != nil {
				kv := keyValue{in.Key, *out.Value}
				mentioned[kv] = true
				observe(observedBy, kv, op.Return)
			}
		case KindCAS:
			writers[keyValue{in.Key, in.Value}]++
			if in.Old != nil {
				kv := keyValue{in.Key, *in.Old}
				mentioned[kv] = true
				if !out.Ambiguous && out.OK {
					observe(observedBy, kv, op.Return)
				}
			}
			if !out.Ambiguous && !out.OK {
				hasFailedCAS[in.Key] = true
				lastFailedCAS[in.Key] = max(lastFailedCAS[in.Key], op.Return)
			}
		}
	}

	pruned := make(History, 0, len(h))
	dropped := 0
	for _, op := range h {
		kv := keyValue{op.Input.Key, op.Input.Value}
		writesUnique := op.Input.Kind != KindDelete && op.Input.Kind != KindGet && writers[kv] == 1
		if !op.Output.Ambiguous || !writesUnique {
			pruned = append(pruned, op)
			continue
		}
		if ret, ok := observedBy[kv]; ok {
			op.Output.Ambiguous = false // now has a real return
			op.Output.OK = true         // a cas that took effect swapped
			op.Return = max(ret, op.Call)
			pruned = append(pruned, op)
			continue
		}
		if !mentioned[kv] && (!hasFailedCAS[op.Input.Key] || lastFailedCAS[op.Input.Key] < op.Call) {
			dropped++
			continue
		}
		pruned = append(pruned, op)
	}
	return pruned, dropped
}

func observe(observedBy map[keyValue]int64, kv keyValue, ret int64) {
	if t, ok := observedBy[kv]; !ok || ret < t {
		observedBy[kv] = ret
	}
}
