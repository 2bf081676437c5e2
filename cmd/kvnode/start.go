package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/server"
	"gopkg.in/yaml.v3"
)

// startConfig is what `kvnode start` runs, from flags and the config file.
type startConfig struct {
	ID         uint64
	DataDir    string
	ClientAddr string
	PeerAddr   string
	GossipAddr string
	HTTPAddr   string
	// InitialCluster maps node IDs to peer addresses for a static
	// bootstrap; nil for a node alone or a joining node.
	InitialCluster map[uint64]string
	// Seeds are gossip addresses to join: the --join addresses, or the
	// other initial members' gossip addresses.
	Seeds []string
	// Join: the node joins a running cluster through Seeds.
	Join              bool
	Shards            int
	ReplicationFactor int
	// ReplicaGrace is how long a shard stays below ReplicationFactor
	// before the system shard's leader adds a replica.
	ReplicaGrace time.Duration
	// Pprof serves Go's profiler under /debug/pprof/ on HTTPAddr.
	Pprof bool
	// SendTimeout is how long a streamed answer (ScanStream) waits for
	// its client to take a message (server.Config.SendTimeout).
	SendTimeout time.Duration
	// MinFreeBytes is the free disk space the node needs to start
	// (strata.Options.MinFreeBytes).
	MinFreeBytes int64
}

// startFlags are the raw flag values of `kvnode start`.
type startFlags struct {
	config                    string
	id                        uint64
	dataDir                   string
	clientAddr, peerAddr      string
	gossipAddr, httpAddr      string
	initialCluster, join      string
	initialGossip             string
	shards, replicationFactor int
	replicaGrace              time.Duration
	pprof                     bool
	sendTimeout               time.Duration
	minFreeBytes              int64
}

// startKeys are the flags a config file may set: every flag of start but
// --config.
var startKeys = []string{
	"id", "data-dir", "client-addr", "peer-addr", "gossip-addr", "http-addr",
	"initial-cluster", "initial-gossip", "join", "shards", "replication-factor",
	"replica-grace", "pprof", "send-timeout", "min-free-bytes",
}

func newStartCmd() *cobra.Command {
	var f startFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run a Strata node in the foreground",
		Long: `start runs a Strata node until SIGINT or SIGTERM: the client gRPC API on
--client-addr, raft between nodes on --peer-addr, gossip on --gossip-addr and
/livez, /readyz and /metrics on --http-addr.

With no flags it runs a single-node cluster on ./strata-data. A cluster is
created with --initial-cluster (every initial member gets the same list); a
new node joins a running one with --join (the gossip address of any member),
then gets replicas with 'kvnode replica add'.

Settings may also come from a YAML file (--config) whose keys are the flag
names (e.g. "data-dir: /var/lib/strata"); flags given on the command line
win over the file.

On SIGINT or SIGTERM the node hands the shards it leads to other voters,
finishes the calls in flight, leaves the gossip cluster and closes its data;
a second signal exits at once with status 1.`,
		Example: `  # One node, on the defaults:
  kvnode start

  # Node 2 of a three-node cluster on one host:
  kvnode start --id 2 --data-dir data-2 \
    --client-addr 127.0.0.1:7380 --peer-addr 127.0.0.1:7381 \
    --gossip-addr 127.0.0.1:7382 --http-addr 127.0.0.1:7383 \
    --initial-cluster 1=127.0.0.1:7371,2=127.0.0.1:7381,3=127.0.0.1:7391

  # A fourth node joining it:
  kvnode start --id 4 --data-dir data-4 --join 127.0.0.1:7372 \
    --client-addr 127.0.0.1:7400 --peer-addr 127.0.0.1:7401 \
    --gossip-addr 127.0.0.1:7402 --http-addr 127.0.0.1:7403`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.resolve(cmd.Flags())
			if err != nil {
				return &usageError{err}
			}
			return runNode(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// register defines the flags of start on fs, bound to f.
func (f *startFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML file whose keys are these flags' names; flags given here win")
	fs.Uint64Var(&f.id, "id", 1, "this node's ID, 1..16777215, unique in the cluster")
	fs.StringVar(&f.dataDir, "data-dir", "./strata-data", "directory of the node's data")
	fs.StringVar(&f.clientAddr, "client-addr", "127.0.0.1:7370", "host:port of the client gRPC API")
	fs.StringVar(&f.peerAddr, "peer-addr", "127.0.0.1:7371", "host:port of raft traffic between nodes")
	fs.StringVar(&f.gossipAddr, "gossip-addr", "127.0.0.1:7372", "ip:port of gossip (TCP and UDP)")
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:7373", "host:port of /livez, /readyz and /metrics")
	fs.StringVar(&f.initialCluster, "initial-cluster", "", "initial members of a new cluster, id=peerAddr,... (default: this node alone)")
	fs.StringVar(&f.initialGossip, "initial-gossip", "", "gossip addresses of the initial members, ip:port,... (default: each member's peer port + 1)")
	fs.StringVar(&f.join, "join", "", "gossip addresses (host:port,...) of members of a running cluster to join")
	fs.IntVar(&f.shards, "shards", 4, "user shards of a new cluster")
	fs.IntVar(&f.replicationFactor, "replication-factor", 3, "replicas per shard; a shard below it gets replicas on live members")
	fs.DurationVar(&f.replicaGrace, "replica-grace", 30*time.Second, "how long a shard stays below --replication-factor before a replica is added")
	fs.DurationVar(&f.sendTimeout, "send-timeout", server.DefaultSendTimeout, "how long a streamed scan waits for its client to read a message before it ends the stream")
	fs.Int64Var(&f.minFreeBytes, "min-free-bytes", 64<<20, "free disk space in bytes that the data directory's filesystem must have for the node to start (below it start fails rather than run a node that can neither write nor compact); 0 disables the check")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiler under /debug/pprof/ on --http-addr (e.g. go tool pprof http://127.0.0.1:7373/debug/pprof/profile)")
}

// resolve reads the config file into the flags not set on the command
// line, then checks everything and returns the configuration.
func (f *startFlags) resolve(fs *pflag.FlagSet) (startConfig, error) {
	if f.config != "" {
		if err := loadConfigFile(f.config, fs); err != nil {
			return startConfig{}, err
		}
	}
	return f.validate(fs.Changed("peer-addr"))
}

// loadConfigFile sets the flags of fs not changed on the command line from
// the YAML file at path. A key that is not a flag is an error naming it.
func loadConfigFile(path string, fs *pflag.FlagSet) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer file.Close()
	var doc yaml.Node
	if err := yaml.NewDecoder(file).Decode(&doc); errors.Is(err, io.EOF) {
		return nil // an empty file sets nothing
	} else if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s: want a mapping of flag names to values", path)
	}
	allowed := map[string]bool{}
	for _, k := range startKeys {
		allowed[k] = true
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if !allowed[key.Value] {
			return fmt.Errorf("config %s line %d: unknown key %q (known: %s)", path, key.Line, key.Value, strings.Join(startKeys, ", "))
		}
		s, err := yamlFlagValue(val)
		if err != nil {
			return fmt.Errorf("config %s line %d: %s: %w", path, val.Line, key.Value, err)
		}
		if fs.Changed(key.Value) {
			continue // the command line wins
		}
		if err := fs.Set(key.Value, s); err != nil {
			return fmt.Errorf("config %s line %d: %s: %w", path, val.Line, key.Value, err)
		}
	}
	return nil
}

// yamlFlagValue renders a YAML value as a flag's text: a scalar as it is, a
// list as comma-separated items, a mapping (for initial-cluster) as
// key=value items.
func yamlFlagValue(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		var items []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", errors.New("list items must be plain values")
			}
			items = append(items, c.Value)
		}
		return strings.Join(items, ","), nil
	case yaml.MappingNode:
		var items []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i+1].Kind != yaml.ScalarNode {
				return "", errors.New("mapping values must be plain values")
			}
			items = append(items, n.Content[i].Value+"="+n.Content[i+1].Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", errors.New("unsupported value")
}

// validate checks the flag values and builds the configuration. peerSet
// tells whether --peer-addr was given (else an initial cluster may set it).
func (f *startFlags) validate(peerSet bool) (startConfig, error) {
	c := startConfig{
		ID: f.id, DataDir: f.dataDir, ClientAddr: f.clientAddr, PeerAddr: f.peerAddr,
		GossipAddr: f.gossipAddr, HTTPAddr: f.httpAddr,
		Shards: f.shards, ReplicationFactor: f.replicationFactor, ReplicaGrace: f.replicaGrace,
		Pprof: f.pprof, SendTimeout: f.sendTimeout, MinFreeBytes: f.minFreeBytes,
	}
	if c.ID == 0 || c.ID > strata.MaxNodeID {
		return c, fmt.Errorf("--id must be in 1..%d", strata.MaxNodeID)
	}
	if c.DataDir == "" {
		return c, errors.New("--data-dir must not be empty")
	}
	if c.Shards < 1 || c.Shards > 256 {
		return c, fmt.Errorf("--shards is %d, want 1..256", c.Shards)
	}
	if c.ReplicationFactor < 1 {
		return c, fmt.Errorf("--replication-factor is %d, want >= 1", c.ReplicationFactor)
	}
	if c.SendTimeout <= 0 {
		return c, fmt.Errorf("--send-timeout is %v, want > 0", c.SendTimeout)
	}
	switch {
	case c.MinFreeBytes < 0:
		return c, fmt.Errorf("--min-free-bytes is %d, want >= 0", c.MinFreeBytes)
	case c.MinFreeBytes == 0:
		c.MinFreeBytes = -1 // strata.Options: negative disables the check
	}
	if c.ReplicaGrace < 0 {
		return c, fmt.Errorf("--replica-grace is %v, want >= 0", c.ReplicaGrace)
	}
	if f.join != "" && f.initialCluster != "" {
		return c, errors.New("--join and --initial-cluster exclude each other: --initial-cluster creates a new cluster, --join joins a running one")
	}
	if f.join != "" && f.initialGossip != "" {
		return c, errors.New("--initial-gossip goes with --initial-cluster, not with --join")
	}
	if f.initialCluster != "" {
		ic, err := parseInitialCluster(f.initialCluster)
		if err != nil {
			return c, err
		}
		own, ok := ic[c.ID]
		if !ok {
			return c, fmt.Errorf("--initial-cluster does not list this node's --id %d", c.ID)
		}
		if peerSet && own != c.PeerAddr {
			return c, fmt.Errorf("--peer-addr %s differs from node %d's address %s in --initial-cluster", c.PeerAddr, c.ID, own)
		}
		c.PeerAddr = own
		c.InitialCluster = ic
		if c.Seeds, err = initialGossip(ic, c.ID, f.initialGossip); err != nil {
			return c, err
		}
	} else if f.initialGossip != "" {
		return c, errors.New("--initial-gossip needs --initial-cluster")
	}
	if f.join != "" {
		c.Join = true
		for _, a := range splitList(f.join) {
			if err := checkAddr(a, false); err != nil {
				return c, fmt.Errorf("--join %q: %v", a, err)
			}
			c.Seeds = append(c.Seeds, a)
		}
		if len(c.Seeds) == 0 {
			return c, errors.New("--join lists no address")
		}
	}
	addrs := []struct{ flag, addr string }{
		{"--client-addr", c.ClientAddr}, {"--peer-addr", c.PeerAddr},
		{"--gossip-addr", c.GossipAddr}, {"--http-addr", c.HTTPAddr},
	}
	for i, a := range addrs {
		if err := checkAddr(a.addr, a.flag == "--gossip-addr"); err != nil {
			return c, fmt.Errorf("%s %q: %v", a.flag, a.addr, err)
		}
		for _, b := range addrs[:i] {
			if a.addr == b.addr {
				return c, fmt.Errorf("%s and %s are both %s", b.flag, a.flag, a.addr)
			}
		}
	}
	return c, nil
}

// parseInitialCluster parses "id=host:port,...".
func parseInitialCluster(s string) (map[uint64]string, error) {
	ic := map[uint64]string{}
	byAddr := map[string]uint64{}
	for _, item := range splitList(s) {
		idText, addr, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("--initial-cluster entry %q: want id=host:port", item)
		}
		id, err := strconv.ParseUint(idText, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("--initial-cluster entry %q: node ID must be a positive integer", item)
		}
		if id > strata.MaxNodeID {
			return nil, fmt.Errorf("--initial-cluster entry %q: node ID must be at most %d", item, strata.MaxNodeID)
		}
		if err := checkAddr(addr, false); err != nil {
			return nil, fmt.Errorf("--initial-cluster entry %q: %v", item, err)
		}
		if _, dup := ic[id]; dup {
			return nil, fmt.Errorf("--initial-cluster lists node %d twice", id)
		}
		if other, dup := byAddr[addr]; dup {
			return nil, fmt.Errorf("--initial-cluster gives nodes %d and %d the same address %s", other, id, addr)
		}
		ic[id], byAddr[addr] = addr, id
	}
	if len(ic) == 0 {
		return nil, errors.New("--initial-cluster lists no node")
	}
	return ic, nil
}

// initialGossip returns the gossip addresses of the initial members other
// than self: those of --initial-gossip, or each peer address's port + 1.
func initialGossip(ic map[uint64]string, self uint64, flag string) ([]string, error) {
	if flag != "" {
		var out []string
		for _, a := range splitList(flag) {
			if err := checkAddr(a, true); err != nil {
				return nil, fmt.Errorf("--initial-gossip %q: %v", a, err)
			}
			out = append(out, a)
		}
		return out, nil
	}
	ids := make([]uint64, 0, len(ic))
	for id := range ic {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out []string
	for _, id := range ids {
		if id == self {
			continue
		}
		host, port, _ := net.SplitHostPort(ic[id]) // checked
		p, _ := strconv.Atoi(port)
		if p == 65535 {
			return nil, fmt.Errorf("--initial-cluster: node %d's peer port is 65535, so its gossip port cannot be derived; give --initial-gossip", id)
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(p+1)))
	}
	return out, nil
}

// checkAddr checks host:port with a host and a port in 1..65535; ipOnly
// requires the host to be an IP address (gossip binds to one).
func checkAddr(addr string, ipOnly bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("missing host")
	}
	if ipOnly && net.ParseIP(host) == nil {
		return errors.New("host must be an IP address")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return errors.New("port must be 1..65535")
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
