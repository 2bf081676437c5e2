package strata_test

import (
	"context"
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
	if lead := c.Leader(shardID); lead != newNode {
		t.Fatalf("leader of shard %d is %d after transfer to %d", shardID, lead, newNode)
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
