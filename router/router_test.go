package router

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/shard"
)

// fakeLocal answers every batch with the error err returns for the
// attempt, counting attempts.
type fakeLocal struct {
	attempts atomic.Int64
	answer   func(attempt int64) error
}

func (f *fakeLocal) Send(context.Context, *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	if err := f.answer(f.attempts.Add(1)); err != nil {
		return nil, err
	}
	return &kvpb.BatchResponse{Responses: []*kvpb.ResponseUnion{{Value: &kvpb.ResponseUnion_Put{Put: &api.PutResponse{}}}}}, nil
}

func (f *fakeLocal) HandleNode(context.Context, *kvpb.NodeRequest) *kvpb.NodeResponse {
	return &kvpb.NodeResponse{}
}

func (f *fakeLocal) Err() error { return nil }

func newTestSender(t *testing.T, local Local) *DistSender {
	t.Helper()
	r, err := shard.NewRouter([]shard.Descriptor{{ID: 2, Start: []byte{}, Replicas: []uint64{1}}})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := New(Config{NodeID: 1, Local: local,
		Routes:   func() (*shard.Router, error) { return r, nil },
		Replicas: func(uint64) []uint64 { return []uint64{1} }})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func putBatch() *kvpb.BatchRequest {
	return &kvpb.BatchRequest{Header: &kvpb.Header{}, Requests: []*kvpb.RequestUnion{
		{Value: &kvpb.RequestUnion_Put{Put: &api.PutRequest{Key: []byte("k"), Value: []byte("v")}}}}}
}

// TestRetriesUntilServed: not-leader, dropped and unavailable answers are
// retried; the batch is served once the replica can.
func TestRetriesUntilServed(t *testing.T) {
	answers := []error{&kvpb.NotLeaderError{Shard: 2}, kvpb.ErrProposalDropped, kvpb.ErrUnavailable}
	f := &fakeLocal{answer: func(a int64) error {
		if int(a) <= len(answers) {
			return answers[a-1]
		}
		return nil
	}}
	if _, err := newTestSender(t, f).Send(t.Context(), putBatch()); err != nil {
		t.Fatal(err)
	}
	if got := f.attempts.Load(); got != 4 {
		t.Fatalf("%d attempts, want 4", got)
	}
}

// TestAmbiguousIsNotRetried: a write whose outcome is unknown is returned
// at once, never sent again.
func TestAmbiguousIsNotRetried(t *testing.T) {
	f := &fakeLocal{answer: func(int64) error { return kvpb.ErrAmbiguous }}
	if _, err := newTestSender(t, f).Send(t.Context(), putBatch()); !errors.Is(err, kvpb.ErrAmbiguous) {
		t.Fatalf("Send = %v, want ErrAmbiguous", err)
	}
	if got := f.attempts.Load(); got != 1 {
		t.Fatalf("%d attempts, want 1", got)
	}
}

// TestGivingUpKeepsTheTypedError: when the context ends, the error wraps
// both the last failure (a caller finds the NotLeaderError and its hint)
// and the context's error.
func TestGivingUpKeepsTheTypedError(t *testing.T) {
	f := &fakeLocal{answer: func(int64) error { return &kvpb.NotLeaderError{Shard: 2, Leader: 1} }}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := newTestSender(t, f).Send(ctx, putBatch())
	var nle *kvpb.NotLeaderError
	if !errors.As(err, &nle) || nle.Leader != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want a NotLeaderError naming node 1 and DeadlineExceeded", err)
	}
}

// TestSplitsByShard: a batch whose keys fall in two shards goes out as one
// batch per shard, and the answers come back in the request's order.
func TestSplitsByShard(t *testing.T) {
	r, err := shard.NewRouter([]shard.Descriptor{
		{ID: 2, Start: []byte{}, End: []byte("m"), Replicas: []uint64{1}},
		{ID: 3, Start: []byte("m"), Replicas: []uint64{1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var shards []uint64
	local := &recordingLocal{mu: make(chan struct{}, 1), seen: func(ba *kvpb.BatchRequest) { shards = append(shards, ba.GetHeader().GetShardId()) }}
	ds, err := New(Config{NodeID: 1, Local: local,
		Routes:   func() (*shard.Router, error) { return r, nil },
		Replicas: func(uint64) []uint64 { return []uint64{1} }})
	if err != nil {
		t.Fatal(err)
	}
	ba := &kvpb.BatchRequest{Header: &kvpb.Header{}}
	for _, k := range []string{"a", "x", "b"} {
		ba.Requests = append(ba.Requests, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Get{Get: &api.GetRequest{Key: []byte(k)}}})
	}
	br, err := ds.Send(t.Context(), ba)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a", "x", "b"} {
		if got := string(br.GetResponses()[i].GetGet().GetValue()); got != want {
			t.Fatalf("response %d = %q, want %q", i, got, want)
		}
	}
	if len(shards) != 2 {
		t.Fatalf("sent to shards %v, want one batch each to 2 and 3", shards)
	}
}

// recordingLocal answers each get with its key as the value.
type recordingLocal struct {
	mu   chan struct{}
	seen func(*kvpb.BatchRequest)
}

func (l *recordingLocal) Send(_ context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	l.lock()
	l.seen(ba)
	l.unlock()
	br := &kvpb.BatchResponse{}
	for _, r := range ba.GetRequests() {
		br.Responses = append(br.Responses, &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_Get{
			Get: &api.GetResponse{Found: true, Value: r.GetGet().GetKey()}}})
	}
	return br, nil
}

func (l *recordingLocal) lock() {
	if l.mu == nil {
		panic("recordingLocal: no lock")
	}
	l.mu <- struct{}{}
}
func (l *recordingLocal) unlock() { <-l.mu }

func (l *recordingLocal) HandleNode(context.Context, *kvpb.NodeRequest) *kvpb.NodeResponse {
	return &kvpb.NodeResponse{}
}
func (l *recordingLocal) Err() error { return nil }
