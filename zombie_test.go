package strata_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
)

// TestReplicaRemovedWhileDownDoesNotSurviveRestart is the targeted
// reproduction of what TestMembershipLifecycle found: a node removed from
// a shard while it was down hosts its old replica after its restart, and
// nothing ever tells that replica it is no longer a member. It stays (a
// non-member replica that survived a restart) and answers serializable
// reads from the data it had when it went down.
func TestReplicaRemovedWhileDownDoesNotSurviveRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.Start(t, 4, strata.Options{Shards: 1, ReplicationFactor: 3})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	key := []byte("zombie-key")
	if err := c.DB(1).Put(ctx, key, []byte("old")); err != nil {
		t.Fatal(err)
	}
	shardID := c.DB(1).Shards()[0].ID
	leader := c.Leader(shardID)
	var victim uint64
	for _, id := range c.Hosts(shardID) {
		if id != leader {
			victim = id
		}
	}
	if leader == 0 || victim == 0 {
		t.Fatalf("shard %d: leader %d, hosts %v", shardID, leader, c.Hosts(shardID))
	}
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	c.Stop(victim)
	if err := c.DB(leader).RemoveReplica(ctx, shardID, victim); err != nil {
		t.Fatal(err)
	}
	if err := c.DB(leader).Put(ctx, key, []byte("new")); err != nil {
		t.Fatal(err)
	}
	c.Restart(victim)

	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	for slices.Contains(c.Hosts(shardID), victim) {
		select {
		case <-wctx.Done():
			st, _ := c.DB(victim).Node().Status(shardID)
			got, err := c.DB(victim).GetSerializable(ctx, key)
			t.Fatalf("node %d, removed from shard %d while down, still hosts a replica 10s after its restart "+
				"(it counts voters %v, applied %d); a serializable read through it of %q = %q, %v (the shard has %q)",
				victim, shardID, st.Voters, st.Applied, key, got, err, "new")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
