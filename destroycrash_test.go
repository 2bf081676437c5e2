package strata_test

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
	"github.com/strata-kv/strata/transport/faultnet"
)

// TestPowerLossDuringDestroyLeavesNoEmptyReplica removes a follower from a
// shard and cuts its power just before each of its first syncs after the
// removal in turn: before the removal's entry is on its disk, after it
// applied it, after it destroyed its replica, after it saved its replica
// list. After the restart the node may still host its old replica (it never
// learnt of the removal) but never a replica that knows no membership at
// all: nothing would ever fill or remove that one. Between rounds the node
// is added back.
func TestPowerLossDuringDestroyLeavesNoEmptyReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	net := faultnet.New(1)
	defer net.Close()
	c := testcluster.StartFaulty(t, 3, strata.Options{Shards: 1, ReplicationFactor: 3}, net)
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	shardID := c.DB(1).Shards()[0].ID
	for syncs := 0; syncs < 5; syncs++ {
		if err := c.WaitConverged(ctx); err != nil {
			t.Fatal(err)
		}
		lead := c.Leader(shardID)
		if lead == 0 {
			if err := c.WaitLeaders(ctx); err != nil {
				t.Fatal(err)
			}
			lead = c.Leader(shardID)
		}
		victim := lead%3 + 1
		if err := c.DB(lead).Put(ctx, []byte("k"), []byte{byte(syncs)}); err != nil {
			t.Fatal(err)
		}
		crashed := c.ArmCrash(victim, syncs, vfs.CrashCloneCfg{})
		if err := c.DB(lead).RemoveReplica(ctx, shardID, victim); err != nil {
			t.Fatalf("round %d: RemoveReplica(%d): %v", syncs, victim, err)
		}
		select {
		case <-crashed:
		case <-time.After(2 * time.Second):
			t.Logf("round %d: node %d made fewer syncs", syncs, victim)
		}
		c.Crash(victim)
		c.Restart(victim)
		if st, err := c.DB(victim).Node().Status(shardID); err == nil {
			t.Logf("round %d: node %d hosts a replica after restart: voters %v, applied %d", syncs, victim, st.Voters, st.Applied)
			if len(st.Voters) == 0 {
				got, err := c.DB(victim).GetSerializable(ctx, []byte("k"))
				t.Errorf("round %d: power loss before node %d's sync %d after its removal: after the restart it hosts an empty replica of shard %d that is no member (applied %d); a serializable read of \"k\" through it: %v, %v (want %v)",
					syncs, victim, syncs+1, shardID, st.Applied, got, err, []byte{byte(syncs)})
			}
		} else {
			t.Logf("round %d: node %d hosts no replica after restart", syncs, victim)
		}
		if err := c.DB(lead).AddReplica(ctx, shardID, victim); err != nil {
			t.Fatalf("round %d: AddReplica(%d): %v", syncs, victim, err)
		}
	}
}
