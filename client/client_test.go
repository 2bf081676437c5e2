package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// serveDB serves db's KV and Cluster services on a loopback port until the
// test ends and returns the address. admin may be nil.
func serveDB(t *testing.T, db *strata.DB, admin server.Admin) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveDBOn(t, db, admin, lis)
}

func serveDBOn(t *testing.T, db *strata.DB, admin server.Admin, lis net.Listener) string {
	t.Helper()
	srv, err := server.New(server.Config{DB: db, Admin: admin})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(lis) }()
	t.Cleanup(func() { g.Stop(); <-done })
	return lis.Addr().String()
}

// startNode opens a single-node DB with two user shards and serves it.
func startNode(t *testing.T) string {
	t.Helper()
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), Shards: 2, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return serveDB(t, db, nil)
}

func newClient(t *testing.T, endpoints ...string) *Client {
	t.Helper()
	c, err := New(Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		eps  []string
		want string
	}{
		{nil, "Endpoints is empty"},
		{[]string{}, "Endpoints is empty"},
		{[]string{""}, "not host:port"},
		{[]string{"127.0.0.1:7370", "localhost"}, `endpoint 1 "localhost" is not host:port`},
		{[]string{":7370"}, "needs a host"},
		{[]string{"host:http"}, "port number"},
		{[]string{"host:0"}, "port number"},
		{[]string{"host:70000"}, "port number"},
	} {
		_, err := New(Config{Endpoints: tc.eps})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q) = %v, want an error containing %q", tc.eps, err, tc.want)
		}
	}
	if _, err := New(Config{Endpoints: []string{"a:1"}, MaxRetries: -1}); err == nil {
		t.Error("negative MaxRetries accepted")
	}
	// Lazy: nothing listens there, and New does not care.
	c, err := New(Config{Endpoints: []string{deadAddr(t), "[::1]:7370", "db.example:7370", "db.example:7370"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.cfg.Endpoints) != 3 || c.cfg.DialTimeout != DefaultDialTimeout || c.cfg.RequestTimeout != DefaultRequestTimeout || c.cfg.MaxRetries != DefaultMaxRetries {
		t.Errorf("config after defaults: %+v", c.cfg)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(context.Background(), []byte("k"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
}

func TestKV(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, startNode(t))

	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get absent: %v, want ErrNotFound", err)
	}
	if err := c.Put(ctx, []byte("k"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, []byte("k")); err != nil || string(v) != "v1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if v, err := c.GetSerializable(ctx, []byte("k")); err != nil || string(v) != "v1" {
		t.Fatalf("GetSerializable = %q, %v", v, err)
	}
	if _, err := c.GetSerializable(ctx, []byte("absent")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetSerializable absent: %v, want ErrNotFound", err)
	}
	if err := c.Put(ctx, []byte("k"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, []byte("k")); err != nil || string(v) != "v2" {
		t.Fatalf("Get after overwrite = %q, %v", v, err)
	}
	// The empty value is a value, not absence.
	if err := c.Put(ctx, []byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, []byte("empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get empty value = %#v, %v", v, err)
	}
	if err := c.Delete(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get deleted: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, []byte("never")); err != nil {
		t.Fatalf("Delete absent: %v", err)
	}
	// A key in the second shard (the split is on the first byte).
	if err := c.Put(ctx, []byte{0xf0, 1}, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, []byte{0xf0, 1}); err != nil || string(v) != "hi" {
		t.Fatalf("Get in shard 2 = %q, %v", v, err)
	}
}

func TestCompareAndSwap(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, startNode(t))
	k := []byte("cas")
	step := func(old, new []byte, want bool) {
		t.Helper()
		ok, err := c.CompareAndSwap(ctx, k, old, new)
		if err != nil || ok != want {
			t.Fatalf("CAS(%q, %q) = %v, %v; want %v", old, new, ok, err, want)
		}
	}
	get := func() string {
		t.Helper()
		v, err := c.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			return "<absent>"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	step([]byte("x"), []byte("a"), false) // absent is not "x"
	step([]byte{}, []byte("a"), false)    // absent is not the empty value
	step(nil, []byte("a"), true)          // nil old: must be absent
	step(nil, []byte("b"), false)         // now present
	step([]byte("z"), []byte("b"), false)
	if got := get(); got != "a" {
		t.Fatalf("value %q, want a", got)
	}
	step([]byte("a"), []byte{}, true) // set to the empty value
	step(nil, []byte("c"), false)     // the empty value is present
	step([]byte{}, []byte("c"), true)
	step([]byte("c"), nil, true) // nil new deletes
	if got := get(); got != "<absent>" {
		t.Fatalf("value %q after CAS delete, want absent", got)
	}
}

func TestBatch(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, startNode(t))
	if err := c.Put(ctx, []byte("old"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Batch(ctx, nil); err != nil {
		t.Fatalf("empty Batch: %v", err)
	}
	// Spans both shards; later mutations of a key win.
	err := c.Batch(ctx, []Mutation{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte{0xf0}, Value: []byte("2")},
		{Key: []byte("old"), Delete: true},
		{Key: []byte("a"), Value: []byte("3")},
	})
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := c.Scan(ctx, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(kvs), fmt.Sprint([]KV{{[]byte("a"), []byte("3")}, {[]byte{0xf0}, []byte("2")}}); got != want {
		t.Fatalf("after Batch: %s, want %s", got, want)
	}
	err = c.Batch(ctx, []Mutation{{Key: []byte("b"), Value: []byte("x")}, {Key: nil, Value: []byte("y")}})
	if !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("Batch with an empty key: %v, want ErrEmptyKey", err)
	}
	if _, err := c.Get(ctx, []byte("b")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a rejected Batch applied: %v", err)
	}
}

func TestScan(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, startNode(t))
	var keys [][]byte
	for _, k := range []string{"a", "b", "c", "d", "\xf0a", "\xf0b"} {
		keys = append(keys, []byte(k))
		if err := c.Put(ctx, []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(start, end string, endSet bool, limit int) string {
		t.Helper()
		var e []byte
		if endSet {
			e = []byte(end)
		}
		kvs, err := c.Scan(ctx, []byte(start), e, limit)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, kv := range kvs {
			if !bytes.Equal(kv.Value, append([]byte("v"), kv.Key...)) {
				t.Errorf("value of %q is %q", kv.Key, kv.Value)
			}
			parts = append(parts, fmt.Sprintf("%x", kv.Key))
		}
		return strings.Join(parts, " ")
	}
	for _, tc := range []struct {
		start, end string
		endSet     bool
		limit      int
		want       string
	}{
		{"", "", false, 0, "61 62 63 64 f061 f062"},
		{"b", "d", true, 0, "62 63"},
		{"b", "", false, 2, "62 63"},
		{"c", "", false, 3, "63 64 f061"}, // across the shard boundary
		{"\xf0", "", false, 0, "f061 f062"},
		{"x", "y", true, 0, ""},
		{"a", "", false, -1, "61 62 63 64 f061 f062"},
	} {
		if got := scan(tc.start, tc.end, tc.endSet, tc.limit); got != tc.want {
			t.Errorf("Scan(%q, %q set=%v, %d) = %q, want %q", tc.start, tc.end, tc.endSet, tc.limit, got, tc.want)
		}
	}
	ks, err := c.ScanKeys(ctx, []byte("b"), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%q", ks), fmt.Sprintf("%q", keys[1:5]); got != want {
		t.Errorf("ScanKeys = %s, want %s", got, want)
	}
	if _, err := c.Scan(ctx, []byte("d"), []byte("b"), 0); !errors.Is(err, ErrInvalidRange) || !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Scan with end before start: %v, want ErrInvalidRange", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, startNode(t))
	big := make([]byte, strata.MaxValueSize+1)
	for _, tc := range []struct {
		name string
		err  error
		want error
		msg  string
	}{
		{"Put empty key", c.Put(ctx, nil, []byte("v")), ErrEmptyKey, "empty key"},
		{"Get empty key", func() error { _, err := c.Get(ctx, []byte{}); return err }(), ErrEmptyKey, "empty key"},
		{"Delete empty key", c.Delete(ctx, nil), ErrEmptyKey, "empty key"},
		{"CAS empty key", func() error { _, err := c.CompareAndSwap(ctx, nil, nil, []byte("x")); return err }(), ErrEmptyKey, "empty key"},
		{"Put oversize value", c.Put(ctx, []byte("k"), big), ErrValueTooLarge, "value too large: 1048577 bytes, limit 1048576"},
		{"CAS oversize value", func() error { _, err := c.CompareAndSwap(ctx, []byte("k"), nil, big); return err }(), ErrValueTooLarge, "value too large"},
		{"Put oversize key", c.Put(ctx, make([]byte, strata.MaxKeySize+1), nil), ErrKeyTooLarge, "key too large: 4097 bytes"},
	} {
		if !errors.Is(tc.err, tc.want) || !errors.Is(tc.err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
			continue
		}
		if errors.Is(tc.err, ErrAmbiguous) {
			t.Errorf("%s: a rejected write is reported ambiguous: %v", tc.name, tc.err)
		}
		if status.Code(tc.err) != codes.InvalidArgument {
			t.Errorf("%s: status code %v, want InvalidArgument", tc.name, status.Code(tc.err))
		}
		if !strings.Contains(tc.err.Error(), tc.msg) {
			t.Errorf("%s: message %q does not say %q", tc.name, tc.err, tc.msg)
		}
	}
	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Errorf("a rejected Put applied: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	// Refused connections: the client gives up after its retries, quickly.
	c := newClient(t, deadAddr(t), deadAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, []byte("k"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "cannot connect to") {
		t.Fatalf("Get against dead endpoints: %v, want ErrUnavailable saying it cannot connect", err)
	}
	t.Logf("refused: %v after %v", err, time.Since(start))

	// A peer that accepts TCP but never speaks gRPC: the ctx deadline holds.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	c2 := newClient(t, lis.Addr().String())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	start = time.Now()
	err = c2.Put(ctx2, []byte("k"), []byte("v"))
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put against a silent endpoint: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if errors.Is(err, ErrAmbiguous) {
		t.Fatalf("a Put that was never sent is reported ambiguous: %v", err)
	}
	if took > 2*time.Second {
		t.Fatalf("took %v with a 500ms deadline", took)
	}
	t.Logf("silent: %v after %v", err, took)
}

func TestDeadAndLiveEndpoints(t *testing.T) {
	live := startNode(t)
	for _, eps := range [][]string{{deadAddr(t), live}, {live, deadAddr(t)}} {
		c := newClient(t, eps...)
		ctx := testCtx(t)
		for i := 0; i < 5; i++ {
			k := []byte(fmt.Sprintf("k%d", i))
			if err := c.Put(ctx, k, []byte("v")); err != nil {
				t.Fatalf("endpoints %v: Put: %v", eps, err)
			}
			if _, err := c.Get(ctx, k); err != nil {
				t.Fatalf("endpoints %v: Get: %v", eps, err)
			}
		}
		if _, err := c.Status(ctx); err != nil {
			t.Fatalf("endpoints %v: Status: %v", eps, err)
		}
	}
}

func TestRequestTimeoutDefault(t *testing.T) {
	c, err := New(Config{Endpoints: []string{deadAddr(t)}, RequestTimeout: 300 * time.Millisecond, MaxRetries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Get(context.Background(), []byte("k"))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Get = %v after %v; want DeadlineExceeded after about 300ms", err, time.Since(start))
	}
}

func newServer(db *strata.DB, admin server.Admin) (*server.Server, error) {
	return server.New(server.Config{DB: db, Admin: admin})
}

// TestScanPagesLargeRanges: a range larger than one answer's size bound
// comes back whole, in key order, through several pages read at one
// timestamp; GetAt and ScanAt read the past.
func TestScanPagesLargeRanges(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, startNode(t))
	value := make([]byte, 8<<10)
	const n = 1200 // about 9.6 MiB: three answers
	for i := 0; i < n; i += 100 {
		var ms []Mutation
		for j := i; j < i+100; j++ {
			ms = append(ms, Mutation{Key: fmt.Appendf(nil, "%c/%05d", byte(j%2)*0x80, j), Value: value})
		}
		if err := c.Batch(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}
	kvs, ts, err := c.ScanAt(ctx, nil, nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != n || ts == 0 {
		t.Fatalf("scan returned %d pairs at %v, want %d", len(kvs), ts, n)
	}
	for i := 1; i < len(kvs); i++ {
		if bytes.Compare(kvs[i-1].Key, kvs[i].Key) >= 0 {
			t.Fatalf("pairs out of order at %d: %q then %q", i, kvs[i-1].Key, kvs[i].Key)
		}
	}
	if got, err := c.Scan(ctx, nil, nil, 700); err != nil || len(got) != 700 {
		t.Fatalf("scan with limit 700: %d pairs, %v", len(got), err)
	}
	// The past: delete a key, and read it back at the scan's timestamp.
	if err := c.Delete(ctx, kvs[0].Key); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, kvs[0].Key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if v, err := c.GetAt(ctx, kvs[0].Key, ts); err != nil || len(v) != len(value) {
		t.Fatalf("GetAt %v: %d bytes, %v", ts, len(v), err)
	}
	if old, _, err := c.ScanAt(ctx, nil, nil, 0, ts); err != nil || len(old) != n {
		t.Fatalf("ScanAt %v: %d pairs, %v", ts, len(old), err)
	}
	if _, err := c.GetAt(ctx, kvs[0].Key, ts+1<<40); !errors.Is(err, ErrFutureTimestamp) {
		t.Fatalf("GetAt the future: %v, want ErrFutureTimestamp", err)
	}
}
