// Package client is the Go client of a remote Strata cluster. It speaks the
// gRPC API of package api to the nodes' client addresses.
//
// A Client keeps a routing cache (the shards' key ranges and leaders'
// addresses, from any node's Status) and sends a key's request straight to
// the leader of its shard when it knows it. The nodes forward requests to
// leaders themselves, so a stale cache costs only a hop. When a node names
// another leader the client follows the hint; when a node cannot be reached
// or cannot serve, it tries the next endpoint with exponential backoff, up to
// Config.MaxRetries and the context's deadline.
//
// Reads and the administrative calls are retried freely. Writes (Put,
// Delete, CompareAndSwap, Batch) are retried only when they certainly had no
// effect; a write whose outcome is unknown returns an error wrapping
// ErrAmbiguous.
//
//	c, err := client.New(client.Config{Endpoints: []string{"10.0.0.1:7370", "10.0.0.2:7370"}})
//	if err != nil { return err }
//	defer c.Close()
//	err = c.Put(ctx, []byte("user/42"), []byte("ada"))
//	v, err := c.Get(ctx, []byte("user/42")) // client.ErrNotFound if absent
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/txn/tso"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Config configures a Client.
type Config struct {
	// Endpoints are client addresses (host:port) of cluster nodes. Required;
	// any subset of the nodes will do.
	Endpoints []string
	// DialTimeout bounds how long one attempt waits for a connection to an
	// address. Default: 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds a call whose context has no deadline, retries
	// included. Default: 10s.
	RequestTimeout time.Duration
	// MaxRetries is how many times a call is retried after its first
	// attempt. Default: 10.
	MaxRetries int
	// DialOptions are extra gRPC dial options, e.g. transport credentials.
	// Default: none (plaintext).
	DialOptions []grpc.DialOption
}

// Defaults of Config.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxRetries     = 10
)

const (
	backoffStart = 20 * time.Millisecond
	backoffMax   = time.Second
	// maxMessageSize bounds a response (a large Scan) and a request (a
	// large Batch) on the client side.
	maxMessageSize = 256 << 20
	// refreshEvery is the least time between routing-cache refreshes.
	refreshEvery = 200 * time.Millisecond
	// routesTTL is how long a routing cache that saw no failure is used
	// before it is refreshed (leaders move without failures: the nodes
	// forward to the new one, at the price of a hop).
	routesTTL = 10 * time.Second
)

func (c *Config) ensureDefaults() error {
	if len(c.Endpoints) == 0 {
		return errors.New("client: Config.Endpoints is empty: give at least one node's client address (host:port)")
	}
	seen := map[string]bool{}
	var eps []string
	for i, ep := range c.Endpoints {
		host, port, err := net.SplitHostPort(ep)
		if err != nil {
			return fmt.Errorf("client: endpoint %d %q is not host:port: %w", i, ep, err)
		}
		if n, err := strconv.ParseUint(port, 10, 16); host == "" || err != nil || n == 0 {
			return fmt.Errorf("client: endpoint %d %q needs a host and a port number 1-65535", i, ep)
		}
		if !seen[ep] {
			seen[ep] = true
			eps = append(eps, ep)
		}
	}
	c.Endpoints = eps
	if c.DialTimeout < 0 || c.RequestTimeout < 0 || c.MaxRetries < 0 {
		return errors.New("client: DialTimeout, RequestTimeout and MaxRetries must not be negative")
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	return nil
}

// KV is a key and its value, as returned by Scan.
type KV struct {
	Key   []byte
	Value []byte
}

// Mutation is one write of a Batch: a put of Value, or a delete.
type Mutation struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// Client is a connection to a cluster. It is safe for concurrent use.
type Client struct {
	cfg  Config
	next atomic.Uint64 // index into cfg.Endpoints of the endpoint to try next

	mu struct {
		sync.Mutex
		closed bool
		conns  map[string]*grpc.ClientConn // one per address, reused
		// routes are the user shards in key order; nil until fetched.
		routes     []route
		stale      bool      // a leader moved or failed: refresh when allowed
		refreshing bool      // a refresh is running
		refreshed  time.Time // when the last refresh started
	}
}

// route is one user shard in the routing cache.
type route struct {
	id         uint64
	start, end []byte // end nil: no upper bound
	leaderAddr string // "" if unknown
}

// New returns a Client for cfg. It connects lazily: endpoints that are down
// now do not make it fail.
func New(cfg Config) (*Client, error) {
	cfg.Endpoints = append([]string(nil), cfg.Endpoints...)
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg}
	c.mu.conns = map[string]*grpc.ClientConn{}
	return c, nil
}

// Close closes the client's connections. Calls in flight fail; later calls
// return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil
	}
	c.mu.closed = true
	var errs []error
	for _, cc := range c.mu.conns {
		errs = append(errs, cc.Close())
	}
	c.mu.conns = nil
	return errors.Join(errs...)
}

// conn returns the connection to addr, creating it (without connecting).
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	if cc, ok := c.mu.conns[addr]; ok {
		return cc, nil
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: c.cfg.DialTimeout,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)),
	}
	opts = append(opts, c.cfg.DialOptions...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: address %q: %w", addr, err)
	}
	c.mu.conns[addr] = cc
	return cc, nil
}

// ready waits until cc is connected, so that a call made next is known to
// be sent or not: with the connection not ready gRPC would fail it fast
// without sending it, but its error would not say so. It gives up after
// DialTimeout, when ctx ends, or when a connection attempt fails.
func (c *Client) ready(ctx context.Context, cc *grpc.ClientConn, addr string) error {
	s := cc.GetState()
	if s == connectivity.Ready {
		return nil
	}
	switch s {
	case connectivity.Idle:
		cc.Connect()
	case connectivity.TransientFailure:
		// The last attempt to connect failed. gRPC keeps the channel in
		// TRANSIENT_FAILURE until a new attempt succeeds, so a failing
		// one cannot be told from one in progress: ask for a new attempt
		// now (rather than after gRPC's reconnect backoff) and fail this
		// one; the caller's backoff gives the new attempt time.
		cc.ResetConnectBackoff()
		return fmt.Errorf("cannot connect to %s", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	for {
		s = cc.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.Shutdown:
			return fmt.Errorf("%w: connection to %s closed", ErrClosed, addr)
		case connectivity.TransientFailure:
			return fmt.Errorf("cannot connect to %s", addr)
		}
		if !cc.WaitForStateChange(ctx, s) {
			return fmt.Errorf("no connection to %s (state %s): %w", addr, s, ctx.Err())
		}
	}
}

// withTimeout applies RequestTimeout to a ctx without a deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}

// callOpts describe a call for invoke.
type callOpts struct {
	method string
	// key routes the call to its shard's leader; nil sends it to any
	// endpoint.
	key    []byte
	routed bool
	// write: the call changes data and is not safely repeated, so it is
	// retried only when it certainly had no effect.
	write bool
	// stream: the call reads a stream as long as it lasts, so
	// RequestTimeout bounds each message rather than the whole call.
	stream bool
}

// invoke runs call with routing and retries. call makes one RPC on the
// connection given.
func (c *Client) invoke(ctx context.Context, o callOpts, call func(context.Context, *grpc.ClientConn) error) error {
	var cancel context.CancelFunc
	if o.stream {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = c.withTimeout(ctx)
	}
	defer cancel()
	if o.routed {
		c.maybeRefresh(ctx)
	}
	delay := backoffStart
	var (
		last    error  // the last attempt's failure
		hint    string // a leader address named by a node, tried next
		wait    bool   // back off before the next attempt
		attempt int
	)
	for ; attempt <= c.cfg.MaxRetries; attempt++ {
		if attempt > 0 && wait {
			if err := sleep(ctx, delay); err != nil {
				break
			}
			delay = min(2*delay, backoffMax)
		}
		if ctx.Err() != nil {
			break
		}
		wait = true
		addr, shardID := c.pick(o, hint)
		hint = ""
		cc, err := c.conn(addr)
		if err != nil {
			return fmt.Errorf("client: %s: %w", o.method, err)
		}
		if err := c.ready(ctx, cc, addr); err != nil {
			if errors.Is(err, ErrClosed) {
				return fmt.Errorf("client: %s: %w", o.method, err)
			}
			last = err
			c.failed(addr, shardID)
			continue
		}
		err = call(ctx, cc)
		if err == nil {
			return nil
		}
		st := status.Convert(err)
		switch {
		case reasonOf(st) == reasonNotLeader:
			last = convert(o.method, err, false)
			leaderAddr, sh := notLeaderHint(st)
			if sh == 0 {
				sh = shardID
			}
			c.learnLeader(sh, leaderAddr)
			if leaderAddr != "" && leaderAddr != addr {
				hint, wait = leaderAddr, false
			} else {
				c.failed(addr, shardID)
			}
		case notApplied(st):
			last = convert(o.method, err, false)
			c.failed(addr, shardID)
		case st.Code() == codes.Unavailable && !o.write:
			// The connection broke or the node is going away.
			last = convert(o.method, err, false)
			c.failed(addr, shardID)
		default:
			return convert(o.method, err, o.write)
		}
	}
	return c.exhausted(ctx, o.method, attempt, last)
}

// exhausted is the error of a call that ran out of attempts or time.
func (c *Client) exhausted(ctx context.Context, method string, attempts int, last error) error {
	if last == nil {
		last = errors.New("no attempt made")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w after %d attempt(s) over endpoints %v; last: %w", ErrUnavailable, method, err, attempts, c.cfg.Endpoints, last)
	}
	return fmt.Errorf("%w: %s: %d attempt(s) over endpoints %v failed; last: %w", ErrUnavailable, method, attempts, c.cfg.Endpoints, last)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pick chooses the address of the next attempt: a leader hint, else the
// cached leader of the key's shard, else the current endpoint. It returns
// the key's shard (0 if unknown).
func (c *Client) pick(o callOpts, hint string) (addr string, shardID uint64) {
	if o.routed {
		c.mu.Lock()
		if r := lookup(c.mu.routes, o.key); r != nil {
			shardID = r.id
			addr = r.leaderAddr
		}
		c.mu.Unlock()
	}
	if hint != "" {
		return hint, shardID
	}
	if addr != "" {
		return addr, shardID
	}
	eps := c.cfg.Endpoints
	return eps[c.next.Load()%uint64(len(eps))], shardID
}

// failed records that addr could not serve: it is forgotten as the
// leader of the shard, and if it is the current endpoint the next one is
// tried next time.
func (c *Client) failed(addr string, shardID uint64) {
	c.mu.Lock()
	for i := range c.mu.routes {
		if r := &c.mu.routes[i]; r.leaderAddr == addr && (r.id == shardID || shardID == 0) {
			r.leaderAddr = ""
			c.mu.stale = true
		}
	}
	c.mu.Unlock()
	eps := c.cfg.Endpoints
	n := c.next.Load()
	if eps[n%uint64(len(eps))] == addr {
		c.next.CompareAndSwap(n, n+1)
	}
}

// learnLeader records addr ("" = unknown) as the leader of shard id.
func (c *Client) learnLeader(id uint64, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.mu.routes {
		if c.mu.routes[i].id == id {
			c.mu.routes[i].leaderAddr = addr
		}
	}
	if addr == "" {
		c.mu.stale = true
	}
}

// notLeaderHint returns the leader address and shard of a NOT_LEADER
// status.
func notLeaderHint(st *status.Status) (addr string, shardID uint64) {
	info := errorInfo(st)
	if info == nil {
		return "", 0
	}
	id, _ := strconv.ParseUint(info.GetMetadata()["shard_id"], 10, 64)
	return info.GetMetadata()["leader_addr"], id
}

// lookup returns the route holding key, or nil.
func lookup(routes []route, key []byte) *route {
	i := sort.Search(len(routes), func(i int) bool { return bytes.Compare(routes[i].start, key) > 0 }) - 1
	if i < 0 {
		return nil
	}
	r := &routes[i]
	if r.end != nil && bytes.Compare(key, r.end) >= 0 {
		return nil
	}
	return r
}

// maybeRefresh refreshes the routing cache if it is missing or stale,
// unless another call is refreshing it or it was refreshed very recently.
// It never waits for a connection: it asks an endpoint that is already
// connected, and without one leaves the cache as it is (the call itself
// then connects, and a later call refreshes).
func (c *Client) maybeRefresh(ctx context.Context) {
	c.mu.Lock()
	if c.mu.closed || c.mu.refreshing ||
		(c.mu.routes != nil && !c.mu.stale && time.Since(c.mu.refreshed) < routesTTL) ||
		time.Since(c.mu.refreshed) < refreshEvery {
		c.mu.Unlock()
		return
	}
	var cc *grpc.ClientConn
	for _, ep := range c.cfg.Endpoints {
		if conn, ok := c.mu.conns[ep]; ok && conn.GetState() == connectivity.Ready {
			cc = conn
			break
		}
	}
	if cc == nil {
		c.mu.Unlock()
		return
	}
	c.mu.refreshing, c.mu.refreshed = true, time.Now()
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	st, err := api.NewClusterClient(cc).Status(ctx, &api.StatusRequest{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.refreshing = false
	if err != nil {
		return
	}
	var routes []route
	for _, s := range st.GetShards() {
		if s.GetSystem() {
			continue
		}
		r := route{id: s.GetId(), start: s.GetStart(), leaderAddr: s.GetLeaderAddr()}
		if len(s.GetEnd()) > 0 {
			r.end = s.GetEnd()
		}
		routes = append(routes, r)
	}
	sort.Slice(routes, func(i, j int) bool { return bytes.Compare(routes[i].start, routes[j].start) < 0 })
	c.mu.routes, c.mu.stale = routes, false
}

// Get returns the value of key, or ErrNotFound.
func (c *Client) Get(ctx context.Context, key []byte) ([]byte, error) {
	return c.get(ctx, key, api.ReadLevel_READ_LEVEL_LINEARIZABLE, 0)
}

// GetAt returns the value key had at ts, a past timestamp (see
// strata.DB.SnapshotAt): ErrNotFound if it had none, ErrTimestampTooOld
// if ts is older than the history the cluster keeps.
func (c *Client) GetAt(ctx context.Context, key []byte, ts tso.Timestamp) ([]byte, error) {
	return c.get(ctx, key, api.ReadLevel_READ_LEVEL_LINEARIZABLE, ts)
}

// GetSerializable returns the value of key as a replica of its shard has it,
// without confirming the replica is up to date: cheaper than Get, but it may
// miss writes acknowledged recently (see strata.DB.GetSerializable).
// ErrNotFound if absent.
func (c *Client) GetSerializable(ctx context.Context, key []byte) ([]byte, error) {
	return c.get(ctx, key, api.ReadLevel_READ_LEVEL_SERIALIZABLE, 0)
}

func (c *Client) get(ctx context.Context, key []byte, level api.ReadLevel, ts tso.Timestamp) ([]byte, error) {
	var resp *api.GetResponse
	err := c.invoke(ctx, callOpts{method: "Get", key: key, routed: true}, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = api.NewKVClient(cc).Get(ctx, &api.GetRequest{Key: key, ReadLevel: level, Timestamp: uint64(ts)})
		return err
	})
	if err != nil {
		return nil, err
	}
	if !resp.GetFound() {
		return nil, ErrNotFound
	}
	if resp.Value == nil {
		return []byte{}, nil // found, and empty
	}
	return resp.Value, nil
}

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key, value []byte) error {
	return c.invoke(ctx, callOpts{method: "Put", key: key, routed: true, write: true}, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := api.NewKVClient(cc).Put(ctx, &api.PutRequest{Key: key, Value: value})
		return err
	})
}

// Delete removes key. Deleting an absent key is not an error.
func (c *Client) Delete(ctx context.Context, key []byte) error {
	return c.invoke(ctx, callOpts{method: "Delete", key: key, routed: true, write: true}, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := api.NewKVClient(cc).Delete(ctx, &api.DeleteRequest{Key: key})
		return err
	})
}

// CompareAndSwap sets key to new if its value equals old, and reports
// whether it did. A nil old means "key is absent"; a nil new deletes the
// key. (An empty, non-nil slice is the empty value.)
func (c *Client) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	var resp *api.CompareAndSwapResponse
	err := c.invoke(ctx, callOpts{method: "CompareAndSwap", key: key, routed: true, write: true}, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		// Unset optional fields are nil slices; set ones, even empty, are
		// non-nil: the proto keeps the distinction.
		resp, err = api.NewKVClient(cc).CompareAndSwap(ctx, &api.CompareAndSwapRequest{Key: key, Old: old, New: new})
		return err
	})
	if err != nil {
		return false, err
	}
	return resp.GetSwapped(), nil
}

// Scan returns the keys in [start, end) with their values, in key order, at
// most limit of them (limit <= 0: no limit). A nil end means no upper
// bound. Each shard's part is read linearizably; the scan as a whole is not
// atomic across shards.
func (c *Client) Scan(ctx context.Context, start, end []byte, limit int) ([]KV, error) {
	kvs, _, err := c.ScanAt(ctx, start, end, limit, 0)
	return kvs, err
}

// ScanAt is Scan at ts, a past timestamp (0: a timestamp taken when the
// scan begins); it also returns the timestamp the scan read at. Every
// shard is read at that one timestamp.
func (c *Client) ScanAt(ctx context.Context, start, end []byte, limit int, ts tso.Timestamp) ([]KV, tso.Timestamp, error) {
	kvs, at, err := c.scan(ctx, "Scan", start, end, limit, false, ts)
	if err != nil {
		return nil, 0, err
	}
	out := make([]KV, len(kvs))
	for i, kv := range kvs {
		out[i] = KV{Key: kv.GetKey(), Value: kv.GetValue()}
		if out[i].Value == nil {
			out[i].Value = []byte{}
		}
	}
	return out, at, nil
}

// ScanKeys is Scan without the values.
func (c *Client) ScanKeys(ctx context.Context, start, end []byte, limit int) ([][]byte, error) {
	kvs, _, err := c.scan(ctx, "ScanKeys", start, end, limit, true, 0)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.GetKey()
	}
	return out, nil
}

func (c *Client) scan(ctx context.Context, method string, start, end []byte, limit int, keysOnly bool, ts tso.Timestamp) ([]*api.KeyValue, tso.Timestamp, error) {
	req := &api.ScanRequest{Start: start, End: end, KeysOnly: keysOnly, Timestamp: uint64(ts)}
	if limit > 0 {
		req.Limit = uint32(min(limit, math.MaxUint32))
	}
	// Sent to the leader of start's shard; the node gathers the other
	// shards' parts itself, and answers in pages of bounded size: the
	// client asks for the next page at the first page's timestamp until
	// the range or the limit is done.
	var out []*api.KeyValue
	for {
		var resp *api.ScanResponse
		err := c.invoke(ctx, callOpts{method: method, key: req.Start, routed: true}, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			resp, err = api.NewKVClient(cc).Scan(ctx, req)
			return err
		})
		if err != nil {
			return nil, 0, err
		}
		out = append(out, resp.GetKvs()...)
		req.Timestamp = resp.GetTimestamp()
		if len(resp.GetResumeKey()) == 0 || (limit > 0 && len(out) >= limit) {
			return out, tso.Timestamp(req.Timestamp), nil
		}
		req.Start = resp.GetResumeKey()
		if limit > 0 {
			req.Limit = uint32(min(limit-len(out), math.MaxUint32))
		}
	}
}

// Batch applies ms: atomically within a shard; a batch spanning shards is
// applied shard by shard, so a failure may leave some shards' parts
// applied. Later mutations of the same key win.
func (c *Client) Batch(ctx context.Context, ms []Mutation) error {
	if len(ms) == 0 {
		return nil
	}
	req := &api.BatchRequest{Mutations: make([]*api.Mutation, len(ms))}
	for i, m := range ms {
		req.Mutations[i] = &api.Mutation{Key: m.Key, Value: m.Value, Delete: m.Delete}
	}
	return c.invoke(ctx, callOpts{method: "Batch", key: ms[0].Key, routed: true, write: true}, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := api.NewKVClient(cc).Batch(ctx, req)
		return err
	})
}

// Status returns the status of one node of the cluster (whichever
// endpoint answers) and of the shards it knows.
func (c *Client) Status(ctx context.Context) (*api.StatusResponse, error) {
	var resp *api.StatusResponse
	err := c.invoke(ctx, callOpts{method: "Status"}, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = api.NewClusterClient(cc).Status(ctx, &api.StatusRequest{})
		return err
	})
	return resp, err
}

// Now returns a timestamp from the cluster's timestamp oracle (see
// strata.DB.Now; strata.Timestamp is tso.Timestamp): above every timestamp the oracle handed out before the
// call. It is read from the node answering, which asks the oracle.
func (c *Client) Now(ctx context.Context) (tso.Timestamp, error) {
	var resp *api.NowResponse
	err := c.invoke(ctx, callOpts{method: "Now"}, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = api.NewClusterClient(cc).Now(ctx, &api.NowRequest{})
		return err
	})
	if err != nil {
		return 0, err
	}
	return tso.Timestamp(resp.GetTimestamp()), nil
}

// Members lists the cluster's nodes.
func (c *Client) Members(ctx context.Context) ([]*api.Member, error) {
	var resp *api.MembersResponse
	err := c.invoke(ctx, callOpts{method: "Members"}, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = api.NewClusterClient(cc).Members(ctx, &api.MembersRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.GetMembers(), nil
}

// The administrative calls below state a desired end (node holds a
// replica, node leads), so repeating them is harmless and they are retried
// like reads.

// AddReplica gives node a replica of shard and returns once it votes.
func (c *Client) AddReplica(ctx context.Context, shard, node uint64) error {
	return c.invoke(ctx, callOpts{method: "AddReplica"}, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := api.NewClusterClient(cc).AddReplica(ctx, &api.AddReplicaRequest{ShardId: shard, NodeId: node})
		return err
	})
}

// RemoveReplica removes node's replica of shard.
func (c *Client) RemoveReplica(ctx context.Context, shard, node uint64) error {
	return c.invoke(ctx, callOpts{method: "RemoveReplica"}, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := api.NewClusterClient(cc).RemoveReplica(ctx, &api.RemoveReplicaRequest{ShardId: shard, NodeId: node})
		return err
	})
}

// TransferLeader makes node the leader of shard.
func (c *Client) TransferLeader(ctx context.Context, shard, node uint64) error {
	return c.invoke(ctx, callOpts{method: "TransferLeader"}, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := api.NewClusterClient(cc).TransferLeader(ctx, &api.TransferLeaderRequest{ShardId: shard, NodeId: node})
		return err
	})
}

// RemoveNode takes node out of the cluster.
func (c *Client) RemoveNode(ctx context.Context, node uint64) error {
	return c.invoke(ctx, callOpts{method: "RemoveNode"}, func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := api.NewClusterClient(cc).RemoveNode(ctx, &api.RemoveNodeRequest{NodeId: node})
		return err
	})
}
