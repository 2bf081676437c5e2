package strata_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
)

// TestWipedInitialMemberRefused restarts an initial member on an empty
// directory without Join, as an operator who lost the node's disk and
// reused its command line would (issue 10, defect 6). The peers already
// form a cluster in which the node's replicas acknowledged entries, so it
// must not bootstrap again as an empty voter: Open refuses, saying to use
// Join. Before the fix it bootstrapped:
//
//	wipedmember_test.go:39: a wiped initial member bootstrapped again without Join
func TestWipedInitialMemberRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.Start(t, 3, strata.Options{Shards: 1, ReplicationFactor: 3})
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	acked := writeAll(ctx, t, c.DB(1), "before", 20)
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	const victim = 3
	c.Stop(victim)
	c.Wipe(victim)
	// The check asks the groups' leaders (a group that is electing one tells
	// nothing, see checkNotWiped): wait until the others lead every shard.
	if err := c.WaitLeaders(ctx); err != nil {
		t.Fatal(err)
	}
	o := c.Options(victim)
	o.Join = false
	var err error
	for range 50 { // the port may still be held briefly by the stopped node
		var db *strata.DB
		if db, err = strata.Open(o); err == nil {
			db.Close()
			t.Fatal("a wiped initial member bootstrapped again without Join")
		}
		if errors.Is(err, strata.ErrMustJoin) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(err, strata.ErrMustJoin) {
		t.Fatalf("Open of a wiped initial member: %v, want ErrMustJoin", err)
	}
	t.Logf("Open refused: %v", err)
	c.Restart(victim)
	if err := c.Join(ctx, victim); err != nil {
		t.Fatal(err)
	}
	checkAll(ctx, t, c.DB(1), acked)
}
