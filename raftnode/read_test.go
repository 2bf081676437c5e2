package raftnode_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata/raftnode"
)

// TestReadIndex checks linearizable reads with both read modes (the
// unsafe lease mode is only unsafe under faults, and there are none): many
// concurrent ReadIndex calls on the leader, racing with writes, each see
// every write acknowledged before the call started, and they share rounds.
func TestReadIndex(t *testing.T) {
	for _, lease := range []bool{false, true} {
		t.Run(fmt.Sprintf("UnsafeLeaseReads=%v", lease), func(t *testing.T) {
			testReadIndex(t, lease)
		})
	}
}

func testReadIndex(t *testing.T, lease bool) {
	const (
		g       = 1
		readers = 32
		reads   = 20 // per reader
		writes  = 100
	)
	c := newCluster(t, 3, []uint64{g}, func(cfg *raftnode.Config) { cfg.UnsafeLeaseReads = lease })
	c.propose(g, []byte("first"))
	l := c.settledLeader(g)

	// Reads on a follower are refused with the leader's ID.
	for _, tn := range c.nodes {
		if tn == l {
			continue
		}
		var nle *raftnode.NotLeaderError
		if err := tn.node.ReadIndex(context.Background(), g); !errors.As(err, &nle) || nle.Leader != l.id || nle.Group != g {
			t.Fatalf("ReadIndex on follower %d: %v, want NotLeaderError{Leader: %d}", tn.id, err, l.id)
		}
	}

	base := map[uint64]raftnode.Stats{}
	for id, tn := range c.nodes {
		base[id] = tn.node.Stats()
	}
	var acked atomic.Uint64 // writes acknowledged so far (the counter after the latest)
	acked.Store(1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range writes {
			var res raftnode.Result
			_, err := c.onLeader(g, func(l *testNode) (err error) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				res, err = l.node.Propose(ctx, g, fmt.Appendf(nil, "k%d", i))
				return err
			})
			if err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			for n := binary.BigEndian.Uint64(res.Data); ; {
				old := acked.Load()
				if n <= old || acked.CompareAndSwap(old, n) {
					break
				}
			}
		}
	})
	for range readers {
		wg.Go(func() {
			for range reads {
				want := acked.Load()
				l, err := c.onLeader(g, func(l *testNode) error {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					return l.node.ReadIndex(ctx, g)
				})
				if err != nil {
					t.Errorf("ReadIndex: %v", err)
					return
				}
				// The read is linearizable: it sees at least every write
				// acknowledged before it began.
				if got := binary.BigEndian.Uint64(get(t, l, counterKey(g))); got < want {
					t.Errorf("stale read: counter %d after ReadIndex, but %d writes were acknowledged before it", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	var nreads, rounds int64
	for id, tn := range c.nodes {
		s := tn.node.Stats()
		nreads += s.Reads - base[id].Reads
		rounds += s.ReadRounds - base[id].ReadRounds
	}
	t.Logf("%d reads in %d rounds (%.1f reads/round), lease=%v", nreads, rounds, float64(nreads)/float64(rounds), lease)
	// A read refused by a deposed leader is retried, so counted twice.
	if nreads < readers*reads {
		t.Errorf("Stats().Reads summed = %d, want at least %d", nreads, readers*reads)
	}
	// Raft answers a lease-based ReadIndex at once, so only safe reads have
	// rounds to share.
	if !lease && rounds*2 > nreads {
		t.Errorf("%d ReadIndex rounds for %d reads; concurrent reads should share rounds", rounds, nreads)
	}
	c.waitConverged(g)
}

// TestReadIndexCancelled checks that a ReadIndex whose context ended
// leaves nothing behind that breaks later reads.
func TestReadIndexCancelled(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("x"))
	l := c.leader(g)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.node.ReadIndex(ctx, g); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadIndex with a cancelled context: %v", err)
	}
	// A round whose followers cannot answer: the caller's deadline ends it.
	for id := range c.nodes {
		if id != l.id {
			c.isolate(id, true)
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.node.ReadIndex(ctx, g); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadIndex without a quorum: %v, want DeadlineExceeded", err)
	}
	for id := range c.nodes {
		c.isolate(id, false)
	}
	waitFor(t, 5*time.Second, func() error {
		l := c.leader(g)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return l.node.ReadIndex(ctx, g)
	})
	if err := l.node.ReadIndex(context.Background(), 99); !errors.Is(err, raftnode.ErrUnknownGroup) {
		t.Fatalf("ReadIndex of an unknown group: %v", err)
	}
}
