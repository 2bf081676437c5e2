package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClusterConfig describes the kvnode processes of a run.
type ClusterConfig struct {
	// Kvnode is the kvnode binary. Required.
	Kvnode string
	// Nodes is how many nodes to run. Default: 3.
	Nodes int
	// IPBase is the last octet of node 1's loopback address; node i gets
	// 127.0.0.(IPBase+i-1). Default: 11.
	IPBase int
	// ClientPort is every node's client port; the peer, gossip and HTTP
	// ports follow it. Default: 7370.
	ClientPort int
	// Shards is the number of user shards. Default: 3.
	Shards int
	// ReplicationFactor is the replicas per shard. Default: 3.
	ReplicationFactor int
	// DataDir holds the nodes' data directories. Required.
	DataDir string
	// LogDir holds the nodes' logs (node<i>.log, every incarnation
	// appended). Required.
	LogDir string
	// Env is added to every node's environment (e.g. debug hooks).
	Env []string
}

func (c *ClusterConfig) ensureDefaults() error {
	if c.Kvnode == "" || c.DataDir == "" || c.LogDir == "" {
		return errors.New("jepsen: ClusterConfig needs Kvnode, DataDir and LogDir")
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.IPBase == 0 {
		c.IPBase = 11
	}
	if c.ClientPort == 0 {
		c.ClientPort = 7370
	}
	if c.Shards == 0 {
		c.Shards = 3
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 3
	}
	if c.Nodes < 1 || c.IPBase < 2 || c.IPBase+c.Nodes > 255 || c.ClientPort < 1 || c.ClientPort > 65532 {
		return fmt.Errorf("jepsen: bad cluster config: %d nodes from 127.0.0.%d, client port %d", c.Nodes, c.IPBase, c.ClientPort)
	}
	return nil
}

// gidBase + the address's last octet is the group ID a node runs under, so
// that iptables can tell its connections apart.
const gidBase = 47000

// Node is one kvnode slot: an address and a data directory, run by one
// process at a time (an incarnation). Its node ID changes when membership
// churn makes it join afresh.
type Node struct {
	Index int    // 0-based
	ID    uint64 // the current node ID
	IP    string
	Gid   uint32

	cfg *ClusterConfig
	// env is the debug environment of the current incarnation.
	env []string
	// join is the gossip address to join through, for a node that joined
	// a running cluster; empty for an initial member.
	join string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	// logFrom is the size of the log when the incarnation started.
	logFrom int64
	paused  bool
}

func (n *Node) addr(off int) string { return fmt.Sprintf("%s:%d", n.IP, n.cfg.ClientPort+off) }

// ClientAddr, PeerAddr, GossipAddr and HTTPAddr are the node's addresses.
func (n *Node) ClientAddr() string { return n.addr(0) }
func (n *Node) PeerAddr() string   { return n.addr(1) }
func (n *Node) GossipAddr() string { return n.addr(2) }
func (n *Node) HTTPAddr() string   { return n.addr(3) }

// DataDir is the node's data directory.
func (n *Node) DataDir() string {
	return filepath.Join(n.cfg.DataDir, fmt.Sprintf("node%d", n.Index+1))
}

// LogPath is the node's log file.
func (n *Node) LogPath() string {
	return filepath.Join(n.cfg.LogDir, fmt.Sprintf("node%d.log", n.Index+1))
}

// Running reports whether the node's process runs (maybe paused).
func (n *Node) Running() bool {
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Paused reports whether the node is stopped with SIGSTOP.
func (n *Node) Paused() bool { return n.paused && n.Running() }

// Env returns the debug environment of the current incarnation.
func (n *Node) Env() []string { return append([]string(nil), n.env...) }

// Cluster is the kvnode processes of a run. It is owned by one goroutine.
type Cluster struct {
	cfg   ClusterConfig
	Nodes []*Node
	// NewIDOnRejoin makes Rejoin give the node a new ID.
	NewIDOnRejoin bool
	nextID        uint64
}

// NewCluster prepares the nodes of cfg without starting them.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, nextID: uint64(cfg.Nodes) + 1}
	for i := range cfg.Nodes {
		octet := cfg.IPBase + i
		c.Nodes = append(c.Nodes, &Node{
			Index: i, ID: uint64(i + 1), IP: fmt.Sprintf("127.0.0.%d", octet),
			Gid: uint32(gidBase + octet), cfg: &c.cfg,
		})
	}
	return c, nil
}

// IPs returns the nodes' addresses, by index.
func (c *Cluster) IPs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.IP
	}
	return out
}

// Gids returns the nodes' group IDs, by index.
func (c *Cluster) Gids() []uint32 {
	out := make([]uint32, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Gid
	}
	return out
}

// Endpoints returns every node's client address.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.ClientAddr()
	}
	return out
}

// ByID returns the node whose current ID is id, or nil.
func (c *Cluster) ByID(id uint64) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// StartAll starts every node and waits until all are ready.
func (c *Cluster) StartAll(ctx context.Context) error {
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := c.WaitReady(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) args(n *Node) []string {
	args := []string{"start",
		"--id", strconv.FormatUint(n.ID, 10),
		"--data-dir", n.DataDir(),
		"--client-addr", n.ClientAddr(), "--peer-addr", n.PeerAddr(),
		"--gossip-addr", n.GossipAddr(), "--http-addr", n.HTTPAddr(),
	}
	if n.join != "" {
		return append(args, "--join", n.join)
	}
	var initial []string
	for i := range c.cfg.Nodes {
		// The initial members as they were: IDs 1..Nodes.
		initial = append(initial, fmt.Sprintf("%d=%s", i+1, c.Nodes[i].PeerAddr()))
	}
	return append(args, "--initial-cluster", strings.Join(initial, ","),
		"--shards", strconv.Itoa(c.cfg.Shards),
		"--replication-factor", strconv.Itoa(c.cfg.ReplicationFactor))
}

// Start starts a new incarnation of n (which must not run) with its
// current environment. The process gets its own process group and the
// node's group ID, and is killed if the harness dies.
func (c *Cluster) Start(n *Node) error {
	if n.Running() {
		return fmt.Errorf("jepsen: node %d already runs", n.Index+1)
	}
	if err := os.MkdirAll(c.cfg.DataDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if st, err := logf.Stat(); err == nil {
		n.logFrom = st.Size()
	}
	args := c.args(n)
	fmt.Fprintf(logf, "=== jepsen %s: starting node slot %d (id %d), env %v: %s %s\n",
		time.Now().Format(time.RFC3339Nano), n.Index+1, n.ID, append(append([]string(nil), c.cfg.Env...), n.env...),
		c.cfg.Kvnode, strings.Join(args, " "))
	cmd := exec.Command(c.cfg.Kvnode, args...)
	cmd.Env = append(append(os.Environ(), c.cfg.Env...), n.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: 0, Gid: n.Gid, Groups: []uint32{n.Gid}},
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("jepsen: start node %d: %w", n.Index+1, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.paused = cmd, done, false
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return nil
}

// Kill SIGKILLs n's process group and waits for it to exit.
func (c *Cluster) Kill(n *Node) {
	if !n.Running() {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
	n.paused = false
}

// Pause stops n with SIGSTOP.
func (c *Cluster) Pause(n *Node) error {
	if !n.Running() {
		return fmt.Errorf("jepsen: node %d does not run", n.Index+1)
	}
	if err := syscall.Kill(-n.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		return err
	}
	n.paused = true
	return nil
}

// Resume continues n with SIGCONT.
func (c *Cluster) Resume(n *Node) error {
	if !n.Running() {
		n.paused = false
		return nil
	}
	if err := syscall.Kill(-n.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		return err
	}
	n.paused = false
	return nil
}

// Restart kills n if it runs and starts it again with env as its debug
// environment.
func (c *Cluster) Restart(n *Node, env []string) error {
	c.Kill(n)
	n.env = env
	return c.Start(n)
}

// Rejoin kills n, wipes its data and starts it afresh, joining the cluster
// through the gossip address of via. It keeps its node ID unless
// NewIDOnRejoin is set: a new ID at the same gossip address is refused by
// gossip while the old member is not yet declared dead.
func (c *Cluster) Rejoin(n *Node, via *Node) error {
	c.Kill(n)
	if err := os.RemoveAll(n.DataDir()); err != nil {
		return err
	}
	if c.NewIDOnRejoin {
		n.ID = c.nextID
		c.nextID++
	}
	n.join = via.GossipAddr()
	n.env = nil
	return c.Start(n)
}

// WaitReady waits until n's /readyz says 200.
func (c *Cluster) WaitReady(ctx context.Context, n *Node) error {
	hc := &http.Client{Timeout: time.Second}
	url := "http://" + n.HTTPAddr() + "/readyz"
	last := "no answer"
	for {
		if !n.Running() {
			return fmt.Errorf("jepsen: node %d (id %d) exited before it was ready; see %s", n.Index+1, n.ID, n.LogPath())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("jepsen: node %d (id %d) not ready (last /readyz: %s): %w", n.Index+1, n.ID, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// HookBanner is how kvnode announces an active debug hook on stderr.
const HookBanner = "kvnode: DEBUG HOOK ACTIVE: "

// HookApplied reports whether n's current incarnation announced the debug
// hook of the environment variable name.
func (c *Cluster) HookApplied(n *Node, name string) bool {
	f, err := os.Open(n.LogPath())
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(n.logFrom, io.SeekStart); err != nil {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return strings.Contains(string(b), HookBanner+name+"=")
}

// Close kills every node (resuming paused ones is not needed: SIGKILL ends
// a stopped process) and waits for them to exit.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		c.Kill(n)
	}
}
