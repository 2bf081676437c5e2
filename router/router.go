package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/internal/retry"
	"github.com/strata-kv/strata/replica"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/transport"
	"google.golang.org/protobuf/proto"
)

// Sender sends a batch and returns its answer. Exactly one of the response
// and the error is non-nil; the caller keeps ownership of ba and must not
// change it while Send runs. A write that may or may not have applied fails
// with an error matching kvpb.ErrAmbiguous.
type Sender interface {
	Send(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error)
}

// ErrUnreached marks a request to another node that did not get an answer
// and is safe to send again: it certainly never reached the node (even a
// write), or it was a read.
var ErrUnreached = errors.New("router: node not reached")

// Local is what the router needs of this node's replicas; *replica.Store
// implements it.
type Local interface {
	// Send serves a batch on a local replica (see replica.Store.Send).
	Send(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error)
	// HandleNode serves a request about this node.
	HandleNode(ctx context.Context, req *kvpb.NodeRequest) *kvpb.NodeResponse
	// Err is why the node stopped, or nil while it runs.
	Err() error
}

var _ Local = (*replica.Store)(nil)

// Config configures a DistSender.
type Config struct {
	// NodeID is this node's ID. Required.
	NodeID uint64
	// Local serves batches on this node's replicas (a *replica.Store).
	// Required.
	Local Local
	// Transport reaches other nodes; nil for a node without peers.
	Transport transport.Transport
	// Routes returns the node's shard directory (key to shard). Required.
	Routes func() (*shard.Router, error)
	// Replicas returns the nodes that hold replicas of a shard, as this node
	// knows them best, for forwarding. Required.
	Replicas func(shardID uint64) []uint64
	// Closer, closed when the node closes, ends every retry loop.
	Closer <-chan struct{}
}

// DistSender is the node's Sender. It is safe for concurrent use.
type DistSender struct {
	cfg Config
	// via maps a shard ID to the replica that last served a request this
	// node forwarded to it for want of a local replica that knows the
	// leader: the next such request tries it first, rather than the
	// replicas in directory order, which may start with one that is down.
	via sync.Map
	// cache is the shard cache Send routes by: the directory overlaid with
	// what refusals taught.
	cache cache
}

var _ Sender = (*DistSender)(nil)

// New returns a DistSender.
func New(cfg Config) (*DistSender, error) {
	if cfg.NodeID == 0 || cfg.Local == nil || cfg.Routes == nil || cfg.Replicas == nil {
		return nil, errors.New("router: Config needs NodeID, Local, Routes and Replicas")
	}
	return &DistSender{cfg: cfg}, nil
}

// Send sends ba to the shard its Header names or, with no shard set, to the
// shards its keys fall in: a scan crosses shard boundaries (each shard read
// on its own, paged by resume keys until done or its limit is reached), and
// a batch whose requests fall in several shards is sent as one batch per
// shard, concurrently. The part for each shard is atomic; a batch spanning
// shards is not, and on failure some parts may have applied (the error
// says which failures are ambiguous).
//
// A batch with no shard set is routed by the shard cache and carries the
// generation of the descriptor it was routed by. When a replica refuses it
// as routed by a stale view (kvpb.ShardMismatchError with the current
// descriptors), the cache learns them and the refused part, which had no
// effect, is routed again. A batch whose Header names its shard is the
// caller's: a mismatch is returned, not re-routed.
func (ds *DistSender) Send(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	if ba.GetHeader().GetShardId() != 0 {
		return ds.sendToShard(ctx, ba, false)
	}
	return ds.sendRouted(ctx, ba)
}

// sendRouted routes a batch with no shard set by the cache, and routes
// again what a replica refused as routed stale.
func (ds *DistSender) sendRouted(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	bo := retry.NewBackoffer(ctx, retry.BackofferOptions{Closer: ds.cfg.Closer})
	for {
		routes, err := ds.cfg.Routes()
		if err != nil {
			return nil, err
		}
		reqs := ba.GetRequests()
		if len(reqs) == 1 && reqs[0].GetScan() != nil {
			return ds.scan(ctx, routes, ba)
		}
		var (
			order   []shard.Descriptor
			byShard = map[uint64][]int{}
		)
		for i, r := range reqs {
			key, _ := kvpb.Span(r)
			d := ds.cache.lookup(routes, key)
			if _, ok := byShard[d.ID]; !ok {
				order = append(order, d)
			}
			byShard[d.ID] = append(byShard[d.ID], i)
		}
		if len(order) == 0 {
			return ds.sendToShard(ctx, ba, false) // no requests: the replica refuses it
		}
		if len(order) > 1 {
			return ds.sendParts(ctx, ba, order, byShard)
		}
		br, err := ds.sendToShard(ctx, addressed(ba, order[0]), true)
		var stale *staleRouteError
		if !errors.As(err, &stale) {
			return br, err
		}
		if err := bo.Backoff(retry.ShardMiss, stale.err); err != nil {
			return nil, err
		}
	}
}

// sendParts sends the requests of ba, grouped by shard (order, byShard:
// the request indexes of each shard), as one batch per shard, each routed
// on its own, concurrently, and puts the answers together in ba's order.
func (ds *DistSender) sendParts(ctx context.Context, ba *kvpb.BatchRequest, order []shard.Descriptor, byShard map[uint64][]int) (*kvpb.BatchResponse, error) {
	reqs := ba.GetRequests()
	out := &kvpb.BatchResponse{Responses: make([]*kvpb.ResponseUnion, len(reqs))}
	errs := make([]error, len(order))
	stamps := make([]uint64, len(order))
	var wg sync.WaitGroup
	for i, d := range order {
		sub := &kvpb.BatchRequest{Header: proto.CloneOf(ba.GetHeader()), Requests: make([]*kvpb.RequestUnion, 0, len(byShard[d.ID]))}
		for _, j := range byShard[d.ID] {
			sub.Requests = append(sub.Requests, reqs[j])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			br, err := ds.sendRouted(ctx, sub)
			if err != nil {
				errs[i] = fmt.Errorf("shard %d: %w", d.ID, err)
				return
			}
			for k, j := range byShard[d.ID] {
				out.Responses[j] = br.GetResponses()[k]
			}
			stamps[i] = br.GetTimestamp()
		}()
	}
	wg.Wait()
	out.Timestamp = slices.Max(stamps)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// addressed returns a shallow copy of ba addressed to the shard of d at
// d's generation, sharing ba's requests.
func addressed(ba *kvpb.BatchRequest, d shard.Descriptor) *kvpb.BatchRequest {
	h := proto.CloneOf(ba.GetHeader())
	if h == nil {
		h = &kvpb.Header{}
	}
	h.ShardId, h.ShardGeneration = d.ID, d.Generation
	return &kvpb.BatchRequest{Header: h, Requests: ba.GetRequests()}
}

// staleRouteError is a refusal of a batch the router addressed by a stale
// cache (refutes): the cache has learned the replica's descriptors, and
// the batch, which had no effect, is to be routed again.
type staleRouteError struct{ err error }

func (e *staleRouteError) Error() string { return "router: stale route: " + e.err.Error() }
func (e *staleRouteError) Unwrap() error { return e.err }

// scan serves a batch of one scan over every shard its range overlaps, in
// key order, following each shard's resume keys, until the range or the
// scan's limit is exhausted, or the batch's max_bytes budget (if set) is
// spent: then the answer's resume_key says where to go on. A part refused
// as routed stale is routed again from where the scan stands.
func (ds *DistSender) scan(ctx context.Context, routes *shard.Router, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	sc := ba.GetRequests()[0].GetScan()
	start, end := sc.GetStart(), sc.End // nil end: unbounded
	limit := int(sc.GetLimit())
	budget := ba.GetHeader().GetMaxBytes()
	var used uint64
	out := &kvpb.ScanResponse{}
	bo := retry.NewBackoffer(ctx, retry.BackofferOptions{Closer: ds.cfg.Closer})
	for s := start; ; {
		if end != nil && bytes.Compare(s, end) >= 0 {
			return scanResponse(out), nil
		}
		d := ds.cache.lookup(routes, s)
		e := end
		if d.End != nil && (e == nil || bytes.Compare(d.End, e) < 0) {
			e = d.End
		}
		part := proto.CloneOf(sc)
		part.Start, part.End = s, e
		if limit > 0 {
			part.Limit = uint32(limit - len(out.Kvs))
		}
		sub := addressed(ba, d)
		if budget > 0 {
			sub.Header.MaxBytes = budget - used
		}
		sub.Requests = []*kvpb.RequestUnion{{Value: &kvpb.RequestUnion_Scan{Scan: part}}}
		br, err := ds.sendToShard(ctx, sub, true)
		var stale *staleRouteError
		if errors.As(err, &stale) {
			if err := bo.Backoff(retry.ShardMiss, stale.err); err != nil {
				return nil, err
			}
			if routes, err = ds.cfg.Routes(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		resp := br.GetResponses()[0].GetScan()
		out.Kvs = append(out.Kvs, resp.GetKvs()...)
		for _, kv := range resp.GetKvs() {
			used += uint64(len(kv.GetKey()) + len(kv.GetValue()))
		}
		if limit > 0 && len(out.Kvs) >= limit {
			return scanResponse(out), nil
		}
		spent := budget > 0 && used >= budget
		if next := resp.GetResumeKey(); len(next) > 0 {
			if spent {
				out.ResumeKey = next
				return scanResponse(out), nil
			}
			s = next
			continue
		}
		// This shard's part is done; the range goes on in the next shard
		// unless it ended here.
		if d.End == nil || (end != nil && bytes.Compare(d.End, end) >= 0) {
			return scanResponse(out), nil
		}
		if spent {
			out.ResumeKey = d.End
			return scanResponse(out), nil
		}
		s = d.End
	}
}

func scanResponse(sr *kvpb.ScanResponse) *kvpb.BatchResponse {
	return &kvpb.BatchResponse{Responses: []*kvpb.ResponseUnion{{Value: &kvpb.ResponseUnion_Scan{Scan: sr}}}}
}

// sendToShard sends a batch addressed to one shard: to the local replica,
// or forwarded to the leader or another replica, until it is served, a
// failure is final, or ctx ends. If routed (the router addressed it by its
// cache), a refusal that shows the cache stale is a *staleRouteError, at
// once: the cache has learned the refusal's descriptors.
func (ds *DistSender) sendToShard(ctx context.Context, ba *kvpb.BatchRequest, routed bool) (*kvpb.BatchResponse, error) {
	id := ba.GetHeader().GetShardId()
	tr := ds.cfg.Transport
	bo := retry.NewBackoffer(ctx, retry.BackofferOptions{Closer: ds.cfg.Closer})
	for attempt := 0; ; attempt++ {
		br, err := ds.cfg.Local.Send(ctx, ba)
		if routed && ds.stale(ba, err) {
			return nil, &staleRouteError{err: err}
		}
		var (
			nle *kvpb.NotLeaderError
			via uint64 // the replica a request with no local leader went to
		)
		if tr != nil && (isNoReplica(err) || errors.As(err, &nle) && nle.Leader == 0) {
			// No local replica, or one that knows no leader (new, or cut
			// off): ask another replica, which serves the request or names
			// its leader.
			if other := ds.otherReplica(id, attempt); other != 0 {
				via = other
				br, err = ds.forward(ctx, other, ba)
			}
		}
		if errors.As(err, &nle) && nle.Leader != 0 && nle.Leader != ds.cfg.NodeID && tr != nil {
			if via != 0 {
				via = nle.Leader
			}
			br, err = ds.forward(ctx, nle.Leader, ba)
		}
		if via != 0 {
			ds.noteVia(id, via, err)
		}
		if routed && ds.stale(ba, err) {
			return nil, &staleRouteError{err: err}
		}
		if err == nil {
			return br, nil
		}
		if stopped := ds.cfg.Local.Err(); stopped != nil {
			return nil, err // this node stopped: nothing it sends will get better
		}
		cause, ok := retryCause(err)
		if !ok {
			return nil, err
		}
		if err := bo.Backoff(cause, err); err != nil {
			return nil, err
		}
	}
}

// stale reports whether err refuses ba, a batch the router addressed by
// its cache, as routed by a stale view (refutes), after the cache learned
// the refusal's descriptors.
func (ds *DistSender) stale(ba *kvpb.BatchRequest, err error) bool {
	var sme *kvpb.ShardMismatchError
	if !errors.As(err, &sme) || len(sme.Descriptors) == 0 {
		return false
	}
	ds.cache.learn(sme.Descriptors)
	return refutes(sme, ba)
}

// isNoReplica reports whether err says the node has no replica of the
// shard (or one that does not cover the batch): another node may.
func isNoReplica(err error) bool {
	var sme *kvpb.ShardMismatchError
	return errors.As(err, &sme)
}

// retryCause classifies a failure: the backoff to retry it with, or false
// for a failure that is final (success, ambiguity, a bad request, the
// caller's context).
func retryCause(err error) (retry.Config, bool) {
	var nle *kvpb.NotLeaderError
	switch {
	case errors.Is(err, kvpb.ErrAmbiguous):
		return retry.Config{}, false
	case errors.As(err, &nle), errors.Is(err, kvpb.ErrProposalDropped):
		return retry.NotLeader, true
	case isNoReplica(err):
		return retry.ShardMiss, true
	case errors.Is(err, kvpb.ErrUnavailable), errors.Is(err, ErrUnreached):
		return retry.RPC, true
	}
	return retry.Config{}, false
}

// otherReplica returns the replica of shard, other than this node, to ask
// on the attempt-th try: first the one that served the last forwarded
// request (via), then the others in turn; 0 if there is none.
func (ds *DistSender) otherReplica(shardID uint64, attempt int) uint64 {
	var others []uint64
	for _, id := range ds.cfg.Replicas(shardID) {
		if id != ds.cfg.NodeID {
			others = append(others, id)
		}
	}
	if len(others) == 0 {
		return 0
	}
	if v, ok := ds.via.Load(shardID); ok {
		if i := slices.Index(others, v.(uint64)); i >= 0 {
			return others[(i+attempt)%len(others)]
		}
	}
	return others[attempt%len(others)]
}

// noteVia records node as the replica to forward shard's requests to when
// it served one (err is its answer), or forgets it when it could not.
func (ds *DistSender) noteVia(shardID, node uint64, err error) {
	var nle *kvpb.NotLeaderError
	switch {
	case errors.Is(err, ErrUnreached), errors.Is(err, kvpb.ErrAmbiguous), errors.As(err, &nle),
		isNoReplica(err), errors.Is(err, kvpb.ErrUnavailable):
		ds.via.CompareAndDelete(shardID, node)
	default:
		ds.via.Store(shardID, node)
	}
}

// forward sends ba to node to, which serves it on its own replica.
func (ds *DistSender) forward(ctx context.Context, to uint64, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	resp, err := ds.peer(ctx, to, &kvpb.PeerRequest{Value: &kvpb.PeerRequest_Batch{Batch: ba}}, !ba.IsReadOnly())
	if err != nil {
		return nil, err
	}
	br := resp.GetBatch()
	if br == nil {
		return nil, fmt.Errorf("%w: node %d answered a batch with %T", errBadAnswer(!ba.IsReadOnly()), to, resp.GetValue())
	}
	if e := br.GetError(); e != nil {
		err := e.Err()
		if e.GetDetail() == nil && !ba.IsReadOnly() {
			// An unexpected failure on the leader: it may have proposed.
			return nil, fmt.Errorf("%w: node %d: %w", kvpb.ErrAmbiguous, to, err)
		}
		return nil, fmt.Errorf("node %d: %w", to, err)
	}
	return br, nil
}

// SendNode sends a request to node to about that node itself (or serves
// it here, for this node). It does not retry: node requests are sent to
// one node by ID, and the caller decides what to do when it cannot be
// reached (an error matching transport.ErrNotSent or ErrUnknownPeer).
func (ds *DistSender) SendNode(ctx context.Context, to uint64, req *kvpb.NodeRequest) (*kvpb.NodeResponse, error) {
	req.NodeId = to
	var resp *kvpb.NodeResponse
	if to == ds.cfg.NodeID {
		resp = ds.cfg.Local.HandleNode(ctx, req)
	} else {
		if ds.cfg.Transport == nil {
			return nil, fmt.Errorf("router: no transport to reach node %d", to)
		}
		pr, err := ds.peer(ctx, to, &kvpb.PeerRequest{Value: &kvpb.PeerRequest_Node{Node: req}}, false)
		if err != nil {
			return nil, err
		}
		if resp = pr.GetNode(); resp == nil {
			return nil, fmt.Errorf("router: node %d answered a node request with %T", to, pr.GetValue())
		}
	}
	if e := resp.GetError(); e != nil {
		return nil, fmt.Errorf("node %d: %w", to, e.Err())
	}
	return resp, nil
}

func errBadAnswer(write bool) error {
	if write {
		return kvpb.ErrAmbiguous
	}
	return errors.New("router: malformed answer")
}

// peer sends one PeerRequest over the transport and decodes the answer. A
// write that failed after it may have been sent is ambiguous; a read, or a
// request that was certainly not sent, fails with ErrUnreached (retryable).
func (ds *DistSender) peer(ctx context.Context, to uint64, req *kvpb.PeerRequest, write bool) (*kvpb.PeerResponse, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := ds.cfg.Transport.Forward(ctx, to, b)
	if err != nil {
		switch {
		case errors.Is(err, transport.ErrNotSent), errors.Is(err, transport.ErrUnknownPeer):
			return nil, fmt.Errorf("%w: %w", ErrUnreached, err)
		case write:
			// The leader may have received and proposed it.
			return nil, fmt.Errorf("%w: forwarding to node %d: %w", kvpb.ErrAmbiguous, to, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("forwarding to node %d: %w", to, ctx.Err())
		}
		return nil, fmt.Errorf("%w: forwarding to node %d: %w", ErrUnreached, to, err)
	}
	resp := &kvpb.PeerResponse{}
	if err := proto.Unmarshal(out, resp); err != nil {
		return nil, fmt.Errorf("%w: node %d: %w", errBadAnswer(write), to, err)
	}
	return resp, nil
}
