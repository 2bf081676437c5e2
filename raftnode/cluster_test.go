package raftnode_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"go.etcd.io/raft/v3/raftpb"
)

// This file holds the in-process cluster the raftnode tests run on: every
// node is a real Pebble engine, a raftnode.Node and a gRPC transport on
// loopback, wrapped in a faultTransport that can isolate nodes.

// span returns the Pebble span of test group g: {0x03, g} to {0x03, g+1}.
func span(g uint64) raftnode.Span {
	return raftnode.Span{Start: []byte{storage.PrefixUser, byte(g)}, End: []byte{storage.PrefixUser, byte(g) + 1}}
}

func groupConfig(g uint64, peers ...uint64) raftnode.GroupConfig {
	return raftnode.GroupConfig{ID: g, Spans: []raftnode.Span{span(g)}, Peers: peers}
}

// replicaConfig is the config of replica id of g, added by AddLearner.
func replicaConfig(g, id uint64) raftnode.GroupConfig {
	gc := groupConfig(g)
	gc.ReplicaID = id
	return gc
}

// counterKey is where testSM keeps the number of commands applied in g.
func counterKey(g uint64) []byte { return span(g).Start }

// cmdKey is where testSM writes command cmd of group g.
func cmdKey(g uint64, cmd []byte) []byte {
	return append(append([]byte(nil), span(g).Start...), cmd...)
}

// errTestCommand is the command-level error testSM returns for "fail".
var errTestCommand = errors.New("test: command failed")

// testSM is a deterministic state machine: a command increments the group's
// counter (read back from the batch, so earlier writes of the pass must be
// visible) and stores the command's version under cmdKey(cmd). Its Result
// is the new counter value. The command "fail" applies as a no-op with a
// command-level error.
type testSM struct{}

func (testSM) Apply(b *pebble.Batch, e raftnode.Entry, cmd []byte) (raftnode.Result, error) {
	group, version := e.Group, e.Index
	if string(cmd) == "fail" {
		return raftnode.Result{Err: errTestCommand}, nil
	}
	var count uint64
	v, closer, err := b.Get(counterKey(group))
	switch {
	case err == nil:
		count = binary.BigEndian.Uint64(v)
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return raftnode.Result{}, err
	}
	count++
	cnt := binary.BigEndian.AppendUint64(nil, count)
	if err := b.Set(counterKey(group), cnt, nil); err != nil {
		return raftnode.Result{}, err
	}
	if len(cmd) > 0 {
		if err := b.Set(cmdKey(group, cmd), binary.BigEndian.AppendUint64(nil, version), nil); err != nil {
			return raftnode.Result{}, err
		}
	}
	return raftnode.Result{Data: cnt}, nil
}

// faults is the shared set of isolated nodes of a cluster.
type faults struct {
	mu       sync.Mutex
	isolated map[uint64]bool
	// appends counts the append messages that carried entries, sent by
	// any node.
	appends atomic.Int64
}

func (f *faults) cut(from, to uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isolated[from] || f.isolated[to]
}

// faultTransport drops what a node sends to or from an isolated node.
type faultTransport struct {
	transport.Transport
	self uint64
	f    *faults
	// onSend, if set, sees every batch the node sends, before it goes out.
	onSend func([]transport.Envelope)
}

func (t *faultTransport) Send(envs []transport.Envelope) {
	if t.onSend != nil {
		t.onSend(envs)
	}
	kept := envs[:0]
	for _, e := range envs {
		if e.Msg.GetType() == raftpb.MessageType_MsgApp && len(e.Msg.GetEntries()) > 0 {
			t.f.appends.Add(1)
		}
		if !t.f.cut(t.self, e.Msg.GetTo()) {
			kept = append(kept, e)
		}
	}
	if len(kept) > 0 {
		t.Transport.Send(kept)
	}
}

func (t *faultTransport) SendSnapshot(ctx context.Context, env transport.Envelope, body io.Reader) error {
	if t.f.cut(t.self, env.Msg.GetTo()) {
		return errors.New("test: partitioned")
	}
	return t.Transport.SendSnapshot(ctx, env, body)
}

// testNode is one node of a cluster. Its directory survives a stop, so the
// node can be restarted on the same storage.
type testNode struct {
	id     uint64
	dir    string
	fs     vfs.FS // nil: the OS
	groups []raftnode.GroupConfig
	// onSend, if set, sees every batch of messages the node sends.
	onSend func([]transport.Envelope)

	eng  *storage.Engine
	node *raftnode.Node
	grpc *transport.GRPC

	removedMu sync.Mutex
	removed   []uint64 // groups OnGroupRemoved reported
}

func (tn *testNode) removedGroups() []uint64 {
	tn.removedMu.Lock()
	defer tn.removedMu.Unlock()
	return append([]uint64(nil), tn.removed...)
}

type cluster struct {
	t      testing.TB
	mutate func(*raftnode.Config) // adjusts every node's config; may be nil
	f      *faults
	nodes  map[uint64]*testNode
}

// newCluster starts nodes 1..n, each hosting every group of groups with
// voters 1..n.
func newCluster(t testing.TB, n int, groups []uint64, mutate func(*raftnode.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, mutate: mutate, f: &faults{isolated: map[uint64]bool{}}, nodes: map[uint64]*testNode{}}
	var peers []uint64
	for id := uint64(1); id <= uint64(n); id++ {
		peers = append(peers, id)
	}
	var gcs []raftnode.GroupConfig
	for _, g := range groups {
		gcs = append(gcs, groupConfig(g, peers...))
	}
	t.Cleanup(c.stopAll)
	for _, id := range peers {
		c.addNode(id, gcs)
	}
	return c
}

// addNode creates node id (on a fresh directory) hosting gcs and starts it.
func (c *cluster) addNode(id uint64, gcs []raftnode.GroupConfig) *testNode {
	c.t.Helper()
	tn := &testNode{id: id, dir: c.t.TempDir(), groups: gcs}
	c.nodes[id] = tn
	c.start(tn)
	return tn
}

// open opens tn's engine and node and creates its groups, without starting.
func (c *cluster) open(tn *testNode) {
	c.t.Helper()
	eng, err := storage.Open(storage.Options{Dir: tn.dir, FS: tn.fs, MemTableSize: 4 << 20, CacheSize: 8 << 20})
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := raftnode.Config{
		NodeID:       tn.id,
		Engine:       eng,
		StateMachine: testSM{},
		TickInterval: 10 * time.Millisecond,
		OnGroupRemoved: func(g uint64) {
			tn.removedMu.Lock()
			tn.removed = append(tn.removed, g)
			tn.removedMu.Unlock()
		},
		OnStop: func(err error) { c.t.Errorf("node %d stopped: %v", tn.id, err) },
	}
	if c.mutate != nil {
		c.mutate(&cfg)
	}
	n, err := raftnode.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, gc := range tn.groups {
		if err := n.CreateGroup(gc); err != nil {
			c.t.Fatalf("node %d: CreateGroup(%d): %v", tn.id, gc.ID, err)
		}
	}
	tn.eng, tn.node = eng, n
}

// start opens tn if it is not open, connects it to every running node and
// starts it.
func (c *cluster) start(tn *testNode) {
	c.t.Helper()
	if tn.node == nil {
		c.open(tn)
	}
	tr, err := transport.New(transport.Config{NodeID: tn.id, ListenAddr: "127.0.0.1:0", Handler: tn.node})
	if err != nil {
		c.t.Fatal(err)
	}
	tn.grpc = tr
	for id, o := range c.nodes {
		if id == tn.id || o.grpc == nil {
			continue
		}
		tr.AddPeer(id, o.grpc.Addr())
		o.grpc.AddPeer(tn.id, tr.Addr())
	}
	tn.node.Start(&faultTransport{Transport: tr, self: tn.id, f: c.f, onSend: tn.onSend})
}

// stop closes tn: transport first (no more inbound calls), then the node,
// then the engine. Its directory stays.
func (c *cluster) stop(tn *testNode) {
	c.t.Helper()
	c.stopRecording(tn, nil)
}

// stopRecording is stop that returns, for each of groups, the applied index
// and checksum the node had when it closed: read after the node stopped and
// before its engine closed, so no apply (an election's empty entry, say)
// can slip in between the reading and the close.
func (c *cluster) stopRecording(tn *testNode, groups []uint64) map[uint64]replicaState {
	c.t.Helper()
	if tn.grpc != nil {
		if err := tn.grpc.Close(); err != nil {
			c.t.Errorf("node %d: transport close: %v", tn.id, err)
		}
		tn.grpc = nil
	}
	if tn.node != nil {
		if err := tn.node.Close(); err != nil {
			c.t.Errorf("node %d: close: %v", tn.id, err)
		}
		if err := tn.node.Err(); !errors.Is(err, raftnode.ErrStopped) {
			c.t.Errorf("node %d: Err after Close = %v, want ErrStopped", tn.id, err)
		}
	}
	var had map[uint64]replicaState
	if tn.node != nil && len(groups) > 0 {
		had = make(map[uint64]replicaState, len(groups))
		for _, g := range groups {
			a, s, err := tn.node.Checksum(g)
			if err != nil {
				c.t.Fatalf("node %d group %d: checksum after close: %v", tn.id, g, err)
			}
			had[g] = replicaState{a, s}
		}
	}
	tn.node = nil
	if tn.eng != nil {
		if err := tn.eng.Close(); err != nil {
			c.t.Errorf("node %d: engine close: %v", tn.id, err)
		}
		tn.eng = nil
	}
	return had
}

func (c *cluster) stopAll() {
	for _, tn := range c.nodes {
		c.stop(tn)
	}
}

func (c *cluster) isolate(id uint64, on bool) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.isolated[id] = on
}

// running returns the nodes that are running and host group g.
func (c *cluster) running(g uint64) []*testNode {
	var out []*testNode
	for id := uint64(1); id <= uint64(len(c.nodes))+8; id++ {
		tn := c.nodes[id]
		if tn == nil || tn.node == nil {
			continue
		}
		if _, err := tn.node.AppliedIndex(g); err == nil {
			out = append(out, tn)
		}
	}
	return out
}

// leader returns the node that leads g, with no running, non-isolated
// replica knowing another leader, waiting for one.
func (c *cluster) leader(g uint64) *testNode {
	c.t.Helper()
	var l *testNode
	waitFor(c.t, 5*time.Second, func() error {
		l = nil
		for _, tn := range c.running(g) {
			lead, is, err := tn.node.Leader(g)
			if err != nil {
				return err
			}
			if is {
				l = tn
			}
			_ = lead
		}
		if l == nil {
			return fmt.Errorf("group %d has no leader", g)
		}
		for _, tn := range c.running(g) {
			if c.f.cut(tn.id, l.id) {
				continue
			}
			// A replica not yet a member (or just restarted) may know
			// no leader; one that knows another is a split view.
			if lead, _, _ := tn.node.Leader(g); lead != 0 && lead != l.id {
				return fmt.Errorf("group %d: node %d thinks the leader is %d, not %d", g, tn.id, lead, l.id)
			}
		}
		return nil
	})
	return l
}

// propose proposes cmd in g on its leader, retrying on not-leader and
// dropped proposals, and returns the result and the leader that applied it.
func (c *cluster) propose(g uint64, cmd []byte) (raftnode.Result, *testNode) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := c.leader(g)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := l.node.Propose(ctx, g, cmd)
		cancel()
		var nle *raftnode.NotLeaderError
		switch {
		case err == nil:
			return res, l
		case (errors.As(err, &nle) || errors.Is(err, raftnode.ErrProposalDropped)) && time.Now().Before(deadline):
			time.Sleep(5 * time.Millisecond)
		default:
			c.t.Fatalf("propose %q in group %d on node %d: %v", cmd, g, l.id, err)
		}
	}
}

// waitConverged waits until every running replica of g has the applied
// index of the leader and the same checksum, and returns them.
func (c *cluster) waitConverged(g uint64) (applied uint64, sum uint32) {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, func() error {
		nodes := c.running(g)
		if len(nodes) == 0 {
			return fmt.Errorf("no replica of group %d", g)
		}
		applied, sum = 0, 0
		for i, tn := range nodes {
			a, s, err := tn.node.Checksum(g)
			if err != nil {
				return err
			}
			if i == 0 {
				applied, sum = a, s
				continue
			}
			if a != applied || s != sum {
				return fmt.Errorf("group %d: node %d at %d/%08x, node %d at %d/%08x",
					g, nodes[0].id, applied, sum, tn.id, a, s)
			}
		}
		// The leader must not have anything committed beyond that.
		for _, tn := range nodes {
			st, err := tn.node.Status(g)
			if err != nil {
				return err
			}
			if st.IsLeader && st.Commit != applied {
				return fmt.Errorf("group %d: leader %d committed %d, replicas applied %d", g, tn.id, st.Commit, applied)
			}
		}
		return nil
	})
	return applied, sum
}

// get reads key from tn's engine; nil if absent.
func get(t testing.TB, tn *testNode, key []byte) []byte {
	t.Helper()
	v, closer, err := tn.eng.Reader().Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	return bytes.Clone(v)
}

// spanKeys counts the keys of tn's engine in [start, end).
func spanKeys(t testing.TB, tn *testNode, start, end []byte) int {
	t.Helper()
	it, err := tn.eng.Reader().NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	return n
}

// waitFor polls cond until it returns nil, failing the test with cond's last
// error after timeout.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// follower returns the node of 1, 2, 3 with the lowest ID that is not l.
func (c *cluster) follower(l *testNode) *testNode {
	for _, id := range []uint64{1, 2, 3} {
		if id != l.id {
			return c.nodes[id]
		}
	}
	return nil
}

// settledLeader returns the leader of g once every running, non-isolated
// replica knows it.
func (c *cluster) settledLeader(g uint64) *testNode {
	c.t.Helper()
	var l *testNode
	waitFor(c.t, 5*time.Second, func() error {
		l = c.leader(g)
		for _, tn := range c.running(g) {
			if c.f.cut(tn.id, l.id) {
				continue
			}
			if lead, _, _ := tn.node.Leader(g); lead != l.id {
				return fmt.Errorf("group %d: node %d knows leader %d, not %d", g, tn.id, lead, l.id)
			}
		}
		return nil
	})
	return l
}

// onLeader runs f on the node that leads g, retrying on another leader
// while f fails with *NotLeaderError or ErrProposalDropped (both mean f's
// call certainly had no effect). It is safe to call from any goroutine.
func (c *cluster) onLeader(g uint64, f func(*testNode) error) (*testNode, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var l *testNode
		for _, tn := range c.running(g) {
			if _, is, _ := tn.node.Leader(g); is {
				l = tn
				break
			}
		}
		var err error
		if l == nil {
			err = fmt.Errorf("group %d has no leader", g)
		} else if err = f(l); err == nil {
			return l, nil
		}
		var nle *raftnode.NotLeaderError
		if l != nil && !errors.As(err, &nle) && !errors.Is(err, raftnode.ErrProposalDropped) {
			return l, err
		}
		if time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
