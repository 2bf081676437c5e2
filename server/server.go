package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/shard"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Config configures a Server.
type Config struct {
	// DB is the node served. Required.
	DB *strata.DB
	// Admin is the cluster's administrative side, implemented by the node's
	// binary (it combines the DB's admin calls with membership). Default:
	// nil, with which every Cluster call but Status returns Unimplemented and
	// Status and leader hints carry no client addresses.
	Admin Admin
	// Registry, if set, gets the request metrics:
	// strata_client_requests_total{method,code} and
	// strata_client_request_seconds{method}. Default: nil, no metrics.
	Registry prometheus.Registerer
	// SendTimeout bounds how long a ScanStream waits for the client to
	// take one message (gRPC flow control blocks a send while the client
	// does not read); after it the stream ends with DeadlineExceeded and
	// frees what it held. Default: DefaultSendTimeout.
	SendTimeout time.Duration
}

// DefaultSendTimeout is Config.SendTimeout's default.
const DefaultSendTimeout = 30 * time.Second

// Admin is what the Cluster service needs beyond the DB: membership and
// changes of placement. Implementations return errors of package strata (or
// gRPC statuses, passed through unchanged).
type Admin interface {
	// Members lists the cluster's nodes.
	Members(ctx context.Context) ([]*api.Member, error)
	// AddReplica gives node a replica of shard.
	AddReplica(ctx context.Context, shard, node uint64) error
	// RemoveReplica removes node's replica of shard.
	RemoveReplica(ctx context.Context, shard, node uint64) error
	// TransferLeader makes node's replica the leader of shard.
	TransferLeader(ctx context.Context, shard, node uint64) error
	// RemoveNode takes node out of the cluster.
	RemoveNode(ctx context.Context, node uint64) error
	// ClientAddr returns node's client address, "" if unknown. It is used
	// for leader hints and must not block.
	ClientAddr(node uint64) string
}

// Server implements api.KVServer and api.ClusterServer over one DB. It is
// safe for concurrent use.
type Server struct {
	db          *strata.DB
	admin       Admin
	sendTimeout time.Duration

	requests *prometheus.CounterVec   // nil without a Registry
	latency  *prometheus.HistogramVec // nil without a Registry
	streams  prometheus.Gauge         // nil without a Registry

	kv      kvService
	cluster clusterService
}

var (
	_ api.KVServer      = kvService{}
	_ api.ClusterServer = clusterService{}
)

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("server: Config.DB is required")
	}
	if cfg.SendTimeout < 0 {
		return nil, fmt.Errorf("server: Config.SendTimeout %v is negative", cfg.SendTimeout)
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	s := &Server{db: cfg.DB, admin: cfg.Admin, sendTimeout: cfg.SendTimeout}
	if cfg.Registry != nil {
		requests := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_client_requests_total",
			Help: "Client API requests served, by method and gRPC status code.",
		}, []string{"method", "code"})
		latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_client_request_seconds",
			Help:    "Time to serve a client API request, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms .. ~16s
		}, []string{"method"})
		var err error
		if s.requests, err = register(cfg.Registry, requests); err != nil {
			return nil, err
		}
		if s.latency, err = register(cfg.Registry, latency); err != nil {
			return nil, err
		}
		streams := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_client_scan_streams",
			Help: "ScanStream calls in flight, counted until their last send has returned.",
		})
		if s.streams, err = register(cfg.Registry, streams); err != nil {
			return nil, err
		}
	}
	s.kv = kvService{s: s}
	s.cluster = clusterService{s: s}
	return s, nil
}

// register registers c, or returns the collector already registered under
// its name (a second Server on the same registry shares the metrics).
func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	err := r.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		var zero C
		return zero, fmt.Errorf("server: registering metrics: %w", err)
	}
	return c, nil
}

// Keepalive settings of ServerOptions.
const (
	// keepaliveTime is how long a connection may go without reads before
	// the node pings the client; keepaliveTimeout is how long it then
	// waits for the ping's answer before it closes the connection. A
	// client that is gone or stopped (SIGSTOP, a cut network) answers
	// nothing, and the close frees whatever its calls still held.
	keepaliveTime    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
	// minClientPing is the shortest interval between pings a client may
	// send (clients that keep their connections alive with pings).
	minClientPing = 10 * time.Second
)

// ServerOptions returns the gRPC server options a node's client API
// should be served with: keepalive pings that close connections to
// clients that stopped answering.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minClientPing, PermitWithoutStream: true}),
	}
}

// Register registers the KV and Cluster services on g.
func (s *Server) Register(g *grpc.Server) {
	api.RegisterKVServer(g, s.kv)
	api.RegisterClusterServer(g, s.cluster)
}

// finish maps err to a status and records the call's metrics. Every
// handler returns through it.
func (s *Server) finish(method string, start time.Time, err error) error {
	err = statusOf(err, s.clientAddr)
	if s.requests != nil {
		s.requests.WithLabelValues(method, status.Code(err).String()).Inc()
		s.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
	}
	return err
}

func (s *Server) clientAddr(node uint64) string {
	if s.admin == nil {
		return ""
	}
	return s.admin.ClientAddr(node)
}

// kvService is the KV service.
type kvService struct {
	api.UnimplementedKVServer
	s *Server
}

func (k kvService) Get(ctx context.Context, req *api.GetRequest) (*api.GetResponse, error) {
	start := time.Now()
	get := k.s.db.Get
	switch req.GetReadLevel() {
	case api.ReadLevel_READ_LEVEL_LINEARIZABLE:
	case api.ReadLevel_READ_LEVEL_SERIALIZABLE:
		get = k.s.db.GetSerializable
	default:
		return nil, k.s.finish("Get", start, status.Errorf(codes.InvalidArgument, "unknown read level %d", req.GetReadLevel()))
	}
	if ts := req.GetTimestamp(); ts != 0 {
		if req.GetReadLevel() != api.ReadLevel_READ_LEVEL_LINEARIZABLE {
			return nil, k.s.finish("Get", start, status.Error(codes.InvalidArgument, "a read at a timestamp is linearizable; leave read_level unset"))
		}
		get = func(ctx context.Context, key []byte) ([]byte, error) {
			snap, err := k.s.db.SnapshotAt(ctx, strata.Timestamp(ts))
			if err != nil {
				return nil, err
			}
			defer snap.Close()
			return snap.Get(ctx, key)
		}
	}
	v, err := get(ctx, req.GetKey())
	if errors.Is(err, strata.ErrNotFound) {
		return &api.GetResponse{}, k.s.finish("Get", start, nil)
	}
	if err != nil {
		return nil, k.s.finish("Get", start, err)
	}
	return &api.GetResponse{Found: true, Value: v}, k.s.finish("Get", start, nil)
}

func (k kvService) Put(ctx context.Context, req *api.PutRequest) (*api.PutResponse, error) {
	start := time.Now()
	if err := k.s.db.Put(ctx, req.GetKey(), req.GetValue()); err != nil {
		return nil, k.s.finish("Put", start, err)
	}
	return &api.PutResponse{}, k.s.finish("Put", start, nil)
}

func (k kvService) Delete(ctx context.Context, req *api.DeleteRequest) (*api.DeleteResponse, error) {
	start := time.Now()
	if err := k.s.db.Delete(ctx, req.GetKey()); err != nil {
		return nil, k.s.finish("Delete", start, err)
	}
	return &api.DeleteResponse{}, k.s.finish("Delete", start, nil)
}

// MaxScanResponseBytes bounds the keys and values of one Scan answer; a
// longer scan answers with a resume key (api.ScanResponse.resume_key), so
// neither the node nor the connection ever holds a whole large range.
const MaxScanResponseBytes = 4 << 20

func (k kvService) Scan(ctx context.Context, req *api.ScanRequest) (*api.ScanResponse, error) {
	start := time.Now()
	snap, err := k.s.snapshot(ctx, req.GetTimestamp())
	if err != nil {
		return nil, k.s.finish("Scan", start, err)
	}
	defer snap.Close()
	// An unset end is nil (no bound); a set one, even empty, is non-nil.
	kvs, resume, err := snap.ScanPage(ctx, req.GetStart(), req.End, int(req.GetLimit()), MaxScanResponseBytes, req.GetKeysOnly())
	if err != nil {
		return nil, k.s.finish("Scan", start, err)
	}
	return scanResponse(kvs, snap.Timestamp(), resume), k.s.finish("Scan", start, nil)
}

// snapshot returns a snapshot at ts, or at a timestamp taken now if ts is
// 0 (a scan request's timestamp).
func (s *Server) snapshot(ctx context.Context, ts uint64) (*strata.Snapshot, error) {
	if ts != 0 {
		return s.db.SnapshotAt(ctx, strata.Timestamp(ts))
	}
	return s.db.Snapshot(ctx)
}

func (k kvService) CompareAndSwap(ctx context.Context, req *api.CompareAndSwapRequest) (*api.CompareAndSwapResponse, error) {
	start := time.Now()
	// Unset old and new are nil (absent, delete); set ones are non-nil even
	// when empty, which is what the DB's nil convention needs.
	ok, err := k.s.db.CompareAndSwap(ctx, req.GetKey(), req.Old, req.New)
	if err != nil {
		return nil, k.s.finish("CompareAndSwap", start, err)
	}
	return &api.CompareAndSwapResponse{Swapped: ok}, k.s.finish("CompareAndSwap", start, nil)
}

func (k kvService) Batch(ctx context.Context, req *api.BatchRequest) (*api.BatchResponse, error) {
	start := time.Now()
	ops := make([]strata.BatchOp, len(req.GetMutations()))
	for i, m := range req.GetMutations() {
		if m.GetDelete() && len(m.GetValue()) > 0 {
			return nil, k.s.finish("Batch", start, fmt.Errorf("%w: mutation %d deletes key %q but carries a value", errBadRequest, i, m.GetKey()))
		}
		ops[i] = strata.BatchOp{Key: m.GetKey(), Value: m.GetValue(), Delete: m.GetDelete()}
	}
	if err := k.s.db.Batch(ctx, ops); err != nil {
		return nil, k.s.finish("Batch", start, err)
	}
	return &api.BatchResponse{}, k.s.finish("Batch", start, nil)
}

// clusterService is the Cluster service.
type clusterService struct {
	api.UnimplementedClusterServer
	s *Server
}

func (c clusterService) Status(ctx context.Context, _ *api.StatusRequest) (*api.StatusResponse, error) {
	start := time.Now()
	shards, err := c.s.db.Status(ctx)
	if err != nil {
		return nil, c.s.finish("Status", start, err)
	}
	resp := &api.StatusResponse{NodeId: c.s.db.NodeID(), Shards: make([]*api.ShardStatus, len(shards))}
	for i, sh := range shards {
		st := &api.ShardStatus{
			Id:       sh.ID,
			Start:    sh.Start,
			End:      sh.End,
			Replicas: sh.Replicas,
			LeaderId: sh.Leader,
			System:   sh.ID == shard.SystemID,
		}
		if sh.Leader != 0 {
			st.LeaderAddr = c.s.clientAddr(sh.Leader)
		}
		if l := sh.Local; l != nil {
			st.Local = &api.ReplicaStatus{
				Term: l.Term, Commit: l.Commit, Applied: l.Applied, IsLeader: l.IsLeader,
				Voters: l.Voters, Learners: l.Learners,
			}
		}
		resp.Shards[i] = st
	}
	return resp, c.s.finish("Status", start, nil)
}

// Now returns a timestamp from the cluster's oracle (strata.DB.Now).
func (c clusterService) Now(ctx context.Context, _ *api.NowRequest) (*api.NowResponse, error) {
	start := time.Now()
	ts, err := c.s.db.Now(ctx)
	if err != nil {
		return nil, c.s.finish("Now", start, err)
	}
	return &api.NowResponse{Timestamp: uint64(ts)}, c.s.finish("Now", start, nil)
}

// admin returns the Admin, or an Unimplemented status without one.
func (c clusterService) admin() (Admin, error) {
	if c.s.admin == nil {
		return nil, status.Error(codes.Unimplemented, "server: this node serves no cluster administration")
	}
	return c.s.admin, nil
}

func (c clusterService) Members(ctx context.Context, _ *api.MembersRequest) (*api.MembersResponse, error) {
	start := time.Now()
	a, err := c.admin()
	if err != nil {
		return nil, c.s.finish("Members", start, err)
	}
	ms, err := a.Members(ctx)
	if err != nil {
		return nil, c.s.finish("Members", start, err)
	}
	return &api.MembersResponse{Members: ms}, c.s.finish("Members", start, nil)
}

func (c clusterService) AddReplica(ctx context.Context, req *api.AddReplicaRequest) (*api.AddReplicaResponse, error) {
	start := time.Now()
	err := c.withAdmin(func(a Admin) error { return a.AddReplica(ctx, req.GetShardId(), req.GetNodeId()) })
	if err != nil {
		return nil, c.s.finish("AddReplica", start, err)
	}
	return &api.AddReplicaResponse{}, c.s.finish("AddReplica", start, nil)
}

func (c clusterService) RemoveReplica(ctx context.Context, req *api.RemoveReplicaRequest) (*api.RemoveReplicaResponse, error) {
	start := time.Now()
	err := c.withAdmin(func(a Admin) error { return a.RemoveReplica(ctx, req.GetShardId(), req.GetNodeId()) })
	if err != nil {
		return nil, c.s.finish("RemoveReplica", start, err)
	}
	return &api.RemoveReplicaResponse{}, c.s.finish("RemoveReplica", start, nil)
}

func (c clusterService) TransferLeader(ctx context.Context, req *api.TransferLeaderRequest) (*api.TransferLeaderResponse, error) {
	start := time.Now()
	err := c.withAdmin(func(a Admin) error { return a.TransferLeader(ctx, req.GetShardId(), req.GetNodeId()) })
	if err != nil {
		return nil, c.s.finish("TransferLeader", start, err)
	}
	return &api.TransferLeaderResponse{}, c.s.finish("TransferLeader", start, nil)
}

func (c clusterService) RemoveNode(ctx context.Context, req *api.RemoveNodeRequest) (*api.RemoveNodeResponse, error) {
	start := time.Now()
	err := c.withAdmin(func(a Admin) error { return a.RemoveNode(ctx, req.GetNodeId()) })
	if err != nil {
		return nil, c.s.finish("RemoveNode", start, err)
	}
	return &api.RemoveNodeResponse{}, c.s.finish("RemoveNode", start, nil)
}

func (c clusterService) withAdmin(f func(Admin) error) error {
	a, err := c.admin()
	if err != nil {
		return err
	}
	return f(a)
}
