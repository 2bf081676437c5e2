package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testLogger returns a logger writing to t.Log until the test ends (memberlist
// goroutines may still log briefly after Close).
func testLogger(t testing.TB) *log.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return log.New(w, "", log.Lmicroseconds)
}

type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimSuffix(p, []byte("\n"))))
	}
	return len(p), nil
}

// recorder keeps the members passed to OnChange.
type recorder struct {
	mu     sync.Mutex
	events []Member
}

func (r *recorder) onChange(m Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, m)
}

// saw reports whether OnChange got node id in state s.
func (r *recorder) saw(id uint64, s State) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.events, func(m Member) bool { return m.NodeID == id && m.State == s })
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

type testNode struct {
	*Membership
	rec *recorder
	cfg Config
}

func testMeta(id uint64, port int) Meta {
	return Meta{
		NodeID:     id,
		PeerAddr:   fmt.Sprintf("127.0.0.1:%d", port),
		ClientAddr: fmt.Sprintf("127.0.0.1:%d", port+1),
		HTTPAddr:   fmt.Sprintf("127.0.0.1:%d", port+2),
	}
}

func testConfig(t testing.TB, id uint64, join ...string) Config {
	return Config{
		Meta:     testMeta(id, 17000+10*int(id)),
		BindAddr: "127.0.0.1:0",
		Join:     join,
		Fast:     true,
		Logger:   testLogger(t),
	}
}

// start starts a node from cfg (OnChange is set to a recorder) and closes it
// when the test ends.
func start(t testing.TB, cfg Config) *testNode {
	t.Helper()
	rec := &recorder{}
	cfg.OnChange = rec.onChange
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(node %d): %v", cfg.Meta.NodeID, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &testNode{Membership: m, rec: rec, cfg: cfg}
}

// startCluster starts n nodes with IDs 1..n, all joining through node 1, and
// waits until every node sees every node alive with its meta.
func startCluster(t testing.TB, n int) []*testNode {
	t.Helper()
	began := time.Now()
	nodes := []*testNode{start(t, testConfig(t, 1))}
	for id := 2; id <= n; id++ {
		nodes = append(nodes, start(t, testConfig(t, uint64(id), nodes[0].GossipAddr())))
	}
	waitFor(t, 5*time.Second, "cluster to converge", func() error {
		for _, obs := range nodes {
			if err := sees(obs, nodes, Alive); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("%d nodes started and converged in %v", n, time.Since(began))
	return nodes
}

// sees checks that obs knows each of want, in state s, with its current meta
// and gossip address.
func sees(obs *testNode, want []*testNode, s State) error {
	for _, w := range want {
		got, ok := obs.Member(w.cfg.Meta.NodeID)
		if !ok {
			return fmt.Errorf("node %d does not know node %d", obs.cfg.Meta.NodeID, w.cfg.Meta.NodeID)
		}
		w.mu.Lock()
		meta := w.mu.meta
		w.mu.Unlock()
		if got.State != s || got.Meta != meta || got.GossipAddr != w.GossipAddr() {
			return fmt.Errorf("node %d sees %+v, want %v %+v at %s", obs.cfg.Meta.NodeID, got, s, meta, w.GossipAddr())
		}
	}
	return nil
}

// waitFor polls cond until it returns nil, failing the test after timeout
// with cond's last error. It returns how long it waited.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(began)
		}
		if time.Since(began) > timeout {
			t.Fatalf("waiting %v for %s: %v", timeout, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClusterConverges(t *testing.T) {
	nodes := startCluster(t, 3)
	for _, n := range nodes {
		ms := n.Members()
		if len(ms) != 3 {
			t.Fatalf("node %d: Members() = %+v, want 3 members", n.cfg.Meta.NodeID, ms)
		}
		for i, m := range ms {
			if m.NodeID != uint64(i+1) {
				t.Fatalf("node %d: Members() not sorted by NodeID: %+v", n.cfg.Meta.NodeID, ms)
			}
			if m.Since.IsZero() {
				t.Fatalf("node %d: member %d has no Since", n.cfg.Meta.NodeID, m.NodeID)
			}
			if !n.rec.saw(m.NodeID, Alive) {
				t.Fatalf("node %d: OnChange did not report node %d alive", n.cfg.Meta.NodeID, m.NodeID)
			}
		}
		if _, ok := n.Member(99); ok {
			t.Fatalf("Member(99) found a member that does not exist")
		}
	}
	if !strings.HasPrefix(nodes[0].GossipAddr(), "127.0.0.1:") || strings.HasSuffix(nodes[0].GossipAddr(), ":0") {
		t.Fatalf("GossipAddr() = %q, want 127.0.0.1 and the picked port", nodes[0].GossipAddr())
	}
}

func TestUpdateMetaPropagates(t *testing.T) {
	nodes := startCluster(t, 3)
	meta := testMeta(2, 27000)
	if err := nodes[1].UpdateMeta(meta); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 5*time.Second, "meta update to propagate", func() error {
		for _, obs := range nodes {
			if err := sees(obs, nodes, Alive); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("meta update propagated in %v", d)
	if !nodes[0].rec.saw(2, Alive) {
		t.Fatal("OnChange did not report the update")
	}

	bad := meta
	bad.NodeID = 5
	if err := nodes[1].UpdateMeta(bad); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("UpdateMeta changing NodeID: got %v, want ErrInvalidMeta", err)
	}
	bad = meta
	bad.PeerAddr = ""
	if err := nodes[1].UpdateMeta(bad); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("UpdateMeta without PeerAddr: got %v, want ErrInvalidMeta", err)
	}
}

func TestKilledMemberIsDead(t *testing.T) {
	nodes := startCluster(t, 3)
	killed := nodes[2]
	if err := killed.Close(); err != nil {
		t.Fatal(err)
	}
	if err := killed.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	d := waitFor(t, 5*time.Second, "killed member to be dead", func() error {
		for _, obs := range nodes[:2] {
			if err := sees(obs, []*testNode{killed}, Dead); err != nil {
				return err
			}
			if !obs.rec.saw(3, Dead) {
				return fmt.Errorf("node %d: OnChange has not reported node 3 dead", obs.cfg.Meta.NodeID)
			}
		}
		return nil
	})
	t.Logf("killed member detected dead by both others in %v", d)
	for _, obs := range nodes[:2] {
		if err := sees(obs, nodes[:2], Alive); err != nil {
			t.Fatal(err)
		}
		if n := len(obs.Members()); n != 3 {
			t.Fatalf("node %d: %d members, want 3 (the dead one remembered)", obs.cfg.Meta.NodeID, n)
		}
	}
}

func TestLeaveIsLeft(t *testing.T) {
	nodes := startCluster(t, 3)
	leaver := nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := leaver.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Leave returned in %v", time.Since(began))
	d := waitFor(t, 2*time.Second, "member to be left", func() error {
		for _, obs := range nodes[:2] {
			if err := sees(obs, []*testNode{leaver}, Left); err != nil {
				return err
			}
			if !obs.rec.saw(3, Left) {
				return fmt.Errorf("node %d: OnChange has not reported node 3 left", obs.cfg.Meta.NodeID)
			}
		}
		return nil
	})
	t.Logf("leave seen by both others %v after Leave returned", d)
	if !leaver.rec.saw(3, Left) {
		t.Fatal("the leaving node's own OnChange did not report it left")
	}

	if err := leaver.Leave(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Leave after Leave: got %v, want ErrClosed", err)
	}
	if err := leaver.UpdateMeta(leaver.cfg.Meta); !errors.Is(err, ErrClosed) {
		t.Fatalf("UpdateMeta after Leave: got %v, want ErrClosed", err)
	}
	if err := leaver.Close(); err != nil {
		t.Fatalf("Close after Leave: %v", err)
	}
	n := leaver.rec.count()
	time.Sleep(300 * time.Millisecond)
	if leaver.rec.count() != n {
		t.Fatal("OnChange called after Leave returned")
	}
}

// TestRestartSameID restarts node 3 with the same ID on a new port and new
// addresses, after it left and after it was killed: the others see it alive
// again at the new address.
func TestRestartSameID(t *testing.T) {
	nodes := startCluster(t, 3)
	restart := func(how string, stop func(*testNode) error, state State, portBase int) {
		t.Helper()
		old := nodes[2]
		if err := stop(old); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "node 3 to be "+state.String(), func() error {
			return sees(nodes[0], []*testNode{old}, state)
		})
		began := time.Now()
		cfg := testConfig(t, 3, nodes[0].GossipAddr())
		cfg.Meta = testMeta(3, portBase)
		nodes[2] = start(t, cfg)
		if nodes[2].GossipAddr() == old.GossipAddr() {
			t.Fatalf("restarted node reuses gossip address %s", old.GossipAddr())
		}
		d := waitFor(t, 5*time.Second, "restarted node 3 to be alive", func() error {
			for _, obs := range nodes {
				if err := sees(obs, nodes, Alive); err != nil {
					return err
				}
			}
			return nil
		})
		t.Logf("after %s: restarted node alive at its new address everywhere %v after New began", how, time.Since(began)-0*d)
	}
	restart("leave", func(n *testNode) error { return n.Leave(context.Background()) }, Left, 37000)
	restart("kill", func(n *testNode) error { return n.Close() }, Dead, 47000)
}

func TestDuplicateLiveNodeIDRejected(t *testing.T) {
	nodes := startCluster(t, 2)
	cfg := testConfig(t, 2, nodes[0].GossipAddr())
	cfg.Meta = testMeta(2, 57000)
	cfg.JoinTimeout = 500 * time.Millisecond
	cfg.OnChange = func(Member) {}
	m, err := New(cfg)
	if err == nil {
		m.Close()
		t.Fatal("New with the ID of a live member at another address succeeded")
	}
	if !errors.Is(err, ErrDuplicateNodeID) {
		t.Fatalf("got %v, want ErrDuplicateNodeID", err)
	}
	t.Logf("error: %v", err)
	// The original keeps its ID and address.
	time.Sleep(300 * time.Millisecond)
	for _, obs := range nodes {
		if err := sees(obs, nodes, Alive); err != nil {
			t.Fatal(err)
		}
	}
}

func TestJoinUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	cfg := testConfig(t, 1, dead, "127.0.0.1:1")
	cfg.JoinTimeout = 300 * time.Millisecond
	began := time.Now()
	m, err := New(cfg)
	if err == nil {
		m.Close()
		t.Fatal("join to unreachable addresses succeeded")
	}
	if !errors.Is(err, ErrJoinFailed) || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("got %v, want ErrJoinFailed naming %s and 127.0.0.1:1", err, dead)
	}
	t.Logf("failed after %v: %v", time.Since(began), err)

	// The failed node released its gossip port: the same bind works.
	cfg.Join = nil
	start(t, cfg)
}

func TestJoinSkipsOwnAddress(t *testing.T) {
	// A node given only its own address starts a new cluster.
	cfg := testConfig(t, 1, "127.0.0.1:0")
	n := start(t, cfg)
	if err := sees(n, []*testNode{n}, Alive); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	good := func() Config { return testConfig(t, 1) }
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   error
		substr string
	}{
		{"node ID 0", func(c *Config) { c.Meta.NodeID = 0 }, ErrInvalidConfig, "NodeID"},
		{"no PeerAddr", func(c *Config) { c.Meta.PeerAddr = "" }, ErrInvalidConfig, "PeerAddr"},
		{"no ClientAddr", func(c *Config) { c.Meta.ClientAddr = "" }, ErrInvalidConfig, "ClientAddr"},
		{"PeerAddr without port", func(c *Config) { c.Meta.PeerAddr = "127.0.0.1" }, ErrInvalidConfig, "PeerAddr"},
		{"ClientAddr port 0", func(c *Config) { c.Meta.ClientAddr = "127.0.0.1:0" }, ErrInvalidConfig, "ClientAddr"},
		{"HTTPAddr without host", func(c *Config) { c.Meta.HTTPAddr = ":8080" }, ErrInvalidConfig, "HTTPAddr"},
		{"meta too large", func(c *Config) { c.Meta.PeerAddr = strings.Repeat("a", 600) + ":1" }, ErrInvalidConfig, "512"},
		{"no BindAddr", func(c *Config) { c.BindAddr = "" }, ErrInvalidConfig, "BindAddr"},
		{"BindAddr without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, ErrInvalidConfig, "BindAddr"},
		{"BindAddr hostname", func(c *Config) { c.BindAddr = "localhost:0" }, ErrInvalidConfig, "not an IP"},
		{"BindAddr port range", func(c *Config) { c.BindAddr = "127.0.0.1:70000" }, ErrInvalidConfig, "BindAddr"},
		{"AdvertiseAddr without host", func(c *Config) { c.AdvertiseAddr = ":7000" }, ErrInvalidConfig, "AdvertiseAddr"},
		{"empty join address", func(c *Config) { c.Join = []string{""} }, ErrInvalidConfig, "Join[0]"},
		{"negative duration", func(c *Config) { c.JoinTimeout = -time.Second }, ErrInvalidConfig, "JoinTimeout"},
		{"probe timeout >= interval", func(c *Config) { c.ProbeTimeout = time.Second }, ErrInvalidConfig, "ProbeTimeout"},
		{"suspicion mult", func(c *Config) { c.SuspicionMult = -1 }, ErrInvalidConfig, "SuspicionMult"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.modify(&cfg)
			m, err := New(cfg)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.substr)
			}
		})
	}

	t.Run("port in use", func(t *testing.T) {
		n := start(t, testConfig(t, 1))
		cfg := good()
		cfg.BindAddr = n.GossipAddr()
		m, err := New(cfg)
		if err == nil {
			m.Close()
			t.Fatal("New on a port in use succeeded")
		}
		if !strings.Contains(err.Error(), n.GossipAddr()) {
			t.Fatalf("error %q does not name the address", err)
		}
	})
}

func TestDefaults(t *testing.T) {
	lan, _ := Config{}.withDefaults()
	fast, _ := Config{Fast: true}.withDefaults()
	if lan.ProbeInterval != time.Second || lan.SuspicionMult != 4 || lan.GossipInterval != 200*time.Millisecond {
		t.Fatalf("LAN defaults differ from memberlist.DefaultLANConfig: %+v", lan)
	}
	if fast.ProbeInterval >= lan.ProbeInterval || fast.Logger == nil {
		t.Fatalf("Fast defaults: %+v", fast)
	}
	set, _ := Config{Fast: true, ProbeInterval: 3 * time.Second}.withDefaults()
	if set.ProbeInterval != 3*time.Second {
		t.Fatal("an explicit duration was overridden by the profile")
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Alive: "alive", Suspect: "suspect", Dead: "dead", Left: "left", 0: "state(0)"} {
		if s.String() != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
}

func TestLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	l := log.New(&levelFilter{dst: log.New(&buf, "", 0)}, "", 0)
	l.Printf("[DEBUG] memberlist: chatter")
	l.Printf("[INFO] memberlist: more chatter")
	l.Printf("[WARN] memberlist: a warning")
	l.Printf("[ERR] memberlist: an error")
	if got, want := buf.String(), "[WARN] memberlist: a warning\n[ERR] memberlist: an error\n"; got != want {
		t.Fatalf("filtered log:\n%s\nwant:\n%s", got, want)
	}
}

// TestForeignNodeRejected joins raw memberlist nodes that do not gossip a
// valid Strata meta: they never become members.
func TestForeignNodeRejected(t *testing.T) {
	n := start(t, testConfig(t, 1))
	for name, tc := range map[string]struct {
		nodeName string
		meta     []byte
	}{
		"no meta":       {"node-8", nil},
		"garbage meta":  {"node-8", []byte{0xff, 0xff, 0xff}},
		"name mismatch": {"node-9", encodeMeta(wireMeta{Meta: testMeta(8, 18000)})},
		"not a node ID": {"db-1", encodeMeta(wireMeta{Meta: testMeta(8, 18000)})},
	} {
		t.Run(name, func(t *testing.T) {
			c := memberlist.DefaultLocalConfig()
			c.Name = tc.nodeName
			c.BindAddr, c.BindPort, c.AdvertisePort = "127.0.0.1", 0, 0
			c.Delegate = rawMeta(tc.meta)
			c.Logger = testLogger(t)
			ml, err := memberlist.Create(c)
			if err != nil {
				t.Fatal(err)
			}
			defer ml.Shutdown()
			if _, err := ml.Join([]string{n.GossipAddr()}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if ms := n.Members(); len(ms) != 1 {
				t.Fatalf("foreign node admitted: %+v", ms)
			}
		})
	}
}

// rawMeta is a memberlist.Delegate that gossips fixed meta.
type rawMeta []byte

func (r rawMeta) NodeMeta(int) []byte               { return r }
func (rawMeta) NotifyMsg([]byte)                    {}
func (rawMeta) GetBroadcasts(int, int) [][]byte     { return nil }
func (rawMeta) LocalState(bool) []byte              { return nil }
func (rawMeta) MergeRemoteState(buf []byte, _ bool) {}

func TestForgetAfter(t *testing.T) {
	cfg := testConfig(t, 1)
	cfg.ForgetAfter = 300 * time.Millisecond
	obs := start(t, cfg)
	other := start(t, testConfig(t, 2, obs.GossipAddr()))
	waitFor(t, 5*time.Second, "join", func() error { return sees(obs, []*testNode{obs, other}, Alive) })
	other.Close()
	waitFor(t, 5*time.Second, "death reported", func() error {
		if !obs.rec.saw(2, Dead) {
			return errors.New("no Dead event yet")
		}
		return nil
	})
	waitFor(t, 2*time.Second, "dead member forgotten", func() error {
		if m, ok := obs.Member(2); ok {
			return fmt.Errorf("still remembered: %+v", m)
		}
		return nil
	})
	if ms := obs.Members(); len(ms) != 1 || ms[0].NodeID != 1 {
		t.Fatalf("Members() = %+v, want only self", ms)
	}
}

func TestLeaveWithDoneContext(t *testing.T) {
	nodes := startCluster(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := nodes[1].Leave(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Leave with a canceled context: got %v, want context.Canceled", err)
	}
	// It shut down anyway: the other one sees it gone.
	if err := nodes[1].Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "node 2 gone", func() error {
		m, _ := nodes[0].Member(2)
		if m.State != Dead && m.State != Left {
			return fmt.Errorf("node 2 is %v", m.State)
		}
		return nil
	})
}
