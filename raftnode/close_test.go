package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata/raftnode"
)

// TestCloseUnderLoad closes a node while proposals and reads pour in with
// contexts that never end: every call must return, with ErrStopped (and
// ErrAmbiguous for a proposal that may have applied), never hang.
func TestCloseUnderLoad(t *testing.T) {
	for iter := range 10 {
		c := newCluster(t, 1, []uint64{1}, nil)
		tn := c.nodes[1]
		c.propose(1, []byte("a"))
		n := tn.node
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := 0; ; i++ {
					var err error
					if w%2 == 0 {
						_, err = n.Propose(context.Background(), 1, fmt.Appendf(nil, "w%d-%d", w, i))
					} else {
						err = n.ReadIndex(context.Background(), 1)
					}
					if err != nil {
						if !errors.Is(err, raftnode.ErrStopped) {
							t.Errorf("after Close: %v, want ErrStopped", err)
						}
						return
					}
				}
			})
		}
		time.Sleep(time.Duration(iter) * time.Millisecond)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("iteration %d: calls still waiting 5s after Close", iter)
		}
		c.stopAll()
	}
}
