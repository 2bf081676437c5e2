package raftnode_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// This file tests the life of a replica around its removal: reads racing
// the removal, removal decided on a Ready's final membership, and recovery
// of a replica whose removal was applied but not finished.

// TestRemoveThenReAddInOneReady delivers [remove N, add-learner N] to a
// lagging replica of N. The learner is a new replica, with a new ID
// (issue 10, defect 6): the leader no longer sends the old one anything,
// and the old one drops what the leader sends the new one, so it never
// acknowledges the new replica's log. Once the node replaces it (as the
// root package's AddReplica does), the new replica catches up.
func TestRemoveThenReAddInOneReady(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	c.waitConverged(g)
	l := c.settledLeader(g)
	v := c.follower(l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// While v is cut off, the two others remove it and add it back as a
	// learner; v gets both entries at once when it is reachable again.
	c.isolate(v.id, true)
	if _, err := c.onLeader(g, func(l *testNode) error { return l.node.RemoveMember(ctx, g, v.id) }); err != nil {
		t.Fatalf("RemoveMember(%d): %v", v.id, err)
	}
	var id uint64
	if _, err := c.onLeader(g, func(l *testNode) (err error) { id, err = l.node.AddLearner(ctx, g, v.id); return err }); err != nil {
		t.Fatalf("AddLearner(%d): %v", v.id, err)
	}
	if id == uint64(v.id) {
		t.Fatalf("the re-added learner reuses replica ID %#x", id)
	}
	before := v.node.Stats().StaleReplicaDrops
	c.isolate(v.id, false)
	waitFor(t, 10*time.Second, func() error {
		if d := v.node.Stats().StaleReplicaDrops; d == before {
			return fmt.Errorf("node %d dropped no message for the new replica %#x", v.id, id)
		}
		return nil
	})
	if st, err := v.node.Status(g); err != nil || st.ReplicaID != uint64(v.id) {
		t.Fatalf("old replica: %+v, %v", st, err)
	}
	if err := v.node.DestroyGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := v.node.CreateGroup(replicaConfig(g, id)); err != nil {
		t.Fatal(err)
	}
	c.propose(g, []byte("b"))
	c.waitConverged(g)
	if get(t, v, cmdKey(g, []byte("a"))) == nil || get(t, v, cmdKey(g, []byte("b"))) == nil {
		t.Fatalf("node %d's new replica lacks the group's data", v.id)
	}
}

// TestReadRacesOwnRemoval removes the leader while a read it confirmed has
// not yet read: the removal deletes the replica's data, so the read must
// either see the data or fail as not-leader (safe to retry elsewhere),
// never see the keys absent.
func TestReadRacesOwnRemoval(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("k"))
	c.waitConverged(g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var found bool // written by the read, read once readErr delivered
	// read starts a Read on l that, once confirmed, waits for l's replica
	// to be destroyed before it reads the key.
	read := func(l *testNode, confirmed chan<- struct{}, readErr chan<- error) {
		readErr <- l.node.Read(ctx, g, func(r pebble.Reader) error {
			close(confirmed)
			for !slices.Contains(l.removedGroups(), g) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Millisecond):
				}
			}
			v, closer, err := r.Get(cmdKey(g, []byte("k")))
			if errors.Is(err, pebble.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			found = v != nil
			return closer.Close()
		})
	}
	var (
		l       *testNode
		readErr chan error
	)
	for confirmedOn := false; !confirmedOn; {
		l = c.settledLeader(g)
		confirmed := make(chan struct{})
		readErr = make(chan error, 1)
		go read(l, confirmed, readErr)
		select {
		case <-confirmed:
			confirmedOn = true
		case err := <-readErr:
			var nle *raftnode.NotLeaderError
			if !errors.As(err, &nle) {
				t.Fatalf("Read on the leader: %v", err)
			}
			// Leadership moved before the read was confirmed: again.
		}
	}
	// The read holds between its confirmation and its access to storage
	// while l's replica is removed (by l, or whoever leads now).
	if _, err := c.onLeader(g, func(x *testNode) error { return x.node.RemoveMember(ctx, g, l.id) }); err != nil {
		t.Fatalf("RemoveMember(%d): %v", l.id, err)
	}
	err := <-readErr
	var nle *raftnode.NotLeaderError
	switch {
	case err == nil && !found:
		t.Fatal("a read confirmed by ReadIndex saw the key absent: the replica's removal deleted it under the read")
	case err != nil && !errors.As(err, &nle):
		t.Fatalf("Read: %v, want success or *NotLeaderError", err)
	}
	t.Logf("Read: found=%v err=%v", found, err)
}

// TestRecoverRemovedReplica crashes a node after it applied its own
// removal and before it destroyed its replica. At restart the replica's
// applied membership lacks the node: recovery must finish the destruction
// (data, raft state, OnGroupRemoved) instead of serving a zombie. An empty
// replica waiting for its first snapshot is not one.
func TestRecoverRemovedReplica(t *testing.T) {
	const g = 1
	errCrash := errors.New("test: crash before destroy")
	c := newCluster(t, 3, []uint64{g}, func(cfg *raftnode.Config) {
		id := cfg.NodeID
		cfg.OnStop = func(err error) {
			if !errors.Is(err, errCrash) {
				t.Errorf("node %d stopped: %v", id, err)
			}
		}
	})
	for i := range 5 {
		c.propose(g, fmt.Appendf(nil, "k%d", i))
	}
	c.waitConverged(g)
	l := c.settledLeader(g)
	v := c.follower(l)
	raftnode.SetBeforeDestroy(v.node, func(uint64) error { return errCrash })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.onLeader(g, func(l *testNode) error { return l.node.RemoveMember(ctx, g, v.id) }); err != nil {
		t.Fatalf("RemoveMember(%d): %v", v.id, err)
	}
	select {
	case <-v.node.Done():
	case <-ctx.Done():
		t.Fatal("the removed node did not reach its destruction")
	}
	if err := v.node.Err(); !errors.Is(err, errCrash) {
		t.Fatalf("node %d stopped with %v, want the crash hook's error", v.id, err)
	}
	if spanKeys(t, v, span(g).Start, span(g).End) == 0 {
		t.Fatal("the crash point is wrong: the replica's data is already gone")
	}
	crashStop(t, v)
	c.start(v)
	waitFor(t, 5*time.Second, func() error {
		if gs := v.node.Groups(); slices.Contains(gs, g) {
			st, _ := v.node.Status(g)
			return fmt.Errorf("restarted node %d still hosts group %d (voters %v, applied %d)", v.id, g, st.Voters, st.Applied)
		}
		if r := v.removedGroups(); !slices.Equal(r, []uint64{g}) {
			return fmt.Errorf("OnGroupRemoved calls: %v", r)
		}
		return nil
	})
	if n := spanKeys(t, v, span(g).Start, span(g).End); n != 0 {
		t.Fatalf("recovered node kept %d keys of the group's data", n)
	}
	rs, re := storage.GroupRaftSpan(g)
	if n := spanKeys(t, v, rs, re); n != 0 {
		t.Fatalf("recovered node kept %d raft keys of the group", n)
	}
	c.propose(g, []byte("after"))
	c.waitConverged(g)

	// A fresh replica (no membership yet: cut off from the leader) survives
	// a restart, with the replica ID it was created with.
	c.isolate(4, true)
	l = c.settledLeader(g)
	id4, err := l.node.AddLearner(ctx, g, 4)
	if err != nil {
		t.Fatalf("AddLearner(4): %v", err)
	}
	n4 := c.addNode(4, []raftnode.GroupConfig{replicaConfig(g, id4)})
	c.stop(n4)
	n4.groups = []raftnode.GroupConfig{groupConfig(g)} // 0: the stored ID
	c.start(n4)
	if !slices.Contains(n4.node.Groups(), g) || len(n4.removedGroups()) != 0 {
		t.Fatalf("an empty replica was taken for a removed one: groups %v, removed %v", n4.node.Groups(), n4.removedGroups())
	}
	if st, err := n4.node.Status(g); err != nil || st.ReplicaID != id4 {
		t.Fatalf("restarted empty replica: %+v, %v; want replica ID %#x", st, err, id4)
	}
	c.isolate(4, false)
	c.waitConverged(g)
}

// crashStop stops tn after its node stopped on its own: transport, node,
// then engine (which keeps every write the node committed).
func crashStop(t *testing.T, tn *testNode) {
	t.Helper()
	if err := tn.grpc.Close(); err != nil {
		t.Errorf("node %d: transport close: %v", tn.id, err)
	}
	tn.grpc = nil
	if err := tn.node.Close(); err != nil {
		t.Errorf("node %d: close: %v", tn.id, err)
	}
	tn.node = nil
	if err := tn.eng.Close(); err != nil {
		t.Errorf("node %d: engine close: %v", tn.id, err)
	}
	tn.eng = nil
}

// TestInboundMessageChecks sends a follower and a leader raft messages no
// correct peer sends: a MsgSnap without its data on the raft stream (raft
// would accept it and the node stop for want of the data), a proposal (a
// leader would append it, and a payload without a proposal ID stops every
// replica that applies it), a message whose sender is not the stream's
// peer, and an append, a vote and a snapshot from a node that is not a
// member of the group. Each is dropped and counted, and changes nothing.
func TestInboundMessageChecks(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	c.waitConverged(g)
	l := c.settledLeader(g)
	f := c.follower(l)
	st, err := f.node.Status(g)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(typ raftpb.MessageType, from, to, term uint64) *raftpb.Message {
		return &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(term)}
	}
	forged := raftpb.Entry{Type: raftpb.EntryType_EntryNormal.Enum(), Term: proto.Uint64(st.Term + 1), Index: proto.Uint64(st.LastIndex + 1),
		Data: append(binary.BigEndian.AppendUint64(nil, 1), "forged"...)}
	app := msg(raftpb.MsgApp, 99, f.id, st.Term+1)
	app.Index, app.LogTerm, app.Commit = proto.Uint64(st.LastIndex), proto.Uint64(st.Term), proto.Uint64(st.LastIndex+1)
	app.Entries = []*raftpb.Entry{&forged}
	vote := msg(raftpb.MsgVote, 99, f.id, st.Term+1)
	vote.Index, vote.LogTerm = proto.Uint64(st.LastIndex+100), proto.Uint64(st.Term+1)
	prop := msg(raftpb.MsgProp, f.id, l.id, 0)
	prop.Entries = []*raftpb.Entry{{Data: []byte("x")}}

	before := [4]raftnode.Stats{}
	for id, tn := range c.nodes {
		before[id] = tn.node.Stats()
	}
	// From the leader, on its stream: a MsgSnap that carries no data.
	f.node.HandleMessages(l.id, []transport.Envelope{{Group: g, Msg: snapMsg(l.id, f.id, st.Commit+1000, st.Term)}})
	// From a member, claiming to be the leader.
	f.node.HandleMessages(c.nodes[6-l.id-f.id].id, []transport.Envelope{{Group: g, Msg: msg(raftpb.MsgHeartbeat, l.id, f.id, st.Term+1)}})
	// From a member, a proposal to the leader.
	l.node.HandleMessages(f.id, []transport.Envelope{{Group: g, Msg: prop}})
	// From node 99, which is no member.
	f.node.HandleMessages(99, []transport.Envelope{{Group: g, Msg: app}, {Group: g, Msg: vote}})
	as := storage.AppliedState{Index: st.Commit + 1000, Term: st.Term + 1, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3, 99}}}
	body := snapBody(t, as, [2][]byte{cmdKey(g, []byte("forged")), []byte("v")})
	snapErr := f.node.HandleSnapshot(context.Background(), transport.Envelope{Group: g, Msg: snapMsg(99, f.id, as.Index, as.Term)}, bytes.NewReader(body))

	if lead, _, _ := f.node.Leader(g); lead == 99 {
		t.Errorf("follower %d follows node 99, which is no member", f.id)
	}
	if snapErr == nil {
		t.Error("a snapshot from a non-member was accepted")
	}
	c.propose(g, []byte("b"))
	c.waitConverged(g)
	if get(t, f, cmdKey(g, []byte("forged"))) != nil {
		t.Error("the follower applied a non-member's write")
	}
	for id, tn := range c.nodes {
		if err := tn.node.Err(); err != nil {
			t.Errorf("node %d stopped: %v", id, err)
		}
	}
	fs, ls := f.node.Stats(), l.node.Stats()
	if got := fs.InvalidMessageDrops - before[f.id].InvalidMessageDrops; got != 2 {
		t.Errorf("follower counted %d invalid messages, want 2 (the bodiless MsgSnap, the impostor)", got)
	}
	if got := ls.InvalidMessageDrops - before[l.id].InvalidMessageDrops; got != 1 {
		t.Errorf("leader counted %d invalid messages, want 1 (the proposal)", got)
	}
	if got := fs.NonMemberDrops - before[f.id].NonMemberDrops; got != 3 {
		t.Errorf("follower counted %d messages from non-members, want 3 (append, vote, snapshot)", got)
	}
}

// TestIgnoredSnapshotsReleased sends a follower snapshots raft ignores
// (one of an older term, one no newer than what it committed): their data
// must not stay staged.
func TestIgnoredSnapshotsReleased(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	c.waitConverged(g)
	l := c.settledLeader(g)
	f := c.follower(l)
	st, err := f.node.Status(g)
	if err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	for _, as := range []storage.AppliedState{
		{Index: st.Commit + 1000, Term: st.Term - 1, ConfState: cs}, // an older term's leader
		{Index: st.Commit, Term: st.Term, ConfState: cs},            // nothing new
	} {
		body := snapBody(t, as, [2][]byte{cmdKey(g, []byte("snap")), []byte("v")})
		env := transport.Envelope{Group: g, Msg: snapMsg(l.id, f.id, as.Index, as.Term)}
		if err := f.node.HandleSnapshot(context.Background(), env, bytes.NewReader(body)); err != nil {
			t.Fatalf("HandleSnapshot at %d/%d: %v", as.Index, as.Term, err)
		}
	}
	c.propose(g, []byte("b"))
	c.waitConverged(g)
	waitFor(t, 5*time.Second, func() error {
		if n := raftnode.SnapshotsStaged(f.node, g); n != 0 {
			return fmt.Errorf("follower %d still holds %d ignored snapshot(s)", f.id, n)
		}
		return nil
	})
	if get(t, f, cmdKey(g, []byte("snap"))) != nil {
		t.Fatal("an ignored snapshot's data was written")
	}
}
