package client

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata/api"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeKV is a KV server whose answers a test scripts. Unscripted calls
// succeed.
type fakeKV struct {
	api.UnimplementedKVServer
	api.UnimplementedClusterServer
	calls  atomic.Int64
	answer func(n int64) error // n counts this server's calls from 1
	status *api.StatusResponse
}

func (f *fakeKV) result() error {
	n := f.calls.Add(1)
	if f.answer == nil {
		return nil
	}
	return f.answer(n)
}

func (f *fakeKV) Get(context.Context, *api.GetRequest) (*api.GetResponse, error) {
	if err := f.result(); err != nil {
		return nil, err
	}
	return &api.GetResponse{Found: true, Value: []byte("v")}, nil
}

func (f *fakeKV) Put(context.Context, *api.PutRequest) (*api.PutResponse, error) {
	if err := f.result(); err != nil {
		return nil, err
	}
	return &api.PutResponse{}, nil
}

func (f *fakeKV) CompareAndSwap(context.Context, *api.CompareAndSwapRequest) (*api.CompareAndSwapResponse, error) {
	if err := f.result(); err != nil {
		return nil, err
	}
	return &api.CompareAndSwapResponse{Swapped: true}, nil
}

func (f *fakeKV) Status(context.Context, *api.StatusRequest) (*api.StatusResponse, error) {
	if f.status == nil {
		return nil, status.Error(codes.Unimplemented, "no status")
	}
	return f.status, nil
}

func serveFake(t *testing.T, f *fakeKV) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	api.RegisterKVServer(g, f)
	api.RegisterClusterServer(g, f)
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(lis) }()
	t.Cleanup(func() { g.Stop(); <-done })
	return lis.Addr().String()
}

func withInfo(code codes.Code, reason string, md map[string]string) error {
	st, err := status.New(code, "scripted "+reason).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: md})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func always(err error) func(int64) error { return func(int64) error { return err } }

func firstN(n int64, err error) func(int64) error {
	return func(i int64) error {
		if i <= n {
			return err
		}
		return nil
	}
}

func TestAmbiguousFromServer(t *testing.T) {
	f := &fakeKV{answer: always(withInfo(codes.Unknown, reasonAmbiguous, nil))}
	c := newClient(t, serveFake(t, f))
	ctx := testCtx(t)
	err := c.Put(ctx, []byte("k"), []byte("v"))
	if !errors.Is(err, ErrAmbiguous) || status.Code(err) != codes.Unknown {
		t.Fatalf("Put = %v, want ErrAmbiguous", err)
	}
	if _, err := c.CompareAndSwap(ctx, []byte("k"), nil, []byte("v")); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("CAS = %v, want ErrAmbiguous", err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("server saw %d calls, want 2 (no retries of ambiguous writes)", n)
	}
}

// An Unavailable without Strata's ErrorInfo is what a broken connection
// looks like: a write may have arrived, a read is simply retried.
func TestTransportFailureMidCall(t *testing.T) {
	broken := status.Error(codes.Unavailable, "connection reset")
	f1 := &fakeKV{answer: always(broken)}
	f2 := &fakeKV{}
	c := newClient(t, serveFake(t, f1), serveFake(t, f2))
	ctx := testCtx(t)

	err := c.Put(ctx, []byte("k"), []byte("v"))
	if !errors.Is(err, ErrAmbiguous) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put = %v, want ErrAmbiguous", err)
	}
	if f1.calls.Load() != 1 || f2.calls.Load() != 0 {
		t.Fatalf("calls %d, %d: an ambiguous Put was retried", f1.calls.Load(), f2.calls.Load())
	}
	// The ambiguous Put moved no endpoint; the Get fails on f1 and retries
	// on f2.
	if v, err := c.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if f1.calls.Load() != 2 || f2.calls.Load() != 1 {
		t.Fatalf("calls %d, %d; want the Get retried on the second endpoint", f1.calls.Load(), f2.calls.Load())
	}
}

// NODE_UNAVAILABLE and NOT_LEADER say the write was not applied: it is
// retried, on the next endpoint or the leader named.
func TestWriteRetriedWhenNotApplied(t *testing.T) {
	ctx := testCtx(t)
	f1 := &fakeKV{answer: always(withInfo(codes.Unavailable, reasonNodeUnavailable, nil))}
	f2 := &fakeKV{}
	c := newClient(t, serveFake(t, f1), serveFake(t, f2))
	if ok, err := c.CompareAndSwap(ctx, []byte("k"), nil, []byte("v")); err != nil || !ok {
		t.Fatalf("CAS = %v, %v", ok, err)
	}
	if f1.calls.Load() != 1 || f2.calls.Load() != 1 {
		t.Fatalf("calls %d, %d", f1.calls.Load(), f2.calls.Load())
	}

	leader := &fakeKV{}
	leaderAddr := serveFake(t, leader)
	follower := &fakeKV{answer: always(withInfo(codes.Unavailable, reasonNotLeader,
		map[string]string{"shard_id": "2", "leader_id": "3", "leader_addr": leaderAddr}))}
	c2 := newClient(t, serveFake(t, follower))
	start := time.Now()
	if err := c2.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if follower.calls.Load() != 1 || leader.calls.Load() != 1 {
		t.Fatalf("follower %d calls, leader %d", follower.calls.Load(), leader.calls.Load())
	}
	if d := time.Since(start); d > backoffStart {
		t.Errorf("following a leader hint took %v: it should not back off", d)
	}
}

func TestRetriesBounded(t *testing.T) {
	f := &fakeKV{answer: always(withInfo(codes.Unavailable, reasonNodeUnavailable, nil))}
	c, err := New(Config{Endpoints: []string{serveFake(t, f)}, MaxRetries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Get(testCtx(t), []byte("k"))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Get = %v, want ErrUnavailable", err)
	}
	if n := f.calls.Load(); n != 4 {
		t.Fatalf("%d calls, want 1 + 3 retries", n)
	}
	// Backoff 20 + 40 + 80 ms.
	if d := time.Since(start); d < 140*time.Millisecond || d > 2*time.Second {
		t.Fatalf("took %v, want about 140ms of backoff", d)
	}

	// A transient failure then success.
	f2 := &fakeKV{answer: firstN(2, withInfo(codes.Unavailable, reasonNodeUnavailable, nil))}
	c2 := newClient(t, serveFake(t, f2))
	if err := c2.Put(testCtx(t), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if n := f2.calls.Load(); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
}

func TestDeadlineOnWriteIsAmbiguous(t *testing.T) {
	f := &fakeKV{answer: always(status.Error(codes.DeadlineExceeded, "slow"))}
	c := newClient(t, serveFake(t, f))
	err := c.Put(testCtx(t), []byte("k"), []byte("v"))
	if !errors.Is(err, ErrAmbiguous) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put = %v, want ErrAmbiguous and DeadlineExceeded", err)
	}
	_, err = c.Get(testCtx(t), []byte("k"))
	if errors.Is(err, ErrAmbiguous) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want DeadlineExceeded, not ambiguous", err)
	}
}

// The routing cache sends a key's request to its shard's leader.
func TestRoutingCache(t *testing.T) {
	ctx := testCtx(t)
	lead1, lead2 := &fakeKV{}, &fakeKV{}
	addr1, addr2 := serveFake(t, lead1), serveFake(t, lead2)
	entry := &fakeKV{status: &api.StatusResponse{NodeId: 9, Shards: []*api.ShardStatus{
		{Id: 1, System: true, LeaderAddr: "nowhere:1"},
		{Id: 3, Start: []byte("m"), LeaderAddr: addr2},
		{Id: 2, End: []byte("m"), LeaderAddr: addr1},
	}}}
	c := newClient(t, serveFake(t, entry))
	// The first call connects to the endpoint (no cache yet), the next
	// refreshes the cache from it and goes to the leaders.
	if _, err := c.Get(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "m", "z", "", "\xff"} {
		if _, err := c.Get(ctx, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if entry.calls.Load() != 1 || lead1.calls.Load() != 3 || lead2.calls.Load() != 3 {
		t.Fatalf("calls: entry %d, shard 2 leader %d, shard 3 leader %d; want 1, 3, 3",
			entry.calls.Load(), lead1.calls.Load(), lead2.calls.Load())
	}
	c.mu.Lock()
	routes := c.mu.routes
	c.mu.Unlock()
	if len(routes) != 2 || routes[0].id != 2 || routes[1].id != 3 || routes[1].end != nil {
		t.Fatalf("routes %+v", routes)
	}
}

// A cached leader that fails is forgotten and the endpoints take over.
func TestRoutingCacheLeaderDown(t *testing.T) {
	ctx := testCtx(t)
	dead := deadAddr(t)
	entry := &fakeKV{status: &api.StatusResponse{Shards: []*api.ShardStatus{{Id: 2, LeaderAddr: dead}}}}
	c := newClient(t, serveFake(t, entry))
	for i := 0; i < 3; i++ {
		if _, err := c.Get(ctx, []byte("k")); err != nil {
			t.Fatal(err)
		}
	}
	if entry.calls.Load() != 3 {
		t.Fatalf("entry served %d of 3 calls", entry.calls.Load())
	}
}

func TestLookup(t *testing.T) {
	routes := []route{{id: 2, start: nil, end: []byte("g")}, {id: 3, start: []byte("g"), end: []byte("p")}, {id: 4, start: []byte("p")}}
	for k, want := range map[string]uint64{"": 2, "a": 2, "f\xff": 2, "g": 3, "o": 3, "p": 4, "\xff\xff": 4} {
		if r := lookup(routes, []byte(k)); r == nil || r.id != want {
			t.Errorf("lookup(%q) = %+v, want shard %d", k, r, want)
		}
	}
	if r := lookup(routes[1:2], []byte("a")); r != nil {
		t.Errorf("lookup before the first route = %+v", r)
	}
	if r := lookup(routes[1:2], []byte("q")); r != nil {
		t.Errorf("lookup after the last route's end = %+v", r)
	}
}
