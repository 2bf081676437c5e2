// Command scanprobe measures what large scans cost a node (`make scan-probe`).
//
// It starts a fresh 3-node cluster of kvnode processes on loopback (ports
// --base-port+10..+33, data in a temporary folder it removes), loads --keys
// values of --value-size bytes, and then, from each node in turn, runs
// --scans concurrent unlimited scans of the whole key space through that
// node alone, sampling every node's resident memory (VmRSS and VmHWM of
// /proc/<pid>/status) while they run. Last, --stalled clients open a scan
// on node 1 and stop reading: it reports node 1's memory with them
// stalled, and whether (and when) the node gives up on them.
//
// --mode picks the API: "stream" is the streaming ScanStream RPC through
// client.Client.All; "unary" is the paged unary Scan RPC, each page asked
// for in turn (what client.Client.Scan does, without keeping the pages).
//
// It prints one line per phase and a summary; everything it starts it stops.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type config struct {
	kvnode      string
	dir         string
	basePort    int
	keys        int
	valueSize   int
	scans       int
	stalled     int
	stallFor    time.Duration
	sendTimeout time.Duration
	mode        string
	keep        bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.kvnode, "kvnode", "bin/kvnode", "the kvnode binary")
	flag.StringVar(&cfg.dir, "dir", "", "where the cluster's data goes (default: a new folder under $TMPDIR, removed after)")
	flag.IntVar(&cfg.basePort, "base-port", 27200, "node i uses base-port+10*i .. +3 (keep below 32768)")
	flag.IntVar(&cfg.keys, "keys", 200_000, "keys loaded")
	flag.IntVar(&cfg.valueSize, "value-size", 1024, "bytes per value")
	flag.IntVar(&cfg.scans, "scans", 8, "concurrent scans per node")
	flag.IntVar(&cfg.stalled, "stalled", 6, "clients that open a scan and stop reading (0: skip)")
	flag.DurationVar(&cfg.stallFor, "stall-for", 60*time.Second, "how long the stalled clients are watched at most")
	flag.DurationVar(&cfg.sendTimeout, "send-timeout", 10*time.Second, "the nodes' --send-timeout (0: leave the flag out)")
	flag.StringVar(&cfg.mode, "mode", "stream", `scan API: "stream" (ScanStream via client.All) or "unary" (paged Scan)`)
	flag.BoolVar(&cfg.keep, "keep", false, "keep the data and logs folder")
	flag.Parse()
	if cfg.mode != "stream" && cfg.mode != "unary" {
		log.Fatalf("scanprobe: --mode %q: want stream or unary", cfg.mode)
	}
	if cfg.basePort+33 >= 32768 {
		log.Fatalf("scanprobe: --base-port %d: ports must stay below 32768", cfg.basePort)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Fatalf("scanprobe: %v", err)
	}
}

// node is one kvnode process.
type node struct {
	id         int
	clientAddr string
	httpAddr   string
	cmd        *exec.Cmd
	done       chan struct{} // closed when the process has exited
}

func run(ctx context.Context, cfg config) error {
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "strata-scanprobe.")
		if err != nil {
			return err
		}
		dir = d
		if !cfg.keep {
			defer os.RemoveAll(dir)
		}
	}
	nodes, err := startCluster(ctx, cfg, dir)
	defer stopCluster(nodes)
	if err != nil {
		return err
	}
	var eps []string
	for _, n := range nodes {
		eps = append(eps, n.clientAddr)
	}
	logf("cluster up, data in %s; loading %d × %d B", dir, cfg.keys, cfg.valueSize)
	start := time.Now()
	if err := load(ctx, eps, cfg); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	total := int64(cfg.keys) * int64(cfg.valueSize+len(key(0)))
	logf("loaded %.0f MB in %s; RSS now %s", mb(total), time.Since(start).Round(time.Millisecond), rssLine(nodes))

	type result struct {
		node     int
		peak     []int64 // per node, VmHWM over the phase
		mbps     float64
		duration time.Duration
		err      error
	}
	var results []result
	for _, target := range nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := startSampling(nodes)
		t0 := time.Now()
		bytesRead, err := scanConcurrently(ctx, target.clientAddr, cfg)
		d := time.Since(t0)
		peaks := s.stop()
		r := result{node: target.id, peak: peaks, duration: d, err: err,
			mbps: mb(bytesRead) / d.Seconds()}
		results = append(results, r)
		status := "ok"
		if err != nil {
			status = "FAILED: " + err.Error()
		} else if want := int64(cfg.scans) * total; bytesRead != want {
			status = fmt.Sprintf("SHORT: read %d of %d bytes", bytesRead, want)
		}
		logf("%d scans via node %d (%s): %s, %.1f MB/s in all; peak RSS %s; %s",
			cfg.scans, target.id, cfg.mode, d.Round(time.Millisecond), r.mbps, peakLine(peaks), status)
	}
	var stalled string
	if cfg.stalled > 0 {
		stalled, err = stall(ctx, nodes, cfg)
		if err != nil {
			return fmt.Errorf("stalled readers: %w", err)
		}
	}

	fmt.Printf("\nscan probe, mode %s: %d keys × %d B (%.0f MB), %d concurrent unlimited scans per node\n",
		cfg.mode, cfg.keys, cfg.valueSize, mb(total), cfg.scans)
	fmt.Printf("| scans via | time | MB/s (all scans) | peak RSS node 1 | node 2 | node 3 | result |\n|---|---|---|---|---|---|---|\n")
	failed := false
	for _, r := range results {
		res := "ok"
		if r.err != nil {
			res, failed = "failed", true
		}
		fmt.Printf("| node %d | %s | %.1f | %.0f MB | %.0f MB | %.0f MB | %s |\n", r.node, r.duration.Round(100*time.Millisecond),
			r.mbps, mb(r.peak[0]), mb(r.peak[1]), mb(r.peak[2]), res)
	}
	if stalled != "" {
		fmt.Println(stalled)
	}
	if failed {
		return errors.New("some scans failed")
	}
	return nil
}

func key(i int) []byte { return fmt.Appendf(nil, "probe/%08d", i) }

// load writes cfg.keys values from 8 writers, in batches of 256.
func load(ctx context.Context, eps []string, cfg config) error {
	c, err := client.New(client.Config{Endpoints: eps, RequestTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer c.Close()
	const batch, writers = 256, 8
	var next atomic.Int64
	errc := make(chan error, writers)
	for range writers {
		go func() {
			value := bytes.Repeat([]byte{'v'}, cfg.valueSize)
			for {
				first := int(next.Add(batch)) - batch
				if first >= cfg.keys {
					errc <- nil
					return
				}
				var ms []client.Mutation
				for i := first; i < min(first+batch, cfg.keys); i++ {
					ms = append(ms, client.Mutation{Key: key(i), Value: value})
				}
				if err := c.Batch(ctx, ms); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var errs []error
	for range writers {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// scanConcurrently runs cfg.scans unlimited scans of everything through
// addr alone and returns the bytes of keys and values they read in all.
func scanConcurrently(ctx context.Context, addr string, cfg config) (int64, error) {
	var (
		total atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
	)
	for range cfg.scans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := scanOnce(ctx, addr, cfg.mode)
			total.Add(n)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return total.Load(), errors.Join(errs...)
}

// scanOnce scans everything through addr and returns the bytes read.
func scanOnce(ctx context.Context, addr, mode string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if mode == "unary" {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
		if err != nil {
			return 0, err
		}
		defer cc.Close()
		kv := api.NewKVClient(cc)
		req := &api.ScanRequest{}
		var n int64
		for {
			resp, err := kv.Scan(ctx, req)
			if err != nil {
				return n, err
			}
			for _, p := range resp.GetKvs() {
				n += int64(len(p.GetKey()) + len(p.GetValue()))
			}
			if len(resp.GetResumeKey()) == 0 {
				return n, nil
			}
			req.Start, req.Timestamp = resp.GetResumeKey(), resp.GetTimestamp()
		}
	}
	return scanStream(ctx, addr)
}

// sampler samples the nodes' VmRSS every 50ms until stopped.
type sampler struct {
	nodes []*node
	peak  []int64
	stopc chan struct{}
	done  chan struct{}
}

// startSampling resets the nodes' VmHWM (clear_refs 5) and samples them.
func startSampling(nodes []*node) *sampler {
	s := &sampler{nodes: nodes, peak: make([]int64, len(nodes)), stopc: make(chan struct{}), done: make(chan struct{})}
	for _, n := range nodes {
		// Resets the peak resident set size to the current one.
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", n.cmd.Process.Pid), []byte("5"), 0)
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			for i, n := range s.nodes {
				if rss, _ := procStatus(n.cmd.Process.Pid, "VmRSS"); rss > s.peak[i] {
					s.peak[i] = rss
				}
			}
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns each node's peak: the larger of the
// sampled VmRSS and VmHWM (which sees peaks between samples).
func (s *sampler) stop() []int64 {
	close(s.stopc)
	<-s.done
	for i, n := range s.nodes {
		if hwm, err := procStatus(n.cmd.Process.Pid, "VmHWM"); err == nil && hwm > s.peak[i] {
			s.peak[i] = hwm
		}
	}
	return s.peak
}

// procStatus returns the field (e.g. VmRSS) of /proc/pid/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return kb << 10, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func rssLine(nodes []*node) string {
	var parts []string
	for _, n := range nodes {
		rss, _ := procStatus(n.cmd.Process.Pid, "VmRSS")
		parts = append(parts, fmt.Sprintf("node %d %.0f MB", n.id, mb(rss)))
	}
	return strings.Join(parts, ", ")
}

func peakLine(peaks []int64) string {
	var parts []string
	for i, p := range peaks {
		parts = append(parts, fmt.Sprintf("node %d %.0f MB", i+1, mb(p)))
	}
	return strings.Join(parts, ", ")
}

func mb(b int64) float64 { return float64(b) / 1e6 }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s scanprobe: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// startCluster starts 3 nodes and waits until all are ready. The nodes it
// started are returned even on error, for stopCluster.
func startCluster(ctx context.Context, cfg config, dir string) ([]*node, error) {
	var initial []string
	for i := 1; i <= 3; i++ {
		initial = append(initial, fmt.Sprintf("%d=127.0.0.1:%d", i, cfg.basePort+10*i+1))
	}
	var nodes []*node
	for i := 1; i <= 3; i++ {
		b := cfg.basePort + 10*i
		n := &node{id: i, clientAddr: fmt.Sprintf("127.0.0.1:%d", b), httpAddr: fmt.Sprintf("127.0.0.1:%d", b+3), done: make(chan struct{})}
		args := []string{"start", "--id", strconv.Itoa(i), "--data-dir", filepath.Join(dir, fmt.Sprintf("node%d", i)),
			"--client-addr", n.clientAddr, "--peer-addr", fmt.Sprintf("127.0.0.1:%d", b+1),
			"--gossip-addr", fmt.Sprintf("127.0.0.1:%d", b+2), "--http-addr", n.httpAddr,
			"--initial-cluster", strings.Join(initial, ",")}
		if cfg.sendTimeout > 0 {
			args = append(args, "--send-timeout", cfg.sendTimeout.String())
		}
		logFile, err := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
		if err != nil {
			return nodes, err
		}
		n.cmd = exec.Command(cfg.kvnode, args...)
		n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
		if err := n.cmd.Start(); err != nil {
			logFile.Close()
			return nodes, fmt.Errorf("starting node %d: %w", i, err)
		}
		go func() {
			_ = n.cmd.Wait()
			logFile.Close()
			close(n.done)
		}()
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if err := waitReady(ctx, n); err != nil {
			return nodes, fmt.Errorf("node %d (log in %s): %w", n.id, dir, err)
		}
	}
	return nodes, nil
}

func waitReady(ctx context.Context, n *node) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + n.httpAddr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-n.done:
			return errors.New("exited")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopCluster sends SIGTERM to every node, SIGKILL after 15s.
func stopCluster(nodes []*node) {
	for _, n := range nodes {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, n := range nodes {
		select {
		case <-n.done:
		case <-deadline:
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	}
}

// frozenConn is a connection whose reads block once frozen, as a client
// process that is stopped (SIGSTOP) or stuck: the node's writes to it
// fill the socket buffers and then block, and it answers no pings.
type frozenConn struct {
	net.Conn
	frozen chan struct{} // closed to freeze
	closed chan struct{} // closed by Close
	once   sync.Once
}

func (c *frozenConn) Read(p []byte) (int, error) {
	select {
	case <-c.frozen:
		<-c.closed
		return 0, net.ErrClosed
	default:
	}
	return c.Conn.Read(p)
}

func (c *frozenConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

var _ net.Conn = (*frozenConn)(nil)
