package replica_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/replica"
	"github.com/strata-kv/strata/statemachine"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/txn/tso"
	"google.golang.org/protobuf/proto"
)

// userShard is the test's user shard: keys [a, m).
var userShard = &kvpb.ShardDescriptor{Id: 2, Start: []byte("a"), End: []byte("m"), Replicas: []uint64{1}}

// counter is a timestamp source for tests: consecutive timestamps from 1.
type counter struct{ last atomic.Uint64 }

func (c *counter) Fetch(_ context.Context, n int) (tso.Timestamp, error) {
	return tso.Timestamp(c.last.Add(uint64(n)) - uint64(n) + 1), nil
}

// newStore starts a single node hosting the system shard and userShard,
// and waits until it leads both. Its commit timestamps come from ts
// (default: a counter).
func newStore(t *testing.T, ts ...tso.Fetcher) *replica.Store {
	t.Helper()
	var fetcher tso.Fetcher = &counter{}
	if len(ts) > 0 {
		fetcher = ts[0]
	}
	eng, err := storage.Open(storage.Options{Dir: "db", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := raftnode.New(raftnode.Config{NodeID: 1, Engine: eng, StateMachine: &statemachine.KV{SystemGroup: 1},
		TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sysStart, sysEnd := storage.SystemSpan()
	start, end := mvcc.Span(userShard.Start, userShard.End)
	gs, ge := storage.GroupStateSpan(userShard.Id)
	for _, g := range []raftnode.GroupConfig{
		{ID: 1, Spans: []raftnode.Span{{Start: sysStart, End: sysEnd}}, Peers: []uint64{1}},
		{ID: 2, Spans: []raftnode.Span{{Start: start, End: end}, {Start: gs, End: ge}}, Peers: []uint64{1}},
	} {
		if err := n.CreateGroup(g); err != nil {
			t.Fatal(err)
		}
	}
	n.Start(nil)
	var s *replica.Store
	t.Cleanup(func() {
		if s != nil {
			s.Close()
		}
		_ = n.Close()
		_ = eng.Close()
	})
	s, err = replica.New(replica.Config{
		NodeID: 1, Node: n, Engine: eng,
		Descriptor: func(id uint64) (*kvpb.ShardDescriptor, bool) {
			if id == userShard.Id {
				return userShard, true
			}
			return nil, false
		},
		CreateReplica: func(context.Context, *kvpb.ShardDescriptor, uint64, bool) error { return errors.New("not here") },
		Directory:     func() ([]*kvpb.ShardDescriptor, error) { return []*kvpb.ShardDescriptor{userShard}, nil },
		Timestamps:    fetcher,
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, g := range []uint64{1, 2} {
		for {
			if _, leader, err := n.Leader(g); err == nil && leader {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node does not lead group %d", g)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return s
}

func put(key, value string) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Put{Put: &api.PutRequest{Key: []byte(key), Value: []byte(value)}}}
}

func get(key string) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Get{Get: &api.GetRequest{Key: []byte(key)}}}
}

func to(shard uint64, reqs ...*kvpb.RequestUnion) *kvpb.BatchRequest {
	return &kvpb.BatchRequest{Header: &kvpb.Header{ShardId: shard}, Requests: reqs}
}

// TestStoreServes: a write and a linearizable and a serializable read of
// it, through the typed path.
func TestStoreServes(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if _, err := s.Send(ctx, to(2, put("b", "1"), put("c", "2"))); err != nil {
		t.Fatal(err)
	}
	for _, level := range []api.ReadLevel{api.ReadLevel_READ_LEVEL_LINEARIZABLE, api.ReadLevel_READ_LEVEL_SERIALIZABLE} {
		ba := to(2, get("b"), get("c"), get("d"))
		ba.Header.ReadLevel = level
		br, err := s.Send(ctx, ba)
		if err != nil {
			t.Fatal(err)
		}
		got := br.GetResponses()
		if !got[0].GetGet().GetFound() || string(got[0].GetGet().GetValue()) != "1" ||
			string(got[1].GetGet().GetValue()) != "2" || got[2].GetGet().GetFound() {
			t.Fatalf("%v: reads = %v", level, got)
		}
	}
}

// TestStoreRefusesOutsideShard: a key outside the shard's range, a system
// request on a user shard (and the reverse), and a shard the node does not
// host are refused at evaluation, with the current descriptor for a
// mismatch, and change nothing.
func TestStoreRefusesOutsideShard(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	var sme *kvpb.ShardMismatchError
	for name, ba := range map[string]*kvpb.BatchRequest{
		"key after the range":  to(2, put("b", "1"), put("z", "1")),
		"key before the range": to(2, get("0")),
		"scan past the end": to(2, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Scan{Scan: &api.ScanRequest{
			Start: []byte("b"), End: []byte("n")}}}),
		"stale generation": {Header: &kvpb.Header{ShardId: 2, ShardGeneration: 7}, Requests: []*kvpb.RequestUnion{get("b")}},
	} {
		_, err := s.Send(ctx, ba)
		if !errors.As(err, &sme) || len(sme.Descriptors) != 1 || !proto.Equal(sme.Descriptors[0], userShard) {
			t.Errorf("%s: %v, want a ShardMismatchError with the shard's descriptor", name, err)
		}
	}
	if _, err := s.Send(ctx, to(9, get("b"))); !errors.As(err, &sme) {
		t.Errorf("unknown shard: %v, want ShardMismatchError", err)
	}
	sys := &kvpb.RequestUnion{Value: &kvpb.RequestUnion_SystemPut{SystemPut: &kvpb.SystemPutRequest{Key: []byte("x"), Value: []byte("y")}}}
	if _, err := s.Send(ctx, to(2, sys)); !errors.Is(err, kvpb.ErrBadBatch) {
		t.Errorf("system write on a user shard: %v, want ErrBadBatch", err)
	}
	if _, err := s.Send(ctx, to(1, put("b", "1"))); !errors.Is(err, kvpb.ErrBadBatch) {
		t.Errorf("user write on the system shard: %v, want ErrBadBatch", err)
	}
	br, err := s.Send(ctx, to(2, get("b")))
	if err != nil || br.GetResponses()[0].GetGet().GetFound() {
		t.Fatalf("a refused batch wrote: %v, %v", br, err)
	}
}

// TestHandleForward: a forwarded batch is served and its failure travels
// typed; garbage is refused; a node request for another node is refused.
func TestHandleForward(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if _, err := s.HandleForward(ctx, []byte{0xff, 0xff}); !errors.Is(err, kvpb.ErrBadBatch) {
		t.Fatalf("garbage: %v", err)
	}
	b, _ := proto.Marshal(&kvpb.PeerRequest{Value: &kvpb.PeerRequest_Batch{Batch: to(2, get("z"))}})
	out, err := s.HandleForward(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	resp := &kvpb.PeerResponse{}
	if err := proto.Unmarshal(out, resp); err != nil {
		t.Fatal(err)
	}
	var sme *kvpb.ShardMismatchError
	if err := resp.GetBatch().GetError().Err(); !errors.As(err, &sme) {
		t.Fatalf("forwarded out-of-range read: %v, want ShardMismatchError", err)
	}
	nr := s.HandleNode(ctx, &kvpb.NodeRequest{NodeId: 5, Value: &kvpb.NodeRequest_Directory{Directory: &kvpb.DirectoryRequest{}}})
	if err := nr.GetError().Err(); !errors.Is(err, kvpb.ErrUnavailable) {
		t.Fatalf("node request for node 5 on node 1: %v", err)
	}
	nr = s.HandleNode(ctx, &kvpb.NodeRequest{NodeId: 1, Value: &kvpb.NodeRequest_Directory{Directory: &kvpb.DirectoryRequest{}}})
	if nr.GetError() != nil || len(nr.GetDirectory().GetDescriptors()) != 1 {
		t.Fatalf("directory: %v", nr)
	}
}

// TestStoreGCThreshold: a GC batch on a shard whose range does not start at
// the first key is served (it addresses the whole shard) and raises the
// shard's replicated threshold; reads below the threshold are refused with
// it, at both read levels, and reads at and above it see their versions.
func TestStoreGCThreshold(t *testing.T) {
	s := newStore(t) // commit timestamps 1, 2, 3
	ctx := t.Context()
	for _, v := range []string{"1", "2", "3"} {
		if _, err := s.Send(ctx, to(2, put("b", v))); err != nil {
			t.Fatal(err)
		}
	}
	gc := &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Gc{Gc: &kvpb.GCRequest{Threshold: 2, MaxVersions: 100}}}
	br, err := s.Send(ctx, to(2, gc))
	if err != nil {
		t.Fatal(err)
	}
	if r := br.GetResponses()[0].GetGc(); r.GetThreshold() != 2 || r.GetRemoved() != 1 || r.GetResumeKey() != nil {
		t.Fatalf("GC answered %v, want threshold 2, 1 removed, no resume key", r)
	}
	for _, level := range []api.ReadLevel{api.ReadLevel_READ_LEVEL_LINEARIZABLE, api.ReadLevel_READ_LEVEL_SERIALIZABLE} {
		read := func(ts uint64) (*kvpb.BatchResponse, error) {
			ba := to(2, get("b"))
			ba.Header.Timestamp, ba.Header.ReadLevel = ts, level
			return s.Send(ctx, ba)
		}
		var too *kvpb.TimestampTooOldError
		if _, err := read(1); !errors.As(err, &too) || too.Threshold != 2 {
			t.Errorf("%v: read at 1: %v, want TimestampTooOldError at 2", level, err)
		}
		for ts, want := range map[uint64]string{2: "2", 3: "3"} {
			br, err := read(ts)
			if err != nil || string(br.GetResponses()[0].GetGet().GetValue()) != want {
				t.Errorf("%v: read at %d = %v, %v; want %q", level, ts, br, err, want)
			}
		}
	}
}
