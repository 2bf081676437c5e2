package raftnode_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

// TestCrashRecovery crashes a single-voter node's filesystem at a random
// moment under load (keeping a random share of unsynced writes) and
// recovers from the crash image: every acknowledged proposal survives, and
// the state is whole (the counter equals the commands' keys). Set
// RAFTNODE_CRASH_SEED to replay a run.
func TestCrashRecovery(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RAFTNODE_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("RAFTNODE_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	const g = 1
	mem := vfs.NewCrashableMem()
	c := &cluster{t: t, f: &faults{isolated: map[uint64]bool{}}, nodes: map[uint64]*testNode{},
		mutate: func(cfg *raftnode.Config) { cfg.LogRetain = 8 }}
	t.Cleanup(c.stopAll)
	tn := &testNode{id: 1, dir: "/n1", fs: mem, groups: []raftnode.GroupConfig{groupConfig(g, 1)}}
	c.nodes[1] = tn
	c.open(tn)
	tn.node.Start(nil)
	c.leader(g)

	var acked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := tn.node.Propose(context.Background(), g, fmt.Appendf(nil, "w%d-%d", w, i)); err != nil {
					t.Errorf("propose: %v", err)
					return
				}
				acked.Add(1)
			}
		})
	}
	time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
	ackedAtCrash := acked.Load()
	pct := rng.IntN(101)
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, 1))})
	close(stop)
	wg.Wait()
	c.stop(tn)

	rec := &testNode{id: 1, dir: "/n1", fs: crashed, groups: tn.groups}
	c.nodes[1] = rec
	c.open(rec)
	rec.node.Start(nil)
	c.leader(g)
	applied, _ := c.waitConverged(g)
	count := binary.BigEndian.Uint64(get(t, rec, counterKey(g)))
	keys := spanKeys(t, rec, span(g).Start, span(g).End) - 1 // less the counter
	t.Logf("crash image with %d%% of unsynced data: %d proposals acknowledged before the crash, %d recovered, applied %d",
		pct, ackedAtCrash, count, applied)
	if int64(count) < ackedAtCrash {
		t.Fatalf("lost acknowledged proposals: %d recovered, %d acknowledged", count, ackedAtCrash)
	}
	if uint64(keys) != count {
		t.Fatalf("recovered state is torn: counter %d, %d command keys", count, keys)
	}
	c.propose(g, []byte("after"))
}

// TestCrashFollower takes crash images of a follower's filesystem while
// the group is under load and opens each: the follower must recover with
// its applied index within its durable log, never refusing to open.
func TestCrashFollower(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RAFTNODE_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("RAFTNODE_CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	const g = 1
	mem := vfs.NewCrashableMem()
	c := &cluster{t: t, f: &faults{isolated: map[uint64]bool{}}, nodes: map[uint64]*testNode{}}
	t.Cleanup(c.stopAll)
	gcs := []raftnode.GroupConfig{groupConfig(g, 1, 2, 3)}
	for id := uint64(1); id <= 3; id++ {
		tn := &testNode{id: id, dir: t.TempDir(), groups: gcs}
		if id == 3 {
			tn.dir, tn.fs = "/n3", slowFS{mem}
		}
		c.nodes[id] = tn
		c.start(tn)
	}
	if l := c.leader(g); l.id == 3 {
		if err := l.node.TransferLeader(g, 1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, func() error {
			if c.leader(g).id == 3 {
				return fmt.Errorf("node 3 still leads")
			}
			return nil
		})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.onLeader(g, func(l *testNode) error {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_, err := l.node.Propose(ctx, g, fmt.Appendf(nil, "w%d-%d", w, i))
					return err
				})
				if err != nil {
					t.Errorf("propose: %v", err)
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for i := range 30 {
		time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond)
		pct := rng.IntN(101)
		img := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, uint64(i)))})
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("crash image %d (%d%% unsynced kept): opening the group panicked: %v", i, pct, r)
				}
			}()
			eng, err := storage.Open(storage.Options{Dir: "/n3", FS: img})
			if err != nil {
				t.Fatalf("crash image %d: %v", i, err)
			}
			defer eng.Close()
			n, err := raftnode.New(raftnode.Config{NodeID: 3, Engine: eng, StateMachine: testSM{}})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if err := n.CreateGroup(gcs[0]); err != nil {
				t.Fatalf("crash image %d (%d%% unsynced kept): %v", i, pct, err)
			}
			st, err := n.Status(g)
			if err != nil {
				t.Fatal(err)
			}
			if st.Applied > st.LastIndex || st.Commit < st.Applied {
				t.Fatalf("crash image %d (%d%% unsynced kept): applied %d, commit %d, log [%d, %d]",
					i, pct, st.Applied, st.Commit, st.FirstIndex, st.LastIndex)
			}
		}()
	}
}

// slowFS makes every sync of a file take a while, as a real disk does, so
// that a loop cycle's fsync leaves room for messages to arrive meanwhile.
type slowFS struct{ vfs.FS }

type slowFile struct{ vfs.File }

const syncDelay = 2 * time.Millisecond

func (f slowFile) Sync() error { time.Sleep(syncDelay); return f.File.Sync() }
func (f slowFile) SyncData() error {
	time.Sleep(syncDelay)
	return f.File.SyncData()
}
func (f slowFile) SyncTo(n int64) (bool, error) {
	time.Sleep(syncDelay)
	return f.File.SyncTo(n)
}

func (s slowFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := s.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return slowFile{f}, nil
}

func (s slowFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := s.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil {
		return nil, err
	}
	return slowFile{f}, nil
}

// TestApplyOnlyDurableEntries checks that a replica never applies an entry
// before the entry is durable in its own log: a follower catching up gets
// entries that are already committed, and if it applied them before its
// fsync, a crash in between would leave an applied index beyond its log,
// which raft refuses at restart.
func TestApplyOnlyDurableEntries(t *testing.T) {
	const g = 1
	c := &cluster{t: t, f: &faults{isolated: map[uint64]bool{}}, nodes: map[uint64]*testNode{}}
	t.Cleanup(c.stopAll)
	gcs := []raftnode.GroupConfig{groupConfig(g, 1, 2, 3)}
	for id := uint64(1); id <= 3; id++ {
		tn := &testNode{id: id, dir: t.TempDir(), groups: gcs}
		if id == 3 {
			tn.dir, tn.fs = "/n3", slowFS{vfs.NewMem()}
		}
		c.nodes[id] = tn
		c.start(tn)
	}
	c.propose(g, []byte("a"))
	if l := c.leader(g); l.id == 3 {
		if err := l.node.TransferLeader(g, 1); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		if c.leader(g).id == 3 {
			return errors.New("node 3 still leads")
		}
		return nil
	})
	f := c.nodes[3]
	for round := range 3 {
		c.isolate(3, true)
		for i := range 100 {
			c.propose(g, fmt.Appendf(nil, "r%d-%d", round, i))
		}
		c.isolate(3, false)
		target := c.leader(g)
		tst, _ := target.node.Status(g)
		for {
			st, err := f.node.Status(g)
			if err != nil {
				t.Fatal(err)
			}
			if st.Applied > st.LastIndex {
				t.Fatalf("round %d: follower applied %d with its durable log ending at %d", round, st.Applied, st.LastIndex)
			}
			if st.Applied >= tst.Commit {
				break
			}
			runtime.Gosched()
		}
	}
	c.waitConverged(g)
}
