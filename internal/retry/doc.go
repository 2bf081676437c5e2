// Package retry is the one backoff helper for every retry loop in Strata:
// exponential waits with jitter, waits that end with the context or a
// closer channel (never time.Sleep), and budgets.
//
// Three shapes, one curve (Options):
//
//   - A loop, in the shape of CockroachDB's retry.StartWithCtx:
//
//     for r := retry.Start(ctx, opts); r.Next(); {
//     ...
//     }
//
//   - A call: Do(ctx, opts, fn) retries fn until it returns nil or an
//     error marked Permanent.
//
//   - Per-cause budgets, in the shape of TiKV's Backoffer: a request that
//     can fail for several causes keeps one Backoffer and backs off on the
//     curve of each failure's cause (ShardMiss, NotLeader, RPC, Oracle,
//     TxnLock, or a Config of its own), each with its own budget and a
//     total sleep cap for the request.
//
// The waits come from github.com/cenkalti/backoff/v5's ExponentialBackOff;
// the loop, the budgets and the clock are this package's, because that
// library's Retry cannot take a fake timer, a closer or per-cause state.
//
// The package decides how long to wait and when to stop; it does not decide
// what is worth retrying. That is the caller's: the router's doc.go says who
// retries what. A loop's errors wrap both the last failure and the reason
// it stopped (the context's error, ErrClosed, ErrExhausted), so errors.Is
// finds either.
package retry
