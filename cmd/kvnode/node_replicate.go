package main

import (
	"context"
	"time"

	"github.com/strata-kv/strata/membership"
	"github.com/strata-kv/strata/shard"
)

// replicateInterval is how often the system shard's leader looks for shards
// below the replication factor. A shard must stay below it for
// --replica-grace before a replica is added, so that a removal in progress
// (kvnode node remove) is not undone.
const replicateInterval = time.Second

// replicate brings shards below the replication factor back up, adding
// replicas on live members that hold the fewest (each starts as a learner
// and is promoted once caught up, by DB.AddReplica). Only the node leading
// the system shard acts, one replica at a time, so nodes do not race each
// other, and only on members that are alive and registered. It returns
// when ctx ends.
func (n *node) replicate(ctx context.Context) {
	t := time.NewTicker(replicateInterval)
	defer t.Stop()
	below := map[uint64]time.Time{} // shard -> when first seen below the factor
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if move, ok := n.nextReplicaMove(ctx, below); ok {
			actx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := n.db.AddReplica(actx, move.Shard, move.Node); err != nil && ctx.Err() == nil {
				n.log.Printf("up-replicating shard %d onto node %d: %v", move.Shard, move.Node, err)
			} else if err == nil {
				n.log.Printf("shard %d was below %d replicas: added node %d", move.Shard, n.cfg.ReplicationFactor, move.Node)
			}
			cancel()
		}
	}
}

// nextReplicaMove returns the first replica to add, if this node leads the
// system shard and some shard has been below the replication factor for
// the grace period. below remembers since when each shard is short.
func (n *node) nextReplicaMove(ctx context.Context, below map[uint64]time.Time) (shard.Move, bool) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	shards, err := n.db.Status(sctx)
	if err != nil || len(shards) == 0 || shards[0].Local == nil || !shards[0].Local.IsLeader {
		return shard.Move{}, false
	}
	now := time.Now()
	var ds, due []shard.Descriptor
	for _, s := range shards[1:] {
		d := shard.Descriptor{ID: s.ID, Replicas: s.Replicas}
		ds = append(ds, d)
		if len(s.Replicas) >= n.cfg.ReplicationFactor {
			delete(below, s.ID)
			continue
		}
		if _, ok := below[s.ID]; !ok {
			below[s.ID] = now
		}
		if now.Sub(below[s.ID]) >= n.cfg.ReplicaGrace {
			due = append(due, d)
		}
	}
	if len(due) == 0 {
		return shard.Move{}, false
	}
	registered := map[uint64]bool{}
	nodes, err := n.db.Nodes()
	if err != nil {
		return shard.Move{}, false
	}
	for _, r := range nodes {
		registered[r.ID] = true
	}
	var candidates []uint64
	for _, m := range n.ml.Members() {
		if m.State == membership.Alive && registered[m.NodeID] {
			candidates = append(candidates, m.NodeID)
		}
	}
	// Plan over every shard so the load counts are right, act on the due.
	moves := shard.PlanUpReplication(ds, candidates, n.cfg.ReplicationFactor)
	for _, m := range moves {
		for _, d := range due {
			if m.Shard == d.ID {
				return m, true
			}
		}
	}
	return shard.Move{}, false
}
