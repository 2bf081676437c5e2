package raftnode_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

// walSyncFailure returns a switchable injector failing every fsync of a
// write-ahead log file.
func walSyncFailure() *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				return errorfs.ErrInjected
			}
		}
		return nil
	})}
}

// openFailing opens an engine and a node (not started) on a filesystem
// whose WAL fsyncs fail once the returned toggle is on.
func openFailing(t *testing.T) (*storage.Engine, *raftnode.Node, *errorfs.Toggle) {
	t.Helper()
	inj := walSyncFailure()
	eng, err := storage.Open(storage.Options{Dir: "/db", FS: errorfs.Wrap(vfs.NewMem(), inj)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := raftnode.New(raftnode.Config{NodeID: 1, Engine: eng, StateMachine: testSM{}, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return eng, n, inj
}

// TestCreateGroupFailingDisk: when the bootstrap commit of CreateGroup
// fails, CreateGroup returns the failure and the node stops; it must not
// deadlock (the engine's stop callback stops the node, which takes the
// node's lock).
func TestCreateGroupFailingDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, n, inj := openFailing(t)
	inj.On()
	done := make(chan error, 1)
	go func() { done <- n.CreateGroup(groupConfig(1, 1)) }()
	select {
	case err := <-done:
		if !errors.Is(err, storage.ErrStopped) {
			t.Fatalf("CreateGroup on a failing disk: %v, want storage.ErrStopped", err)
		}
		t.Logf("CreateGroup on a failing disk: %v", err)
	case <-ctx.Done():
		// The goroutine stays stuck: leave the node and engine alone.
		t.Fatal("CreateGroup on a failing disk hung")
	}
	select {
	case <-n.Done():
	case <-ctx.Done():
		t.Fatal("node did not stop after its bootstrap commit failed")
	}
	if err := n.CreateGroup(groupConfig(2, 1)); !errors.Is(err, raftnode.ErrStopped) && !errors.Is(err, storage.ErrStopped) {
		t.Fatalf("CreateGroup on a stopped node: %v, want ErrStopped", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	_ = eng.Close()
}

// TestAppliedIndexAfterStorageFailure: once a storage failure stopped the
// node, AppliedIndex (which serializable reads use to check that the
// replica is served here) fails with ErrStopped instead of answering from
// a replica that no longer applies anything.
func TestAppliedIndexAfterStorageFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, n, inj := openFailing(t)
	defer eng.Close()
	defer n.Close()
	if err := n.CreateGroup(groupConfig(1, 1)); err != nil {
		t.Fatal(err)
	}
	n.Start(nil)
	for {
		if _, is, _ := n.Leader(1); is {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no leader")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, err := n.Propose(ctx, 1, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.AppliedIndex(1); err != nil {
		t.Fatalf("AppliedIndex before the failure: %v", err)
	}
	inj.On()
	if _, err := n.Propose(ctx, 1, []byte("b")); err == nil {
		t.Fatal("a proposal succeeded although its fsync failed")
	}
	select {
	case <-n.Done():
	case <-ctx.Done():
		t.Fatal("node did not stop after a failed fsync")
	}
	if ai, err := n.AppliedIndex(1); !errors.Is(err, raftnode.ErrStopped) {
		t.Fatalf("AppliedIndex after the storage failure = %d, %v; want ErrStopped", ai, err)
	}
}
