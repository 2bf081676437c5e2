package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// scanStream scans everything through addr with client.All and returns
// the bytes read.
func scanStream(ctx context.Context, addr string) (int64, error) {
	c, err := client.New(client.Config{Endpoints: []string{addr}})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var n int64
	for kv, err := range c.All(ctx, nil, nil, client.ScanOptions{}) {
		if err != nil {
			return n, err
		}
		n += int64(len(kv.Key) + len(kv.Value))
	}
	return n, nil
}

// stall opens cfg.stalled scans on node 1 whose clients then stop
// reading: their connections freeze (as a stopped process's), so the
// node's sends block. It samples node 1's RSS for cfg.stallFor or until
// the node has closed every frozen connection, and describes what it saw.
func stall(ctx context.Context, nodes []*node, cfg config) (string, error) {
	n1 := nodes[0]
	pid := n1.cmd.Process.Pid
	before, _ := procStatus(pid, "VmRSS")
	s := startSampling(nodes[:1])
	var conns []*frozenConn
	var ccs []*grpc.ClientConn
	defer func() {
		for _, cc := range ccs {
			cc.Close()
		}
	}()
	for range cfg.stalled {
		fc := &frozenConn{frozen: make(chan struct{}), closed: make(chan struct{})}
		cc, err := grpc.NewClient(n1.clientAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				fc.Conn = c
				return fc, nil
			}))
		if err != nil {
			return "", err
		}
		ccs = append(ccs, cc)
		// Connect (the handshake needs reads), then freeze and scan.
		if _, err := api.NewClusterClient(cc).Status(ctx, &api.StatusRequest{}); err != nil {
			return "", fmt.Errorf("status: %w", err)
		}
		close(fc.frozen)
		conns = append(conns, fc)
		go func() {
			kv := api.NewKVClient(cc)
			if cfg.mode == "unary" {
				_, _ = kv.Scan(ctx, &api.ScanRequest{})
				return
			}
			st, err := kv.ScanStream(ctx, &api.ScanRequest{})
			if err == nil {
				_, _ = st.Recv()
			}
		}()
	}
	t0 := time.Now()
	logf("%d stalled readers on node 1 (%s); node 1 RSS before %.0f MB", cfg.stalled, cfg.mode, mb(before))
	var (
		gaveUp   time.Duration // when the node's streams in flight went to 0 (stream mode)
		closedAt time.Duration // when the node had closed every frozen connection
		at5s     int64
	)
	deadline := time.After(cfg.stallFor)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline:
			break loop
		case <-tick.C:
		}
		el := time.Since(t0)
		if at5s == 0 && el >= 5*time.Second {
			at5s, _ = procStatus(pid, "VmRSS")
			logf("stalled readers after 5s: node 1 RSS %.0f MB", mb(at5s))
		}
		if gaveUp == 0 && cfg.mode == "stream" && el > time.Second {
			if v, err := metric(n1.httpAddr, "strata_client_scan_streams"); err == nil && v == 0 {
				gaveUp = el
				logf("node 1 ended the stalled streams after %s", el.Round(100*time.Millisecond))
			}
		}
		if closedAt == 0 {
			open := 0
			for _, fc := range conns {
				if serverSideOpen(n1.clientAddr, fc.Conn.LocalAddr().String()) {
					open++
				}
			}
			if open == 0 {
				closedAt = el
				logf("node 1 closed every stalled connection after %s", el.Round(100*time.Millisecond))
			}
		}
		if closedAt != 0 && (gaveUp != 0 || cfg.mode == "unary") && at5s != 0 {
			break
		}
	}
	peak := s.stop()[0]
	after, _ := procStatus(pid, "VmRSS")
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d stalled readers on node 1 (connections frozen after the scan was sent): RSS before %.0f MB, after 5 s %.0f MB, peak %.0f MB (+%.0f MB, %.1f MB per reader), at the end %.0f MB\n",
		cfg.stalled, mb(before), mb(at5s), mb(peak), mb(peak-before), mb(peak-before)/float64(cfg.stalled), mb(after))
	if cfg.mode == "stream" {
		if gaveUp != 0 {
			fmt.Fprintf(&b, "node 1 ended the stalled streams (send timeout %s) after %s\n", cfg.sendTimeout, gaveUp.Round(100*time.Millisecond))
		} else {
			fmt.Fprintf(&b, "node 1 still served the stalled streams after %s\n", cfg.stallFor)
		}
	}
	if closedAt != 0 {
		fmt.Fprintf(&b, "node 1 closed the stalled connections after %s\n", closedAt.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(&b, "node 1 still held the stalled connections after %s\n", cfg.stallFor)
	}
	return b.String(), nil
}

// metric returns the value of an unlabelled metric on a node's /metrics.
func metric(httpAddr, name string) (float64, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(sb.String())
	if m == nil {
		return 0, fmt.Errorf("no %s", name)
	}
	return strconv.ParseFloat(m[1], 64)
}

// serverSideOpen reports whether the node's end of the TCP connection
// server-client is still established, from /proc/net/tcp (the node closing
// its socket moves it to FIN_WAIT1 or removes it).
func serverSideOpen(server, client string) bool {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return true
	}
	local, remote := hexAddr(server), hexAddr(client)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[2] == remote {
			return f[3] == "01" // ESTABLISHED
		}
	}
	return false
}

// hexAddr is 127.0.0.1:port as /proc/net/tcp writes it.
func hexAddr(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return fmt.Sprintf("0100007F:%04X", p)
}
