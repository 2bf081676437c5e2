package strata

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/storage"
)

// TestSaveReplicaListConcurrentCreations is the regression test of defect
// 7 of issue 10: replicas created at the same time must all be in the
// saved replica list, or a restart forgets some of them.
func TestSaveReplicaListConcurrentCreations(t *testing.T) {
	db, err := Open(Options{Dir: "d", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const rounds, perRound = 200, 8
	next := uint64(1000)
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for i := 0; i < perRound; i++ {
			next++
			// An empty replica of a shard no one else has: it never
			// elects, which does not matter here.
			d := shard.Descriptor{ID: next, Start: fmt.Appendf(nil, "k%06d", next), End: fmt.Appendf(nil, "k%06d~", next)}
			wg.Go(func() {
				if err := db.createReplica(context.Background(), d, 0, false); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		v, err := storage.Get(db.eng.Reader(), replicasKey)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := decodeIDs(v)
		if err != nil {
			t.Fatal(err)
		}
		var missing []uint64
		for _, id := range db.node.Groups() {
			if !slices.Contains(saved, id) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			t.Fatalf("round %d: %d groups hosted, %d saved; missing from the saved list: %v", round, len(db.node.Groups()), len(saved), missing)
		}
	}
}
