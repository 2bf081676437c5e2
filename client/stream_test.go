package client

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// collect reads all of seq.
func collect(t *testing.T, seq func(func(KV, error) bool)) ([]KV, error) {
	t.Helper()
	var out []KV
	for kv, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, kv)
	}
	return out, nil
}

func TestAll(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, startNode(t))
	value := make([]byte, 8<<10)
	const n = 1200 // about 9.6 MiB: about ten stream messages
	for i := 0; i < n; i += 100 {
		var ms []Mutation
		for j := i; j < i+100; j++ {
			ms = append(ms, Mutation{Key: fmt.Appendf(nil, "%c/%05d", byte(j%2)*0x80, j), Value: value})
		}
		if err := c.Batch(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}
	want, ts, err := c.ScanAt(ctx, nil, nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, want[0].Key); err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, c.All(ctx, nil, nil, ScanOptions{Timestamp: ts}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("All at the scan's timestamp: %d pairs, want %d", len(got), n)
	}
	for i := range got {
		if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Fatalf("pair %d = %q, Scan has %q", i, got[i].Key, want[i].Key)
		}
	}
	// Now: the deleted key is gone.
	if got, err := collect(t, c.All(ctx, nil, nil, ScanOptions{})); err != nil || len(got) != n-1 {
		t.Fatalf("All now: %d pairs, %v; want %d", len(got), err, n-1)
	}
	// A limit, keys only, a range.
	got, err = collect(t, c.All(ctx, []byte("\x80"), nil, ScanOptions{Limit: 300, KeysOnly: true}))
	if err != nil || len(got) != 300 || bytes.Compare(got[0].Key, []byte("\x80")) < 0 || got[0].Value != nil {
		t.Fatalf("All from 0x80, limit 300, keys only: %d pairs, %v", len(got), err)
	}
	// Stopping early.
	i := 0
	for _, err := range c.All(ctx, nil, nil, ScanOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if i++; i == 5 {
			break
		}
	}
	// Errors are yielded.
	if _, err := collect(t, c.All(ctx, []byte("b"), []byte("a"), ScanOptions{})); !errors.Is(err, ErrInvalidRange) {
		t.Fatalf("All with end before start: %v, want ErrInvalidRange", err)
	}
}

// fakeStream serves ScanStream over the keys k00..k19, 5 per message,
// at timestamp 7; behave scripts each call (n counts calls from 1).
type fakeStream struct {
	fakeKV
	mu     sync.Mutex
	reqs   []*api.ScanRequest
	behave func(n int, sent int) error // non-nil: fail (or, for errStall, stall) before message sent+1
}

var errStall = errors.New("stall")

func (f *fakeStream) ScanStream(req *api.ScanRequest, st grpc.ServerStreamingServer[api.ScanResponse]) error {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	var keys []string
	for i := range 20 {
		if k := fmt.Sprintf("k%02d", i); k >= string(req.GetStart()) {
			keys = append(keys, k)
		}
	}
	for sent := 0; len(keys) > 0; sent++ {
		if f.behave != nil {
			if err := f.behave(n, sent); errors.Is(err, errStall) {
				<-st.Context().Done()
				return st.Context().Err()
			} else if err != nil {
				return err
			}
		}
		m := &api.ScanResponse{Timestamp: 7}
		for _, k := range keys[:min(5, len(keys))] {
			m.Kvs = append(m.Kvs, &api.KeyValue{Key: []byte(k), Value: []byte("v")})
		}
		keys = keys[min(5, len(keys)):]
		if len(keys) > 0 {
			m.ResumeKey = []byte(keys[0])
		}
		if err := st.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func serveFakeStream(t *testing.T, f *fakeStream) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	api.RegisterKVServer(g, f)
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(lis) }()
	t.Cleanup(func() { g.Stop(); <-done })
	return lis.Addr().String()
}

// TestAllResumes: a stream that breaks, or stops sending, is resumed
// where it stopped, at its timestamp, on the next endpoint: every key
// comes once, in order.
func TestAllResumes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		behave func(n, sent int) error
	}{
		{"broken", func(n, sent int) error {
			if n == 1 && sent == 2 {
				return status.Error(codes.Unavailable, "scripted break")
			}
			return nil
		}},
		{"stalled", func(n, sent int) error {
			if n == 1 && sent == 2 {
				return errStall
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			f := &fakeStream{behave: tc.behave}
			addr := serveFakeStream(t, f)
			c, err := New(Config{Endpoints: []string{addr}, RequestTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := collect(t, c.All(ctx, nil, nil, ScanOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 20 {
				t.Fatalf("%d pairs, want 20", len(got))
			}
			for i, kv := range got {
				if want := fmt.Sprintf("k%02d", i); string(kv.Key) != want {
					t.Fatalf("pair %d is %q, want %q", i, kv.Key, want)
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.reqs) != 2 || string(f.reqs[1].GetStart()) != "k10" || f.reqs[1].GetTimestamp() != 7 {
				t.Fatalf("requests %v: want a second one from k10 at timestamp 7", f.reqs)
			}
		})
	}
}
