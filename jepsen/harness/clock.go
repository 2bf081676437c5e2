package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// envClockOffset is kvnode's debug hook that gives the timestamp oracle a
// wall clock with an offset set over HTTP (cmd/kvnode/debug_clock.go).
const envClockOffset = "STRATA_DEBUG_CLOCK_OFFSET"

// maxClockJump bounds the oracle clock jumps of the clock-skew nemesis, in
// whole seconds either way.
const maxClockJump = 10

// nodeEnvNemesis is a nemesis whose nodes must all run with some debug
// environment from the start (not only a victim it restarts).
type nodeEnvNemesis interface {
	NodeEnv() []string
}

// nemesisNodeEnv returns env with the environment the nemeses need on
// every node added, once each.
func nemesisNodeEnv(env []string, nems []Nemesis) []string {
	out := slices.Clone(env)
	for _, n := range nems {
		if ne, ok := n.(nodeEnvNemesis); ok {
			for _, kv := range ne.NodeEnv() {
				if !slices.Contains(out, kv) {
					out = append(out, kv)
				}
			}
		}
	}
	return out
}

// clockSkew is the clock-skew nemesis. It skews both clocks a node has:
// it restarts one node with its raft clock running at another rate
// (STRATA_DEBUG_CLOCK_RATE, as restartWith), and jumps the wall clock the
// timestamp oracle reads on every running node seconds forward or back
// (STRATA_DEBUG_CLOCK_OFFSET, set on every node from the start). Stop sets
// the offsets back to zero and restarts the node at the normal rate. The
// timestamps workload checks that timestamps never go back meanwhile.
type clockSkew struct {
	rate *restartWith
}

func newClockSkew() *clockSkew {
	return &clockSkew{rate: &restartWith{name: "clock-skew", env: "STRATA_DEBUG_CLOCK_RATE",
		values: []string{"0.25", "0.5", "2", "4"}}}
}

func (c *clockSkew) Name() string { return "clock-skew" }

// NodeEnv implements nodeEnvNemesis: every node serves its oracle clock's
// offset.
func (c *clockSkew) NodeEnv() []string { return []string{envClockOffset + "=1"} }

func (c *clockSkew) Start(ctx context.Context, e *NemesisEnv) (string, error) {
	desc, err := c.rate.Start(ctx, e)
	if err != nil {
		return "", err
	}
	var jumps []string
	for _, n := range e.Cluster.Nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		s := e.Rng.IntN(maxClockJump) + 1
		if e.Rng.IntN(2) == 0 {
			s = -s
		}
		d := time.Duration(s) * time.Second
		if err := setClockOffset(ctx, n, d); err != nil {
			e.Warn("clock-skew: n%d: %v", n.Index+1, err)
			continue
		}
		jumps = append(jumps, fmt.Sprintf("n%d %+ds", n.Index+1, s))
	}
	return fmt.Sprintf("%s; oracle clocks jumped: %s", desc, strings.Join(jumps, ", ")), nil
}

func (c *clockSkew) Stop(ctx context.Context, e *NemesisEnv) (string, error) {
	var reset []string
	for _, n := range e.Cluster.Nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		if err := setClockOffset(ctx, n, 0); err != nil {
			e.Warn("clock-skew: n%d: %v", n.Index+1, err)
			continue
		}
		reset = append(reset, fmt.Sprintf("n%d", n.Index+1))
	}
	desc, err := c.rate.Stop(ctx, e)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("oracle clocks reset on %s; %s", strings.Join(reset, ","), desc), nil
}

// setClockOffset sets the offset of n's oracle clock through its debug
// endpoint.
func setClockOffset(ctx context.Context, n *Node, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/debug/clock-offset?offset=%s", n.HTTPAddr(), d)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("set oracle clock offset %v: %w", d, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("set oracle clock offset %v: %s: %s (is kvnode started with %s=1?)",
			d, resp.Status, strings.TrimSpace(string(body)), envClockOffset)
	}
	return nil
}
