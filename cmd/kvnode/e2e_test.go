package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/client"
)

// TestEndToEnd runs real kvnode processes: a three-node cluster, a leader
// killed under writes and restarted, a fourth node joining and getting a
// replica, and a clean SIGTERM.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test of kvnode processes; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "kvnode")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ports := freePorts(t, 16)
	nodes := make([]*proc, 4)
	for i := range nodes {
		nodes[i] = &proc{t: t, bin: bin, id: uint64(i + 1), dir: dir, ports: ports[4*i : 4*i+4]}
	}
	t.Cleanup(func() {
		for _, p := range nodes {
			p.kill()
		}
	})
	initial, gossip := "", ""
	for _, p := range nodes[:3] {
		initial += fmt.Sprintf(",%d=%s", p.id, p.addr(peerPort))
		gossip += "," + p.addr(gossipPort)
	}
	for _, p := range nodes[:3] {
		p.args = []string{"--initial-cluster", initial[1:], "--initial-gossip", gossip[1:], "--shards", "4", "--replica-grace", "1s"}
	}

	// Three nodes, ready.
	t0 := time.Now()
	for _, p := range nodes[:3] {
		p.start()
	}
	for _, p := range nodes[:3] {
		p.waitReady(20 * time.Second)
	}
	t.Logf("3 nodes started and ready in %v", time.Since(t0).Round(time.Millisecond))

	all := []string{nodes[0].addr(clientPort), nodes[1].addr(clientPort), nodes[2].addr(clientPort)}
	kvnodeCLI(t, bin, all, "put", "cli-key", "hello")
	if got := kvnodeCLI(t, bin, all[2:], "get", "cli-key"); got != "hello" {
		t.Fatalf("kvnode get cli-key = %q, want hello", got)
	}
	c := newClient(t, all...)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	if err := c.Put(ctx, []byte("go-key"), []byte("world")); err != nil {
		t.Fatal(err)
	}
	if got := kvnodeCLI(t, bin, all[1:2], "get", "go-key"); got != "world" {
		t.Fatalf("kvnode get go-key = %q, want world", got)
	}
	if v, err := c.Get(ctx, []byte("cli-key")); err != nil || string(v) != "hello" {
		t.Fatalf("Get cli-key = %q, %v; want hello", v, err)
	}

	// The shard of the keys "k-…" and its leader.
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sh := shardOf(st, []byte("k-"))
	if sh == nil || sh.GetLeaderId() == 0 || sh.GetLeaderId() > 3 {
		t.Fatalf("no leader for the shard of k-: %v", st)
	}
	leader := nodes[sh.GetLeaderId()-1]
	t.Logf("shard %d [%q, %q) is led by node %d", sh.GetId(), sh.GetStart(), sh.GetEnd(), leader.id)

	// Writes before the crash, then SIGKILL the leader and keep writing
	// through the survivors.
	acked := map[string]string{}
	seq := 0
	put := func(c *client.Client) error {
		k, v := fmt.Sprintf("k-%05d", seq), fmt.Sprintf("v%d", seq)
		seq++
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		defer pcancel()
		err := c.Put(pctx, []byte(k), []byte(v))
		if err == nil {
			acked[k] = v
		}
		return err
	}
	for range 20 {
		if err := put(c); err != nil {
			t.Fatal(err)
		}
	}
	var survivors []string
	for _, p := range nodes[:3] {
		if p != leader {
			survivors = append(survivors, p.addr(clientPort))
		}
	}
	sc := newClient(t, survivors...)
	leader.kill()
	killed := time.Now()
	var failover time.Duration
	failed := 0
	for time.Since(killed) < 15*time.Second && (failover == 0 || time.Since(killed) < failover+2*time.Second) {
		if err := put(sc); err != nil {
			failed++
			continue
		}
		if failover == 0 {
			failover = time.Since(killed)
		}
	}
	if failover == 0 {
		t.Fatalf("no write succeeded within 15s of killing node %d", leader.id)
	}
	t.Logf("killed leader node %d: first write acknowledged after %v; %d writes acknowledged, %d failed or unknown",
		leader.id, failover.Round(time.Millisecond), len(acked), failed)
	checkKeys(t, ctx, sc, acked, "survivors")

	// The killed node comes back from its directory.
	leader.start()
	leader.waitReady(20 * time.Second)
	checkKeys(t, ctx, newClient(t, leader.addr(clientPort)), acked, fmt.Sprintf("restarted node %d", leader.id))

	// A fourth node joins through node 1's gossip and gets a replica of
	// the shard.
	n4 := nodes[3]
	n4.args = []string{"--join", nodes[0].addr(gossipPort), "--replica-grace", "1s"}
	n4.start()
	n4.waitReady(20 * time.Second)
	out := kvnodeCLI(t, bin, all[:1], "--timeout", "30s", "replica", "add", strconv.FormatUint(sh.GetId(), 10), "4")
	t.Logf("kvnode replica add: %s", out)
	c4 := newClient(t, n4.addr(clientPort))
	leaderCommit := localOf(t, ctx, newClient(t, all[0]), sh.GetId()).GetCommit()
	waitFor(t, 10*time.Second, "node 4 to vote in the shard with a full copy", func() error {
		l := localOf(t, ctx, c4, sh.GetId())
		if l == nil || !slices.Contains(l.GetVoters(), 4) {
			return fmt.Errorf("node 4's replica: %v", l)
		}
		if l.GetApplied() < leaderCommit {
			return fmt.Errorf("node 4 applied %d of %d", l.GetApplied(), leaderCommit)
		}
		return nil
	})
	checkKeys(t, ctx, c4, acked, "node 4")
	kvnodeCLI(t, bin, all[:1], "--timeout", "30s", "replica", "remove", strconv.FormatUint(sh.GetId(), 10), "4")
	waitFor(t, 10*time.Second, "node 4 to drop its replica", func() error {
		if l := localOf(t, ctx, c4, sh.GetId()); l != nil {
			return fmt.Errorf("node 4 still hosts shard %d: %v", sh.GetId(), l)
		}
		if l := localOf(t, ctx, c, sh.GetId()); l == nil || slices.Contains(l.GetVoters(), 4) || slices.Contains(l.GetLearners(), 4) {
			return fmt.Errorf("shard %d's members: %v", sh.GetId(), l)
		}
		return nil
	})
	checkKeys(t, ctx, c, acked, "cluster after the replica left")

	// A shard below the replication factor gets a replica back on its own:
	// remove one of node 1, 2 or 3 from it, and the least loaded live member
	// (node 4, which holds nothing) is added after the grace period.
	var out2 uint64
	for _, id := range localOf(t, ctx, c, sh.GetId()).GetVoters() {
		if id != 4 && id != leader.id {
			out2 = id
		}
	}
	kvnodeCLI(t, bin, all[:1], "--timeout", "30s", "replica", "remove", strconv.FormatUint(sh.GetId(), 10), strconv.FormatUint(out2, 10))
	waitFor(t, 20*time.Second, "the shard to be up-replicated onto node 4", func() error {
		l := localOf(t, ctx, c4, sh.GetId())
		if l == nil || !slices.Contains(l.GetVoters(), 4) || len(l.GetVoters()) != 3 {
			return fmt.Errorf("node 4's view of shard %d: %v", sh.GetId(), l)
		}
		return nil
	})
	checkKeys(t, ctx, c4, acked, "node 4 after up-replication")

	// SIGTERM a node that leads a shard: it hands the leadership over and
	// exits with status 0 within a few seconds.
	var p *proc
	var led uint64
	for _, q := range nodes[:3] {
		st, err := newClient(t, q.addr(clientPort)).Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st.GetShards() {
			if s.GetLocal().GetIsLeader() {
				p, led = q, s.GetId()
			}
		}
		if p != nil {
			break
		}
	}
	if p == nil {
		t.Fatal("no node leads a shard")
	}
	stopStart := time.Now()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("node %d still running 10s after SIGTERM\n%s", p.id, p.logTail())
	}
	if p.err != nil {
		t.Fatalf("node %d exited with %v after SIGTERM\n%s", p.id, p.err, p.logTail())
	}
	t.Logf("node %d (leader of shard %d) exited 0 %v after SIGTERM", p.id, led, time.Since(stopStart).Round(time.Millisecond))
	var rest []string
	for _, q := range nodes[:3] {
		if q != p {
			rest = append(rest, q.addr(clientPort))
		}
	}
	rc := newClient(t, rest...)
	// The leadership moved before the node stopped, so the shard has a
	// leader at once, not after an election: the followers' election
	// timeout is at least 1 s (10 ticks of 100 ms) from the last message
	// of the old leader, so a leader seen within 900 ms was handed over.
	// (Under load a node left may hear from the new leader some time after
	// the old one exits.)
	// Only a node that hosts the shard knows its leader (a node without a
	// replica answers 0), and after the up-replication above one of the
	// nodes left may not host it: ask each of them.
	var asked []*client.Client
	for _, addr := range rest {
		asked = append(asked, newClient(t, addr))
	}
	var newLeader uint64
	for deadline := time.Now().Add(900 * time.Millisecond); ; {
		for _, q := range asked {
			st, err := q.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st.GetShards() {
				if s.GetId() == led && s.GetLocal() != nil && s.GetLeaderId() != 0 && s.GetLeaderId() != p.id {
					newLeader = s.GetLeaderId()
				}
			}
		}
		if newLeader != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if newLeader == 0 {
		t.Errorf("shard %d 900ms after node %d stopped has no other leader known to its replicas; its log:\n%s", led, p.id, p.logTail())
	}
	checkKeys(t, ctx, rc, acked, "the nodes left")
}

// Indexes of a node's ports.
const (
	clientPort = iota
	peerPort
	gossipPort
	httpPort
)

// proc is a kvnode process, started and restarted by the test.
type proc struct {
	t     *testing.T
	bin   string
	id    uint64
	dir   string
	ports []int
	args  []string // beyond the node's own addresses

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exited; err is then its Wait error
	err  error
}

func (p *proc) addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", p.ports[port]) }

func (p *proc) logPath() string { return filepath.Join(p.dir, fmt.Sprintf("node%d.log", p.id)) }

// start starts the node; its output is appended to its log file.
func (p *proc) start() {
	p.t.Helper()
	args := append([]string{"start",
		"--id", strconv.FormatUint(p.id, 10),
		"--data-dir", filepath.Join(p.dir, fmt.Sprintf("node%d", p.id)),
		"--client-addr", p.addr(clientPort), "--peer-addr", p.addr(peerPort),
		"--gossip-addr", p.addr(gossipPort), "--http-addr", p.addr(httpPort),
	}, p.args...)
	logf, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.done = done
	cmd := p.cmd
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.err = err
		close(done)
	}()
}

// kill SIGKILLs the node if it runs and waits for it to exit.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) signal(s os.Signal) {
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return fmt.Sprintf("node %d log (last lines):\n%s", p.id, strings.Join(lines, "\n"))
}

// waitReady waits until the node's /readyz answers 200.
func (p *proc) waitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	url := "http://" + p.addr(httpPort) + "/readyz"
	hc := &http.Client{Timeout: time.Second}
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.t.Fatalf("node %d exited (%v) before it was ready\n%s", p.id, p.err, p.logTail())
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(body.String()))
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("node %d not ready within %v (last /readyz: %s)\n%s", p.id, timeout, last, p.logTail())
}

// freePorts returns n distinct free TCP ports of 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// kvnodeCLI runs a kvnode client command against endpoints and returns its
// trimmed stdout; it fails the test if the command fails.
func kvnodeCLI(t *testing.T, bin string, endpoints []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--endpoints", strings.Join(endpoints, ",")}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kvnode %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

func newClient(t *testing.T, endpoints ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: endpoints, MaxRetries: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// shardOf returns the user shard holding key in st.
func shardOf(st *api.StatusResponse, key []byte) *api.ShardStatus {
	for _, sh := range st.GetShards() {
		if sh.GetSystem() {
			continue
		}
		if bytes.Compare(key, sh.GetStart()) >= 0 && (len(sh.GetEnd()) == 0 || bytes.Compare(key, sh.GetEnd()) < 0) {
			return sh
		}
	}
	return nil
}

// localOf returns the local replica status of shard id on c's node (nil
// if it hosts none).
func localOf(t *testing.T, ctx context.Context, c *client.Client, id uint64) *api.ReplicaStatus {
	t.Helper()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range st.GetShards() {
		if sh.GetId() == id {
			return sh.GetLocal()
		}
	}
	return nil
}

// checkKeys reads every acknowledged key through c.
func checkKeys(t *testing.T, ctx context.Context, c *client.Client, acked map[string]string, through string) {
	t.Helper()
	for k, want := range acked {
		v, err := c.Get(ctx, []byte(k))
		if errors.Is(err, client.ErrNotFound) {
			t.Fatalf("acknowledged key %s lost (read through %s)", k, through)
		}
		if err != nil {
			t.Fatalf("get %s through %s: %v", k, through, err)
		}
		if string(v) != want {
			t.Fatalf("key %s = %q through %s, want %q", k, v, through, want)
		}
	}
}

// waitFor polls cond until it returns nil or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
