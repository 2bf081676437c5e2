package replica_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/replica"
	"github.com/strata-kv/strata/txn/tso"
)

// TestWritesCommitInTimestampOrder: concurrent writes of one key get
// distinct commit timestamps and enter the log in their order (else the
// state machine stops the node with ErrCommitOrder), and the key's value
// is the write with the highest one.
func TestWritesCommitInTimestampOrder(t *testing.T) {
	s := newStore(t)
	const writers, each = 8, 25
	var (
		mu     sync.Mutex
		seen   = map[uint64]string{}
		maxTS  uint64
		maxVal string
		wg     sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				v := fmt.Sprintf("w%d-%d", w, i)
				br, err := s.Send(t.Context(), to(2, put("k", v)))
				if err != nil {
					t.Errorf("put %s: %v", v, err)
					return
				}
				mu.Lock()
				ts := br.GetTimestamp()
				if ts == 0 || seen[ts] != "" {
					t.Errorf("put %s: commit timestamp %d (also %q)", v, ts, seen[ts])
				}
				seen[ts] = v
				if ts > maxTS {
					maxTS, maxVal = ts, v
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	br, err := s.Send(t.Context(), to(2, get("k")))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(br.GetResponses()[0].GetGet().GetValue()); got != maxVal {
		t.Fatalf("k = %q, want %q, the write with the highest timestamp (%d)", got, maxVal, maxTS)
	}
}

// gatedFetcher hands out timestamps from a counter; a fetch blocks while
// gate is set until gate is closed, so a write can be held between the
// oracle and its proposal.
type gatedFetcher struct {
	counter
	mu      sync.Mutex
	gate    chan struct{}
	fetched chan struct{} // gets a value when a gated fetch has its timestamps
}

func (f *gatedFetcher) Fetch(ctx context.Context, n int) (tso.Timestamp, error) {
	first, _ := f.counter.Fetch(ctx, n)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		f.fetched <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return first, nil
}

// TestReadWaitsForWriteBelowIt is the rule that no write can commit at or
// below a timestamp a read was served at (docs/time.md, rule 3). A write
// has its timestamp but is not yet in the log when a read at a higher
// timestamp arrives: the read must wait and see it. (Without the wait the
// read finds nothing and the write then commits under it, and a second
// read at the same timestamp sees it.)
func TestReadWaitsForWriteBelowIt(t *testing.T) {
	f := &gatedFetcher{fetched: make(chan struct{}, 1)}
	s := newStore(t, f)
	ctx := t.Context()
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()

	wrote := make(chan error, 1)
	go func() {
		_, err := s.Send(ctx, to(2, put("k", "v")))
		wrote <- err
	}()
	<-f.fetched // the write has its timestamp, and is not proposed
	f.mu.Lock()
	f.gate = nil
	f.mu.Unlock()
	readTS, _ := f.counter.Fetch(ctx, 1) // a timestamp the oracle gave later

	waiting := make(chan struct{})
	replica.SetWaitBelowHook(func() { close(waiting) })
	defer replica.SetWaitBelowHook(nil)
	read := make(chan *kvpb.BatchResponse, 1)
	go func() {
		ba := to(2, get("k"))
		ba.Header.Timestamp = uint64(readTS)
		br, err := s.Send(ctx, ba)
		if err != nil {
			t.Errorf("read at %v: %v", readTS, err)
		}
		read <- br
	}()
	<-waiting // the read is confirmed and about to read
	replica.SetWaitBelowHook(nil)
	close(gate) // the write goes into the log
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	br := <-read
	if br == nil {
		return
	}
	if g := br.GetResponses()[0].GetGet(); !g.GetFound() || string(g.GetValue()) != "v" {
		t.Fatalf("read at %v missed a write with a lower timestamp that committed after it: %v", readTS, g)
	}
}
