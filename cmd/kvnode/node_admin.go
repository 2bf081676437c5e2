package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/membership"
	"github.com/strata-kv/strata/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// admin is the node's server.Admin: membership from gossip, placement
// changes from the DB.
type admin struct {
	db *strata.DB
	ml *membership.Membership
}

var _ server.Admin = (*admin)(nil)

// Members lists the members gossip knows, dead and departed ones too.
func (a *admin) Members(context.Context) ([]*api.Member, error) {
	ms := a.ml.Members()
	out := make([]*api.Member, len(ms))
	for i, m := range ms {
		out[i] = &api.Member{
			NodeId: m.NodeID, PeerAddr: m.PeerAddr, ClientAddr: m.ClientAddr, HttpAddr: m.HTTPAddr,
			GossipAddr: m.GossipAddr, State: m.State.String(),
		}
	}
	return out, nil
}

func (a *admin) AddReplica(ctx context.Context, shard, node uint64) error {
	return a.db.AddReplica(ctx, shard, node)
}

func (a *admin) RemoveReplica(ctx context.Context, shard, node uint64) error {
	return a.db.RemoveReplica(ctx, shard, node)
}

func (a *admin) TransferLeader(ctx context.Context, shard, node uint64) error {
	return a.db.TransferLeader(ctx, shard, node)
}

// RemoveNode removes every replica node holds, after moving away the
// leaderships it has, then drops it from the node registry. Its gossip
// entry goes once it is dead or has left.
func (a *admin) RemoveNode(ctx context.Context, node uint64) error {
	shards, err := a.db.Status(ctx)
	if err != nil {
		return err
	}
	known := false
	for _, sh := range shards {
		known = known || slices.Contains(sh.Replicas, node)
	}
	if nodes, err := a.db.Nodes(); err == nil {
		for _, r := range nodes {
			known = known || r.ID == node
		}
	}
	if !known {
		return status.Errorf(codes.NotFound, "node %d is not a member of the cluster", node)
	}
	for _, sh := range shards {
		if !slices.Contains(sh.Replicas, node) {
			continue
		}
		if sh.Leader == node {
			if err := a.moveLeader(ctx, sh, node); err != nil {
				return err
			}
		}
		if err := a.db.RemoveReplica(ctx, sh.ID, node); err != nil {
			return fmt.Errorf("remove node %d from shard %d: %w", node, sh.ID, err)
		}
	}
	return a.db.ForgetNode(ctx, node)
}

// moveLeader hands shard sh's leadership from node to another replica.
func (a *admin) moveLeader(ctx context.Context, sh strata.ShardStatus, node uint64) error {
	var last error
	for _, to := range sh.Replicas {
		if to == node {
			continue
		}
		if last = a.db.TransferLeader(ctx, sh.ID, to); last == nil {
			return nil
		}
	}
	if last == nil {
		return fmt.Errorf("shard %d has no replica but node %d to lead it", sh.ID, node)
	}
	return fmt.Errorf("move leadership of shard %d away from node %d: %w", sh.ID, node, last)
}

// ClientAddr returns node's client address from gossip, else from the
// node registry.
func (a *admin) ClientAddr(node uint64) string {
	if m, ok := a.ml.Member(node); ok && m.ClientAddr != "" {
		return m.ClientAddr
	}
	recs, err := a.db.Nodes()
	if err != nil {
		return ""
	}
	for _, r := range recs {
		if r.ID == node {
			return r.ClientAddr
		}
	}
	return ""
}
