package harness

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-kv/strata/client"
)

// NemesisEnv is what a nemesis acts on. It is used by one goroutine.
type NemesisEnv struct {
	Cluster *Cluster
	Net     *Net
	// Admin is a client of every node, for Status.
	Admin *client.Client
	Rng   *rand.Rand
	// Warn records a problem of the run that is not a violation (e.g. a
	// debug hook that was not applied).
	Warn func(format string, args ...any)
	// claimed are the nodes a process nemesis acts on in this round, so
	// that two of them do not fight over one node.
	claimed map[int]bool
}

// claim returns a random running node no other nemesis claimed this
// round, or nil.
func (e *NemesisEnv) claim() *Node {
	var free []*Node
	for _, n := range e.Cluster.Nodes {
		if !e.claimed[n.Index] && n.Running() && !n.Paused() {
			free = append(free, n)
		}
	}
	if len(free) == 0 {
		return nil
	}
	n := free[e.Rng.IntN(len(free))]
	e.claimed[n.Index] = true
	return n
}

// claimAll claims every running node no other nemesis claimed this round.
func (e *NemesisEnv) claimAll() []*Node {
	var out []*Node
	for _, n := range e.Cluster.Nodes {
		if !e.claimed[n.Index] && n.Running() && !n.Paused() {
			e.claimed[n.Index] = true
			out = append(out, n)
		}
	}
	return out
}

// Nemesis injects one kind of fault.
type Nemesis interface {
	// Name is the nemesis's name on the command line.
	Name() string
	// Start injects the fault and describes what it did.
	Start(ctx context.Context, e *NemesisEnv) (string, error)
	// Stop heals the fault and describes what it did.
	Stop(ctx context.Context, e *NemesisEnv) (string, error)
}

var nemeses = map[string]func() Nemesis{
	"partition-halves": func() Nemesis { return partition{"partition-halves", halvesShape} },
	"partition-leader": func() Nemesis { return partition{"partition-leader", leaderShape} },
	"partition-bridge": func() Nemesis { return partition{"partition-bridge", bridgeShape} },
	"partition-ring":   func() Nemesis { return partition{"partition-ring", ringShape} },
	"partition-oneway": func() Nemesis { return partition{"partition-oneway", oneWayShape} },
	"kill":             func() Nemesis { return &kill{} },
	"pause":            func() Nemesis { return &pause{} },
	"pause-leader":     func() Nemesis { return &pauseLeader{} },
	"clock-skew":       func() Nemesis { return newClockSkew() }, // clock.go
	"slow-disk": func() Nemesis {
		return &restartWith{name: "slow-disk", env: "STRATA_DEBUG_FSYNC_DELAY", values: []string{"20ms", "50ms", "100ms"}}
	},
	"membership": func() Nemesis { return &membership{} },
	"power-loss": func() Nemesis { return &powerLoss{} },
}

// PowerLossEnv is the debug hook that makes a kvnode keep its unsynced
// writes in memory only, so that a kill -9 loses them as a power failure
// would (cmd/kvnode/debughooks.go, internal/powerfs).
const PowerLossEnv = "STRATA_DEBUG_POWER_LOSS"

// NodeEnv returns the environment the nemeses named need on every node.
func NodeEnv(names []string) []string {
	var env []string
	for _, name := range names {
		if f, ok := nemeses[name]; ok {
			if ne, ok := f().(nodeEnvNemesis); ok {
				env = append(env, ne.NodeEnv()...)
			}
		}
	}
	return env
}

// NemesisNames lists every nemesis, in a fixed order.
func NemesisNames() []string {
	return []string{"partition-halves", "partition-leader", "partition-bridge", "partition-ring",
		"partition-oneway", "kill", "pause", "pause-leader", "clock-skew", "slow-disk", "membership", "power-loss"}
}

// NewNemeses returns the nemeses named, or an error naming an unknown one.
func NewNemeses(names []string) ([]Nemesis, error) {
	var out []Nemesis
	for _, name := range names {
		f, ok := nemeses[name]
		if !ok {
			return nil, fmt.Errorf("jepsen: unknown nemesis %q (known: %s, or none)", name, strings.Join(NemesisNames(), ", "))
		}
		out = append(out, f())
	}
	return out, nil
}

// ---- partitions

type shape func(ctx context.Context, e *NemesisEnv) (string, []Link, error)

type partition struct {
	name  string
	shape shape
}

func (p partition) Name() string { return p.name }

func (p partition) Start(ctx context.Context, e *NemesisEnv) (string, error) {
	desc, links, err := p.shape(ctx, e)
	if err != nil {
		return "", err
	}
	if err := e.Net.Drop(ctx, links); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s; %d directed links cut", desc, len(links)), nil
}

func (p partition) Stop(ctx context.Context, e *NemesisEnv) (string, error) {
	return "healed every link", e.Net.Heal(ctx)
}

func nodeNames(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, "n"+strconv.Itoa(i+1))
	}
	return "{" + strings.Join(s, ",") + "}"
}

func halvesShape(_ context.Context, e *NemesisEnv) (string, []Link, error) {
	a, b, links := halvesLinks(len(e.Cluster.Nodes), e.Rng)
	return fmt.Sprintf("halves %s | %s", nodeNames(a), nodeNames(b)), links, nil
}

func bridgeShape(_ context.Context, e *NemesisEnv) (string, []Link, error) {
	br, a, b, links := bridgeLinks(len(e.Cluster.Nodes), e.Rng)
	return fmt.Sprintf("bridge n%d between %s and %s", br+1, nodeNames(a), nodeNames(b)), links, nil
}

func ringShape(_ context.Context, e *NemesisEnv) (string, []Link, error) {
	order := e.Rng.Perm(len(e.Cluster.Nodes))
	return fmt.Sprintf("majorities ring %s", nodeNames(order)), ringLinks(order), nil
}

func oneWayShape(_ context.Context, e *NemesisEnv) (string, []Link, error) {
	n := len(e.Cluster.Nodes)
	k := e.Rng.IntN(n)
	mute := e.Rng.IntN(2) == 0
	what := "deaf (hears no one, is heard)"
	if mute {
		what = "mute (hears everyone, is heard by no one)"
	}
	return fmt.Sprintf("n%d %s", k+1, what), oneWayLinks(n, k, mute), nil
}

// leaderShape isolates the leader of a random user shard, found with the
// client's Status.
func leaderShape(ctx context.Context, e *NemesisEnv) (string, []Link, error) {
	n := len(e.Cluster.Nodes)
	node, desc := shardLeader(ctx, e)
	if node == nil {
		k := e.Rng.IntN(n)
		return fmt.Sprintf("%s: isolated n%d", desc, k+1), isolateLinks(n, k), nil
	}
	return "isolated " + desc, isolateLinks(n, node.Index), nil
}

// shardLeader returns the leader of a random user shard, found with the
// client's Status, and describes it; or nil and why not.
func shardLeader(ctx context.Context, e *NemesisEnv) (*Node, string) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st, err := e.Admin.Status(sctx)
	cancel()
	var leaders []struct{ shard, id uint64 }
	if err == nil {
		for _, sh := range st.GetShards() {
			if !sh.GetSystem() && sh.GetLeaderId() != 0 && e.Cluster.ByID(sh.GetLeaderId()) != nil {
				leaders = append(leaders, struct{ shard, id uint64 }{sh.GetId(), sh.GetLeaderId()})
			}
		}
	}
	if len(leaders) == 0 {
		return nil, fmt.Sprintf("no shard leader known (status: %v)", err)
	}
	l := leaders[e.Rng.IntN(len(leaders))]
	node := e.Cluster.ByID(l.id)
	return node, fmt.Sprintf("n%d (id %d), leader of shard %d", node.Index+1, l.id, l.shard)
}

// pauseLeader cuts the leader of a random user shard off from its peers
// and SIGSTOPs it for longer than two election timeouts, so that the
// others elect a new leader and take writes; then it resumes it, still
// cut off. Its raft ticks did not run while it was stopped, so it still
// believes it leads, with a valid lease, for up to two election timeouts
// of its own, while clients that only know it (pinned to it) come back:
// the case a lease read must not survive. Stop heals the links.
type pauseLeader struct {
	victim *Node
	// pauseFor is how long the leader is stopped. Default: 3s (two
	// election timeouts of 1s, and some).
	pauseFor time.Duration
}

func (p *pauseLeader) Name() string { return "pause-leader" }

func (p *pauseLeader) Start(ctx context.Context, e *NemesisEnv) (string, error) {
	n, desc := shardLeader(ctx, e)
	if n == nil || e.claimed[n.Index] || !n.Running() || n.Paused() {
		return desc + ": left alone", nil
	}
	e.claimed[n.Index] = true
	if err := e.Net.Drop(ctx, isolateLinks(len(e.Cluster.Nodes), n.Index)); err != nil {
		return "", err
	}
	if err := e.Cluster.Pause(n); err != nil {
		return "", err
	}
	p.victim = n
	d := p.pauseFor
	if d == 0 {
		d = 3 * time.Second
	}
	if !sleepCtx(ctx, d) {
		return "", ctx.Err()
	}
	if err := e.Cluster.Resume(n); err != nil {
		return "", err
	}
	return fmt.Sprintf("isolated %s, SIGSTOP for %v, SIGCONT still isolated", desc, d), nil
}

func (p *pauseLeader) Stop(ctx context.Context, e *NemesisEnv) (string, error) {
	n := p.victim
	p.victim = nil
	if n != nil && n.Paused() {
		if err := e.Cluster.Resume(n); err != nil {
			return "", err
		}
	}
	return "healed every link", e.Net.Heal(ctx)
}

// ---- processes

type kill struct{ victim *Node }

func (k *kill) Name() string { return "kill" }

func (k *kill) Start(_ context.Context, e *NemesisEnv) (string, error) {
	k.victim = e.claim()
	if k.victim == nil {
		return "no node to kill", nil
	}
	e.Cluster.Kill(k.victim)
	return fmt.Sprintf("kill -9 n%d (id %d)", k.victim.Index+1, k.victim.ID), nil
}

func (k *kill) Stop(ctx context.Context, e *NemesisEnv) (string, error) {
	n := k.victim
	k.victim = nil
	if n == nil || n.Running() {
		return "nothing to restart", nil
	}
	if err := e.Cluster.Start(n); err != nil {
		return "", err
	}
	return fmt.Sprintf("restarted n%d (id %d)%s", n.Index+1, n.ID, waitReadyNote(ctx, e, n, 15*time.Second)), nil
}

func waitReadyNote(ctx context.Context, e *NemesisEnv, n *Node, d time.Duration) string {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t0 := time.Now()
	if err := e.Cluster.WaitReady(wctx, n); err != nil {
		return fmt.Sprintf("; not ready after %v", d)
	}
	return fmt.Sprintf("; ready in %v", time.Since(t0).Round(time.Millisecond))
}

type pause struct{ victim *Node }

func (p *pause) Name() string { return "pause" }

func (p *pause) Start(_ context.Context, e *NemesisEnv) (string, error) {
	p.victim = e.claim()
	if p.victim == nil {
		return "no node to pause", nil
	}
	if err := e.Cluster.Pause(p.victim); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGSTOP n%d (id %d)", p.victim.Index+1, p.victim.ID), nil
}

func (p *pause) Stop(_ context.Context, e *NemesisEnv) (string, error) {
	n := p.victim
	p.victim = nil
	if n == nil {
		return "nothing to resume", nil
	}
	return fmt.Sprintf("SIGCONT n%d", n.Index+1), e.Cluster.Resume(n)
}

// powerLoss cuts the power of one node, or (one round in three) of every
// node at once: kill -9 of nodes whose store runs with PowerLossEnv, so
// that each loses every write it had not fsynced. Stop restarts them.
// Losing a majority at once is the case that matters: a write
// acknowledged to a client must be fsynced on a quorum.
type powerLoss struct{ victims []*Node }

func (p *powerLoss) Name() string { return "power-loss" }

// NodeEnv is what every node of a run with this nemesis is started with.
func (p *powerLoss) NodeEnv() []string { return []string{PowerLossEnv + "=1"} }

func (p *powerLoss) Start(_ context.Context, e *NemesisEnv) (string, error) {
	what := "one node"
	if e.Rng.IntN(3) == 0 {
		p.victims = e.claimAll()
		what = "every free node"
	} else if n := e.claim(); n != nil {
		p.victims = []*Node{n}
	}
	if len(p.victims) == 0 {
		return "no node to cut", nil
	}
	var idx []int
	note := ""
	for _, n := range p.victims {
		idx = append(idx, n.Index)
		if !e.Cluster.HookApplied(n, PowerLossEnv) {
			e.Warn("power-loss: n%d runs without the %q banner of %s: kvnode does not apply the hook; this was only a kill -9",
				n.Index+1, HookBanner, PowerLossEnv)
			note = "; HOOK NOT APPLIED by kvnode"
		}
	}
	for _, n := range p.victims {
		e.Cluster.Kill(n)
	}
	return fmt.Sprintf("power cut (%s): kill -9 of %s, unsynced writes lost%s", what, nodeNames(idx), note), nil
}

func (p *powerLoss) Stop(ctx context.Context, e *NemesisEnv) (string, error) {
	victims := p.victims
	p.victims = nil
	var idx []int
	for _, n := range victims {
		if n.Running() {
			continue
		}
		if err := e.Cluster.Start(n); err != nil {
			return "", err
		}
		idx = append(idx, n.Index)
	}
	if len(idx) == 0 {
		return "nothing to restart", nil
	}
	// Started together, waited for after: one node alone may not be ready
	// until a quorum is back.
	var notes []string
	for _, i := range idx {
		notes = append(notes, fmt.Sprintf("n%d%s", i+1, waitReadyNote(ctx, e, e.Cluster.Nodes[i], 15*time.Second)))
	}
	return fmt.Sprintf("power back: restarted %s (%s)", nodeNames(idx), strings.Join(notes, ", ")), nil
}

// restartWith restarts a node with a debug environment variable set to
// one of values, and at Stop restarts it without.
type restartWith struct {
	name   string
	env    string
	values []string
	victim *Node
}

func (r *restartWith) Name() string { return r.name }

func (r *restartWith) Start(ctx context.Context, e *NemesisEnv) (string, error) {
	r.victim = e.claim()
	if r.victim == nil {
		return "no node to restart", nil
	}
	n := r.victim
	v := r.values[e.Rng.IntN(len(r.values))]
	if err := e.Cluster.Restart(n, []string{r.env + "=" + v}); err != nil {
		return "", err
	}
	note := waitReadyNote(ctx, e, n, 15*time.Second)
	if !e.Cluster.HookApplied(n, r.env) {
		e.Warn("%s: n%d restarted with %s=%s but its log has no %q banner: kvnode does not apply the debug hooks (is applyDebugEnv called in cmd/kvnode/start.go?); this nemesis was only a crash-restart",
			r.name, n.Index+1, r.env, v, HookBanner)
		note += "; HOOK NOT APPLIED by kvnode"
	}
	return fmt.Sprintf("restarted n%d (id %d) with %s=%s%s", n.Index+1, n.ID, r.env, v, note), nil
}

func (r *restartWith) Stop(ctx context.Context, e *NemesisEnv) (string, error) {
	n := r.victim
	r.victim = nil
	if n == nil {
		return "nothing to restore", nil
	}
	if err := e.Cluster.Restart(n, nil); err != nil {
		return "", err
	}
	return fmt.Sprintf("restarted n%d without %s%s", n.Index+1, r.env, waitReadyNote(ctx, e, n, 15*time.Second)), nil
}

// membership takes a node out of the cluster (kvnode node remove), stops
// it, wipes its data, starts it as a new node that joins (--join) and gives
// it back replicas of the shards it had (kvnode replica add). Every other
// round (at random) the node is killed first and removed while it is down,
// as an operator removes a dead machine and brings it back with a new disk.
// All of it happens in Start; Stop only makes sure the node runs.
type membership struct{ victim *Node }

func (m *membership) Name() string { return "membership" }

// kvnodeCLI runs a kvnode client command against the other nodes.
func kvnodeCLI(ctx context.Context, e *NemesisEnv, except *Node, timeout time.Duration, args ...string) (string, error) {
	var eps []string
	for _, n := range e.Cluster.Nodes {
		if n != except {
			eps = append(eps, n.ClientAddr())
		}
	}
	full := append([]string{"--endpoints", strings.Join(eps, ","), "--timeout", timeout.String()}, args...)
	cctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, e.Cluster.cfg.Kvnode, full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	if err != nil {
		return text, fmt.Errorf("kvnode %s: %v: %s", strings.Join(args, " "), err, text)
	}
	return text, nil
}

func (m *membership) Start(ctx context.Context, e *NemesisEnv) (string, error) {
	m.victim = e.claim()
	n := m.victim
	if n == nil {
		return "no node to churn", nil
	}
	var via *Node
	for _, o := range e.Cluster.Nodes {
		if o != n && o.Running() && !o.Paused() {
			via = o
			break
		}
	}
	if via == nil {
		return "no other running node to join through", nil
	}
	// The shards the node has replicas of.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	st, err := e.Admin.Status(sctx)
	cancel()
	if err != nil {
		return fmt.Sprintf("n%d left alone: status failed: %v", n.Index+1, err), nil
	}
	var shards []uint64
	for _, sh := range st.GetShards() {
		if slices.Contains(sh.GetReplicas(), n.ID) {
			shards = append(shards, sh.GetId())
		}
	}
	oldID := n.ID
	down := e.Rng.IntN(2) == 0
	how := ""
	if down {
		e.Cluster.Kill(n)
		how = " while it was down (kill -9 first)"
	}
	if _, err := kvnodeCLI(ctx, e, n, 20*time.Second, "node", "remove", strconv.FormatUint(oldID, 10)); err != nil {
		if down {
			if serr := e.Cluster.Start(n); serr != nil {
				return "", serr
			}
			return fmt.Sprintf("killed n%d (id %d), could not remove it while down (%v); restarted it as it was", n.Index+1, oldID, err), nil
		}
		return fmt.Sprintf("n%d (id %d) left alone: %v", n.Index+1, oldID, err), nil
	}
	if err := e.Cluster.Rejoin(n, via); err != nil {
		return "", err
	}
	note := waitReadyNote(ctx, e, n, 40*time.Second)
	var added, failed []string
	for _, sh := range shards {
		id := strconv.FormatUint(sh, 10)
		if _, err := kvnodeCLI(ctx, e, nil, 20*time.Second, "replica", "add", id, strconv.FormatUint(n.ID, 10)); err != nil {
			failed = append(failed, fmt.Sprintf("shard %s: %v", id, err))
			continue
		}
		added = append(added, id)
	}
	desc := fmt.Sprintf("removed n%d (id %d) from shards %v%s, wiped it, rejoined as id %d through n%d%s; replicas added back: %v",
		n.Index+1, oldID, shards, how, n.ID, via.Index+1, note, added)
	if len(failed) > 0 {
		desc += fmt.Sprintf("; FAILED to add back: %s", strings.Join(failed, "; "))
	}
	return desc, nil
}

func (m *membership) Stop(ctx context.Context, e *NemesisEnv) (string, error) {
	n := m.victim
	m.victim = nil
	if n == nil || n.Running() {
		return "nothing to do", nil
	}
	if err := e.Cluster.Start(n); err != nil {
		return "", err
	}
	return fmt.Sprintf("restarted n%d%s", n.Index+1, waitReadyNote(ctx, e, n, 15*time.Second)), nil
}

// HealAll undoes every fault whatever the nemeses believe: links restored,
// paused nodes resumed, nodes with debug settings restarted without them,
// dead nodes restarted; then it waits for every node to be ready.
func HealAll(ctx context.Context, c *Cluster, net *Net) error {
	var errs []string
	if err := net.Heal(ctx); err != nil {
		errs = append(errs, err.Error())
	}
	for _, n := range c.Nodes {
		switch {
		case n.Paused():
			if err := c.Resume(n); err != nil {
				errs = append(errs, err.Error())
			}
		case !n.Running():
			n.env = nil
			if err := c.Start(n); err != nil {
				errs = append(errs, err.Error())
			}
		case len(n.env) > 0:
			if err := c.Restart(n, nil); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	for _, n := range c.Nodes {
		// Each node gets its own minute, so that one that never gets
		// ready does not hide how the others are.
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := c.WaitReady(wctx, n); err != nil {
			errs = append(errs, err.Error())
		}
		cancel()
	}
	if len(errs) > 0 {
		return fmt.Errorf("jepsen: heal: %s", strings.Join(errs, "; "))
	}
	return nil
}
