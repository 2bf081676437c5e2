package raftnode_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// This file cuts power: a crash image keeps only what was synced (Pebble's
// CrashClone with no unsynced data), or that plus a random part of the
// rest, as a disk that lost its cache does. The crash tests in
// crash_test.go copy what was written; these check the fsyncs.

// ack is what a replica acknowledged to its leader: a MsgAppResp that did
// not reject says the replica's log holds everything up to index, in term.
type ack struct{ term, index, leader uint64 }

// crashPoint is a power-loss image of a node's filesystem, taken at one
// step, with what the node had promised by then.
type crashPoint struct {
	step      string
	pct       int // share of the unsynced data kept
	img       *vfs.MemFS
	groups    []raftnode.GroupConfig // the groups the node hosted
	acked     map[uint64]ack         // by group
	created   []uint64               // groups whose CreateGroup had bootstrapped them
	destroyed []uint64               // groups whose destruction was reported
}

// powerLoss takes crash images of one node's filesystem: whenever the node
// sends a new acknowledgement (after the persist that must back it), before
// each of its fsyncs (what a cut then leaves), and at the steps the test
// names (group creation and destruction).
type powerLoss struct {
	t    testing.TB
	id   uint64
	dir  string
	mem  *vfs.MemFS
	seed uint64

	mu struct {
		sync.Mutex
		rng       *rand.Rand
		acked     map[uint64]ack
		groups    []raftnode.GroupConfig
		created   []uint64
		destroyed []uint64
		points    []crashPoint
		syncs     int
		checked   bool // check ran: no more cuts
	}
}

// maxCrashPoints bounds the images a run keeps (each is reopened).
const maxCrashPoints = 400

func newPowerLoss(t testing.TB, id uint64, dir string, seed uint64, groups []raftnode.GroupConfig) *powerLoss {
	p := &powerLoss{t: t, id: id, dir: dir, mem: vfs.NewCrashableMem(), seed: seed}
	p.mu.rng = rand.New(rand.NewPCG(seed, id))
	p.mu.acked = map[uint64]ack{}
	p.mu.groups = slices.Clone(groups)
	return p
}

// fs is the filesystem the node runs on.
func (p *powerLoss) fs() vfs.FS { return syncCutFS{FS: p.mem, p: p} }

// cutLocked takes an image with none of the unsynced data and, at one
// point in four, another with a random part of it.
func (p *powerLoss) cutLocked(step string) {
	if p.mu.checked || len(p.mu.points) >= maxCrashPoints {
		return
	}
	pcts := []int{0}
	if p.mu.rng.IntN(4) == 0 {
		pcts = append(pcts, 1+p.mu.rng.IntN(100))
	}
	for _, pct := range pcts {
		cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: pct}
		if pct > 0 {
			cfg.RNG = rand.New(rand.NewPCG(p.seed, uint64(len(p.mu.points))))
		}
		acked := make(map[uint64]ack, len(p.mu.acked))
		for g, a := range p.mu.acked {
			acked[g] = a
		}
		p.mu.points = append(p.mu.points, crashPoint{
			step: step, pct: pct, img: p.mem.CrashClone(cfg),
			groups: slices.Clone(p.mu.groups), acked: acked,
			created: slices.Clone(p.mu.created), destroyed: slices.Clone(p.mu.destroyed),
		})
	}
}

// sent records the acknowledgements in a batch the node is about to send
// and cuts if one is new.
func (p *powerLoss) sent(envs []transport.Envelope) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var step string
	for _, e := range envs {
		m := e.Msg
		if m.GetType() != raftpb.MsgAppResp || m.GetReject() {
			continue
		}
		if slices.Contains(p.mu.destroyed, e.Group) {
			continue
		}
		old := p.mu.acked[e.Group]
		// A later term's leader may legitimately cut an unacknowledged
		// suffix: what counts is the newest term's acknowledgement.
		if m.GetTerm() > old.term || (m.GetTerm() == old.term && m.GetIndex() > old.index) {
			p.mu.acked[e.Group] = ack{term: m.GetTerm(), index: m.GetIndex(), leader: m.GetTo()}
			step = fmt.Sprintf("ack of group %d at %d/%d", e.Group, m.GetTerm(), m.GetIndex())
		}
	}
	if step != "" {
		p.cutLocked(step)
	}
}

// synced cuts before every fsync.
func (p *powerLoss) synced(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.syncs++
	p.cutLocked("before fsync of " + path)
}

// createGroup creates gc on node n and cuts right after.
func (p *powerLoss) createGroup(n *raftnode.Node, gc raftnode.GroupConfig) error {
	if err := n.CreateGroup(gc); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.groups = append(p.mu.groups, gc)
	if len(gc.Peers) > 0 {
		p.mu.created = append(p.mu.created, gc.ID)
	}
	p.cutLocked(fmt.Sprintf("group %d created", gc.ID))
	return nil
}

// groupRemoved is the node's OnGroupRemoved: it cuts once the group's
// destruction is reported (and so durable).
func (p *powerLoss) groupRemoved(g uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.destroyed = append(p.mu.destroyed, g)
	delete(p.mu.acked, g)
	p.mu.groups = slices.DeleteFunc(p.mu.groups, func(gc raftnode.GroupConfig) bool { return gc.ID == g })
	p.cutLocked(fmt.Sprintf("group %d destroyed", g))
}

// check reopens every image and fails the test for each broken promise.
func (p *powerLoss) check() {
	p.t.Helper()
	p.mu.Lock()
	points := p.mu.points
	syncs := p.mu.syncs
	p.mu.points, p.mu.checked = nil, true
	p.mu.Unlock()
	p.t.Logf("node %d: checking %d power-loss images (%d fsyncs seen)", p.id, len(points), syncs)
	failed := 0
	for i, cp := range points {
		if err := p.checkPoint(cp); err != nil {
			failed++
			if failed <= 5 {
				p.t.Errorf("image %d (%s, %d%% of unsynced data kept): %v", i, cp.step, cp.pct, err)
			}
		}
	}
	if failed > 5 {
		p.t.Errorf("... and %d more of %d images failed", failed-5, len(points))
	}
}

// checkPoint opens an image as the node would at restart: the groups must
// open, raft must not panic on its leader's next heartbeat, and the log
// must hold what the node acknowledged, the groups it bootstrapped, and
// none of the groups it reported destroyed.
func (p *powerLoss) checkPoint(cp crashPoint) (err error) {
	eng, err := storage.Open(storage.Options{Dir: p.dir, FS: cp.img, MemTableSize: 4 << 20, CacheSize: 8 << 20})
	if err != nil {
		return fmt.Errorf("open engine: %w", err)
	}
	defer eng.Close()
	for _, g := range cp.destroyed {
		rl, err := storage.OpenRaftLog(eng, g)
		if err != nil {
			return err
		}
		if _, last := rl.Bounds(); last != 0 {
			return fmt.Errorf("group %d was reported destroyed, its log ends at %d", g, last)
		}
	}
	for _, g := range cp.created {
		rl, err := storage.OpenRaftLog(eng, g)
		if err != nil {
			return err
		}
		if _, last := rl.Bounds(); last == 0 {
			return fmt.Errorf("group %d was created, its bootstrap is lost", g)
		}
	}
	n, err := raftnode.New(raftnode.Config{NodeID: p.id, Engine: eng, StateMachine: testSM{}})
	if err != nil {
		return err
	}
	panicked := false
	defer func() {
		if !panicked { // a panic leaves a group's lock held
			n.Close()
		}
	}()
	for _, gc := range cp.groups {
		if err := n.CreateGroup(gc); err != nil {
			return fmt.Errorf("CreateGroup(%d): %w", gc.ID, err)
		}
	}
	for _, gc := range cp.groups {
		a, ok := cp.acked[gc.ID]
		if !ok {
			continue
		}
		st, err := n.Status(gc.ID)
		if err != nil {
			return err
		}
		// The leader's heartbeat carries commit = the acknowledged index.
		hb := &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(a.leader),
			To: proto.Uint64(p.id), Term: proto.Uint64(a.term), Commit: proto.Uint64(a.index)}
		if err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					panicked = true
					err = fmt.Errorf("raft panicked on the leader's heartbeat: %v", r)
				}
			}()
			n.HandleMessages(a.leader, []transport.Envelope{{Group: gc.ID, Msg: hb}})
			return nil
		}(); err != nil {
			return fmt.Errorf("group %d acknowledged %d/%d, log [%d, %d] at term %d: %w",
				gc.ID, a.term, a.index, st.FirstIndex, st.LastIndex, st.Term, err)
		}
		if st.LastIndex < a.index || st.Term < a.term {
			return fmt.Errorf("group %d acknowledged %d/%d, restarts with log [%d, %d] at term %d",
				gc.ID, a.term, a.index, st.FirstIndex, st.LastIndex, st.Term)
		}
	}
	return nil
}

// syncCutFS lets a powerLoss cut before the files' fsyncs.
type syncCutFS struct {
	vfs.FS
	p *powerLoss
}

type syncCutFile struct {
	vfs.File
	p    *powerLoss
	name string
}

func (f syncCutFile) Sync() error     { f.p.synced(f.name); return f.File.Sync() }
func (f syncCutFile) SyncData() error { f.p.synced(f.name); return f.File.SyncData() }
func (f syncCutFile) SyncTo(n int64) (bool, error) {
	f.p.synced(f.name)
	return f.File.SyncTo(n)
}

func (s syncCutFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := s.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return syncCutFile{File: f, p: s.p, name: s.PathBase(name)}, nil
}

func (s syncCutFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := s.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil {
		return nil, err
	}
	return syncCutFile{File: f, p: s.p, name: s.PathBase(newname)}, nil
}

func crashSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RAFTNODE_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("RAFTNODE_CRASH_SEED=%d", seed)
	return seed
}

// TestPowerLoss runs a three-node cluster through snapshot receipt (while
// running and after a restart), group creation and group destruction,
// cutting node 3's power at every acknowledgement it sends, before each of
// its fsyncs and at those steps, and reopens every image (see checkPoint).
// Then the whole cluster loses power at once and restarts: every proposal
// that returned success is there. Set RAFTNODE_CRASH_SEED to replay a run.
func TestPowerLoss(t *testing.T) {
	seed := crashSeed(t)
	const (
		g1 = 1 // catches node 3 up by snapshot
		g2 = 2 // removes node 3
		g3 = 3 // created while running
	)
	peers := []uint64{1, 2, 3}
	gcs := []raftnode.GroupConfig{groupConfig(g1, peers...), groupConfig(g2, peers...)}
	var pl *powerLoss
	c := &cluster{t: t, f: &faults{isolated: map[uint64]bool{}}, nodes: map[uint64]*testNode{},
		mutate: func(cfg *raftnode.Config) {
			cfg.LogRetain = 5
			if cfg.NodeID == 3 {
				prev := cfg.OnGroupRemoved
				cfg.OnGroupRemoved = func(g uint64) { prev(g); pl.groupRemoved(g) }
			}
		}}
	t.Cleanup(c.stopAll)
	mems := map[uint64]*vfs.MemFS{}
	for _, id := range peers {
		tn := &testNode{id: id, dir: fmt.Sprintf("/n%d", id), groups: gcs}
		if id == 3 {
			pl = newPowerLoss(t, id, tn.dir, seed, gcs)
			mems[id] = pl.mem
			tn.fs, tn.onSend = pl.fs(), pl.sent
		} else {
			mems[id] = vfs.NewCrashableMem()
			tn.fs = mems[id]
		}
		c.nodes[id] = tn
		c.start(tn)
	}
	acked := map[uint64]uint64{} // proposals that returned success, by group
	propose := func(g uint64, n int, prefix string) {
		for i := range n {
			c.propose(g, fmt.Appendf(nil, "%s-%d", prefix, i))
			acked[g]++
		}
	}
	moveLeader := func(g uint64) { // off node 3, which then acknowledges
		waitFor(t, 10*time.Second, func() error {
			l := c.leader(g)
			if l.id != 3 {
				return nil
			}
			if err := l.node.TransferLeader(g, 1); err != nil {
				return err
			}
			return fmt.Errorf("group %d: node 3 still leads", g)
		})
	}
	moveLeader(g1)
	moveLeader(g2)
	propose(g1, 5, "a")
	propose(g2, 5, "a")
	c.waitConverged(g1)

	// Snapshot receipt in the same term: node 3 is cut off while the
	// leader truncates past it, then catches up by snapshot.
	c.isolate(3, true)
	propose(g1, 30, "b")
	c.isolate(3, false)
	c.waitConverged(g1)
	if c.nodes[3].node.Stats().SnapshotsReceived == 0 {
		t.Fatal("node 3 caught up without a snapshot")
	}

	// Group creation while running.
	gc3 := groupConfig(g3, peers...)
	for _, id := range []uint64{1, 2} {
		if err := c.nodes[id].node.CreateGroup(gc3); err != nil {
			t.Fatal(err)
		}
		c.nodes[id].groups = append(slices.Clone(c.nodes[id].groups), gc3)
	}
	if err := pl.createGroup(c.nodes[3].node, gc3); err != nil {
		t.Fatal(err)
	}
	c.nodes[3].groups = append(slices.Clone(c.nodes[3].groups), gc3)
	moveLeader(g3)
	propose(g3, 5, "a")

	// Group destruction: node 3 is removed from g2.
	if _, err := c.onLeader(g2, func(l *testNode) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return l.node.RemoveMember(ctx, g2, 3)
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if !slices.Contains(c.nodes[3].removedGroups(), g2) {
			return errors.New("node 3 has not destroyed group 2")
		}
		return nil
	})
	c.nodes[3].groups = slices.DeleteFunc(slices.Clone(c.nodes[3].groups), func(gc raftnode.GroupConfig) bool { return gc.ID == g2 })
	propose(g2, 5, "c")

	// Snapshot receipt after a clean restart.
	c.stop(c.nodes[3])
	propose(g1, 30, "d")
	c.start(c.nodes[3])
	c.waitConverged(g1)
	propose(g3, 5, "d")
	c.waitConverged(g3)

	pl.check()
	if t.Failed() {
		return
	}

	// The whole cluster loses power at once, under load: each image keeps
	// a random part of its node's unsynced data and is taken after the
	// successes counted so far.
	groups := []uint64{g1, g2, g3}
	var succeeded [g3 + 1]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		g := groups[w%len(groups)]
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
					_, err := l.node.Propose(ctx, g, fmt.Appendf(nil, "load-%d-%d", w, i))
					return err
				})
				if err != nil {
					t.Errorf("group %d: propose: %v", g, err)
					return
				}
				succeeded[g].Add(1)
			}
		})
	}
	waitFor(t, 10*time.Second, func() error {
		for _, g := range groups {
			if n := succeeded[g].Load(); n < 20 {
				return fmt.Errorf("group %d: %d proposals succeeded under load", g, n)
			}
		}
		return nil
	})
	for _, g := range groups {
		acked[g] += uint64(succeeded[g].Load())
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	imgs := map[uint64]*vfs.MemFS{}
	for _, id := range peers {
		pct := rng.IntN(101)
		imgs[id] = mems[id].CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, id))})
		t.Logf("node %d: power-loss image keeps %d%% of its unsynced data", id, pct)
	}
	close(stop)
	wg.Wait()
	c.stopAll()
	for _, id := range peers {
		tn := c.nodes[id]
		tn.fs, tn.onSend = imgs[id], nil
		c.open(tn)
	}
	for _, id := range peers {
		c.start(c.nodes[id])
	}
	for _, g := range groups {
		c.propose(g, []byte("after"))
		c.waitConverged(g)
		for _, tn := range c.running(g) {
			count := binary.BigEndian.Uint64(get(t, tn, counterKey(g)))
			if count < acked[g]+1 {
				t.Errorf("group %d on node %d after power loss: counter %d, %d proposals succeeded", g, tn.id, count, acked[g]+1)
			}
		}
	}
	t.Logf("after the whole-cluster power loss: %v proposals that succeeded, all there", acked)
}
