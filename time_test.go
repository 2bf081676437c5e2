package strata_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testcluster"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/transport/faultnet"
	"github.com/strata-kv/strata/txn/tso"
)

// clockCheck fetches timestamps and checks that each is above every one
// fetched before it, on any node.
type clockCheck struct {
	t    *testing.T
	last strata.Timestamp
}

// next fetches a timestamp on each of the live nodes of c, in turn.
func (cc *clockCheck) next(ctx context.Context, c *testcluster.Cluster) {
	cc.t.Helper()
	for _, id := range c.Live() {
		ts, err := c.DB(id).Now(ctx)
		if err != nil {
			cc.t.Fatalf("Now on node %d: %v", id, err)
		}
		if ts <= cc.last {
			cc.t.Fatalf("Now on node %d = %v, not above %v", id, ts, cc.last)
		}
		cc.last = ts
	}
}

// systemLeader waits until the system shard has a leader the live nodes
// agree on.
func systemLeader(ctx context.Context, t *testing.T, c *testcluster.Cluster) uint64 {
	t.Helper()
	for {
		if l := c.Leader(shard.SystemID); l != 0 {
			return l
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no system shard leader: %v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestNowAcrossLeaderKill: timestamps strictly increase, on every node,
// across kills of the system shard's leader (its oracle goes with it and a
// new leader's starts above the persisted limit).
func TestNowAcrossLeaderKill(t *testing.T) {
	c := testcluster.Start(t, 3, strata.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc := &clockCheck{t: t}
	for range 3 {
		cc.next(ctx, c)
		l := systemLeader(ctx, t, c)
		c.Stop(l)
		cc.next(ctx, c)
		c.Restart(l)
	}
	cc.next(ctx, c)
}

// TestNowAcrossClusterCrash: timestamps strictly increase across a power
// loss of every node at once (only what was synced survives), with a clock
// that stands still so that only the persisted limit can keep them rising.
func TestNowAcrossClusterCrash(t *testing.T) {
	net := faultnet.New(1)
	defer net.Close()
	frozen := fixedClock(time.Now())
	c := testcluster.StartFaulty(t, 3, strata.Options{Clock: frozen}, net)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc := &clockCheck{t: t}
	for range 2 {
		cc.next(ctx, c)
		for _, id := range c.IDs() {
			c.Crash(id)
		}
		for _, id := range c.IDs() {
			c.Restart(id)
		}
		cc.next(ctx, c)
	}
}

// TestNowClockJumps: with the oracle's wall clock jumped seconds back and
// forward on every node, timestamps strictly increase, also across a kill
// of the system shard's leader while the clock is back; after a jump
// forward they follow the clock again.
func TestNowClockJumps(t *testing.T) {
	clock := tso.NewOffsetClock(nil)
	c := testcluster.Start(t, 3, strata.Options{Clock: clock, OracleWindow: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc := &clockCheck{t: t}
	cc.next(ctx, c)
	clock.SetOffset(-10 * time.Second)
	cc.next(ctx, c)
	l := systemLeader(ctx, t, c)
	c.Stop(l)
	cc.next(ctx, c)
	c.Restart(l)
	cc.next(ctx, c)
	clock.SetOffset(5 * time.Second)
	before := tso.FromTime(clock.Now())
	cc.next(ctx, c)
	if cc.last < before {
		t.Fatalf("after a jump forward Now = %v, below the clock's %v", cc.last, before)
	}
	clock.SetOffset(0)
	cc.next(ctx, c)
}

// TestNowCoalesces: concurrent Now calls on a node get distinct,
// increasing timestamps through the node's coalescing client (each round
// trip is one GetTimestamp; the count of ReadIndex calls, the oracle's
// confirmations under its lease and the node's other reads, is logged).
func TestNowCoalesces(t *testing.T) {
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), TickInterval: 10 * time.Millisecond, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := db.Now(ctx); err != nil {
		t.Fatal(err)
	}
	const callers, calls = 50, 20
	before := db.Node().Stats().Reads
	var (
		mu   sync.Mutex
		seen = map[strata.Timestamp]bool{}
		wg   sync.WaitGroup
	)
	for range callers {
		wg.Go(func() {
			prev := tso.Zero
			for range calls {
				ts, err := db.Now(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if ts <= prev {
					t.Errorf("Now went from %v to %v", prev, ts)
				}
				prev = ts
				mu.Lock()
				if seen[ts] {
					t.Errorf("timestamp %v handed out twice", ts)
				}
				seen[ts] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fetches := db.Node().Stats().Reads - before
	// How many calls share a fetch depends on how fast a fetch is (here a
	// local call); txn/tso's TestClientCoalesces shows the sharing with a
	// fetch held open.
	t.Logf("%d Now calls in %d fetches", callers*calls, fetches)
}

// fixedClock is a wall clock that stands still.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// TestNowAcrossLeaderTransfer: when the system shard's leadership moves
// to another live node, the old leader closes its oracle and the new one
// opens its own above it; timestamps keep rising on every node.
func TestNowAcrossLeaderTransfer(t *testing.T) {
	c := testcluster.Start(t, 3, strata.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc := &clockCheck{t: t}
	for range 3 {
		cc.next(ctx, c)
		from := systemLeader(ctx, t, c)
		if _, ok := c.DB(from).OracleLast(); !ok {
			t.Fatalf("leader %d runs no oracle", from)
		}
		to := from%3 + 1
		if err := c.DB(from).TransferLeader(ctx, shard.SystemID, to); err != nil {
			t.Fatal(err)
		}
		cc.next(ctx, c)
		// The old leader closes its oracle once it hears of the new one.
		for {
			if _, ok := c.DB(from).OracleLast(); !ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node %d still runs its oracle after losing the system shard", from)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	cc.next(ctx, c)
}

// TestIsolatedOracleServesNothingStale: an oracle whose node is cut off
// from the others, while a new system-shard leader opens its own, hands out
// no timestamp at or below one the new oracle handed out. The old leader's
// election timeout is made long, as if its ticks were slow or it had been
// paused, so that raft's check-quorum does not depose it in time: only the
// oracle's lease protects (without it the old oracle answers from its
// persisted window, below the new oracle's timestamps).
func TestIsolatedOracleServesNothingStale(t *testing.T) {
	net := faultnet.New(1)
	defer net.Close()
	c := testcluster.StartFaulty(t, 3, strata.Options{Shards: 1}, net)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const old = 1
	c.Stop(old)
	c.Edit(old, func(o *strata.Options) { o.ElectionTicks = 1000 })
	c.Restart(old)
	for systemLeader(ctx, t, c) != old {
		if l := c.Leader(shard.SystemID); l != 0 {
			_ = c.DB(l).TransferLeader(ctx, shard.SystemID, old) // until it took
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %d does not take the system shard's leadership: %v", old, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := c.DB(old).Now(ctx); err != nil {
		t.Fatalf("Now on the leader %d: %v", old, err)
	}
	others := []uint64{2, 3}
	net.Partition([]uint64{old}, others)
	fresh := strata.Timestamp(0)
	for fresh == 0 {
		for _, id := range others {
			nctx, ncancel := context.WithTimeout(ctx, 2*time.Second)
			ts, err := c.DB(id).Now(nctx)
			ncancel()
			if err == nil {
				fresh = ts
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no timestamp from the majority %v: %v", others, ctx.Err())
		}
	}
	if _, leads, err := c.DB(old).Node().Leader(shard.SystemID); err != nil || !leads {
		t.Fatalf("the cut-off node %d no longer believes it leads (%v): the test needs it to", old, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Second)
	ts, err := c.DB(old).Now(rctx)
	rcancel()
	if err == nil && ts <= fresh {
		t.Fatalf("the cut-off old leader %d handed out %v after the new oracle handed out %v", old, ts, fresh)
	}
	t.Logf("the cut-off old leader answered %v, %v (the new oracle handed out %v)", ts, err, fresh)
}
