package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// resolveStart parses args as `kvnode start` flags and resolves them.
func resolveStart(t *testing.T, args ...string) (startConfig, error) {
	t.Helper()
	var f startFlags
	fs := pflag.NewFlagSet("start", pflag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return startConfig{}, err
	}
	return f.resolve(fs)
}

func TestStartDefaults(t *testing.T) {
	c, err := resolveStart(t)
	if err != nil {
		t.Fatal(err)
	}
	want := startConfig{
		ID: 1, DataDir: "./strata-data", ClientAddr: "127.0.0.1:7370", PeerAddr: "127.0.0.1:7371",
		GossipAddr: "127.0.0.1:7372", HTTPAddr: "127.0.0.1:7373", Shards: 4, ReplicationFactor: 3, ReplicaGrace: 30 * time.Second,
		SendTimeout: 30 * time.Second, MinFreeBytes: 64 << 20,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
}

func TestStartInitialCluster(t *testing.T) {
	c, err := resolveStart(t, "--id", "2", "--initial-cluster", "1=127.0.0.1:7371, 2=127.0.0.1:7381,3=127.0.0.1:7391",
		"--client-addr", "127.0.0.1:7380", "--gossip-addr", "127.0.0.1:7382", "--http-addr", "127.0.0.1:7383")
	if err != nil {
		t.Fatal(err)
	}
	if c.PeerAddr != "127.0.0.1:7381" || len(c.InitialCluster) != 3 {
		t.Fatalf("peer %s, initial cluster %v", c.PeerAddr, c.InitialCluster)
	}
	if want := []string{"127.0.0.1:7372", "127.0.0.1:7392"}; !reflect.DeepEqual(c.Seeds, want) {
		t.Fatalf("derived gossip seeds %v, want %v", c.Seeds, want)
	}
}

func TestStartErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--id", "0"}, "--id must be in 1..16777215"},
		{[]string{"--id", "16777216"}, "--id must be in 1..16777215"},
		{[]string{"--initial-cluster", "1=127.0.0.1:7371,16777216=127.0.0.1:7372"}, "node ID must be at most 16777215"},
		{[]string{"--client-addr", "nohost"}, `--client-addr "nohost": want host:port`},
		{[]string{"--http-addr", "127.0.0.1:99999"}, "port must be 1..65535"},
		{[]string{"--gossip-addr", "localhost:7372"}, "host must be an IP address"},
		{[]string{"--http-addr", "127.0.0.1:7370"}, "--client-addr and --http-addr are both 127.0.0.1:7370"},
		{[]string{"--initial-cluster", "1=127.0.0.1:1,1=127.0.0.1:2"}, "lists node 1 twice"},
		{[]string{"--initial-cluster", "1=127.0.0.1:1,2=127.0.0.1:1"}, "the same address"},
		{[]string{"--initial-cluster", "2=127.0.0.1:7381"}, "does not list this node's --id 1"},
		{[]string{"--initial-cluster", "x=127.0.0.1:7381"}, "node ID must be a positive integer"},
		{[]string{"--initial-cluster", "1=127.0.0.1:7371", "--peer-addr", "127.0.0.1:9"}, "differs from node 1's address"},
		{[]string{"--join", "127.0.0.1:7372", "--initial-cluster", "1=127.0.0.1:7371"}, "--join and --initial-cluster exclude each other"},
		{[]string{"--initial-gossip", "127.0.0.1:7372"}, "--initial-gossip needs --initial-cluster"},
		{[]string{"--shards", "0"}, "--shards is 0"},
		{[]string{"--replication-factor", "0"}, "--replication-factor is 0"},
	} {
		_, err := resolveStart(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error is not one line: %q", c.args, err)
		}
	}
}

func TestStartConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `
data-dir: /var/lib/strata
client-addr: 127.0.0.1:8000
initial-cluster:
  1: 127.0.0.1:7371
  2: 127.0.0.1:7381
`)
	c, err := resolveStart(t, "--config", good, "--client-addr", "127.0.0.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/strata" {
		t.Errorf("data-dir from file = %q", c.DataDir)
	}
	if c.ClientAddr != "127.0.0.1:9000" {
		t.Errorf("client-addr = %q, want the command line's 127.0.0.1:9000", c.ClientAddr)
	}
	if want := map[uint64]string{1: "127.0.0.1:7371", 2: "127.0.0.1:7381"}; !reflect.DeepEqual(c.InitialCluster, want) {
		t.Errorf("initial-cluster from a mapping = %v, want %v", c.InitialCluster, want)
	}

	bad := write("bad.yaml", "data-dir: x\ndatadir: y\n")
	_, err = resolveStart(t, "--config", bad)
	if err == nil || !strings.Contains(err.Error(), `unknown key "datadir"`) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("unknown key: error %v, want it named with its line", err)
	}
	for _, key := range []string{"config", "endpoints"} {
		_, err := resolveStart(t, "--config", write(key+".yaml", key+": x\n"))
		if err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("key %q in a config file: error %v, want unknown key", key, err)
		}
	}
	if _, err := resolveStart(t, "--config", write("empty.yaml", "")); err != nil {
		t.Errorf("empty file: %v", err)
	}
}
