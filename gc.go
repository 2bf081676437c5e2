package strata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/txn/tso"
)

// gcLoop collects, every Options.GCInterval, the history of the user
// shards this node leads: each shard is collected by its leader only, so
// a cluster sends one chain of GC commands per shard and interval, not
// one per replica.
func (db *DB) gcLoop() {
	defer db.bg.Done()
	t := time.NewTicker(db.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-db.closing:
			return
		case <-t.C:
		}
		// A failure is retried at the next tick; one that stopped the
		// engine is reported by every call from then on.
		ctx, cancel := context.WithTimeout(context.Background(), db.opts.GCInterval)
		_, _ = db.gc(ctx, true)
		cancel()
	}
}

// GC collects the history of every user shard: it raises each shard's
// replicated GC threshold to the oracle's time minus
// Options.HistoryRetention and removes the versions that no read at or
// above the threshold can see. For each key, the versions older than the
// newest one at or below the threshold go, and that one too if it is a
// tombstone. Reads at or above the threshold see the same data before and
// after; a read below it fails with ErrTimestampTooOld on every replica.
// It returns how many versions it removed.
//
// GC is replicated: each shard is collected by a chain of GC commands
// through its leader (each examines at most Options.GCVersionsPerCommand
// versions of one key span, and says where the next resumes), which every
// replica applies at the same log index, so the replicas of a shard hold
// the same versions. The GC loop (Options.GCInterval) calls it on each
// node for the shards that node leads.
func (db *DB) GC(ctx context.Context) (int, error) { return db.gc(ctx, false) }

// gc is GC, of only the shards this node leads if ledOnly. It goes on
// with the other shards when one fails and returns every failure.
func (db *DB) gc(ctx context.Context, ledOnly bool) (int, error) {
	if err := db.begin(); err != nil {
		return 0, err
	}
	defer db.ops.Done()
	now, err := db.Now(ctx)
	if err != nil {
		return 0, err
	}
	threshold := tso.FromTime(now.WallTime().Add(-db.opts.HistoryRetention))
	if threshold == tso.Zero {
		return 0, nil // the oracle's time is within the retention of the epoch
	}
	total := 0
	var errs []error
	for _, d := range db.Shards() {
		if ledOnly {
			if _, lead, err := db.node.Leader(d.ID); err != nil || !lead {
				continue
			}
		}
		n, err := db.gcShard(ctx, d, threshold)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("strata: GC of shard %d: %w", d.ID, err))
		}
	}
	return total, errors.Join(errs...)
}

// gcShard collects shard d below threshold, one GC command per key span,
// and returns how many versions the chain removed.
func (db *DB) gcShard(ctx context.Context, d shard.Descriptor, threshold tso.Timestamp) (int, error) {
	removed := 0
	var from []byte
	for {
		req := &kvpb.GCRequest{Threshold: uint64(threshold), From: from, MaxVersions: uint64(db.opts.GCVersionsPerCommand)}
		br, err := db.send(ctx, batch(&kvpb.Header{ShardId: d.ID, ShardGeneration: d.Generation},
			&kvpb.RequestUnion{Value: &kvpb.RequestUnion_Gc{Gc: req}}))
		if err != nil {
			return removed, err
		}
		resp := br.GetResponses()[0].GetGc()
		removed += int(resp.GetRemoved())
		if len(resp.GetResumeKey()) == 0 {
			return removed, nil
		}
		from = resp.GetResumeKey()
	}
}
