package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// serve opens a single-node DB with two user shards, serves it and returns
// a connection to it.
func serve(t *testing.T, admin server.Admin, reg prometheus.Registerer) *grpc.ClientConn {
	t.Helper()
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), Shards: 2, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{DB: db, Admin: admin, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		g.Stop()
		<-done
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return cc
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKV(t *testing.T) {
	ctx := ctxT(t)
	kv := api.NewKVClient(serve(t, nil, nil))
	g, err := kv.Get(ctx, &api.GetRequest{Key: []byte("a")})
	if err != nil || g.Found {
		t.Fatalf("Get absent = %v, %v; want found=false, no error", g, err)
	}
	if _, err := kv.Put(ctx, &api.PutRequest{Key: []byte("a"), Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if g, err := kv.Get(ctx, &api.GetRequest{Key: []byte("a")}); err != nil || !g.Found || string(g.Value) != "1" {
		t.Fatalf("Get = %v, %v", g, err)
	}
	if g, err := kv.Get(ctx, &api.GetRequest{Key: []byte("a"), ReadLevel: api.ReadLevel_READ_LEVEL_SERIALIZABLE}); err != nil || !g.Found || string(g.Value) != "1" {
		t.Fatalf("serializable Get = %v, %v", g, err)
	}
	if _, err := kv.Get(ctx, &api.GetRequest{Key: []byte("a"), ReadLevel: 7}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Get with an unknown read level: %v, want InvalidArgument", err)
	}
	// CAS with old unset means "absent": fails on a present key.
	if r, err := kv.CompareAndSwap(ctx, &api.CompareAndSwapRequest{Key: []byte("a"), New: []byte("2")}); err != nil || r.Swapped {
		t.Fatalf("CAS(absent) = %v, %v", r, err)
	}
	if r, err := kv.CompareAndSwap(ctx, &api.CompareAndSwapRequest{Key: []byte("a"), Old: []byte("1")}); err != nil || !r.Swapped {
		t.Fatalf("CAS(1 -> delete) = %v, %v", r, err)
	}
	if g, err := kv.Get(ctx, &api.GetRequest{Key: []byte("a")}); err != nil || g.Found {
		t.Fatalf("Get after CAS delete = %v, %v", g, err)
	}
	if _, err := kv.Batch(ctx, &api.BatchRequest{Mutations: []*api.Mutation{
		{Key: []byte{0x01}, Value: []byte("x")}, {Key: []byte{0xf0}, Value: []byte("y")}, {Key: []byte{0x01}, Delete: true},
	}}); err != nil {
		t.Fatal(err)
	}
	s, err := kv.Scan(ctx, &api.ScanRequest{KeysOnly: true})
	if err != nil || len(s.Kvs) != 1 || s.Kvs[0].Key[0] != 0xf0 || len(s.Kvs[0].Value) != 0 {
		t.Fatalf("Scan = %v, %v", s, err)
	}
}

func TestInvalidArgument(t *testing.T) {
	ctx := ctxT(t)
	kv := api.NewKVClient(serve(t, nil, nil))
	for name, call := range map[string]func() error{
		"empty key": func() error { _, err := kv.Put(ctx, &api.PutRequest{Value: []byte("v")}); return err },
		"key too large": func() error {
			_, err := kv.Get(ctx, &api.GetRequest{Key: make([]byte, strata.MaxKeySize+1)})
			return err
		},
		"value too large": func() error {
			_, err := kv.Put(ctx, &api.PutRequest{Key: []byte("k"), Value: make([]byte, strata.MaxValueSize+1)})
			return err
		},
		"set empty end": func() error { _, err := kv.Scan(ctx, &api.ScanRequest{Start: []byte("b"), End: []byte{}}); return err },
		"end before start": func() error {
			_, err := kv.Scan(ctx, &api.ScanRequest{Start: []byte("b"), End: []byte("a")})
			return err
		},
		"delete with value": func() error {
			_, err := kv.Batch(ctx, &api.BatchRequest{Mutations: []*api.Mutation{{Key: []byte("k"), Value: []byte("v"), Delete: true}}})
			return err
		},
		"empty key in batch": func() error {
			_, err := kv.Batch(ctx, &api.BatchRequest{Mutations: []*api.Mutation{{Key: []byte("k")}, {}}})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}

type fakeAdmin struct{ addrs map[uint64]string }

func (a fakeAdmin) Members(context.Context) ([]*api.Member, error) {
	return []*api.Member{{NodeId: 1, ClientAddr: a.addrs[1], State: "alive"}}, nil
}
func (fakeAdmin) AddReplica(context.Context, uint64, uint64) error { return nil }
func (fakeAdmin) RemoveReplica(context.Context, uint64, uint64) error {
	return status.Error(codes.FailedPrecondition, "last voter")
}
func (fakeAdmin) TransferLeader(context.Context, uint64, uint64) error { return nil }
func (fakeAdmin) RemoveNode(context.Context, uint64) error             { return strata.ErrClosed }
func (a fakeAdmin) ClientAddr(node uint64) string                      { return a.addrs[node] }

func TestCluster(t *testing.T) {
	ctx := ctxT(t)
	cl := api.NewClusterClient(serve(t, fakeAdmin{addrs: map[uint64]string{1: "node1:7370"}}, nil))
	var st *api.StatusResponse
	for { // wait until every shard has elected its (only) replica
		var err error
		if st, err = cl.Status(ctx, &api.StatusRequest{}); err != nil {
			t.Fatal(err)
		}
		led := 0
		for _, s := range st.Shards {
			if s.LeaderId == 1 {
				led++
			}
		}
		if led == len(st.Shards) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.NodeId != 1 || len(st.Shards) != 3 {
		t.Fatalf("Status = %v", st)
	}
	sys, s1, s2 := st.Shards[0], st.Shards[1], st.Shards[2]
	if !sys.System || sys.Id != 1 || s1.System || s2.System {
		t.Errorf("system flags wrong: %v", st)
	}
	if len(s1.Start) != 0 || len(s2.End) != 0 || string(s1.End) != string(s2.Start) || len(s1.End) == 0 {
		t.Errorf("user shard ranges do not tile the key space: %v", st)
	}
	for _, s := range st.Shards {
		if s.LeaderAddr != "node1:7370" || s.Local == nil || !s.Local.IsLeader || s.Local.Term == 0 || s.Local.Applied == 0 || len(s.Local.Voters) != 1 {
			t.Errorf("shard %d status %v", s.Id, s)
		}
	}
	m, err := cl.Members(ctx, &api.MembersRequest{})
	if err != nil || len(m.Members) != 1 || m.Members[0].State != "alive" {
		t.Fatalf("Members = %v, %v", m, err)
	}
	if _, err := cl.AddReplica(ctx, &api.AddReplicaRequest{ShardId: 2, NodeId: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RemoveReplica(ctx, &api.RemoveReplicaRequest{ShardId: 2, NodeId: 1}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RemoveReplica: %v, want the admin's FailedPrecondition", err)
	}
	if _, err := cl.RemoveNode(ctx, &api.RemoveNodeRequest{NodeId: 1}); status.Code(err) != codes.Unavailable {
		t.Fatalf("RemoveNode: %v, want Unavailable", err)
	}
}

func TestClusterWithoutAdmin(t *testing.T) {
	ctx := ctxT(t)
	cl := api.NewClusterClient(serve(t, nil, nil))
	if _, err := cl.Status(ctx, &api.StatusRequest{}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Members":        func() error { _, err := cl.Members(ctx, &api.MembersRequest{}); return err },
		"AddReplica":     func() error { _, err := cl.AddReplica(ctx, &api.AddReplicaRequest{}); return err },
		"RemoveReplica":  func() error { _, err := cl.RemoveReplica(ctx, &api.RemoveReplicaRequest{}); return err },
		"TransferLeader": func() error { _, err := cl.TransferLeader(ctx, &api.TransferLeaderRequest{}); return err },
		"RemoveNode":     func() error { _, err := cl.RemoveNode(ctx, &api.RemoveNodeRequest{}); return err },
	} {
		if err := call(); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s: %v, want Unimplemented", name, err)
		}
	}
}

func TestMetrics(t *testing.T) {
	ctx := ctxT(t)
	reg := prometheus.NewRegistry()
	kv := api.NewKVClient(serve(t, nil, reg))
	if _, err := kv.Put(ctx, &api.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	kv.Put(ctx, &api.PutRequest{})
	kv.Get(ctx, &api.GetRequest{Key: []byte("k")})
	// A second server on the same registry shares the metrics.
	db, err := strata.Open(strata.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := server.New(server.Config{DB: db, Registry: reg}); err != nil {
		t.Fatalf("second server on one registry: %v", err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var observed uint64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "strata_client_requests_total":
				counts[labels["method"]+"/"+labels["code"]] += m.GetCounter().GetValue()
			case "strata_client_request_seconds":
				observed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]float64{"Put/OK": 1, "Put/InvalidArgument": 1, "Get/OK": 1}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("requests_total %s = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	if observed != 3 {
		t.Errorf("request_seconds observed %d requests, want 3", observed)
	}
}

func TestNewRequiresDB(t *testing.T) {
	if _, err := server.New(server.Config{}); err == nil {
		t.Fatal("New without DB succeeded")
	}
}
