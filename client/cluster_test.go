package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/testcluster"
	"google.golang.org/grpc"
)

// nodeAdmin is a test server.Admin: the DB's own admin calls and a fixed
// map of client addresses.
type nodeAdmin struct {
	db    *strata.DB
	addrs map[uint64]string
}

func (a nodeAdmin) Members(context.Context) ([]*api.Member, error) {
	var ms []*api.Member
	for id := uint64(1); id <= uint64(len(a.addrs)); id++ {
		ms = append(ms, &api.Member{NodeId: id, ClientAddr: a.addrs[id], State: "alive"})
	}
	return ms, nil
}
func (a nodeAdmin) AddReplica(ctx context.Context, shard, node uint64) error {
	return a.db.AddReplica(ctx, shard, node)
}
func (a nodeAdmin) RemoveReplica(ctx context.Context, shard, node uint64) error {
	return a.db.RemoveReplica(ctx, shard, node)
}
func (a nodeAdmin) TransferLeader(ctx context.Context, shard, node uint64) error {
	return a.db.TransferLeader(ctx, shard, node)
}
func (a nodeAdmin) RemoveNode(context.Context, uint64) error {
	return errors.New("not in this test")
}
func (a nodeAdmin) ClientAddr(node uint64) string { return a.addrs[node] }

// cluster3 starts a 3-node cluster with two user shards, each node served
// on its own client address. It returns the cluster, the addresses and a
// function that stops a node's server.
func cluster3(t *testing.T) (*testcluster.Cluster, map[uint64]string, func(id uint64)) {
	t.Helper()
	tc := testcluster.Start(t, 3, strata.Options{Shards: 2})
	ctx := testCtx(t)
	if err := tc.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	addrs := map[uint64]string{}
	liss := map[uint64]net.Listener{}
	for _, id := range tc.IDs() {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		liss[id], addrs[id] = lis, lis.Addr().String()
	}
	servers := map[uint64]*grpc.Server{}
	for _, id := range tc.IDs() {
		srv, err := newServer(tc.DB(id), nodeAdmin{db: tc.DB(id), addrs: addrs})
		if err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer()
		srv.Register(g)
		servers[id] = g
		done := make(chan struct{})
		go func() { defer close(done); g.Serve(liss[id]) }()
		t.Cleanup(func() { g.Stop(); <-done })
	}
	return tc, addrs, func(id uint64) { servers[id].Stop() }
}

func TestCluster(t *testing.T) {
	tc, addrs, stop := cluster3(t)
	ctx := testCtx(t)

	// Only node 1 as an endpoint: the rest is learnt from Status.
	c := newClient(t, addrs[1])
	put := func(round int) {
		t.Helper()
		for i := 0; i < 20; i++ {
			k := []byte(fmt.Sprintf("%c-key-%d", "a\xf0"[i%2], i))
			if err := c.Put(ctx, k, []byte(fmt.Sprint(round))); err != nil {
				t.Fatalf("round %d: Put(%q): %v", round, k, err)
			}
			if v, err := c.Get(ctx, k); err != nil || string(v) != fmt.Sprint(round) {
				t.Fatalf("round %d: Get(%q) = %q, %v", round, k, v, err)
			}
		}
	}
	put(1)

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Shards) != 3 {
		t.Fatalf("Status: %v", st)
	}
	c.mu.Lock()
	routes := append([]route(nil), c.mu.routes...)
	c.mu.Unlock()
	if len(routes) != 2 {
		t.Fatalf("routing cache %+v, want the two user shards", routes)
	}
	for _, r := range routes {
		if lead := tc.Leader(r.id); r.leaderAddr != addrs[lead] {
			t.Errorf("cache says shard %d is led at %q; node %d (%s) leads it", r.id, r.leaderAddr, lead, addrs[lead])
		}
	}
	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("Members = %v, %v", ms, err)
	}

	// Move the first user shard's leadership: the cache is now stale, and
	// calls still work (the old leader forwards).
	shardID := routes[0].id
	from := tc.Leader(shardID)
	to := from%3 + 1
	if err := c.TransferLeader(ctx, shardID, to); err != nil {
		t.Fatal(err)
	}
	if got := tc.Leader(shardID); got != to {
		t.Fatalf("shard %d led by %d after transfer to %d", shardID, got, to)
	}
	put(2)

	// Stop a node that is not the only endpoint's node; then the endpoint
	// node itself, with a client that knows all three.
	stop(3)
	tc.Stop(3)
	put(3)
	c2 := newClient(t, addrs[1], addrs[2], addrs[3])
	stop(1)
	tc.Stop(1)
	// Two of three nodes down: no quorum, and the client says so in time.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := c2.Get(short, []byte("a-key-0")); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get without quorum: %v", err)
	}
	tc.Restart(3) // node 3's DB is back but its server is not: node 2 serves.
	// Node 2 now reaches node 3's new DB for quorum.
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := c2.Get(ctx, []byte("a-key-0"))
		if err == nil {
			if string(v) != "3" {
				t.Fatalf("Get = %q, want 3", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get after quorum returned: %v", err)
		}
	}
}
