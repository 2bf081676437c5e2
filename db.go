package strata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/replica"
	"github.com/strata-kv/strata/router"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/statemachine"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"github.com/strata-kv/strata/txn/tso"
)

// Store-local metadata keys.
var (
	bootstrappedKey = storage.MetaKey("bootstrapped")
	nodeIDKey       = storage.MetaKey("node-id")
	replicasKey     = storage.MetaKey("replicas")
)

// DB is a Strata node. It is safe for concurrent use.
type DB struct {
	opts Options
	eng  *storage.Engine
	node *raftnode.Node
	tr   *transport.GRPC // nil for a single node without peers
	// store serves batches on this node's replicas; sender routes every
	// request of the node (the embedding API's and forwarded ones).
	store  *replica.Store
	sender *router.DistSender
	// leader runs the system shard's leader tasks (the oracle) while this
	// node leads it; clock hands this node's timestamps out (time.go).
	leader *replica.LeaderTasks
	clock  *tso.Client
	// router maps keys to shards; nil until a joining node has joined.
	router atomic.Pointer[shard.Router]

	mu struct {
		sync.Mutex
		closed bool
	}
	// peers are the nodes this one knows how to reach (InitialCluster,
	// Join, AddPeer): where to look for the system shard when it has no
	// replica of it.
	peersMu sync.Mutex
	peers   map[uint64]bool
	// replicaListMu is held from reading the hosted groups to committing
	// them as the saved replica list (replicasKey), so that of two
	// concurrent saves the later one never commits the older list.
	replicaListMu sync.Mutex
	// replicaAdminMu serializes creating a replica (createReplica) with
	// destroying one no longer a member (collectReplica).
	replicaAdminMu sync.Mutex
	ops            sync.WaitGroup // calls in flight; Close waits for them
	closing        chan struct{}
	bg             sync.WaitGroup // background goroutines (GC)
}

// Open opens the node in opts.Dir, creating and bootstrapping it if the
// directory is new.
func Open(opts Options) (*DB, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	eng, err := storage.Open(storage.Options{Dir: opts.Dir, FS: opts.FS, MinFreeBytes: opts.MinFreeBytes})
	if err != nil {
		return nil, err
	}
	db := &DB{opts: opts, eng: eng, closing: make(chan struct{}), peers: map[uint64]bool{}}
	for id := range opts.InitialCluster {
		db.peers[id] = true
	}
	if err := db.open(); err != nil {
		db.shutdown()
		return nil, err
	}
	return db, nil
}

func (db *DB) open() error {
	if err := db.checkNodeID(); err != nil {
		return err
	}
	node, err := raftnode.New(raftnode.Config{
		NodeID:           db.opts.NodeID,
		Engine:           db.eng,
		StateMachine:     &statemachine.KV{SystemGroup: shard.SystemID},
		TickInterval:     db.opts.TickInterval,
		ElectionTicks:    db.opts.ElectionTicks,
		UnsafeLeaseReads: db.opts.UnsafeLeaseReads,
		LogRetain:        db.opts.LogRetain,
		Observer:         db.opts.Observer,
		OnLeaderChange: func(group, leader uint64) {
			// Set before the node starts, so the loop sees it.
			db.leader.LeaderChanged(group, leader)
		},
		OnGroupRemoved: func(uint64) {
			// A failed commit stops the engine, and with it the node.
			_ = db.saveReplicaList()
		},
	})
	if err != nil {
		return err
	}
	db.node = node
	db.store, err = replica.New(replica.Config{
		NodeID:           db.opts.NodeID,
		Node:             node,
		Engine:           db.eng,
		SystemShard:      shard.SystemID,
		UnsafeLocalReads: db.opts.UnsafeLocalReads,
		Descriptor:       db.userDescriptor,
		CreateReplica:    db.createReplicaProto,
		Directory:        db.localDirectory,
		Timestamps:       tso.FetcherFunc(db.commitTimestamps),
	})
	if err != nil {
		return err
	}

	descs, err := db.loadDirectory()
	if err != nil {
		return err
	}
	if descs != nil {
		if err := db.recoverGroups(descs); err != nil {
			return err
		}
	}

	var tr transport.Transport // nil for a single node
	if len(db.opts.InitialCluster) > 1 || db.opts.PeerAddr != "" {
		db.tr, err = transport.New(transport.Config{NodeID: db.opts.NodeID, ListenAddr: db.opts.PeerAddr,
			Handler: node, Forward: forwardHandler{db}})
		if err != nil {
			return err
		}
		for id, addr := range db.opts.InitialCluster {
			if id != db.opts.NodeID {
				db.tr.AddPeer(id, addr)
			}
		}
		tr = db.tr
		if db.opts.WrapTransport != nil {
			tr = db.opts.WrapTransport(tr)
		}
	}
	db.sender, err = router.New(router.Config{
		NodeID:    db.opts.NodeID,
		Local:     db.store,
		Transport: tr,
		Routes:    db.routes,
		Replicas:  db.replicasOf,
		Closer:    db.closing,
	})
	if err != nil {
		return err
	}
	// Bootstrapped once the transport is up: a new directory asks its
	// peers first whether they already form a cluster without it (see
	// checkNotWiped). With Join there is nothing to bootstrap: Join fetches
	// the directory from a member.
	if descs == nil && !db.opts.Join {
		if descs, err = db.bootstrap(); err != nil {
			return err
		}
	}
	if descs != nil {
		r, err := shard.NewRouter(descs)
		if err != nil {
			return err
		}
		db.router.Store(r)
	}
	db.startClock()
	node.Start(tr)
	if db.opts.GCInterval > 0 {
		db.bg.Add(1)
		go db.gcLoop()
	}
	if db.tr != nil {
		db.bg.Add(1)
		go db.replicaGCLoop()
	}
	return nil
}

// replicaGCInterval is how often a node looks for replicas it hosts that
// are no longer members of their shard.
const replicaGCInterval = time.Second

// replicaGCLoop destroys the replicas this node hosts that were removed
// from their shard without learning it: a node removed while it was down
// (or whose power failed before the removal reached its disk) restarts
// with its old replica, which counts itself a member, hears from no
// leader (the members drop its messages) and would keep answering
// serializable reads from old data forever.
func (db *DB) replicaGCLoop() {
	defer db.bg.Done()
	t := time.NewTicker(replicaGCInterval)
	defer t.Stop()
	for {
		select {
		case <-db.closing:
			return
		case <-t.C:
		}
		for _, g := range db.node.Groups() {
			db.collectReplica(g)
		}
	}
}

// collectReplica destroys the local replica of group g if it believes it is
// a member, knows no leader, and the shard's confirmed leader says it is
// not a member: the leader's membership lacks this node, or has another
// replica (incarnation) of it. A new empty replica (one AddReplica is
// filling) counts itself no member and is left alone.
func (db *DB) collectReplica(g uint64) {
	self := db.opts.NodeID
	believesMember := func(st raftnode.GroupStatus) bool { return st.Replicas[self] == st.ReplicaID }
	st, err := db.node.Status(g)
	if err != nil || st.Leader != 0 || !believesMember(st) {
		return
	}
	if db.router.Load() == nil {
		return // not joined: no one to ask
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*replicaGCInterval)
	defer cancel()
	p, err := db.progress(ctx, g, self)
	if err != nil || p.GetReplicaId() == st.ReplicaID {
		return
	}
	// Under the lock createReplica takes, and checked again: a fresh
	// replica may have replaced the stale one meanwhile.
	db.replicaAdminMu.Lock()
	defer db.replicaAdminMu.Unlock()
	if now, err := db.node.Status(g); err != nil || now.ReplicaID != st.ReplicaID || !believesMember(now) {
		return
	}
	if err := db.node.DestroyGroup(ctx, g); err == nil {
		_ = db.saveReplicaList() // a failed commit stops the engine, and with it the node
	}
}

// checkNodeID refuses to open a directory that belongs to another node ID.
func (db *DB) checkNodeID() error {
	want := binary.BigEndian.AppendUint64(nil, db.opts.NodeID)
	v, closer, err := db.eng.Reader().Get(nodeIDKey)
	if errors.Is(err, pebble.ErrNotFound) {
		b := db.eng.NewBatch()
		defer b.Close()
		if err := b.Set(nodeIDKey, want, nil); err != nil {
			return err
		}
		return db.eng.Commit(b, true)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) != 8 || binary.BigEndian.Uint64(v) != db.opts.NodeID {
		return fmt.Errorf("strata: %s holds the data of node %x, not node %d", db.opts.Dir, v, db.opts.NodeID)
	}
	return nil
}

// loadDirectory returns the shard descriptors stored in the local replica
// of the system shard, or nil if the node was never bootstrapped.
func (db *DB) loadDirectory() ([]shard.Descriptor, error) {
	if _, err := storage.Get(db.eng.Reader(), bootstrappedKey); errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	ds, err := db.readDirectory()
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, errors.New("strata: node is bootstrapped but its shard directory is empty")
	}
	return ds, nil
}

// bootstrap creates the cluster's initial state on this node: the shard
// directory in the system shard and every group bootstrapped with the
// initial members. Every initial member writes the same state, so they
// agree without talking. It is idempotent until the final marker is
// written, so a crash midway is repaired by the next Open.
func (db *DB) bootstrap() ([]shard.Descriptor, error) {
	members := make([]uint64, 0, len(db.opts.InitialCluster))
	for id := range db.opts.InitialCluster {
		members = append(members, id)
	}
	sort.Slice(members, func(i, j int) bool { return members[i] < members[j] })
	descs, err := shard.Initial(db.opts.Shards, db.opts.SplitKeys, members)
	if err != nil {
		return nil, fmt.Errorf("strata: %w", err)
	}
	shard.Place(descs, members, db.opts.ReplicationFactor)
	system := []shard.Descriptor{{ID: shard.SystemID}}
	shard.Place(system, members, db.opts.ReplicationFactor)
	// Every member keeps the directory (it routes keys with it) but hosts
	// only the shards placed on it.
	groups := []raftnode.GroupConfig{systemGroup(system[0].Replicas)}
	for _, d := range descs {
		groups = append(groups, userGroup(d))
	}
	if err := db.checkNotWiped(groups); err != nil {
		return nil, err
	}
	b := db.eng.NewBatch()
	defer b.Close()
	for _, d := range descs {
		if err := b.Set(storage.SystemKey(shard.DirectoryKey(d.ID)), d.Encode(), nil); err != nil {
			return nil, err
		}
	}
	if err := db.eng.Commit(b, true); err != nil {
		return nil, err
	}
	var ids []uint64
	for _, g := range groups {
		if !slices.Contains(g.Peers, db.opts.NodeID) {
			continue
		}
		if err := db.node.CreateGroup(g); err != nil {
			return nil, err
		}
		ids = append(ids, g.ID)
	}
	// The marker and the replica list go last: a crash before them makes
	// the next Open bootstrap again, which finds the groups and reuses them.
	b2 := db.eng.NewBatch()
	defer b2.Close()
	if err := b2.Set(replicasKey, encodeIDs(ids), nil); err != nil {
		return nil, err
	}
	if err := b2.Set(bootstrappedKey, []byte{1}, nil); err != nil {
		return nil, err
	}
	return descs, db.eng.Commit(b2, true)
}

// peerCheckTimeout bounds how long checkNotWiped waits for a live peer to
// connect and answer.
const peerCheckTimeout = 5 * time.Second

// checkNotWiped refuses (ErrMustJoin) to bootstrap this node as an initial
// member of a group it has no raft state for when the group's leader, one
// of the other initial members, says that the node's initial replica is
// no longer a member or has acknowledged entries: the node took part in
// the cluster and lost its data, and bootstrapping it again would make it
// an empty voter that the others count as holding what it acknowledged.
//
// A peer that is down (its connection is refused: transport's Probe) is
// skipped at once, so the first start of a cluster, whose members come up
// one after the other, is not delayed; a live peer gets peerCheckTimeout
// to connect and answer, however loaded the machine. A peer that hosts no
// replica or does not lead tells nothing: a wiped node whose peers have no
// leader at the time is not caught.
func (db *DB) checkNotWiped(groups []raftnode.GroupConfig) error {
	if db.tr == nil {
		return nil
	}
	self := db.opts.NodeID
	down := map[uint64]bool{}
	for _, g := range groups {
		if !slices.Contains(g.Peers, self) {
			continue
		}
		if empty, err := db.noRaftState(g.ID); err != nil || !empty {
			return err // not empty: an earlier bootstrap stopped before its marker
		}
		for _, peer := range g.Peers {
			if peer == self || down[peer] {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), peerCheckTimeout)
			if err := db.tr.Probe(ctx, peer); err != nil {
				cancel()
				down[peer] = true
				continue
			}
			// A live peer that fails to answer (a loaded machine) is asked
			// again until the deadline: skipping it could let a wiped node
			// bootstrap.
			var resp *kvpb.NodeResponse
			var err error
			for {
				resp, err = db.sender.SendNode(ctx, peer, &kvpb.NodeRequest{Value: &kvpb.NodeRequest_ReplicaState{
					ReplicaState: &kvpb.ReplicaStateRequest{ShardId: g.ID, Peer: self}}})
				if err == nil || ctx.Err() != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
			cancel()
			if rs := resp.GetReplicaState(); err == nil && rs.GetLeader() {
				if rs.GetPeerReplicaId() != self || rs.GetPeerMatch() > 0 {
					return fmt.Errorf("%w (node %d leads shard %d, whose initial replica on node %d is %s)", ErrMustJoin,
						peer, g.ID, self, describeReplica(rs, self))
				}
				break // the leader has not heard from this node yet
			}
		}
	}
	return nil
}

func describeReplica(rs *kvpb.ReplicaStateResponse, self uint64) string {
	if rs.GetPeerReplicaId() != self {
		return "no longer a member"
	}
	return fmt.Sprintf("at match index %d", rs.GetPeerMatch())
}

// recoverGroups reopens the groups this node hosts.
func (db *DB) recoverGroups(descs []shard.Descriptor) error {
	v, err := storage.Get(db.eng.Reader(), replicasKey)
	if err != nil {
		return fmt.Errorf("strata: replica list: %w", err)
	}
	ids, err := decodeIDs(v)
	if err != nil {
		return err
	}
	byID := make(map[uint64]shard.Descriptor, len(descs))
	for _, d := range descs {
		byID[d.ID] = d
	}
	dropped := false
	for _, id := range ids {
		// A replica without any raft state holds nothing. Either its
		// destruction reached the disk and the replica list saved after
		// it did not (recreated, it would be an empty replica of a group
		// it is no member of, forever: issue 10), or it was created
		// empty and never heard from its leader (the AddReplica that
		// created it finds it gone and starts over).
		empty, err := db.noRaftState(id)
		if err != nil {
			return err
		}
		if empty {
			dropped = true
			continue
		}
		var g raftnode.GroupConfig
		if id == shard.SystemID {
			g = systemGroup(nil)
		} else if d, ok := byID[id]; ok {
			g = userGroup(d)
			g.Peers = nil
		} else {
			return fmt.Errorf("strata: local replica of shard %d has no descriptor", id)
		}
		if err := db.node.CreateGroup(g); err != nil {
			return err
		}
	}
	if dropped {
		return db.saveReplicaList()
	}
	return nil
}

// noRaftState says whether storage holds no raft state for group.
func (db *DB) noRaftState(group uint64) (bool, error) {
	start, end := storage.GroupRaftSpan(group)
	it, err := db.eng.Reader().NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return false, err
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return false, err
	}
	return empty, nil
}

func systemGroup(members []uint64) raftnode.GroupConfig {
	start, end := storage.SystemSpan()
	return raftnode.GroupConfig{ID: shard.SystemID, Spans: []raftnode.Span{{Start: start, End: end}}, Peers: members,
		KeepDataOnRemoval: true}
}

// userGroup is the group of user shard d. Its spans are its user data and
// its replicated state (the GC threshold), so that snapshots carry both
// and replica checksums cover both.
func userGroup(d shard.Descriptor) raftnode.GroupConfig {
	start, end := mvcc.Span(d.Start, d.End)
	gs, ge := storage.GroupStateSpan(d.ID)
	return raftnode.GroupConfig{ID: d.ID, Spans: []raftnode.Span{{Start: start, End: end}, {Start: gs, End: ge}}, Peers: d.Replicas}
}

func encodeIDs(ids []uint64) []byte {
	var b []byte
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	return b
}

func decodeIDs(b []byte) ([]uint64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("strata: replica list is %d bytes, not a multiple of 8", len(b))
	}
	ids := make([]uint64, 0, len(b)/8)
	for ; len(b) > 0; b = b[8:] {
		ids = append(ids, binary.BigEndian.Uint64(b))
	}
	return ids, nil
}

// prefixEnd returns the first key after every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// begin registers a call; it fails once the DB is closing.
func (db *DB) begin() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed {
		return ErrClosed
	}
	db.ops.Add(1)
	return nil
}

// Close stops the node: calls in flight fail, and the data is closed. It
// is safe to call more than once; later calls return nil.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.mu.closed {
		db.mu.Unlock()
		return nil
	}
	db.mu.closed = true
	db.mu.Unlock()
	return db.shutdown()
}

func (db *DB) shutdown() error {
	close(db.closing)
	var errs []error
	db.stopClock()
	if db.node != nil {
		errs = append(errs, db.node.Close())
	}
	if db.store != nil {
		db.store.Close() // its waves fail now that the node is closed
	}
	db.ops.Wait()
	db.bg.Wait()
	if db.tr != nil {
		errs = append(errs, db.tr.Close())
	}
	errs = append(errs, db.eng.Close())
	return errors.Join(errs...)
}

// NodeID returns this node's ID.
func (db *DB) NodeID() uint64 { return db.opts.NodeID }

// Node returns the node's raft host, for status and administration.
func (db *DB) Node() *raftnode.Node { return db.node }

// Shards returns the shard directory in key order.
func (db *DB) Shards() []shard.Descriptor {
	if r := db.router.Load(); r != nil {
		return r.All()
	}
	return nil
}

// ErrNotJoined is returned by calls on a node opened with Options.Join
// before Join succeeded.
var ErrNotJoined = errors.New("strata: node has not joined a cluster yet")

// routes returns the router, or ErrNotJoined.
func (db *DB) routes() (*shard.Router, error) {
	if r := db.router.Load(); r != nil {
		return r, nil
	}
	return nil, ErrNotJoined
}

// forwardHandler serves the requests other nodes forward to this one, as
// calls of this DB (Close waits for them).
type forwardHandler struct{ db *DB }

func (h forwardHandler) HandleForward(ctx context.Context, b []byte) ([]byte, error) {
	if err := h.db.begin(); err != nil {
		return nil, err
	}
	defer h.db.ops.Done()
	return h.db.store.HandleForward(ctx, b)
}
