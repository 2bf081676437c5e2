package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/membership"
	"github.com/strata-kv/strata/obs"
	"github.com/strata-kv/strata/server"
	"github.com/strata-kv/strata/transport"
	"github.com/strata-kv/strata/txn/tso"
	"google.golang.org/grpc"
)

// Timeouts of a node's life.
const (
	// staticJoinTimeout bounds the gossip join of an initial member: when
	// none of the others answers in time it gossips alone, and they join it
	// when they start.
	staticJoinTimeout = 3 * time.Second
	// joinTimeout bounds how long a joining node looks for the cluster.
	joinTimeout = time.Minute
	// transferTimeout bounds the hand-over of the leaderships at shutdown.
	transferTimeout = 3 * time.Second
	// drainTimeout bounds how long in-flight gRPC calls may finish.
	drainTimeout = 5 * time.Second
	// leaveTimeout bounds the announcement of the gossip leave.
	leaveTimeout = 2 * time.Second
)

// clientStreamWorkers is the number of goroutines that run client API calls
// (grpc.NumStreamWorkers): enough for a few hundred calls in flight, which
// mostly wait for raft.
const clientStreamWorkers = 256

// node is a running kvnode: the DB and what serves it. run owns every
// field and every goroutine.
type node struct {
	cfg   startConfig
	log   *log.Logger
	start time.Time

	db *strata.DB
	ml *membership.Membership
	// peers is the DB once open, for gossip's callback (which starts
	// before the DB does).
	peers atomic.Pointer[strata.DB]
	grpc  *grpc.Server
	http  *http.Server
	admin *admin

	// draining is set when shutdown starts; /readyz then says no.
	draining atomic.Bool
	// clock is the oracle's clock with the debug offset hook on, or nil
	// (debug_clock.go).
	clock *tso.OffsetClock
}

// runNode runs a node for cfg until ctx ends or a signal arrives, then
// shuts it down. A second signal exits the process at once with status 1.
func runNode(ctx context.Context, cfg startConfig, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := log.New(stderr, fmt.Sprintf("kvnode[%d] ", cfg.ID), log.LstdFlags|log.Lmsgprefix)

	// Signals: the first cancels ctx (graceful shutdown), the second exits.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	var sigWG sync.WaitGroup
	sigWG.Add(1)
	go func() {
		defer sigWG.Done()
		select {
		case s := <-sigs:
			logger.Printf("%v: shutting down (send it again to exit at once)", s)
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "kvnode: second signal (%v): exiting at once without a clean shutdown\n", s)
			os.Exit(1)
		case <-done:
		}
	}()
	defer sigWG.Wait()
	defer close(done)

	n := &node{cfg: cfg, log: logger, start: time.Now()}
	return n.run(ctx, stdout)
}

// run starts everything, serves until ctx ends, and shuts down.
func (n *node) run(ctx context.Context, stdout io.Writer) error {
	cfg := n.cfg
	// Bind the client and HTTP ports first: a port in use fails before
	// any data is touched.
	clientLis, err := net.Listen("tcp", cfg.ClientAddr)
	if err != nil {
		return fmt.Errorf("--client-addr: %w", err)
	}
	defer clientLis.Close()
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	defer httpLis.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	observer, err := obs.NewObserver(reg)
	if err != nil {
		return err
	}

	// Gossip starts first: a joining node learns the members from it.
	if n.ml, err = n.startMembership(); err != nil {
		return err
	}
	mlOpen := true
	defer func() {
		if mlOpen {
			n.ml.Close()
		}
	}()

	initial := cfg.InitialCluster
	if cfg.Join {
		// The members gossip found are the joining node's first peers.
		initial = map[uint64]string{cfg.ID: cfg.PeerAddr}
		for id, addr := range n.alivePeers() {
			initial[id] = addr
		}
	}
	opts := strata.Options{
		Dir:               cfg.DataDir,
		NodeID:            cfg.ID,
		PeerAddr:          cfg.PeerAddr,
		InitialCluster:    initial,
		Join:              cfg.Join,
		Shards:            cfg.Shards,
		ReplicationFactor: cfg.ReplicationFactor,
		MinFreeBytes:      cfg.MinFreeBytes,
		Observer:          observer,
	}
	if err := applyDebugEnv(&opts); err != nil {
		return err
	}
	if n.clock, err = applyClockOffsetEnv(os.Getenv, os.Stderr, &opts); err != nil {
		return err
	}
	n.db, err = strata.Open(opts)
	if err != nil {
		return fmt.Errorf("open %s: %w", cfg.DataDir, err)
	}
	dbOpen := true
	defer func() {
		if dbOpen {
			n.db.Close()
		}
	}()
	src := obs.Sources{
		Node:     n.db.Node().Stats,
		Engine:   n.db.Node().Engine().Stats,
		Replicas: n.replicaCounts,
	}
	if _, ok := n.db.TransportStats(); ok {
		src.Transport = func() transport.Stats { st, _ := n.db.TransportStats(); return st }
	}
	err = obs.RegisterStats(reg, src)
	if err != nil {
		return err
	}
	// Peers that gossip reported before the DB was open.
	n.peers.Store(n.db)
	for id, addr := range n.alivePeers() {
		if err := n.db.AddPeer(id, addr); err != nil {
			n.log.Printf("peer %d at %s: %v", id, addr, err)
		}
	}

	n.admin = &admin{db: n.db, ml: n.ml}
	srv, err := server.New(server.Config{DB: n.db, Admin: n.admin, Registry: reg, SendTimeout: n.cfg.SendTimeout})
	if err != nil {
		return err
	}
	// Room for the largest batch (strata.MaxBatchSize) and its framing.
	n.grpc = grpc.NewServer(append(server.ServerOptions(),
		grpc.MaxRecvMsgSize(strata.MaxBatchSize+1<<20),
		// Calls run on long-lived workers rather than a new goroutine
		// each, which saves growing a fresh stack per call: in the
		// 100-client put benchmark, about 9% more puts per second. A
		// call that finds every worker busy gets its own goroutine.
		grpc.NumStreamWorkers(clientStreamWorkers),
	)...)
	srv.Register(n.grpc)
	n.http = &http.Server{Handler: n.httpHandler(reg), ReadHeaderTimeout: 5 * time.Second}

	// The servers' goroutines end when shutdown stops the servers; fatal
	// reports their failures.
	fatal := make(chan error, 3)
	var serving sync.WaitGroup
	serving.Add(2)
	go func() {
		defer serving.Done()
		if err := n.grpc.Serve(clientLis); err != nil {
			fatal <- fmt.Errorf("client API: %w", err)
		}
	}()
	go func() {
		defer serving.Done()
		if err := n.http.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("http: %w", err)
		}
	}()

	// The joining and registering goroutine ends with ctx (cancelled at
	// shutdown below).
	bgCtx, bgCancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		if err := n.joinAndRegister(bgCtx, stdout); err != nil && bgCtx.Err() == nil {
			fatal <- err
		}
	}()
	go func() {
		defer bg.Done()
		n.replicate(bgCtx)
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-fatal:
		n.log.Printf("stopping: %v", runErr)
	case <-n.db.Node().Done():
		runErr = fmt.Errorf("raft node stopped: %w", n.db.Node().Err())
		n.log.Printf("stopping: %v", runErr)
	}
	bgCancel()
	bg.Wait()

	// Shutdown, in order: leaderships away, calls drained, gossip left,
	// data closed.
	n.draining.Store(true)
	t0 := time.Now()
	n.transferLeaderships()
	n.drainGRPC()
	lctx, lcancel := context.WithTimeout(context.Background(), leaveTimeout)
	if err := n.ml.Leave(lctx); err != nil {
		n.log.Printf("gossip leave: %v", err)
	}
	lcancel()
	mlOpen = false
	hctx, hcancel := context.WithTimeout(context.Background(), time.Second)
	_ = n.http.Shutdown(hctx)
	hcancel()
	serving.Wait()
	dbOpen = false
	if err := n.db.Close(); err != nil {
		return errors.Join(runErr, fmt.Errorf("close data: %w", err))
	}
	n.log.Printf("stopped in %v", time.Since(t0).Round(time.Millisecond))
	return runErr
}

// startMembership starts gossip. An initial member tries the others for a
// little while and gossips alone if none answers (they will join it); a
// joining node must reach the cluster.
func (n *node) startMembership() (*membership.Membership, error) {
	cfg := membership.Config{
		Meta: membership.Meta{
			NodeID: n.cfg.ID, PeerAddr: n.cfg.PeerAddr, ClientAddr: n.cfg.ClientAddr, HTTPAddr: n.cfg.HTTPAddr,
		},
		BindAddr: n.cfg.GossipAddr,
		Join:     n.cfg.Seeds,
		OnChange: n.memberChanged,
		Logger:   n.log,
	}
	if n.cfg.Join {
		cfg.JoinTimeout = joinTimeout
		ml, err := membership.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("gossip: %w", err)
		}
		return ml, nil
	}
	cfg.JoinTimeout = staticJoinTimeout
	ml, err := membership.New(cfg)
	if errors.Is(err, membership.ErrJoinFailed) {
		n.log.Printf("no other initial member answers gossip yet (%v); gossiping alone until they join", cfg.Join)
		cfg.Join = nil
		ml, err = membership.New(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	return ml, nil
}

// memberChanged tells the DB where a live member's raft traffic goes, so
// that a peer address is configured only on the node that owns it. It is
// called by memberlist and must not block.
func (n *node) memberChanged(m membership.Member) {
	db := n.peers.Load()
	if db == nil || m.State != membership.Alive || m.NodeID == n.cfg.ID {
		return
	}
	if err := db.AddPeer(m.NodeID, m.PeerAddr); err != nil {
		n.log.Printf("peer %d at %s: %v", m.NodeID, m.PeerAddr, err)
	}
}

// alivePeers returns the peer addresses of the other live members.
func (n *node) alivePeers() map[uint64]string {
	peers := map[uint64]string{}
	for _, m := range n.ml.Members() {
		if m.State == membership.Alive && m.NodeID != n.cfg.ID {
			peers[m.NodeID] = m.PeerAddr
		}
	}
	return peers
}

// joinAndRegister joins the cluster (a --join node), records this node in
// the node registry once the cluster has a leader, waits until the node is
// ready and says so on stdout.
func (n *node) joinAndRegister(ctx context.Context, stdout io.Writer) error {
	if n.cfg.Join {
		peers := n.alivePeers()
		if len(peers) == 0 {
			return fmt.Errorf("join: gossip through %v found no other live member", n.cfg.Seeds)
		}
		jctx, cancel := context.WithTimeout(ctx, joinTimeout)
		err := n.db.Join(jctx, peers)
		cancel()
		if err != nil {
			return err
		}
	}
	rec := strata.NodeRecord{ID: n.cfg.ID, PeerAddr: n.cfg.PeerAddr, ClientAddr: n.cfg.ClientAddr, HTTPAddr: n.cfg.HTTPAddr}
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := n.db.RegisterNode(rctx, rec)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return nil
		}
	}
	for {
		if ok, _ := n.readiness(); ok {
			break
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil
		}
	}
	fmt.Fprintf(stdout, "kvnode: node %d ready in %v: client API %s, metrics http://%s/metrics; try: %s --endpoints %s put k v\n",
		n.cfg.ID, time.Since(n.start).Round(time.Millisecond), n.cfg.ClientAddr, n.cfg.HTTPAddr, selfPath(), n.cfg.ClientAddr)
	return nil
}

// selfPath is how to call this binary from the working directory: a
// relative path when shorter, else the absolute one.
func selfPath() string {
	self, err := os.Executable()
	if err != nil {
		return "kvnode"
	}
	wd, err := os.Getwd()
	if err != nil {
		return self
	}
	if rel, err := filepath.Rel(wd, self); err == nil && len(rel) < len(self) {
		if !strings.Contains(rel, string(filepath.Separator)) {
			rel = "." + string(filepath.Separator) + rel
		}
		return rel
	}
	return self
}

// transferLeaderships hands every shard this node leads to another voter,
// all shards at once, each within transferTimeout.
func (n *node) transferLeaderships() {
	ctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
	defer cancel()
	shards, err := n.db.Status(ctx)
	if err != nil {
		n.log.Printf("leadership hand-over: status: %v", err)
		return
	}
	var wg sync.WaitGroup
	for _, sh := range shards {
		if sh.Local == nil || !sh.Local.IsLeader {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, to := range n.transferTargets(sh.Local.Voters) {
				// Each target gets a share of what is left, so one dead
				// voter does not use up the time of the others.
				tctx, tcancel := context.WithTimeout(ctx, transferTimeout/2)
				err := n.db.TransferLeader(tctx, sh.ID, to)
				tcancel()
				if err == nil {
					return
				}
				n.log.Printf("leadership of shard %d to node %d: %v", sh.ID, to, err)
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// transferTargets orders the other voters: alive members first.
func (n *node) transferTargets(voters []uint64) []uint64 {
	var alive, others []uint64
	for _, v := range voters {
		if v == n.cfg.ID {
			continue
		}
		if m, ok := n.ml.Member(v); ok && m.State == membership.Alive {
			alive = append(alive, v)
		} else {
			others = append(others, v)
		}
	}
	return append(alive, others...)
}

// drainGRPC stops accepting client calls and lets those in flight finish
// within drainTimeout, then cuts them.
func (n *node) drainGRPC() {
	stopped := make(chan struct{})
	go func() {
		n.grpc.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		n.log.Printf("client calls still running after %v: cutting them", drainTimeout)
		n.grpc.Stop()
		<-stopped
	}
}

// replicaCounts returns how many replicas the node hosts and leads.
func (n *node) replicaCounts() (hosted, leading int) {
	groups := n.db.Node().Groups()
	for _, g := range groups {
		if st, err := n.db.Node().Status(g); err == nil && st.IsLeader {
			leading++
		}
	}
	return len(groups), leading
}

// sleepCtx sleeps for d; it returns false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
