package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrEnvironment marks a machine the harness cannot run on: not root, no
// iptables, iptables not working.
var ErrEnvironment = errors.New("jepsen: environment")

// Preflight checks that the harness can cut links: it runs as root and
// iptables works.
func Preflight(ctx context.Context, euid int) error {
	if euid != 0 {
		return fmt.Errorf("%w: strata-jepsen must run as root: it cuts links with iptables and runs each node under its own group ID (run it as root, e.g. sudo make jepsen)", ErrEnvironment)
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("%w: iptables not found in PATH: install it (apt-get install -y iptables; make jepsen does so when run as root)", ErrEnvironment)
	}
	if _, err := iptables(ctx, "-S", "OUTPUT"); err != nil {
		return fmt.Errorf("%w: iptables does not work here: %v", ErrEnvironment, err)
	}
	if _, err := iptables(ctx, "-t", "nat", "-S", "POSTROUTING"); err != nil {
		return fmt.Errorf("%w: iptables' nat table does not work here: %v", ErrEnvironment, err)
	}
	return nil
}

// iptables runs iptables with args, waiting for the xtables lock.
func iptables(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "iptables", append([]string{"-w", "5"}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// Link is a directed link between two nodes, by index.
type Link struct{ From, To int }

// Net cuts links between nodes with iptables. Its methods are called by one
// goroutine at a time.
type Net struct {
	chain string
	ips   []string // node index -> IP
	gids  []uint32 // node index -> group ID its process runs under
	cut   []Link   // links cut now
}

// NewNet installs the chains for nodes with ips whose processes run under
// gids: an empty filter chain jumped to from INPUT and OUTPUT, and a nat
// chain jumped to from POSTROUTING that gives each node's outgoing
// connections its own source address. Leftovers of a run killed before it
// could clean up (same chain name) are removed first.
func NewNet(ctx context.Context, chain string, ips []string, gids []uint32) (*Net, error) {
	if len(chain) > 28 {
		return nil, fmt.Errorf("jepsen: iptables chain name %q is longer than 28 characters", chain)
	}
	n := &Net{chain: chain, ips: ips, gids: gids}
	if ChainExists(ctx, "filter", chain) || ChainExists(ctx, "nat", chain) {
		if err := n.Close(); err != nil {
			return nil, fmt.Errorf("jepsen: removing the chains a previous run left: %w", err)
		}
	}
	steps := [][]string{
		{"-N", chain},
		{"-I", "INPUT", "1", "-j", chain},
		{"-I", "OUTPUT", "1", "-j", chain},
		{"-t", "nat", "-N", chain},
		{"-t", "nat", "-I", "POSTROUTING", "1", "-j", chain},
	}
	for i, ip := range ips {
		steps = append(steps, []string{"-t", "nat", "-A", chain, "-o", "lo", "-m", "owner",
			"--gid-owner", strconv.FormatUint(uint64(gids[i]), 10), "-j", "SNAT", "--to-source", ip})
	}
	for _, s := range steps {
		if _, err := iptables(ctx, s...); err != nil {
			return nil, errors.Join(err, n.Close())
		}
	}
	return n, nil
}

// ChainExists reports whether chain exists in table.
func ChainExists(ctx context.Context, table, chain string) bool {
	_, err := iptables(ctx, "-t", table, "-S", chain)
	return err == nil
}

// Drop cuts links (adding to those already cut).
func (n *Net) Drop(ctx context.Context, links []Link) error {
	for _, l := range links {
		if l.From == l.To {
			continue
		}
		// Packets From sends to To's address, and answers From sends on
		// connections To opened (their destination is rewritten back to
		// 127.0.0.1 before the filter sees them; conntrack remembers To).
		for _, rule := range [][]string{
			{"-s", n.ips[l.From], "-d", n.ips[l.To]},
			{"-s", n.ips[l.From], "-m", "conntrack", "--ctrepldst", n.ips[l.To]},
		} {
			if _, err := iptables(ctx, append(append([]string{"-A", n.chain}, rule...), "-j", "DROP")...); err != nil {
				return err
			}
		}
		n.cut = append(n.cut, l)
	}
	return nil
}

// Cut returns the links cut now.
func (n *Net) Cut() []Link { return append([]Link(nil), n.cut...) }

// Heal restores every link.
func (n *Net) Heal(ctx context.Context) error {
	if _, err := iptables(ctx, "-F", n.chain); err != nil {
		return err
	}
	n.cut = nil
	return nil
}

// Close removes the chains and the jumps to them. It is idempotent, does
// everything it can, and returns the first errors of the steps that found
// something to remove but failed.
func (n *Net) Close() error {
	ctx := context.Background()
	var errs []error
	// Jumps: delete until none is left (a crashed run may have left more).
	for _, j := range [][]string{{"INPUT"}, {"OUTPUT"}, {"-t", "nat", "POSTROUTING"}} {
		table, hook := "filter", j[0]
		if len(j) == 3 {
			table, hook = "nat", j[2]
		}
		for range 10 {
			if _, err := iptables(ctx, "-t", table, "-C", hook, "-j", n.chain); err != nil {
				break // no such jump
			}
			if _, err := iptables(ctx, "-t", table, "-D", hook, "-j", n.chain); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	for _, table := range []string{"filter", "nat"} {
		if !ChainExists(ctx, table, n.chain) {
			continue
		}
		if _, err := iptables(ctx, "-t", table, "-F", n.chain); err != nil {
			errs = append(errs, err)
		}
		if _, err := iptables(ctx, "-t", table, "-X", n.chain); err != nil {
			errs = append(errs, err)
		}
	}
	n.cut = nil
	return errors.Join(errs...)
}

// Leftovers describes what of chain remains in iptables: "" when nothing.
func Leftovers(ctx context.Context, chain string) string {
	var left []string
	for _, table := range []string{"filter", "nat"} {
		if ChainExists(ctx, table, chain) {
			left = append(left, fmt.Sprintf("chain %s in table %s", chain, table))
		}
		out, _ := iptables(ctx, "-t", table, "-S")
		for _, line := range strings.Split(out, "\n") {
			if strings.HasSuffix(line, "-j "+chain) || strings.Contains(line, "-j "+chain+" ") {
				left = append(left, fmt.Sprintf("rule %q in table %s", line, table))
			}
		}
	}
	return strings.Join(left, "; ")
}
