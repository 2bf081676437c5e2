package strata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/internal/retry"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/router"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
)

// BatchOp is one write of a Batch: a put of Value, or a delete.
type BatchOp struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// MaxBatchSize bounds the keys and values of one Batch, in bytes.
const MaxBatchSize = 32 << 20

// MaxBatchOps bounds the number of ops of one Batch.
const MaxBatchOps = kvpb.MaxBatchRequests

// Batch applies ops. The ops that fall in one shard apply atomically, as one
// raft entry; a batch spanning shards applies per shard, so on error some
// shards' parts may have applied (an error wrapping ErrAmbiguous says which
// is unknown). Later ops on the same key win.
func (db *DB) Batch(ctx context.Context, ops []BatchOp) error {
	if len(ops) > MaxBatchOps {
		return fmt.Errorf("%w: batch of %d ops, limit %d", ErrValueTooLarge, len(ops), MaxBatchOps)
	}
	size := 0
	reqs := make([]*kvpb.RequestUnion, 0, len(ops))
	for i, op := range ops {
		if err := validateKey(op.Key); err != nil {
			return fmt.Errorf("batch op %d: %w", i, err)
		}
		if err := validateValue(op.Value); err != nil {
			return fmt.Errorf("batch op %d: %w", i, err)
		}
		size += len(op.Key) + len(op.Value)
		if op.Delete {
			reqs = append(reqs, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Delete{Delete: &api.DeleteRequest{Key: op.Key}}})
		} else {
			reqs = append(reqs, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Put{Put: &api.PutRequest{Key: op.Key, Value: op.Value}}})
		}
	}
	if size > MaxBatchSize {
		return fmt.Errorf("%w: batch of %d bytes, limit %d", ErrValueTooLarge, size, MaxBatchSize)
	}
	if len(reqs) == 0 {
		return nil
	}
	_, err := db.send(ctx, batch(nil, reqs...))
	return err
}

// ShardStatus describes one shard as this node sees it.
type ShardStatus struct {
	ID         uint64
	Start, End []byte   // user key range; both nil for the system shard
	Replicas   []uint64 // nodes holding replicas, per the shard directory
	Leader     uint64   // as known locally; 0 if unknown or not hosted here
	// Local is the local replica's raft status; nil if not hosted here.
	Local *raftnode.GroupStatus
}

// Status returns the system shard and every user shard: the directory as
// the system shard holds it (a linearizable read) and the local replicas'
// raft status.
func (db *DB) Status(ctx context.Context) ([]ShardStatus, error) {
	prefix := []byte(shard.DirectoryPrefix)
	br, err := db.send(ctx, db.system(&kvpb.RequestUnion{Value: &kvpb.RequestUnion_SystemScan{
		SystemScan: &kvpb.SystemScanRequest{Start: prefix, End: prefixEnd(prefix)}}}))
	if err != nil {
		return nil, err
	}
	out := []ShardStatus{{ID: shard.SystemID}}
	for _, kv := range br.GetResponses()[0].GetSystemScan().GetKvs() {
		d, err := shard.Decode(kv.GetValue())
		if err != nil {
			return nil, fmt.Errorf("strata: shard directory: %w", err)
		}
		out = append(out, ShardStatus{ID: d.ID, Start: d.Start, End: d.End, Replicas: d.Replicas})
	}
	for i := range out {
		st, err := db.node.Status(out[i].ID)
		if errors.Is(err, raftnode.ErrUnknownGroup) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i].Leader, out[i].Local = st.Leader, &st
		if out[i].ID == shard.SystemID {
			out[i].Replicas = append(append([]uint64(nil), st.Voters...), st.Learners...)
		}
	}
	return out, ctx.Err()
}

// system returns a batch of one request to the system shard.
func (db *DB) system(req *kvpb.RequestUnion) *kvpb.BatchRequest {
	return batch(&kvpb.Header{ShardId: shard.SystemID}, req)
}

// systemPut writes a system key through the system shard; a nil value
// deletes it.
func (db *DB) systemPut(ctx context.Context, key, value []byte) error {
	req := &kvpb.RequestUnion{Value: &kvpb.RequestUnion_SystemPut{SystemPut: &kvpb.SystemPutRequest{Key: key, Value: value}}}
	if value == nil {
		req.Value = &kvpb.RequestUnion_SystemDelete{SystemDelete: &kvpb.SystemDeleteRequest{Key: key}}
	}
	_, err := db.send(ctx, db.system(req))
	return err
}

// readDirectory returns the shard descriptors in the local replica of the
// system shard.
func (db *DB) readDirectory() ([]shard.Descriptor, error) {
	prefix := storage.SystemKey([]byte(shard.DirectoryPrefix))
	it, err := db.eng.Reader().NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ds []shard.Descriptor
	for valid := it.First(); valid; valid = it.Next() {
		d, err := shard.Decode(it.Value())
		if err != nil {
			return nil, fmt.Errorf("strata: shard directory: %w", err)
		}
		ds = append(ds, d)
	}
	return ds, it.Error()
}

// descriptor returns shard id's descriptor from the local directory.
func (db *DB) descriptor(id uint64) (shard.Descriptor, error) {
	ds, err := db.readDirectory()
	if err != nil {
		return shard.Descriptor{}, err
	}
	for _, d := range ds {
		if d.ID == id {
			return d, nil
		}
	}
	if id == shard.SystemID {
		d := shard.Descriptor{ID: id}
		if st, err := db.node.Status(id); err == nil {
			d.Replicas = append(append(d.Replicas, st.Voters...), st.Learners...)
		}
		if len(d.Replicas) == 0 {
			// No local replica, or a new empty one that knows no members
			// yet (waiting for its first snapshot):
			// any known node may have one.
			db.peersMu.Lock()
			for m := range db.peers {
				d.Replicas = append(d.Replicas, m)
			}
			db.peersMu.Unlock()
			slices.Sort(d.Replicas)
		}
		return d, nil
	}
	return shard.Descriptor{}, fmt.Errorf("strata: no shard %d", id)
}

// replicasOf returns the nodes to forward shard id's requests to, as the
// local directory knows them (the router's Config.Replicas).
func (db *DB) replicasOf(id uint64) []uint64 {
	d, err := db.descriptor(id)
	if err != nil {
		return nil
	}
	return d.Replicas
}

// userDescriptor returns the descriptor of a user shard in the node's
// routing table (the replica store's Config.Descriptor).
func (db *DB) userDescriptor(id uint64) (*kvpb.ShardDescriptor, bool) {
	r := db.router.Load()
	if r == nil {
		return nil, false
	}
	for _, d := range r.All() {
		if d.ID == id {
			return d.Proto(), true
		}
	}
	return nil, false
}

// localDirectory returns the local directory as wire descriptors (the
// replica store's Config.Directory).
func (db *DB) localDirectory() ([]*kvpb.ShardDescriptor, error) {
	ds, err := db.readDirectory()
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("%w: no shard directory here", ErrNotJoined)
	}
	out := make([]*kvpb.ShardDescriptor, len(ds))
	for i := range ds {
		out[i] = ds[i].Proto()
	}
	return out, nil
}

// adminBatch returns a batch of one admin request to a shard.
func adminBatch(shardID uint64, req *kvpb.RequestUnion) *kvpb.BatchRequest {
	return batch(&kvpb.Header{ShardId: shardID}, req)
}

func (db *DB) changeReplicas(ctx context.Context, shardID, node uint64, t kvpb.ChangeReplicasType) error {
	_, err := db.send(ctx, adminBatch(shardID, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_ChangeReplicas{
		ChangeReplicas: &kvpb.ChangeReplicasRequest{Type: t, NodeId: node}}}))
	return err
}

// AddReplica gives node a replica of shard: the node starts hosting it
// empty, joins as a learner, catches up from the leader (by log or
// snapshot), and is then promoted to voter. It returns once the node votes.
//
// Every replica added has a new raft replica ID (raftnode.AddLearner): the
// learner joins first, then the node hosts an empty replica under the
// learner's ID. A replica the node still hosts from before it was removed
// (it was down when that happened) is stale: it has an older ID, and is
// replaced by the empty one. The node is promoted only once it reports
// that its own replica is live, counts itself a member and has applied
// everything the leader had committed when the learner joined.
func (db *DB) AddReplica(ctx context.Context, shardID, node uint64) error {
	if err := db.begin(); err != nil {
		return err
	}
	defer db.ops.Done()
	d, err := db.descriptor(shardID)
	if err != nil {
		return err
	}
	p, err := db.progress(ctx, shardID, node)
	if err != nil {
		return err
	}
	if slices.Contains(p.GetVoters(), node) {
		return nil // already a voter
	}
	learner := slices.Contains(p.GetLearners(), node)
	if learner {
		// A learner from an earlier AddReplica: its replica is catching
		// up, if the node hosts it. If not, the node may have hosted it
		// and lost it (wiped), and an empty one under its ID would be
		// told of commits it does not have (and a tombstone may forbid
		// it): take the learner out and add a new one.
		rs, err := db.replicaStateOn(ctx, node, shardID)
		if err != nil {
			return err
		}
		if !rs.GetHosted() || rs.GetReplicaId() != p.GetReplicaId() {
			if err := db.changeReplicas(ctx, shardID, node, kvpb.ChangeReplicasType_CHANGE_REPLICAS_TYPE_REMOVE); err != nil {
				return fmt.Errorf("strata: remove node %d, a learner of shard %d without its replica: %w", node, shardID, err)
			}
			learner = false
		}
	}
	if !learner {
		// The node must answer before it becomes a learner, else the
		// shard would carry a member that no process hosts.
		if _, err := db.replicaStateOn(ctx, node, shardID); err != nil {
			return fmt.Errorf("strata: node %d cannot host a replica of shard %d: %w", node, shardID, err)
		}
		// Not a member: whatever replica the node hosts is from before
		// its removal (it was down then), with an older replica ID. The
		// node replaces it with an empty one under the new learner's ID.
		br, err := db.send(ctx, adminBatch(shardID, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_ChangeReplicas{
			ChangeReplicas: &kvpb.ChangeReplicasRequest{Type: kvpb.ChangeReplicasType_CHANGE_REPLICAS_TYPE_ADD_LEARNER, NodeId: node}}}))
		if err != nil {
			return fmt.Errorf("strata: add node %d to shard %d as learner: %w", node, shardID, err)
		}
		id := br.GetResponses()[0].GetChangeReplicas().GetReplicaId()
		if err := db.createReplicaOn(ctx, node, d, id, true); err != nil {
			return err
		}
	}
	// Wait until the learner has everything the leader had committed when
	// the wait began, after the learner joined (a fixed target: under
	// steady writes the commit index moves on, and the learner would never
	// quite catch it). The leader's view of it is not enough: its match
	// may count acknowledgements of a replica that has destroyed itself
	// since. The node must say so itself.
	var target uint64
	poll := retry.NewBackoffer(ctx, retry.BackofferOptions{Closer: db.closing})
	for {
		p, err := db.progress(ctx, shardID, node)
		if err != nil {
			return err
		}
		if target == 0 {
			target = p.GetCommit()
		}
		rs, err := db.replicaStateOn(ctx, node, shardID)
		if err != nil {
			return err
		}
		if !rs.GetHosted() {
			// Gone (it applied a removal of this node). AddReplica again
			// takes the learner out and starts over.
			return fmt.Errorf("strata: node %d's new replica of shard %d went away while catching up", node, shardID)
		}
		if p.GetMatch() >= target && rs.GetMember() && rs.GetApplied() >= target {
			break
		}
		if err := poll.Backoff(pollBackoff, fmt.Errorf("node %d catching up on shard %d (leader's match %d, node's applied %d of %d, member %v)",
			node, shardID, p.GetMatch(), rs.GetApplied(), target, rs.GetMember())); err != nil {
			return fmt.Errorf("strata: %w", err)
		}
	}
	if err := db.changeReplicas(ctx, shardID, node, kvpb.ChangeReplicasType_CHANGE_REPLICAS_TYPE_PROMOTE_VOTER); err != nil {
		return fmt.Errorf("strata: promote node %d in shard %d: %w", node, shardID, err)
	}
	return db.recordReplicas(ctx, shardID)
}

// RemoveReplica removes node's replica of shard. The node deletes its data
// for the shard once it applies the change.
func (db *DB) RemoveReplica(ctx context.Context, shardID, node uint64) error {
	if err := db.begin(); err != nil {
		return err
	}
	defer db.ops.Done()
	if _, err := db.descriptor(shardID); err != nil {
		return err
	}
	p, err := db.progress(ctx, shardID, node)
	if err != nil {
		return err
	}
	if !slices.Contains(p.GetVoters(), node) && !slices.Contains(p.GetLearners(), node) {
		return nil
	}
	if len(p.GetVoters()) == 1 && p.GetVoters()[0] == node {
		return fmt.Errorf("strata: node %d is the last voter of shard %d", node, shardID)
	}
	if err := db.changeReplicas(ctx, shardID, node, kvpb.ChangeReplicasType_CHANGE_REPLICAS_TYPE_REMOVE); err != nil {
		return fmt.Errorf("strata: remove node %d from shard %d: %w", node, shardID, err)
	}
	return db.recordReplicas(ctx, shardID)
}

// TransferLeader hands the leadership of shard to node, a voter, and waits
// until node leads.
func (db *DB) TransferLeader(ctx context.Context, shardID, node uint64) error {
	if err := db.begin(); err != nil {
		return err
	}
	defer db.ops.Done()
	poll := retry.NewBackoffer(ctx, retry.BackofferOptions{Closer: db.closing})
	for {
		p, err := db.progress(ctx, shardID, node)
		if err != nil {
			return err
		}
		if !slices.Contains(p.GetVoters(), node) {
			return fmt.Errorf("strata: node %d is not a voter of shard %d", node, shardID)
		}
		if p.GetLeaderId() == node {
			return nil
		}
		if _, err := db.send(ctx, adminBatch(shardID, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_TransferLeader{
			TransferLeader: &kvpb.TransferLeaderRequest{NodeId: node}}})); err != nil {
			return err
		}
		if err := poll.Backoff(pollBackoff, fmt.Errorf("leadership of shard %d did not move to node %d", shardID, node)); err != nil {
			return fmt.Errorf("strata: %w", err)
		}
	}
}

// AddPeer tells the node where to reach another node; used when nodes are
// discovered at run time rather than listed in InitialCluster.
func (db *DB) AddPeer(node uint64, peerAddr string) error {
	if db.tr == nil {
		return errors.New("strata: a single node without PeerAddr cannot have peers")
	}
	if node == 0 || peerAddr == "" {
		return fmt.Errorf("strata: bad peer %d at %q", node, peerAddr)
	}
	if node != db.opts.NodeID {
		db.tr.AddPeer(node, peerAddr)
	}
	db.peersMu.Lock()
	db.peers[node] = true
	db.peersMu.Unlock()
	return nil
}

// Join makes a node opened with Options.Join part of the cluster whose
// members' peer addresses are given: it learns where they are, fetches the
// shard directory from one of them and from then on serves calls (by
// forwarding until replicas are added to it). Joining twice is harmless.
func (db *DB) Join(ctx context.Context, peers map[uint64]string) error {
	if err := db.begin(); err != nil {
		return err
	}
	defer db.ops.Done()
	if len(peers) == 0 {
		return errors.New("strata: Join needs at least one member's peer address")
	}
	for id, addr := range peers {
		if err := db.AddPeer(id, addr); err != nil {
			return err
		}
	}
	if db.router.Load() != nil {
		return nil // joined before; the peers' addresses may be new
	}
	poll := retry.NewBackoffer(ctx, retry.BackofferOptions{Closer: db.closing})
	for {
		var lastErr error
		for id := range peers {
			if id == db.opts.NodeID {
				continue
			}
			resp, err := db.sender.SendNode(ctx, id, &kvpb.NodeRequest{Value: &kvpb.NodeRequest_Directory{Directory: &kvpb.DirectoryRequest{}}})
			if err == nil {
				return db.installDirectory(resp.GetDirectory().GetDescriptors())
			}
			lastErr = fmt.Errorf("node %d: %w", id, err)
		}
		if err := poll.Backoff(retry.RPC, lastErr); err != nil {
			return fmt.Errorf("strata: join: no member answered with the shard directory: %w", err)
		}
	}
}

// installDirectory stores a directory fetched from a member, marks the
// node as part of the cluster and starts routing with it.
func (db *DB) installDirectory(descs []*kvpb.ShardDescriptor) error {
	var ds []shard.Descriptor
	b := db.eng.NewBatch()
	defer b.Close()
	for _, p := range descs {
		if err := kvpb.ValidateDescriptor(p); err != nil {
			return fmt.Errorf("strata: join: directory from member: %w", err)
		}
		d := shard.FromProto(p)
		ds = append(ds, d)
		if err := b.Set(storage.SystemKey(shard.DirectoryKey(d.ID)), d.Encode(), nil); err != nil {
			return err
		}
	}
	r, err := shard.NewRouter(ds)
	if err != nil {
		return fmt.Errorf("strata: join: directory from member: %w", err)
	}
	if err := b.Set(bootstrappedKey, []byte{1}, nil); err != nil {
		return err
	}
	db.replicaListMu.Lock()
	defer db.replicaListMu.Unlock()
	if err := b.Set(replicasKey, encodeIDs(db.node.Groups()), nil); err != nil {
		return err
	}
	if err := db.eng.Commit(b, true); err != nil {
		return err
	}
	db.router.Store(r)
	return nil
}

func (db *DB) progress(ctx context.Context, shardID, node uint64) (*kvpb.ProgressResponse, error) {
	br, err := db.send(ctx, adminBatch(shardID, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Progress{
		Progress: &kvpb.ProgressRequest{NodeId: node}}}))
	if err != nil {
		return nil, err
	}
	return br.GetResponses()[0].GetProgress(), nil
}

// askNode sends req to node itself (not to the leader of a shard),
// retrying until the node can be reached or ctx ends, and returns its
// answer.
func (db *DB) askNode(ctx context.Context, node uint64, req *kvpb.NodeRequest) (*kvpb.NodeResponse, error) {
	if node != db.opts.NodeID && db.tr == nil {
		return nil, fmt.Errorf("strata: no transport to reach node %d", node)
	}
	poll := retry.NewBackoffer(ctx, retry.BackofferOptions{Closer: db.closing})
	for {
		resp, err := db.sender.SendNode(ctx, node, req)
		switch {
		case err == nil:
			return resp, nil
		case errors.Is(err, transport.ErrUnknownPeer):
			return nil, fmt.Errorf("strata: node %d is not a known member: %w", node, err)
		case !errors.Is(err, router.ErrUnreached):
			return nil, fmt.Errorf("strata: %w", err)
		}
		if err := poll.Backoff(retry.RPC, err); err != nil {
			return nil, fmt.Errorf("strata: reach node %d: %w", node, err)
		}
	}
}

// createReplicaOn makes node host replica replicaID of d: an empty one if
// it has none, or if fresh (replacing an older one it has).
func (db *DB) createReplicaOn(ctx context.Context, node uint64, d shard.Descriptor, replicaID uint64, fresh bool) error {
	_, err := db.askNode(ctx, node, &kvpb.NodeRequest{Value: &kvpb.NodeRequest_CreateReplica{
		CreateReplica: &kvpb.CreateReplicaRequest{Shard: d.Proto(), Fresh: fresh, ReplicaId: replicaID}}})
	if err != nil {
		return fmt.Errorf("strata: node %d cannot host shard %d: %w", node, d.ID, err)
	}
	return nil
}

// replicaStateOn asks node for the state of its replica of shardID.
func (db *DB) replicaStateOn(ctx context.Context, node, shardID uint64) (*kvpb.ReplicaStateResponse, error) {
	resp, err := db.askNode(ctx, node, &kvpb.NodeRequest{Value: &kvpb.NodeRequest_ReplicaState{
		ReplicaState: &kvpb.ReplicaStateRequest{ShardId: shardID}}})
	if err != nil {
		return nil, fmt.Errorf("strata: state of node %d's replica of shard %d: %w", node, shardID, err)
	}
	return resp.GetReplicaState(), nil
}

// createReplicaProto serves a node request to host a replica.
func (db *DB) createReplicaProto(ctx context.Context, p *kvpb.ShardDescriptor, replicaID uint64, fresh bool) error {
	if err := kvpb.ValidateDescriptor(p); err != nil {
		return fmt.Errorf("%w: %w", kvpb.ErrBadBatch, err)
	}
	if replicaID != 0 && replicaid.Node(replicaID) != db.opts.NodeID {
		return fmt.Errorf("%w: replica %#x is not one of node %d", kvpb.ErrBadBatch, replicaID, db.opts.NodeID)
	}
	return db.createReplica(ctx, shard.FromProto(p), replicaID, fresh)
}

// createReplica starts hosting an empty replica of d here, with raft
// replica ID replicaID (0: the node's incarnation-0 ID); it fills when the
// leader sends it a snapshot or its log. An existing replica with that ID
// is kept. If fresh, an existing replica with another ID is destroyed
// first, once d's leader confirms that this node's member replica is not
// it (it is stale).
func (db *DB) createReplica(ctx context.Context, d shard.Descriptor, replicaID uint64, fresh bool) error {
	db.replicaAdminMu.Lock()
	defer db.replicaAdminMu.Unlock()
	g := userGroup(d)
	if d.ID == shard.SystemID {
		g = systemGroup(nil)
	}
	g.Peers, g.ReplicaID = nil, replicaID
	st, err := db.node.Status(d.ID)
	switch {
	case err == nil && (replicaID == 0 || st.ReplicaID == replicaID):
		return nil // hosted already
	case err == nil && !fresh:
		return fmt.Errorf("%w: node %d hosts replica %#x of shard %d, not %#x", raftnode.ErrGroupExists, db.opts.NodeID, st.ReplicaID, d.ID, replicaID)
	case err == nil:
		// Destroying a member's replica would lose a copy of the data:
		// ask the leader rather than trust the request (or the local
		// replica, which still counts itself a member).
		self := db.opts.NodeID
		p, err := db.progress(ctx, d.ID, self)
		if err != nil {
			return fmt.Errorf("strata: ask shard %d's leader which replica of node %d is a member: %w", d.ID, self, err)
		}
		if p.GetReplicaId() == st.ReplicaID {
			return fmt.Errorf("strata: shard %d's leader counts node %d's replica %#x as a member: it is not stale", d.ID, self, st.ReplicaID)
		}
		if err := db.node.DestroyGroup(ctx, d.ID); err != nil && !errors.Is(err, raftnode.ErrUnknownGroup) {
			return fmt.Errorf("strata: drop the stale replica of shard %d: %w", d.ID, err)
		}
	case !errors.Is(err, raftnode.ErrUnknownGroup):
		return err
	}
	if err := db.node.CreateGroup(g); err != nil {
		return err
	}
	return db.saveReplicaList()
}

// saveReplicaList records which groups this node hosts, for the next Open.
// Concurrent calls (replica creation, and the raft loop after a removal)
// are serialized from reading the groups to the commit: otherwise a save
// that read the groups first could commit last and drop a group another
// one had added (issue 10, defect 7). It must not be called with anything
// held that the raft loop waits for.
func (db *DB) saveReplicaList() error {
	db.replicaListMu.Lock()
	defer db.replicaListMu.Unlock()
	b := db.eng.NewBatch()
	defer b.Close()
	if err := b.Set(replicasKey, encodeIDs(db.node.Groups()), nil); err != nil {
		return err
	}
	return db.eng.Commit(b, true)
}

// recordReplicas writes the shard's current membership into its
// descriptor in the system shard.
func (db *DB) recordReplicas(ctx context.Context, shardID uint64) error {
	if shardID == shard.SystemID {
		return nil // the system shard's membership is its raft configuration
	}
	d, err := db.descriptor(shardID)
	if err != nil {
		return err
	}
	p, err := db.progress(ctx, shardID, 0)
	if err != nil {
		return err
	}
	d.Replicas = append(append([]uint64(nil), p.GetVoters()...), p.GetLearners()...)
	slices.Sort(d.Replicas)
	return db.systemPut(ctx, shard.DirectoryKey(d.ID), d.Encode())
}

// pollBackoff paces the loops that wait for a replica to catch up or a
// leadership to move.
var pollBackoff = retry.Config{Name: "poll", Options: retry.Options{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}}
