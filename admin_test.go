package strata_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
)

// TestReplicaLifecycle moves a shard's replica onto a node that did not
// have it (learner, catch-up by snapshot, promotion), hands it the
// leadership, removes another replica, and checks that the data stays
// readable through every node.
func TestReplicaLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.Start(t, 4, strata.Options{Shards: 2, ReplicationFactor: 3, LogRetain: 20})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	acked := writeAll(ctx, t, c.DB(1), "before", 200)

	// Find a user shard and a node without a replica of it.
	st, err := c.DB(1).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var shardID, newNode uint64
	for _, s := range st[1:] {
		for _, id := range c.IDs() {
			if !contains(s.Replicas, id) {
				shardID, newNode = s.ID, id
			}
		}
	}
	if shardID == 0 {
		t.Fatal("every node has every shard; ReplicationFactor was ignored")
	}
	if got := c.Hosts(shardID); contains(got, newNode) {
		t.Fatalf("node %d hosts shard %d before AddReplica", newNode, shardID)
	}
	if err := c.DB(1).AddReplica(ctx, shardID, newNode); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	gs, err := c.DB(newNode).Node().Status(shardID)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(gs.Voters, newNode) || len(gs.Voters) != 4 {
		t.Fatalf("after AddReplica the voters of shard %d are %v", shardID, gs.Voters)
	}

	// The new replica takes the leadership.
	if err := c.DB(2).TransferLeader(ctx, shardID, newNode); err != nil {
		t.Fatal(err)
	}
	// TransferLeader returns once the new leader leads; the other replicas
	// hear of it on its next heartbeat.
	for lead := c.Leader(shardID); lead != newNode; lead = c.Leader(shardID) {
		if ctx.Err() != nil {
			t.Fatalf("leader of shard %d is %d after transfer to %d", shardID, lead, newNode)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Remove another replica; its data goes away.
	var victim uint64
	for _, id := range gs.Voters {
		if id != newNode {
			victim = id
			break
		}
	}
	if err := c.DB(newNode).RemoveReplica(ctx, shardID, victim); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for contains(c.Hosts(shardID), victim) {
		if time.Now().After(deadline) {
			t.Fatalf("node %d still hosts shard %d after removal", victim, shardID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err = c.DB(newNode).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.ID == shardID && (contains(s.Replicas, victim) || !contains(s.Replicas, newNode)) {
			t.Fatalf("directory of shard %d lists replicas %v", shardID, s.Replicas)
		}
	}

	// Everything written is readable through every node, including the one
	// without a replica any more; a restart keeps the new layout.
	for k, v := range writeAll(ctx, t, c.DB(victim), "after", 100) {
		acked[k] = v
	}
	for _, id := range c.IDs() {
		checkAll(ctx, t, c.DB(id), acked)
	}
	c.Stop(newNode)
	c.Restart(newNode)
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	checkAll(ctx, t, c.DB(newNode), acked)
}

func TestBatchAndScanKeys(t *testing.T) {
	ctx := ctxT(t)
	db := openSingle(t, t.TempDir())
	defer db.Close()
	var ops []strata.BatchOp
	for i := 0; i < 1000; i++ {
		ops = append(ops, strata.BatchOp{Key: []byte(fmt.Sprintf("%c-batch-%04d", byte(i), i)), Value: []byte("v")})
	}
	ops = append(ops, strata.BatchOp{Key: ops[0].Key, Delete: true})
	if err := db.Batch(ctx, ops); err != nil {
		t.Fatal(err)
	}
	keys, err := db.ScanKeys(ctx, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 999 {
		t.Fatalf("%d keys after the batch, want 999 (the last op deleted one)", len(keys))
	}
	if err := db.Batch(ctx, []strata.BatchOp{{Key: []byte("ok"), Value: []byte("1")}, {Key: nil}}); err == nil {
		t.Fatal("a batch with an empty key succeeded")
	}
	if _, err := db.Get(ctx, []byte("ok")); err == nil {
		t.Fatal("a rejected batch was partly applied")
	}
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestJoinAndReplica has a fourth node join a running cluster, get a full
// replica of a shard as a voter, and give it up again.
func TestJoinAndReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.Start(t, 3, strata.Options{Shards: 2, LogRetain: 20})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	acked := writeAll(ctx, t, c.DB(1), "before-join", 150)

	addr := testcluster.FreeAddrs(t, 1)[0]
	if _, err := strata.Open(strata.Options{Dir: t.TempDir(), NodeID: 4, Join: true}); err == nil {
		t.Fatal("a joining node without PeerAddr opened")
	}
	db4, err := strata.Open(strata.Options{Dir: t.TempDir(), NodeID: 4, PeerAddr: addr, Join: true, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db4.Close()
	if _, err := db4.Get(ctx, []byte("x")); !errors.Is(err, strata.ErrNotJoined) {
		t.Fatalf("get before joining: %v, want ErrNotJoined", err)
	}
	peers := map[uint64]string{}
	for _, id := range c.IDs() {
		peers[id] = c.Options(id).PeerAddr
		if err := c.DB(id).AddPeer(4, addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := db4.Join(ctx, peers); err != nil {
		t.Fatal(err)
	}
	// Served by forwarding before it has any replica, system shard included.
	checkAll(ctx, t, db4, acked)
	for k, v := range acked {
		if got, err := db4.GetSerializable(ctx, []byte(k)); err != nil || string(got) != v {
			t.Fatalf("serializable get of %q through a node without replicas = %q, %v", k, got, err)
		}
		break
	}
	if err := db4.RegisterNode(ctx, strata.NodeRecord{ID: 4, PeerAddr: addr}); err != nil {
		t.Fatalf("register from a node without a system replica: %v", err)
	}

	shardID := db4.Shards()[0].ID
	if err := c.DB(2).AddReplica(ctx, shardID, 4); err != nil {
		t.Fatal(err)
	}
	// Asked of the new node itself, for the system shard: its fresh empty
	// replica knows no leader and must look for one among its peers.
	if err := db4.AddReplica(ctx, 1, 4); err != nil {
		t.Fatalf("add a system replica through the new node: %v", err)
	}
	if err := db4.RemoveReplica(ctx, 1, 4); err != nil {
		t.Fatalf("remove the system replica through the new node: %v", err)
	}
	gs, err := db4.Node().Status(shardID)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(gs.Voters, 4) {
		t.Fatalf("node 4 is not a voter of shard %d: %v", shardID, gs.Voters)
	}
	// A full copy: its checksum matches the others' at the same index.
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	want, sum, err := c.DB(1).Node().Checksum(shardID)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, sum4, err := db4.Node().Checksum(shardID)
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			if sum4 != sum {
				t.Fatalf("node 4's replica of shard %d differs at index %d", shardID, got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 4 at index %d, others at %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.DB(3).RemoveReplica(ctx, shardID, 4); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := db4.Node().Status(shardID); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 4 still hosts the shard after its removal")
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkAll(ctx, t, db4, acked)
	st, err := db4.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.ID == shardID && contains(s.Replicas, 4) {
			t.Fatalf("node 4's status still lists it as a replica of shard %d: %v", shardID, s.Replicas)
		}
	}
	if err := c.DB(1).ForgetNode(ctx, 4); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		nodes, err := c.DB(1).Nodes()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, n := range nodes {
			found = found || n.ID == 4
		}
		if !found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 4 is still in the registry after ForgetNode")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAddReplicaOfUnknownNodeFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testcluster.Start(t, 3, strata.Options{Shards: 1})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.DB(1).AddReplica(ctx, 2, 9)
	if err == nil {
		t.Fatal("AddReplica to a node that is not a member succeeded")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("AddReplica to an unknown node took %v to fail: %v", time.Since(start), err)
	}
	if gs, _ := c.DB(1).Node().Status(2); contains(gs.Learners, 9) || contains(gs.Voters, 9) {
		t.Fatalf("the unknown node was added to the shard: %+v", gs)
	}
}

// TestForwardAvoidsDownReplica: a node with no replica of a shard forwards
// the shard's requests to the replica that served the last one, so a
// replica that is down costs one forward that cannot be sent, not one per
// request (each waits for the connection before giving up).
func TestForwardAvoidsDownReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.Start(t, 3, strata.Options{Shards: 1})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	acked := writeAll(ctx, t, c.DB(1), "fwd", 30)

	addr := testcluster.FreeAddrs(t, 1)[0]
	db4, err := strata.Open(strata.Options{Dir: t.TempDir(), NodeID: 4, PeerAddr: addr, Join: true, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db4.Close()
	peers := map[uint64]string{}
	for _, id := range c.IDs() {
		peers[id] = c.Options(id).PeerAddr
		if err := c.DB(id).AddPeer(4, addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := db4.Join(ctx, peers); err != nil {
		t.Fatal(err)
	}
	st, err := db4.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The replica node 4 would ask first: the first in the shard's list.
	var down uint64
	for _, s := range st {
		if s.ID != 1 {
			down = s.Replicas[0]
		}
	}
	c.Stop(down)
	checkAll(ctx, t, db4, acked) // finds a replica that answers

	stats := func() uint64 {
		s, _ := db4.TransportStats()
		return s.ForwardsNotSent
	}
	before := stats()
	checkAll(ctx, t, db4, acked)
	if n := stats() - before; n > 1 {
		t.Errorf("%d reads through node 4 tried the stopped node %d %d times; want at most once", len(acked), down, n)
	}
}
