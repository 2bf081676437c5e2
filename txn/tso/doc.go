// Package tso is Strata's time base: the hybrid Timestamp, the timestamp
// oracle that hands timestamps out on the system shard's leader, and the
// client through which every node asks for them.
//
// A Timestamp is Unix milliseconds shifted left by LogicalBits, plus a
// logical counter, in one uint64: a < b orders two timestamps, and a
// timestamp maps back to wall time (WallTime). Parse reads what String
// prints, the raw integer, or an RFC 3339 time.
//
// The Oracle hands out strictly increasing timestamps in batches, never
// below the wall clock of its Clock nor below the last one handed out, and
// never at or above a high-water mark that it saves through a Persister
// ahead of use, a window at a time (see Oracle for the rule). A new Oracle
// over the same Persister starts strictly above the saved mark, so
// timestamps never go back across a leader change or a restart of every
// node, whatever the wall clocks do. The Client coalesces a node's
// concurrent requests into one fetch at a time over a Fetcher.
//
// # What it owns and must not do
//
// The package owns the timestamp encoding and the oracle's issuing rule. It
// is pure logic behind small interfaces: it does no raft, no network and no
// storage. The owner of the system shard's replica supplies the Persister (a
// raft write and a linearizable read of the limit on the system shard),
// opens the Oracle when its replica becomes leader and closes it when it
// stops being leader; the router supplies the Fetcher that reaches the
// leader. The only goroutines are the Oracle's one save in flight and the
// Client's one fetch loop, each stopped and waited for by Close.
//
// # Caveats
//
// An Oracle serves below the limit it saved without asking raft again, so a
// deposed leader whose Oracle is still open could hand out timestamps below
// those of the new leader. The owner must close the Oracle when leadership
// is lost and serve only while it holds a lease that a new leader's oracle
// waits out (package replica's LeaderTasks: a ReadIndex round starts each
// lease, measured on the monotonic clock), or confirm leadership per
// batch. The Client refuses a fetch that goes back (ErrWentBack) rather
// than hand it out.
//
// A request whose caller gives up still uses up its timestamp: timestamps
// are unique and increasing, not dense.
package tso
