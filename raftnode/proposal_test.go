package raftnode_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-kv/strata/raftnode"
)

// TestProposeNotLeader checks that a follower refuses a proposal with a
// *NotLeaderError naming the leader, and that a command-level error reaches
// the proposer in Result.Err.
func TestProposeNotLeader(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	l := c.settledLeader(g)
	for _, tn := range c.nodes {
		if tn == l {
			continue
		}
		_, err := tn.node.Propose(context.Background(), g, []byte("b"))
		var nle *raftnode.NotLeaderError
		if !errors.As(err, &nle) {
			t.Fatalf("Propose on follower %d: %v, want *NotLeaderError", tn.id, err)
		}
		if nle.Leader != l.id || nle.Group != g {
			t.Fatalf("Propose on follower %d: %+v, want leader %d of group %d", tn.id, nle, l.id, g)
		}
		if err := tn.node.TransferLeader(g, tn.id); !errors.As(err, &nle) {
			t.Fatalf("TransferLeader on follower %d: %v, want *NotLeaderError", tn.id, err)
		}
	}
	res, err := l.node.Propose(context.Background(), g, []byte("fail"))
	if err != nil || !errors.Is(res.Err, errTestCommand) {
		t.Fatalf("Propose(fail) = %+v, %v; want Result.Err = errTestCommand", res, err)
	}
	if _, err := l.node.Propose(context.Background(), 99, []byte("x")); !errors.Is(err, raftnode.ErrUnknownGroup) {
		t.Fatalf("Propose to an unknown group: %v, want ErrUnknownGroup", err)
	}
	if got := get(t, l, cmdKey(g, []byte("b"))); got != nil {
		t.Fatalf("a proposal refused by a follower applied")
	}
	c.waitConverged(g)
}

// TestProposeDroppedDuringTransfer checks that a leader transferring
// leadership refuses proposals with ErrProposalDropped.
func TestProposeDroppedDuringTransfer(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	l := c.leader(g)
	var target uint64
	for id := range c.nodes {
		if id != l.id {
			target = id
			break
		}
	}
	// The target cannot be reached, so the transfer stays pending until it
	// times out after an election timeout.
	c.isolate(target, true)
	if err := l.node.TransferLeader(g, target); err != nil {
		t.Fatal(err)
	}
	if _, err := l.node.Propose(context.Background(), g, []byte("during")); !errors.Is(err, raftnode.ErrProposalDropped) {
		t.Fatalf("Propose during a leader transfer: %v, want ErrProposalDropped", err)
	}
	c.isolate(target, false)
	c.propose(g, []byte("after"))
	c.waitConverged(g)
	for _, tn := range c.nodes {
		if get(t, tn, cmdKey(g, []byte("during"))) != nil {
			t.Fatalf("node %d applied a dropped proposal", tn.id)
		}
	}
}

// TestProposeDroppedOnLeaderChange checks that a proposal an isolated
// leader accepted fails with ErrProposalDropped once the replica applies an
// entry of the next leader's term, and that it never applies anywhere.
func TestProposeDroppedOnLeaderChange(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	old := c.leader(g)
	c.isolate(old.id, true)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		_, err := old.node.Propose(ctx, g, []byte("lost"))
		errc <- err
	}()
	// The others elect a new leader and commit in its term.
	var nl *testNode
	waitFor(t, 5*time.Second, func() error {
		for _, tn := range c.nodes {
			if _, is, _ := tn.node.Leader(g); is && tn != old {
				nl = tn
				return nil
			}
		}
		return errors.New("no new leader")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := nl.node.Propose(ctx, g, []byte("new")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatalf("proposal on the isolated leader finished before it rejoined: %v", err)
	default:
	}
	c.isolate(old.id, false)
	select {
	case err := <-errc:
		if !errors.Is(err, raftnode.ErrProposalDropped) {
			t.Fatalf("proposal of a deposed leader: %v, want ErrProposalDropped", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("proposal of a deposed leader never finished")
	}
	c.waitConverged(g)
	for _, tn := range c.nodes {
		if get(t, tn, cmdKey(g, []byte("lost"))) != nil {
			t.Fatalf("node %d applied the dropped proposal", tn.id)
		}
		if get(t, tn, cmdKey(g, []byte("new"))) == nil {
			t.Fatalf("node %d lacks the new leader's write", tn.id)
		}
	}
}

// TestProposeAmbiguous checks that a proposal whose context ends before it
// applies fails with ErrAmbiguous (wrapping the context's error), and that
// closing the node fails a waiting proposal with ErrAmbiguous and
// ErrStopped.
func TestProposeAmbiguous(t *testing.T) {
	const g = 1
	c := newCluster(t, 3, []uint64{g}, nil)
	c.propose(g, []byte("a"))
	l := c.leader(g)
	for id := range c.nodes {
		if id != l.id {
			c.isolate(id, true)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := l.node.Propose(ctx, g, []byte("deadline"))
	if !errors.Is(err, raftnode.ErrAmbiguous) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Propose past its deadline: %v, want ErrAmbiguous wrapping DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.node.Propose(ctx, g, []byte("cancel"))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, raftnode.ErrAmbiguous) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Propose: %v, want ErrAmbiguous wrapping Canceled", err)
	}

	// A context already done proposes nothing.
	if _, err := l.node.Propose(ctx, g, []byte("never")); !errors.Is(err, context.Canceled) || errors.Is(err, raftnode.ErrAmbiguous) {
		t.Fatalf("Propose with a done context: %v, want Canceled", err)
	}

	// Still without a quorum, closing the node ends a waiting proposal.
	go func() {
		_, err := l.node.Propose(context.Background(), g, []byte("closed"))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.stop(l)
	select {
	case err := <-errc:
		if !errors.Is(err, raftnode.ErrAmbiguous) || !errors.Is(err, raftnode.ErrStopped) {
			t.Fatalf("Propose on a closed node: %v, want ErrAmbiguous and ErrStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting proposal")
	}
	for id := range c.nodes {
		c.isolate(id, false)
	}
	c.propose(g, []byte("after"))
	c.waitConverged(g)
	for _, tn := range c.running(g) {
		if get(t, tn, cmdKey(g, []byte("never"))) != nil {
			t.Fatalf("node %d applied a proposal made with a done context", tn.id)
		}
	}
}

// TestProposeAfterClose checks calls on a closed node.
func TestProposeAfterClose(t *testing.T) {
	const g = 1
	c := newCluster(t, 1, []uint64{g}, nil)
	tn := c.nodes[1]
	c.propose(g, []byte("a"))
	n := tn.node
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Propose(context.Background(), g, []byte("b")); !errors.Is(err, raftnode.ErrStopped) {
		t.Fatalf("Propose after Close: %v, want ErrStopped", err)
	}
	if err := n.ReadIndex(context.Background(), g); !errors.Is(err, raftnode.ErrStopped) {
		t.Fatalf("ReadIndex after Close: %v, want ErrStopped", err)
	}
	if err := n.CreateGroup(groupConfig(2, 1)); !errors.Is(err, raftnode.ErrStopped) {
		t.Fatalf("CreateGroup after Close: %v, want ErrStopped", err)
	}
	select {
	case <-n.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}
