package strata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/statemachine"
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

// Batch applies ops. The ops that fall in one shard apply atomically, as one
// raft entry; a batch spanning shards applies per shard, so on error some
// shards' parts may have applied (an error wrapping ErrAmbiguous says which
// is unknown). Later ops on the same key win.
func (db *DB) Batch(ctx context.Context, ops []BatchOp) error {
	size := 0
	for i, op := range ops {
		if err := validateKey(op.Key); err != nil {
			return fmt.Errorf("batch op %d: %w", i, err)
		}
		if err := validateValue(op.Value); err != nil {
			return fmt.Errorf("batch op %d: %w", i, err)
		}
		size += len(op.Key) + len(op.Value)
	}
	if size > MaxBatchSize {
		return fmt.Errorf("%w: batch of %d bytes, limit %d", ErrValueTooLarge, size, MaxBatchSize)
	}
	if err := db.begin(); err != nil {
		return err
	}
	defer db.ops.Done()
	router, err := db.routes()
	if err != nil {
		return err
	}
	byShard := map[uint64][]statemachine.Mutation{}
	var order []uint64
	for _, op := range ops {
		id := router.Lookup(op.Key).ID
		if _, ok := byShard[id]; !ok {
			order = append(order, id)
		}
		byShard[id] = append(byShard[id], statemachine.Mutation{Key: op.Key, Value: op.Value, Delete: op.Delete})
	}
	errs := make([]error, len(order))
	done := make(chan int, len(order))
	for i, id := range order {
		go func() {
			cmd := statemachine.Command{Op: statemachine.OpBatch, Batch: byShard[id]}
			_, errs[i] = db.doLocked(ctx, &request{op: opBatch, shard: id, value: cmd.Encode()})
			done <- i
		}()
	}
	for range order {
		<-done
	}
	return errors.Join(errs...)
}

// ScanKeys is Scan without the values.
func (db *DB) ScanKeys(ctx context.Context, start, end []byte, limit int) ([][]byte, error) {
	kvs, err := db.scan(ctx, start, end, limit, true)
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys, nil
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
	if err := db.begin(); err != nil {
		return nil, err
	}
	defer db.ops.Done()
	resp, err := db.doLocked(ctx, &request{op: opDirectory, shard: shard.SystemID})
	if err != nil {
		return nil, err
	}
	out := []ShardStatus{{ID: shard.SystemID}}
	var descs []shard.Descriptor
	for _, kv := range resp.kvs {
		d, err := shard.Decode(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("strata: shard directory: %w", err)
		}
		descs = append(descs, d)
	}
	for _, d := range descs {
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

// readDirectory returns the shard descriptors in the local replica of the
// system shard.
func (db *DB) readDirectory() ([]shard.Descriptor, error) {
	prefix := storage.SystemKey([]byte(shard.DirectoryPrefix))
	it, err := db.eng.DB().NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
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
			sort.Slice(d.Replicas, func(i, j int) bool { return d.Replicas[i] < d.Replicas[j] })
		}
		return d, nil
	}
	return shard.Descriptor{}, fmt.Errorf("strata: no shard %d", id)
}

// Membership change kinds carried by opConfChange.
const (
	changeAddLearner byte = iota
	changePromote
	changeRemove
)

// AddReplica gives node a replica of shard: the node starts hosting it
// empty, joins as a learner, catches up from the leader (by log or
// snapshot), and is then promoted to voter. It returns once the node votes.
//
// A replica the node still hosts from before it was removed (it was down
// when that happened) is stale: it is replaced by an empty one before the
// node joins, and the node is promoted only once it reports that its own
// replica is live, counts itself a member and has applied everything the
// leader had committed when the learner joined.
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
	if contains(p.voters, node) {
		return nil // already a voter
	}
	learner := contains(p.learners, node)
	if learner {
		// A learner from an earlier AddReplica: its replica is catching
		// up, if it still has one. If not, an empty one cannot take its
		// place: the leader's progress for it would make the new replica
		// commit entries it does not have. Take the learner out first.
		rs, err := db.replicaStateOn(ctx, node, shardID)
		if err != nil {
			return err
		}
		if !rs.hosted {
			if _, err := db.doLocked(ctx, &request{op: opConfChange, shard: shardID, node: node, value: []byte{changeRemove}}); err != nil {
				return fmt.Errorf("strata: remove node %d, a learner of shard %d without a replica: %w", node, shardID, err)
			}
			learner = false
		}
	}
	if !learner {
		// Not a member: whatever replica the node hosts is from before
		// its removal (it was down then), and would replay that removal,
		// and destroy itself, while acknowledging the log the leader sends
		// it. The node must replace it with an empty one.
		if err := db.createReplicaOn(ctx, node, d, true); err != nil {
			return err
		}
		if _, err := db.doLocked(ctx, &request{op: opConfChange, shard: shardID, node: node, value: []byte{changeAddLearner}}); err != nil {
			return fmt.Errorf("strata: add node %d to shard %d as learner: %w", node, shardID, err)
		}
	}
	// Wait until the learner has everything the leader had committed when
	// the wait began, after the learner joined (a fixed target: under
	// steady writes the commit index moves on, and the learner would never
	// quite catch it). The leader's view of it is not enough: its match
	// may count acknowledgements of a replica that has destroyed itself
	// since. The node must say so itself.
	var target uint64
	for {
		p, err := db.progress(ctx, shardID, node)
		if err != nil {
			return err
		}
		if target == 0 {
			target = p.commit
		}
		rs, err := db.replicaStateOn(ctx, node, shardID)
		if err != nil {
			return err
		}
		if !rs.hosted {
			// Gone (it applied a removal of this node). AddReplica again
			// takes the learner out and starts over.
			return fmt.Errorf("strata: node %d's new replica of shard %d went away while catching up", node, shardID)
		}
		if p.match >= target && rs.member && rs.applied >= target {
			break
		}
		if err := db.waitBackoff(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("strata: node %d catching up on shard %d (leader's match %d, node's applied %d of %d, member %v): %w",
				node, shardID, p.match, rs.applied, target, rs.member, err)
		}
	}
	if _, err := db.doLocked(ctx, &request{op: opConfChange, shard: shardID, node: node, value: []byte{changePromote}}); err != nil {
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
	if !contains(p.voters, node) && !contains(p.learners, node) {
		return nil
	}
	if len(p.voters) == 1 && p.voters[0] == node {
		return fmt.Errorf("strata: node %d is the last voter of shard %d", node, shardID)
	}
	if _, err := db.doLocked(ctx, &request{op: opConfChange, shard: shardID, node: node, value: []byte{changeRemove}}); err != nil {
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
	for {
		p, err := db.progress(ctx, shardID, node)
		if err != nil {
			return err
		}
		if !contains(p.voters, node) {
			return fmt.Errorf("strata: node %d is not a voter of shard %d", node, shardID)
		}
		if p.leader == node {
			return nil
		}
		if _, err := db.doLocked(ctx, &request{op: opTransfer, shard: shardID, node: node}); err != nil {
			return err
		}
		if err := db.waitBackoff(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("strata: leadership of shard %d did not move to node %d: %w", shardID, node, err)
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
	req := (&request{op: opDirectory}).encode()
	for {
		var lastErr error
		for id := range peers {
			if id == db.opts.NodeID {
				continue
			}
			out, err := db.node.Forward(ctx, id, req)
			if err == nil {
				var resp response
				if resp, err = decodeResponse(out); err == nil && resp.code != codeOK {
					err = errors.New(resp.message)
				}
				if err == nil {
					return db.installDirectory(resp.kvs)
				}
			}
			lastErr = fmt.Errorf("node %d: %w", id, err)
		}
		if err := db.waitBackoff(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("strata: join: no member answered with the shard directory (last: %v): %w", lastErr, err)
		}
	}
}

// installDirectory stores a directory fetched from a member, marks the
// node as part of the cluster and starts routing with it.
func (db *DB) installDirectory(kvs []KV) error {
	var ds []shard.Descriptor
	b := db.eng.NewBatch()
	defer b.Close()
	for _, kv := range kvs {
		d, err := shard.Decode(kv.Value)
		if err != nil {
			return fmt.Errorf("strata: join: directory from member: %w", err)
		}
		ds = append(ds, d)
		if err := b.Set(storage.SystemKey(shard.DirectoryKey(d.ID)), kv.Value, nil); err != nil {
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

// progress is a shard leader's view of one member.
type progress struct {
	leader, commit, match uint64
	voters, learners      []uint64
}

func (p *progress) encode() []byte {
	b := binary.AppendUvarint(nil, p.leader)
	b = binary.AppendUvarint(b, p.commit)
	b = binary.AppendUvarint(b, p.match)
	for _, ids := range [][]uint64{p.voters, p.learners} {
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = binary.AppendUvarint(b, id)
		}
	}
	return b
}

func decodeProgress(b []byte) (progress, error) {
	w := wire{b: b}
	p := progress{leader: w.uvarint(), commit: w.uvarint(), match: w.uvarint()}
	for _, ids := range []*[]uint64{&p.voters, &p.learners} {
		n := w.uvarint()
		if n > uint64(len(b)) {
			return progress{}, errBadWire
		}
		for i := uint64(0); i < n; i++ {
			*ids = append(*ids, w.uvarint())
		}
	}
	if w.err != nil || len(w.b) != 0 {
		return progress{}, fmt.Errorf("%w: progress", errBadWire)
	}
	return p, nil
}

func (db *DB) progress(ctx context.Context, shardID, node uint64) (progress, error) {
	resp, err := db.doLocked(ctx, &request{op: opProgress, shard: shardID, node: node})
	if err != nil {
		return progress{}, err
	}
	return decodeProgress(resp.value)
}

// execAdmin runs the administrative requests on the local replica.
func (db *DB) execAdmin(ctx context.Context, req *request) (response, error) {
	switch req.op {
	case opConfChange:
		if len(req.value) != 1 {
			return response{}, fmt.Errorf("%w: membership change", errBadWire)
		}
		var err error
		switch req.value[0] {
		case changeAddLearner:
			err = db.node.AddLearner(ctx, req.shard, req.node)
		case changePromote:
			err = db.node.PromoteVoter(ctx, req.shard, req.node)
		case changeRemove:
			err = db.node.RemoveMember(ctx, req.shard, req.node)
		default:
			err = fmt.Errorf("%w: membership change kind %d", errBadWire, req.value[0])
		}
		return response{}, err
	case opTransfer:
		return response{}, db.node.TransferLeader(req.shard, req.node)
	case opProgress:
		st, err := db.node.Status(req.shard)
		if err != nil {
			return response{}, err
		}
		if !st.IsLeader {
			return response{}, &NotLeaderError{Group: req.shard, Leader: st.Leader}
		}
		p := progress{leader: st.Leader, commit: st.Commit, match: st.Progress[req.node], voters: st.Voters, learners: st.Learners}
		return response{value: p.encode()}, nil
	case opDirectory:
		// Addressed to the system shard, the read is linearizable; with no
		// shard it is the local copy (what a joining node needs).
		if req.shard == shard.SystemID && !db.opts.UnsafeLocalReads {
			if err := db.node.ReadIndex(ctx, shard.SystemID); err != nil {
				return response{}, err
			}
		}
		ds, err := db.readDirectory()
		if err != nil || len(ds) == 0 {
			return response{}, fmt.Errorf("%w: no shard directory here: %v", ErrNotJoined, err)
		}
		resp := response{}
		for _, d := range ds {
			resp.kvs = append(resp.kvs, KV{Key: shard.DirectoryKey(d.ID), Value: d.Encode()})
		}
		return resp, nil
	case opCreateReplica:
		d, err := shard.Decode(req.value)
		if err != nil {
			return response{}, err
		}
		return response{}, db.createReplica(ctx, d, req.fresh)
	case opReplicaState:
		rs, err := db.replicaState(req.shard)
		if err != nil {
			return response{}, err
		}
		return rs.response(), nil
	}
	return response{}, fmt.Errorf("strata: unknown request op %d", req.op)
}

// askNode runs req on node itself (not on the leader of req's shard),
// retrying until the node can be reached, and returns its response.
func (db *DB) askNode(ctx context.Context, node uint64, req *request) (response, error) {
	if node == db.opts.NodeID {
		return db.execAdmin(ctx, req)
	}
	if db.tr == nil {
		return response{}, fmt.Errorf("strata: no transport to reach node %d", node)
	}
	for {
		out, err := db.node.Forward(ctx, node, req.encode())
		if err == nil {
			resp, err := decodeResponse(out)
			if err != nil {
				return response{}, err
			}
			if resp.code != codeOK {
				return response{}, fmt.Errorf("strata: node %d: %s", node, resp.message)
			}
			return resp, nil
		}
		if errors.Is(err, transport.ErrUnknownPeer) {
			return response{}, fmt.Errorf("strata: node %d is not a known member: %w", node, err)
		}
		if err := db.waitBackoff(ctx, 50*time.Millisecond); err != nil {
			return response{}, fmt.Errorf("strata: reach node %d: %w", node, err)
		}
	}
}

// createReplicaOn makes node host a replica of d: an empty one if it has
// none, or if fresh (replacing the one it has).
func (db *DB) createReplicaOn(ctx context.Context, node uint64, d shard.Descriptor, fresh bool) error {
	_, err := db.askNode(ctx, node, &request{op: opCreateReplica, shard: d.ID, value: d.Encode(), fresh: fresh})
	if err != nil {
		return fmt.Errorf("strata: node %d cannot host shard %d: %w", node, d.ID, err)
	}
	return nil
}

// createReplica starts hosting an empty replica of d here; it fills when
// the leader sends it a snapshot or its log. An existing replica is kept,
// unless fresh: then, if d's leader confirms that this node is not a
// member, the replica is stale and is destroyed first.
func (db *DB) createReplica(ctx context.Context, d shard.Descriptor, fresh bool) error {
	g := userGroup(d)
	if d.ID == shard.SystemID {
		g = systemGroup(nil)
	}
	g.Peers = nil
	if fresh {
		// Destroying a member's replica would lose a copy of the data:
		// ask the leader rather than trust the request (or the local
		// replica, which still counts itself a member).
		self := db.opts.NodeID
		p, err := db.progress(ctx, d.ID, self)
		if err != nil {
			return fmt.Errorf("strata: ask shard %d's leader whether node %d is a member: %w", d.ID, self, err)
		}
		if contains(p.voters, self) || contains(p.learners, self) {
			return fmt.Errorf("strata: shard %d's leader counts node %d as a member: its replica is not stale", d.ID, self)
		}
		if err := db.node.DestroyGroup(ctx, d.ID); err != nil && !errors.Is(err, raftnode.ErrUnknownGroup) {
			return fmt.Errorf("strata: drop the stale replica of shard %d: %w", d.ID, err)
		}
	}
	if err := db.node.CreateGroup(g); err != nil && (fresh || !errors.Is(err, raftnode.ErrGroupExists)) {
		return err
	}
	return db.saveReplicaList()
}

// replicaState is a node's own view of its replica of a shard.
type replicaState struct {
	hosted  bool   // the node hosts a replica
	applied uint64 // the replica's applied index
	member  bool   // its applied configuration has the node as a voter or learner
}

func (rs replicaState) response() response {
	b := binary.AppendUvarint(nil, rs.applied)
	if rs.member {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return response{found: rs.hosted, value: b}
}

func decodeReplicaState(resp response) (replicaState, error) {
	w := wire{b: resp.value}
	rs := replicaState{hosted: resp.found, applied: w.uvarint()}
	rs.member = w.byte() == 1
	if w.err != nil || len(w.b) != 0 {
		return replicaState{}, fmt.Errorf("%w: replica state", errBadWire)
	}
	return rs, nil
}

// replicaState returns the state of the local replica of shardID.
func (db *DB) replicaState(shardID uint64) (replicaState, error) {
	st, err := db.node.Status(shardID)
	if errors.Is(err, raftnode.ErrUnknownGroup) {
		return replicaState{}, nil
	}
	if err != nil {
		return replicaState{}, err
	}
	self := db.opts.NodeID
	return replicaState{hosted: true, applied: st.Applied, member: contains(st.Voters, self) || contains(st.Learners, self)}, nil
}

// replicaStateOn asks node for the state of its replica of shardID.
func (db *DB) replicaStateOn(ctx context.Context, node, shardID uint64) (replicaState, error) {
	resp, err := db.askNode(ctx, node, &request{op: opReplicaState, shard: shardID})
	if err != nil {
		return replicaState{}, fmt.Errorf("strata: state of node %d's replica of shard %d: %w", node, shardID, err)
	}
	return decodeReplicaState(resp)
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
	d.Replicas = append(append([]uint64(nil), p.voters...), p.learners...)
	sort.Slice(d.Replicas, func(i, j int) bool { return d.Replicas[i] < d.Replicas[j] })
	_, err = db.doLocked(ctx, &request{op: opSystemPut, shard: shard.SystemID, key: shard.DirectoryKey(d.ID), value: d.Encode()})
	return err
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
