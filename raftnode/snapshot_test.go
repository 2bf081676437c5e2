package raftnode_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestSnapshotCatchUp stops a follower, writes until the leader truncated
// its log past the follower's position (small LogRetain), and restarts the
// follower: it catches up by snapshot and ends with the leader's checksum.
func TestSnapshotCatchUp(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, func(cfg *raftnode.Config) { cfg.LogRetain = 5 })
	c.propose(g, []byte("a"))
	l := c.leader(g)
	var down *testNode
	for _, tn := range c.nodes {
		if tn != l {
			down = tn
			break
		}
	}
	c.waitConverged(g)
	behind, _, err := down.node.Checksum(g)
	if err != nil {
		t.Fatal(err)
	}
	c.stop(down)

	for i := range 50 {
		c.propose(g, fmt.Appendf(nil, "k%d", i))
	}
	l = c.leader(g)
	st, err := l.node.Status(g)
	if err != nil {
		t.Fatal(err)
	}
	if st.FirstIndex <= behind+1 {
		t.Fatalf("leader's log starts at %d: not truncated past the stopped follower's %d", st.FirstIndex, behind)
	}
	if l.node.Stats().Truncations == 0 {
		t.Fatal("Stats().Truncations = 0 after truncating")
	}

	c.start(down)
	applied, sum := c.waitConverged(g)
	s := down.node.Stats()
	t.Logf("follower %d: behind at %d, leader log from %d; caught up to %d (checksum %08x) with %d snapshot(s)",
		down.id, behind, st.FirstIndex, applied, sum, s.SnapshotsReceived)
	if s.SnapshotsReceived == 0 {
		t.Fatal("follower caught up without a snapshot")
	}
	if got := binary.BigEndian.Uint64(get(t, down, counterKey(g))); got != 51 {
		t.Fatalf("follower counter %d, want 51", got)
	}
	// The sender counts once the receiver's answer is back, which may be
	// after the receiver caught up.
	waitFor(t, 5*time.Second, func() error {
		if sumStats(c, func(s raftnode.Stats) int64 { return s.SnapshotsSent }) == 0 {
			return errors.New("no node counted a snapshot sent")
		}
		return nil
	})
	// The follower goes on replicating from the log.
	c.propose(g, []byte("after"))
	c.waitConverged(g)
}

func sumStats(c *cluster, f func(raftnode.Stats) int64) int64 {
	var n int64
	for _, tn := range c.nodes {
		if tn.node != nil {
			n += f(tn.node.Stats())
		}
	}
	return n
}

// TestUnknownGroup checks that messages for a group a node does not host
// are dropped and counted, never stepped or crashed on: over the network
// (a group hosted by only one of two nodes) and by direct calls.
func TestUnknownGroup(t *testing.T) {
	c := newCluster(t, 2, []uint64{1}, nil)
	// Node 1 alone hosts group 7, which names node 2 as a voter: its
	// election messages reach node 2, which does not host it.
	if err := c.nodes[1].node.CreateGroup(groupConfig(7, 1, 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if d := c.nodes[2].node.Stats().UnknownGroupDrops; d == 0 {
			return errors.New("no drop counted")
		}
		return nil
	})
	n := c.nodes[2].node
	before := n.Stats().UnknownGroupDrops
	n.HandleMessages(1, []transport.Envelope{
		{Group: 99, Msg: &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(100)}},
		{Group: 98, Msg: &raftpb.Message{}},
	})
	if got := n.Stats().UnknownGroupDrops - before; got != 2 {
		t.Fatalf("UnknownGroupDrops grew by %d, want 2", got)
	}
	err := n.HandleSnapshot(context.Background(), transport.Envelope{Group: 99, Msg: snapMsg(1, 2, 100, 6)}, strings.NewReader("whatever"))
	if !errors.Is(err, raftnode.ErrUnknownGroup) {
		t.Fatalf("HandleSnapshot of an unknown group: %v, want ErrUnknownGroup", err)
	}
	if got := n.Stats().UnknownGroupDrops - before; got != 3 {
		t.Fatalf("UnknownGroupDrops grew by %d, want 3", got)
	}
	if err := n.Err(); err != nil {
		t.Fatalf("node stopped: %v", err)
	}
	c.propose(1, []byte("still works"))
	c.waitConverged(1)
}

func snapMsg(from, to, index, term uint64) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(term),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		}},
	}
}

// snapBody encodes a snapshot body as raftnode documents it.
func snapBody(t *testing.T, as storage.AppliedState, kvs ...[2][]byte) []byte {
	t.Helper()
	enc, err := as.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b := []byte("STRATA-SNAP-1\n")
	b = binary.AppendUvarint(b, uint64(len(enc)))
	b = append(b, enc...)
	for _, kv := range kvs {
		for _, p := range kv {
			b = binary.AppendUvarint(b, uint64(len(p)))
			b = append(b, p...)
		}
	}
	return b
}

// TestMalformedSnapshot feeds a follower snapshot bodies that are wrong in
// every way the format allows; each is rejected with an error, and the
// follower's data, log and service are untouched.
func TestMalformedSnapshot(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	l := c.leader(g)
	var f *testNode
	for _, tn := range c.nodes {
		if tn != l {
			f = tn
		}
	}
	st, _ := l.node.Status(g)
	idx, term := st.Commit+1000, st.Term
	as := storage.AppliedState{Index: idx, Term: term, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}
	inSpan := [2][]byte{cmdKey(g, []byte("evil")), []byte("v")}
	good := snapBody(t, as, inSpan)
	otherAS := as
	otherAS.Index = idx - 1
	cases := map[string][]byte{
		"empty":            nil,
		"bad magic":        append([]byte("NOT-A-SNAPSHOT\n"), good[14:]...),
		"short magic":      good[:5],
		"no applied state": good[:14],
		"short applied":    snapBody(t, as)[:20],
		"garbage applied":  append(append([]byte("STRATA-SNAP-1\n"), 3), 'x', 'y', 'z'),
		"huge length":      binary.AppendUvarint([]byte("STRATA-SNAP-1\n"), 1<<40),
		"truncated key":    good[:len(good)-4],
		"key without value": append(snapBody(t, as),
			binary.AppendUvarint(nil, 2)[0], 0x03, byte(g)),
		"key outside spans": snapBody(t, as, [2][]byte{{0x03, g + 1, 'x'}, []byte("v")}),
		"raft key":          snapBody(t, as, [2][]byte{storage.HardStateKey(g), []byte("v")}),
		"index mismatch":    snapBody(t, otherAS, inSpan),
	}
	env := transport.Envelope{Group: g, Msg: snapMsg(l.id, f.id, idx, term)}
	c.waitConverged(g)
	appliedBefore, sumBefore, _ := f.node.Checksum(g)
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			err := f.node.HandleSnapshot(context.Background(), env, bytes.NewReader(body))
			if err == nil {
				t.Fatalf("malformed snapshot accepted")
			}
			t.Logf("%v", err)
		})
	}
	// An envelope that is not a MsgSnap.
	notSnap := transport.Envelope{Group: g, Msg: &raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum()}}
	if err := f.node.HandleSnapshot(context.Background(), notSnap, bytes.NewReader(good)); err == nil {
		t.Fatal("snapshot without a MsgSnap accepted")
	}
	if err := f.node.Err(); err != nil {
		t.Fatalf("follower stopped: %v", err)
	}
	if applied, sum, _ := f.node.Checksum(g); applied != appliedBefore || sum != sumBefore {
		t.Fatal("a rejected snapshot changed the follower's data")
	}
	if get(t, f, cmdKey(g, []byte("evil"))) != nil {
		t.Fatal("a rejected snapshot's key was written")
	}
	c.propose(g, []byte("b"))
	c.waitConverged(g)
}
