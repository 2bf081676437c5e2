package strata_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
)

// TestReAddNodeRemovedWhileDown is the regression test of defect 3 of
// issue 10. A node is removed from a shard while it is down, so at restart
// it still hosts its old replica of the shard; then it is added back. The
// old replica must not survive as the new one (it would receive the log
// from before its removal, apply the removal and destroy itself, while
// AddReplica trusted its acknowledgements and promoted it): at the end
// every voter of the shard hosts a replica with the shard's data.
func TestReAddNodeRemovedWhileDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.Start(t, 4, strata.Options{Shards: 1, ReplicationFactor: 3})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	acked := writeAll(ctx, t, c.DB(1), "before", 50)
	st, err := c.DB(1).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shardID := st[1].ID
	leader := c.Leader(shardID)
	var victim uint64
	for _, id := range st[1].Replicas {
		if id != leader && leader != 0 {
			victim = id
		}
	}
	if victim == 0 {
		t.Fatalf("shard %d: no leader (%d) or no other replica in %v", shardID, leader, st[1].Replicas)
	}
	// The admin calls go through a node that stays up and hosts no
	// replica of the shard only if there is one; any live node will do.
	admin := c.DB(leader)

	c.Stop(victim)
	if err := admin.RemoveReplica(ctx, shardID, victim); err != nil {
		t.Fatal(err)
	}
	for k, v := range writeAll(ctx, t, admin, "while-down", 50) {
		acked[k] = v
	}
	c.Restart(victim)
	// The node's replica collection (collectReplica) destroys the stale
	// replica within about a second; AddReplica usually runs before that,
	// and must be right either way.
	if !contains(c.Hosts(shardID), victim) {
		t.Logf("node %d's stale replica of shard %d was collected before the re-add", victim, shardID)
	}

	if err := admin.AddReplica(ctx, shardID, victim); err != nil {
		t.Fatal(err)
	}
	for k, v := range writeAll(ctx, t, admin, "after", 50) {
		acked[k] = v
	}
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	lead := c.Leader(shardID)
	if lead == 0 {
		t.Fatalf("shard %d has no leader", shardID)
	}
	gs, err := c.DB(lead).Node().Status(shardID)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(gs.Voters, victim) {
		t.Fatalf("after AddReplica the voters of shard %d are %v, without node %d", shardID, gs.Voters, victim)
	}
	hosts := c.Hosts(shardID)
	for _, v := range gs.Voters {
		if !contains(hosts, v) {
			t.Fatalf("shard %d: voter %d hosts no replica (voters %v, hosts %v): %d voters, %d copies",
				shardID, v, gs.Voters, hosts, len(gs.Voters), len(hosts))
		}
	}
	// Every voter's replica holds the same data (WaitConverged compared
	// their checksums), and the re-added node serves all of it.
	_, want, err := c.DB(lead).Node().Checksum(shardID)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.DB(victim).Node().Checksum(shardID); err != nil || got != want {
		t.Fatalf("node %d: checksum of shard %d %x, %v; leader %d has %x", victim, shardID, got, err, lead, want)
	}
	checkAll(ctx, t, c.DB(victim), acked)
}
