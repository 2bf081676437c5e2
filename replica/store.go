package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/statemachine"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/txn/tso"
	"google.golang.org/protobuf/proto"
)

// DefaultMaxReadBytes bounds the keys and values one batch's reads return
// when the batch sets no max_bytes of its own: a larger scan comes back in
// pages, each with a resume key.
const DefaultMaxReadBytes = 8 << 20

// Config configures a Store.
type Config struct {
	// NodeID is this node's ID. Required.
	NodeID uint64
	// Node hosts the replicas. Required.
	Node *raftnode.Node
	// Engine is the node's storage, read at the serializable level.
	// Required.
	Engine *storage.Engine
	// SystemShard is the ID of the system shard. Default: 1.
	SystemShard uint64
	// UnsafeLocalReads answers linearizable reads from the local replica
	// without confirming leadership: reads may be stale. For tests of the
	// checkers only. Default: false.
	UnsafeLocalReads bool
	// MaxReadBytes bounds what one batch's reads return when the batch sets
	// no max_bytes. Default: DefaultMaxReadBytes.
	MaxReadBytes uint64
	// Descriptor returns this node's descriptor of a user shard, used to
	// check that a batch's keys are in its range. Required.
	Descriptor func(id uint64) (*kvpb.ShardDescriptor, bool)
	// CreateReplica makes the node host an empty replica of a shard, with
	// raft replica ID replicaID (0: the node's incarnation-0 ID), for a
	// NodeRequest; fresh replaces a stale one (kvpb.CreateReplicaRequest).
	// Required.
	CreateReplica func(ctx context.Context, d *kvpb.ShardDescriptor, replicaID uint64, fresh bool) error
	// Directory returns the node's local copy of the shard directory, for
	// a NodeRequest. Required.
	Directory func() ([]*kvpb.ShardDescriptor, error)
	// Timestamps hands out commit timestamps from the timestamp oracle, n
	// consecutive ones at a time. Required.
	Timestamps tso.Fetcher
}

// Store serves the batches addressed to this node's replicas. It is safe
// for concurrent use.
type Store struct {
	cfg    Config
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the sequencers' wave goroutines
	// leader runs the system shard's leader tasks (the oracle), once
	// StartLeaderTasks set it; see leader.go.
	leader atomic.Pointer[LeaderTasks]

	mu struct {
		sync.Mutex
		seqs map[uint64]*sequencer // by shard, created on first write
	}
}

// New returns a Store.
func New(cfg Config) (*Store, error) {
	if cfg.NodeID == 0 || cfg.Node == nil || cfg.Engine == nil || cfg.Descriptor == nil ||
		cfg.CreateReplica == nil || cfg.Directory == nil || cfg.Timestamps == nil {
		return nil, errors.New("replica: Config needs NodeID, Node, Engine, Descriptor, CreateReplica, Directory and Timestamps")
	}
	if cfg.SystemShard == 0 {
		cfg.SystemShard = 1
	}
	if cfg.MaxReadBytes == 0 {
		cfg.MaxReadBytes = DefaultMaxReadBytes
	}
	st := &Store{cfg: cfg}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	st.mu.seqs = make(map[uint64]*sequencer)
	return st, nil
}

// Close stops the store's goroutines: writes waiting for a commit
// timestamp fail, not proposed. Call it once the node stops serving.
func (s *Store) Close() {
	s.cancel()
	s.wg.Wait()
}

// sequencer returns shard id's sequencer.
func (s *Store) sequencer(id uint64) *sequencer {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.mu.seqs[id]
	if q == nil {
		q = newSequencer(s.ctx, &s.wg, s.cfg.Node, id, s.cfg.Timestamps)
		s.mu.seqs[id] = q
	}
	return q
}

// Err returns why the node stopped (after a storage failure, or Close), or
// nil while it runs. A stopped node's batches fail with kvpb.ErrUnavailable.
func (s *Store) Err() error { return s.cfg.Node.Err() }

// Send serves ba on the local replica of ba.Header.ShardId. Exactly one of
// the response and the error is non-nil. Errors are kvpb's typed errors
// (matched with errors.Is and errors.As; the local cause stays in the
// chain), or a validation error wrapping kvpb.ErrBadBatch.
func (s *Store) Send(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	if err := kvpb.Validate(ba); err != nil {
		return nil, err
	}
	id := ba.GetHeader().GetShardId()
	if err := s.checkRange(ba); err != nil {
		return nil, err
	}
	var (
		br  *kvpb.BatchResponse
		err error
	)
	switch {
	case ba.IsAdmin():
		br, err = s.admin(ctx, ba)
	case ba.IsReadOnly():
		br, err = s.read(ctx, ba)
	default:
		br, err = s.write(ctx, ba)
	}
	if err != nil {
		return nil, s.kvError(id, err)
	}
	return br, nil
}

// checkRange refuses a batch whose requests do not belong to its shard: a
// system request outside the system shard, a user request in it, or a user
// key outside the shard's range as this node knows it.
func (s *Store) checkRange(ba *kvpb.BatchRequest) error {
	h := ba.GetHeader()
	id := h.GetShardId()
	system := id == s.cfg.SystemShard
	if ba.IsAdmin() {
		return nil
	}
	var d *kvpb.ShardDescriptor
	if !system {
		var ok bool
		if d, ok = s.cfg.Descriptor(id); !ok {
			return &kvpb.ShardMismatchError{Shard: id, Generation: h.GetShardGeneration()}
		}
		if g := h.GetShardGeneration(); g != 0 && g != d.GetGeneration() {
			return s.mismatch(ba, d)
		}
	}
	for i, r := range ba.GetRequests() {
		isSys := kvpb.MethodOf(r).Flags().Has(kvpb.IsSystem)
		if isSys != system {
			return fmt.Errorf("%w: request %d (%v) on shard %d: system requests go to the system shard %d only",
				kvpb.ErrBadBatch, i, kvpb.MethodOf(r), id, s.cfg.SystemShard)
		}
		if system || kvpb.MethodOf(r).Flags().Has(kvpb.IsKeyless) {
			continue // a keyless request (GC) addresses the whole shard
		}
		start, end := kvpb.Span(r)
		if !inRange(d, start, end) {
			return s.mismatch(ba, d)
		}
	}
	return nil
}

// mismatch is the refusal of a user batch routed with a stale view of its
// shard, whose descriptor here is d: it carries d and, so that the router
// can re-route at once, the descriptors of this node's directory that
// overlap the batch's keys.
func (s *Store) mismatch(ba *kvpb.BatchRequest, d *kvpb.ShardDescriptor) *kvpb.ShardMismatchError {
	h := ba.GetHeader()
	m := &kvpb.ShardMismatchError{Shard: h.GetShardId(), Generation: h.GetShardGeneration(), Descriptors: []*kvpb.ShardDescriptor{d}}
	dir, err := s.cfg.Directory()
	if err != nil {
		return m // d alone still tells the router its view is stale
	}
	for _, o := range dir {
		if o.GetId() != d.GetId() && slices.ContainsFunc(ba.GetRequests(), func(r *kvpb.RequestUnion) bool {
			start, end := kvpb.Span(r)
			return overlaps(o, start, end)
		}) {
			m.Descriptors = append(m.Descriptors, o)
		}
	}
	return m
}

// overlaps reports whether [start, end) (as in inRange) meets d's range.
func overlaps(d *kvpb.ShardDescriptor, start, end []byte) bool {
	if end == nil {
		return inRange(d, start, nil)
	}
	return (d.End == nil || bytes.Compare(start, d.GetEnd()) < 0) &&
		(len(end) == 0 || bytes.Compare(d.GetStart(), end) < 0)
}

// inRange reports whether [start, end) lies in d's range; a nil end is a
// single key (start), an empty non-nil end is unbounded.
func inRange(d *kvpb.ShardDescriptor, start, end []byte) bool {
	if bytes.Compare(start, d.GetStart()) < 0 {
		return false
	}
	if d.End == nil {
		return true
	}
	if end == nil {
		return bytes.Compare(start, d.GetEnd()) < 0
	}
	return len(end) > 0 && bytes.Compare(end, d.GetEnd()) <= 0
}

// read evaluates a read-only batch.
func (s *Store) read(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	h := ba.GetHeader()
	id := h.GetShardId()
	var br *kvpb.BatchResponse
	eval := func(r pebble.Reader) error {
		var err error
		br, err = s.eval(r, ba)
		return err
	}
	if h.GetReadLevel() == api.ReadLevel_READ_LEVEL_LINEARIZABLE && !s.cfg.UnsafeLocalReads {
		read := eval
		if ts := h.GetTimestamp(); ts != 0 {
			// A read at a timestamp waits until no write at or below it
			// can still commit here (docs/time.md, rule 3), then reads
			// from one Pebble snapshot: the GC threshold it checks and the
			// versions it reads are of the same applied state.
			read = func(r pebble.Reader) error {
				if err := s.sequencer(id).waitBelow(ctx, tso.Timestamp(ts)); err != nil {
					return err
				}
				snap := s.cfg.Engine.NewSnapshot()
				defer snap.Close()
				return eval(snap)
			}
		}
		if err := s.cfg.Node.Read(ctx, id, read); err != nil {
			return nil, err
		}
		br.Timestamp = h.GetTimestamp()
		return br, nil
	}
	// Serializable: whatever the local replica has applied. Only a node
	// that hosts the shard can answer (it would read nothing otherwise),
	// and one whose replica went away while it read must not.
	if _, err := s.cfg.Node.AppliedIndex(id); err != nil {
		return nil, err
	}
	snap := s.cfg.Engine.NewSnapshot()
	defer snap.Close()
	if _, err := s.cfg.Node.AppliedIndex(id); err != nil {
		return nil, err
	}
	if err := eval(snap); err != nil {
		return nil, err
	}
	return br, nil
}

// eval answers every read of ba from r.
func (s *Store) eval(r pebble.Reader, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	h := ba.GetHeader()
	budget := statemachine.Budget{Keys: h.GetMaxKeys(), Bytes: h.GetMaxBytes()}
	if budget.Bytes == 0 || budget.Bytes > s.cfg.MaxReadBytes {
		budget.Bytes = s.cfg.MaxReadBytes
	}
	if ts := h.GetTimestamp(); ts != 0 && h.GetShardId() != s.cfg.SystemShard {
		// GC may have removed what a read below the shard's replicated
		// threshold needs: refuse it rather than answer wrong. r is one
		// Pebble snapshot, so GC cannot run between this check and the
		// reads.
		threshold, err := statemachine.GCThreshold(r, h.GetShardId())
		if err != nil {
			return nil, err
		}
		if ts < threshold {
			return nil, &kvpb.TimestampTooOldError{Threshold: threshold}
		}
	}
	br := &kvpb.BatchResponse{Responses: make([]*kvpb.ResponseUnion, 0, len(ba.GetRequests()))}
	for _, req := range ba.GetRequests() {
		resp, err := statemachine.Eval(r, h, req, &budget)
		if err != nil {
			return nil, err
		}
		br.Responses = append(br.Responses, resp)
	}
	return br, nil
}

// write proposes the batch's writes as one replicated command.
func (s *Store) write(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	for i, r := range ba.GetRequests() {
		if !kvpb.MethodOf(r).Flags().Has(kvpb.IsWrite) {
			return nil, fmt.Errorf("%w: request %d (%v): a batch with writes holds only writes", kvpb.ErrBadBatch, i, kvpb.MethodOf(r))
		}
	}
	h := proto.CloneOf(ba.GetHeader())
	var (
		prop *raftnode.Proposal
		ts   tso.Timestamp
		err  error
	)
	cmd := &kvpb.ReplicatedCommand{Header: h, Writes: ba.GetRequests()}
	if h.GetShardId() == s.cfg.SystemShard || ba.Flags().Has(kvpb.IsKeyless) {
		// System writes and GC carry no MVCC version: no timestamp to
		// wait for.
		var data []byte
		if data, err = kvpb.EncodeCommand(cmd); err == nil {
			prop, err = s.cfg.Node.ProposeAsync(h.GetShardId(), 0, data)
		}
	} else {
		h.Timestamp = 0 // the sequencer gives user writes their commit timestamp
		prop, ts, err = s.sequencer(h.GetShardId()).submit(ctx, cmd)
	}
	if err != nil {
		return nil, err
	}
	res, err := prop.Wait(ctx)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	br := &kvpb.BatchResponse{}
	if err := proto.Unmarshal(res.Data, br); err != nil {
		// The command applied: its answer is unreadable, not its outcome.
		return nil, fmt.Errorf("%w: answer of an applied command: %w", kvpb.ErrAmbiguous, err)
	}
	br.Timestamp = uint64(ts)
	return br, nil
}

// admin runs an admin request on the shard's leader.
func (s *Store) admin(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	id := ba.GetHeader().GetShardId()
	req := ba.GetRequests()[0]
	n := s.cfg.Node
	resp := &kvpb.ResponseUnion{}
	switch r := req.GetValue().(type) {
	case *kvpb.RequestUnion_ChangeReplicas:
		node := r.ChangeReplicas.GetNodeId()
		var (
			err       error
			replicaID uint64
		)
		switch t := r.ChangeReplicas.GetType(); t {
		case kvpb.ChangeReplicasType_CHANGE_REPLICAS_TYPE_ADD_LEARNER:
			replicaID, err = n.AddLearner(ctx, id, node)
		case kvpb.ChangeReplicasType_CHANGE_REPLICAS_TYPE_PROMOTE_VOTER:
			err = n.PromoteVoter(ctx, id, node)
		case kvpb.ChangeReplicasType_CHANGE_REPLICAS_TYPE_REMOVE:
			err = n.RemoveMember(ctx, id, node)
		default:
			err = fmt.Errorf("%w: membership change %v", kvpb.ErrBadBatch, t)
		}
		if err != nil {
			return nil, err
		}
		resp.Value = &kvpb.ResponseUnion_ChangeReplicas{ChangeReplicas: &kvpb.ChangeReplicasResponse{ReplicaId: replicaID}}
	case *kvpb.RequestUnion_TransferLeader:
		if err := n.TransferLeader(id, r.TransferLeader.GetNodeId()); err != nil {
			return nil, err
		}
		resp.Value = &kvpb.ResponseUnion_TransferLeader{TransferLeader: &kvpb.TransferLeaderResponse{}}
	case *kvpb.RequestUnion_Progress:
		// Confirmed first: callers act on the membership it reports (a
		// replica that is no member is destroyed), and a deposed leader's
		// may be stale. After ReadIndex the leader has applied every
		// membership change committed before the call.
		if err := n.ReadIndex(ctx, id); err != nil {
			return nil, err
		}
		st, err := n.Status(id)
		if err != nil {
			return nil, err
		}
		if !st.IsLeader {
			return nil, &raftnode.NotLeaderError{Group: id, Leader: st.Leader}
		}
		resp.Value = &kvpb.ResponseUnion_Progress{Progress: &kvpb.ProgressResponse{
			LeaderId: st.Leader, Commit: st.Commit, Match: st.Progress[r.Progress.GetNodeId()],
			Voters: st.Voters, Learners: st.Learners, ReplicaId: st.Replicas[r.Progress.GetNodeId()],
		}}
	case *kvpb.RequestUnion_GetTimestamp:
		v, err := s.getTimestamp(ctx, id, r.GetTimestamp)
		if err != nil {
			return nil, err
		}
		resp.Value = v
	default:
		return nil, fmt.Errorf("%w: admin request %v", kvpb.ErrBadBatch, kvpb.MethodOf(req))
	}
	return &kvpb.BatchResponse{Responses: []*kvpb.ResponseUnion{resp}}, nil
}

// kvError turns an error of raftnode, statemachine or storage into kvpb's
// typed errors, keeping the cause in the chain. It is the one place where a
// replica's failures get their meaning for the router.
func (s *Store) kvError(id uint64, err error) error {
	var (
		nle *raftnode.NotLeaderError
		sme *kvpb.ShardMismatchError
	)
	switch {
	case errors.As(err, &sme), errors.Is(err, kvpb.ErrBadBatch), errors.Is(err, kvpb.ErrRequestTooLarge):
		return err
	case errors.Is(err, raftnode.ErrAmbiguous):
		return fmt.Errorf("%w: %w", kvpb.ErrAmbiguous, err)
	case errors.As(err, &nle):
		return fmt.Errorf("%w", &kvpb.NotLeaderError{Shard: id, Leader: nle.Leader})
	case errors.Is(err, raftnode.ErrProposalDropped):
		return fmt.Errorf("%w: %w", kvpb.ErrProposalDropped, err)
	case errors.Is(err, raftnode.ErrUnknownGroup), errors.Is(err, statemachine.ErrWrongShard):
		m := &kvpb.ShardMismatchError{Shard: id}
		if d, ok := s.cfg.Descriptor(id); ok {
			m.Descriptors = []*kvpb.ShardDescriptor{d}
		}
		return fmt.Errorf("%w: %w", m, err)
	case errors.Is(err, raftnode.ErrStopped):
		return fmt.Errorf("%w: %w", kvpb.ErrUnavailable, err)
	}
	return err
}

// HandleNode serves a request to this node about itself. Its error is in
// the response.
func (s *Store) HandleNode(ctx context.Context, req *kvpb.NodeRequest) *kvpb.NodeResponse {
	resp := &kvpb.NodeResponse{}
	if err := kvpb.ValidateNodeRequest(req); err != nil {
		resp.Error = kvpb.ErrorOf(err)
		return resp
	}
	if id := req.GetNodeId(); id != s.cfg.NodeID {
		resp.Error = kvpb.ErrorOf(fmt.Errorf("%w: request for node %d reached node %d", kvpb.ErrUnavailable, id, s.cfg.NodeID))
		return resp
	}
	switch r := req.GetValue().(type) {
	case *kvpb.NodeRequest_CreateReplica:
		if err := s.cfg.CreateReplica(ctx, r.CreateReplica.GetShard(), r.CreateReplica.GetReplicaId(), r.CreateReplica.GetFresh()); err != nil {
			resp.Error = kvpb.ErrorOf(err)
			return resp
		}
		resp.Value = &kvpb.NodeResponse_CreateReplica{CreateReplica: &kvpb.CreateReplicaResponse{}}
	case *kvpb.NodeRequest_Directory:
		ds, err := s.cfg.Directory()
		if err != nil {
			resp.Error = kvpb.ErrorOf(fmt.Errorf("%w: %w", kvpb.ErrUnavailable, err))
			return resp
		}
		resp.Value = &kvpb.NodeResponse_Directory{Directory: &kvpb.DirectoryResponse{Descriptors: ds}}
	case *kvpb.NodeRequest_ReplicaState:
		rs, err := s.replicaState(r.ReplicaState.GetShardId(), r.ReplicaState.GetPeer())
		if err != nil {
			resp.Error = kvpb.ErrorOf(s.kvError(r.ReplicaState.GetShardId(), err))
			return resp
		}
		resp.Value = &kvpb.NodeResponse_ReplicaState{ReplicaState: rs}
	default:
		resp.Error = kvpb.ErrorOf(fmt.Errorf("%w: node request %T", kvpb.ErrBadBatch, r))
	}
	return resp
}

// replicaState is this node's own view of its replica of a shard and, if
// it leads the shard and peer is not 0, its view of peer's replica.
func (s *Store) replicaState(id, peer uint64) (*kvpb.ReplicaStateResponse, error) {
	st, err := s.cfg.Node.Status(id)
	if errors.Is(err, raftnode.ErrUnknownGroup) {
		return &kvpb.ReplicaStateResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	rs := &kvpb.ReplicaStateResponse{Hosted: true, Applied: st.Applied, ReplicaId: st.ReplicaID,
		Member: st.Replicas[s.cfg.NodeID] == st.ReplicaID, Leader: st.IsLeader}
	if st.IsLeader && peer != 0 {
		rs.PeerReplicaId, rs.PeerMatch = st.Replicas[peer], st.Progress[peer]
	}
	return rs, nil
}

// HandleForward serves a kvpb.PeerRequest another node sent (the
// transport's forwarded-request handler): a batch on a local replica, or a
// node request. Failures travel in the answer as kvpb.Error; an error
// return means the request did not decode.
func (s *Store) HandleForward(ctx context.Context, b []byte) ([]byte, error) {
	req := &kvpb.PeerRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("%w: forwarded request: %w", kvpb.ErrBadBatch, err)
	}
	resp := &kvpb.PeerResponse{}
	switch r := req.GetValue().(type) {
	case *kvpb.PeerRequest_Batch:
		br, err := s.Send(ctx, r.Batch)
		if err != nil {
			br = &kvpb.BatchResponse{Error: kvpb.ErrorOf(err)}
		}
		resp.Value = &kvpb.PeerResponse_Batch{Batch: br}
	case *kvpb.PeerRequest_Node:
		resp.Value = &kvpb.PeerResponse_Node{Node: s.HandleNode(ctx, r.Node)}
	default:
		return nil, fmt.Errorf("%w: forwarded request %T", kvpb.ErrBadBatch, r)
	}
	return proto.Marshal(resp)
}
