package strata

import (
	"context"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/replica"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/txn/tso"
)

// Timestamp is a hybrid timestamp: Unix milliseconds and a logical counter
// in one ordered integer (a < b compares two), as the timestamp oracle
// hands them out. See package txn/tso.
type Timestamp = tso.Timestamp

// Now returns a timestamp from the cluster's timestamp oracle, which runs
// on the system shard's leader: above every timestamp handed out (on any
// node) before Now was called, and at or above the oracle's wall clock.
// Concurrent calls on a node share one round trip to the oracle.
func (db *DB) Now(ctx context.Context) (Timestamp, error) {
	if err := db.begin(); err != nil {
		return tso.Zero, err
	}
	defer db.ops.Done()
	return db.clock.Get(ctx)
}

// OracleLast returns the highest timestamp this node's oracle handed out,
// and whether this node runs the oracle (it leads the system shard).
func (db *DB) OracleLast() (Timestamp, bool) { return db.leader.Last() }

// startClock starts the leader tasks (the oracle, while this node leads
// the system shard) and the node's oracle client. It runs before the raft
// node starts, so that the node's leader-change hook finds them.
func (db *DB) startClock() {
	db.leader = db.store.StartLeaderTasks(replica.LeaderOptions{
		Oracle:      tso.OracleOptions{Clock: db.opts.Clock, Window: db.opts.OracleWindow},
		OracleLease: db.opts.OracleLease,
	})
	db.clock = tso.NewClient(tso.FetcherFunc(db.fetchTimestamps))
}

// stopClock stops what startClock started: first the client (its fetch in
// flight is cancelled), then the oracle.
func (db *DB) stopClock() {
	if db.clock != nil {
		_ = db.clock.Close()
	}
	if db.leader != nil {
		_ = db.leader.Close()
	}
}

// commitTimestamps hands the replica store's sequencers n commit
// timestamps through the node's oracle client, so that the waves of every
// shard on the node share one round trip to the oracle.
func (db *DB) commitTimestamps(ctx context.Context, n int) (tso.Timestamp, error) {
	return db.clock.GetN(ctx, n)
}

// fetchTimestamps is the oracle client's Fetcher: a GetTimestamp request to
// the system shard, which the router sends to its leader and retries there.
func (db *DB) fetchTimestamps(ctx context.Context, n int) (tso.Timestamp, error) {
	if _, local := db.leader.Last(); local {
		// This node runs the oracle: ask it directly. If it turns out not
		// to serve (it lost the system shard meanwhile), the router finds
		// the leader.
		if first, err := db.leader.Timestamps(ctx, n); err == nil || ctx.Err() != nil {
			return first, err
		}
	}
	br, err := db.sender.Send(ctx, &kvpb.BatchRequest{Header: &kvpb.Header{ShardId: shard.SystemID},
		Requests: []*kvpb.RequestUnion{{Value: &kvpb.RequestUnion_GetTimestamp{
			GetTimestamp: &kvpb.GetTimestampRequest{Count: uint32(n)}}}}})
	if err != nil {
		return tso.Zero, err
	}
	return tso.Timestamp(br.GetResponses()[0].GetGetTimestamp().GetFirst()), nil
}
