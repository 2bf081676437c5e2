package replica_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/replica"
	"github.com/strata-kv/strata/txn/tso"
)

func getTimestamp(n uint32) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_GetTimestamp{GetTimestamp: &kvpb.GetTimestampRequest{Count: n}}}
}

// timestamps asks s for n timestamps, retrying while the oracle opens.
func timestamps(ctx context.Context, t *testing.T, s *replica.Store, n uint32) tso.Timestamp {
	t.Helper()
	for {
		br, err := s.Send(ctx, to(1, getTimestamp(n)))
		if err == nil {
			return tso.Timestamp(br.GetResponses()[0].GetGetTimestamp().GetFirst())
		}
		if !errors.Is(err, kvpb.ErrUnavailable) {
			t.Fatalf("GetTimestamp(%d): %v", n, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GetTimestamp(%d): %v (last: %v)", n, ctx.Err(), err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestLeaderTasksServeTimestamps: the leader's oracle serves batches that
// rise, below a limit persisted through raft; a new oracle (a new leader
// or a restart) starts above that limit even with the clock set back; with
// the tasks stopped the node serves none.
func TestLeaderTasksServeTimestamps(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	clock := tso.NewOffsetClock(nil)
	lt := s.StartLeaderTasks(replica.LeaderOptions{Oracle: tso.OracleOptions{Clock: clock}})
	last := tso.Zero
	for _, n := range []uint32{1, 10, kvpb.MaxTimestampCount} {
		first := timestamps(ctx, t, s, n)
		if first <= last {
			t.Fatalf("batch of %d starts at %v, not above %v", n, first, last)
		}
		last = first + tso.Timestamp(n) - 1
	}
	if got, ok := lt.Last(); !ok || got != last {
		t.Fatalf("Last = %v, %v; want %v", got, ok, last)
	}
	if _, err := s.Send(ctx, to(2, getTimestamp(1))); !errors.Is(err, kvpb.ErrBadBatch) {
		t.Fatalf("GetTimestamp on a user shard: %v, want ErrBadBatch", err)
	}
	if err := lt.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, to(1, getTimestamp(1))); !errors.Is(err, kvpb.ErrUnavailable) {
		t.Fatalf("GetTimestamp with the tasks closed: %v, want ErrUnavailable", err)
	}

	clock.SetOffset(-time.Hour)
	lt = s.StartLeaderTasks(replica.LeaderOptions{Oracle: tso.OracleOptions{Clock: clock}})
	defer lt.Close()
	if first := timestamps(ctx, t, s, 1); first <= last {
		t.Fatalf("a new oracle with the clock an hour back starts at %v, not above %v", first, last)
	}
}
