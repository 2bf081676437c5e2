package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// serveConfig serves a single-node DB with cfg (its DB set here) and
// returns the DB and a connection to it made with dialOpts.
func serveConfig(t *testing.T, cfg server.Config, dialOpts ...grpc.DialOption) (*strata.DB, *grpc.ClientConn) {
	t.Helper()
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), Shards: 2, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DB = db
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(server.ServerOptions()...)
	srv.Register(g)
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(lis) }()
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOpts...)
	cc, err := grpc.NewClient(lis.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		g.Stop()
		<-done
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db, cc
}

// load puts n keys k%04d with values of size bytes.
func load(ctx context.Context, t *testing.T, db *strata.DB, n, size int) {
	t.Helper()
	for i := 0; i < n; i += 64 {
		var ops []strata.BatchOp
		for j := i; j < min(i+64, n); j++ {
			ops = append(ops, strata.BatchOp{Key: fmt.Appendf(nil, "k%04d", j), Value: bytes.Repeat([]byte{byte(j)}, size)})
		}
		if err := db.Batch(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads a ScanStream to its end.
func readAll(t *testing.T, st grpc.ServerStreamingClient[api.ScanResponse]) (kvs []*api.KeyValue, msgs []*api.ScanResponse) {
	t.Helper()
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return kvs, msgs
		}
		if err != nil {
			t.Fatalf("Recv after %d messages: %v", len(msgs), err)
		}
		msgs = append(msgs, m)
		kvs = append(kvs, m.GetKvs()...)
	}
}

func TestScanStream(t *testing.T) {
	ctx := ctxT(t)
	db, cc := serveConfig(t, server.Config{})
	kv := api.NewKVClient(cc)
	const n, size = 300, 10 << 10 // 3 MB: 3 or more messages
	load(ctx, t, db, n, size)

	st, err := kv.ScanStream(ctx, &api.ScanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	kvs, msgs := readAll(t, st)
	if len(kvs) != n {
		t.Fatalf("scan of everything: %d pairs, want %d", len(kvs), n)
	}
	for i, p := range kvs {
		if want := fmt.Sprintf("k%04d", i); string(p.GetKey()) != want || len(p.GetValue()) != size {
			t.Fatalf("pair %d = %q (%d bytes), want %q (%d bytes)", i, p.GetKey(), len(p.GetValue()), want, size)
		}
	}
	if len(msgs) < 3 {
		t.Fatalf("%d messages for %d bytes, want pages of at most %d", len(msgs), n*size, server.StreamMessageBytes)
	}
	ts := msgs[0].GetTimestamp()
	for i, m := range msgs {
		if m.GetTimestamp() != ts {
			t.Fatalf("message %d at timestamp %d, message 0 at %d: one scan, one timestamp", i, m.GetTimestamp(), ts)
		}
		if last := i == len(msgs)-1; last != (len(m.GetResumeKey()) == 0) {
			t.Fatalf("message %d of %d has resume key %q: want one on every message but the last", i, len(msgs), m.GetResumeKey())
		}
		if sz := proto.Size(m); sz > server.StreamMessageBytes+64<<10 {
			t.Fatalf("message %d has %d bytes, want about %d at most", i, sz, server.StreamMessageBytes)
		}
	}

	// A write after the scan's timestamp is not seen by a scan at it.
	if err := db.Put(ctx, []byte("k0000"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	st, err = kv.ScanStream(ctx, &api.ScanRequest{Start: []byte("k0000"), End: []byte("k0001"), Timestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	if kvs, _ := readAll(t, st); len(kvs) != 1 || len(kvs[0].GetValue()) != size {
		t.Fatalf("scan at the first scan's timestamp = %v, want k0000's old value", kvs)
	}

	// Limit, range and keys only.
	st, err = kv.ScanStream(ctx, &api.ScanRequest{Start: []byte("k0010"), End: []byte("k0200"), Limit: 150, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	kvs, _ = readAll(t, st)
	if len(kvs) != 150 || string(kvs[0].GetKey()) != "k0010" || string(kvs[149].GetKey()) != "k0159" {
		t.Fatalf("limited keys-only scan: %d pairs, want 150 from k0010", len(kvs))
	}
	for _, p := range kvs {
		if len(p.GetValue()) != 0 {
			t.Fatalf("keys-only scan returned a value for %q", p.GetKey())
		}
	}

	// Errors come as statuses.
	st, err = kv.ScanStream(ctx, &api.ScanRequest{Start: []byte("b"), End: []byte("a")})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("scan with end before start: %v, want InvalidArgument", err)
	}
}

// TestScanStreamStalledReader: a client that opens a scan and stops
// reading holds the node's stream (its goroutines, snapshot and pages)
// only until the send timeout.
func TestScanStreamStalledReader(t *testing.T) {
	ctx := ctxT(t)
	reg := prometheus.NewRegistry()
	// Fixed windows (no BDP growth): the client buffers little, so the
	// node's sends block soon.
	db, cc := serveConfig(t, server.Config{Registry: reg, SendTimeout: 300 * time.Millisecond},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	load(ctx, t, db, 400, 10<<10) // 4 MB

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := api.NewKVClient(cc).ScanStream(sctx, &api.ScanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	// The client reads no more. The node must give up on its own.
	for {
		counts, streams := scanMetrics(t, reg)
		if counts["DeadlineExceeded"] == 1 && streams == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the node still serves a stalled reader: ScanStream results %v, streams in flight %v", counts, streams)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// A reader that comes back reads what was sent, then the error.
	for {
		_, err := st.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("stalled reader's stream ended with %v, want DeadlineExceeded", err)
		}
		break
	}
}

// scanMetrics returns the ScanStream results by code and the streams in
// flight.
func scanMetrics(t *testing.T, reg *prometheus.Registry) (map[string]float64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var streams float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "strata_client_requests_total":
				if labels["method"] == "ScanStream" {
					counts[labels["code"]] += m.GetCounter().GetValue()
				}
			case "strata_client_scan_streams":
				streams += m.GetGauge().GetValue()
			}
		}
	}
	return counts, streams
}
