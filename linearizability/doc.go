// Package linearizability records histories of key-value operations and checks
// them for linearizability with porcupine.
//
// Strata promises that every acknowledged operation is linearizable and that
// nothing acknowledged is lost. This package is the judge of that promise. It
// owns four things:
//
//   - Models: a porcupine model of a key-value store with get, put, delete
//     and compare-and-swap ([KVModel]), partitioned by key so that long
//     histories check quickly. Absent is distinct from the empty value.
//   - Recording: a [Recorder] wraps any [Client] and writes down every call
//     and return against one monotonic clock. An error is classified by the
//     caller ([ErrorClass]): a Get that found nothing is a successful read of
//     "absent"; an operation that certainly did not happen is dropped; one
//     that may or may not have happened is kept as ambiguous and treated as
//     returning at the end of the history.
//   - Checking: [Check] returns a [Result] with a verdict and, on failure, a
//     short text summary of the smallest failing key.
//   - Visualisation and replay: on failure [Check] can write porcupine's HTML
//     visualisation, and a [History] can be saved to and loaded from JSON so a
//     failure can be re-checked offline.
//
// The package must not know about raft, shards or how a client talks to a
// cluster: a harness supplies a [Client] and a classification of its errors,
// and the package sees nothing else.
//
// # Caveats
//
// Every ambiguous write stays concurrent with everything that follows it, so
// proving a key illegal costs time exponential in its ambiguous writes. Check
// bounds a write whose value someone observed and drops one nobody could have
// noticed, which needs written values unique per key: workloads should write
// values like "<client>.<seq>". Keep enough keys, and few enough faults, that
// few unobserved ambiguous writes pile up on one key.
// Keys and values must be valid UTF-8 to be saved as JSON.
package linearizability
