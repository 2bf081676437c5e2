package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/strata-kv/strata/client"
	"github.com/strata-kv/strata/linearizability"
)

func hasLink(links []Link, from, to int) bool { return slices.Contains(links, Link{from, to}) }

func TestPartitionShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{3, 5} {
		minority, majority, links := halvesLinks(n, rng)
		if len(minority) != n/2 || len(majority) != n-n/2 || len(links) != 2*len(minority)*len(majority) {
			t.Fatalf("halves of %d: %v | %v, %d links", n, minority, majority, len(links))
		}
		for _, a := range minority {
			for _, b := range majority {
				if !hasLink(links, a, b) || !hasLink(links, b, a) {
					t.Fatalf("halves: %d-%d not cut both ways", a, b)
				}
			}
		}
		links = isolateLinks(n, 1)
		if len(links) != 2*(n-1) || !hasLink(links, 1, 0) || !hasLink(links, 0, 1) || hasLink(links, 0, 2) {
			t.Fatalf("isolate: %v", links)
		}
		br, a, b, links := bridgeLinks(n, rng)
		for _, l := range links {
			if l.From == br || l.To == br {
				t.Fatalf("bridge %d is cut: %v", br, l)
			}
		}
		if len(a)+len(b) != n-1 || len(links) != 2*len(a)*len(b) {
			t.Fatalf("bridge: %d, %v, %v, %v", br, a, b, links)
		}
		// Ring: every node hears exactly a majority (itself included), and
		// no two nodes hear the same set.
		order := rng.Perm(n)
		links = ringLinks(order)
		seen := map[string]bool{}
		for to := range n {
			var hears []int
			for from := range n {
				if !hasLink(links, from, to) {
					hears = append(hears, from)
				}
			}
			if len(hears) != n/2+1 || !slices.Contains(hears, to) {
				t.Fatalf("ring %v: node %d hears %v", order, to, hears)
			}
			key := fmt.Sprint(hears)
			if seen[key] {
				t.Fatalf("ring %v: two nodes hear %v", order, hears)
			}
			seen[key] = true
		}
		mute := oneWayLinks(n, 0, true)
		deaf := oneWayLinks(n, 0, false)
		if len(mute) != n-1 || !hasLink(mute, 0, 1) || hasLink(mute, 1, 0) || !hasLink(deaf, 1, 0) || hasLink(deaf, 0, 1) {
			t.Fatalf("one-way: mute %v, deaf %v", mute, deaf)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want linearizability.ErrorClass
	}{
		{client.ErrNotFound, linearizability.NotFound},
		{fmt.Errorf("x: %w", client.ErrAmbiguous), linearizability.Ambiguous},
		{context.DeadlineExceeded, linearizability.Ambiguous},
		{fmt.Errorf("%w: Put: %w after 3 attempt(s)", client.ErrUnavailable, context.DeadlineExceeded), linearizability.Ambiguous},
		{fmt.Errorf("%w: Put: 11 attempt(s) failed", client.ErrUnavailable), linearizability.Definite},
		{client.ErrKeyTooLarge, linearizability.Ambiguous}, // only ErrInvalidArgument is known definite
		{fmt.Errorf("%w", client.ErrInvalidArgument), linearizability.Definite},
		{client.ErrClosed, linearizability.Definite},
		{errors.New("something else"), linearizability.Ambiguous},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if OutcomeOf(context.DeadlineExceeded, false) != Fail || OutcomeOf(context.DeadlineExceeded, true) != Info ||
		OutcomeOf(client.ErrNotFound, false) != OK || OutcomeOf(nil, true) != OK {
		t.Fatal("OutcomeOf")
	}
}

func TestAvailability(t *testing.T) {
	secs := []Counts{{Total: 10, OK: 10}, {Total: 10, OK: 5}, {Total: 4, OK: 1}, {Total: 10, OK: 10}}
	a := ComputeAvailability(secs, []Interval{{From: 1500 * time.Millisecond, To: 2500 * time.Millisecond}})
	if a.FaultSeconds != 2 || a.Share != 6.0/14 || a.MinSecond != 0.25 || a.OpsPerSecHealthy != 10 || a.OpsPerSecFaulty != 3 {
		t.Fatalf("%+v", a)
	}
	if a := ComputeAvailability(secs, nil); a.FaultSeconds != 0 || a.Share != 0 || a.MinSecond != 0 {
		t.Fatalf("no faults: %+v", a)
	}
}

func TestWorkloadRegistry(t *testing.T) {
	for _, name := range []string{"bank", "list-append"} {
		_, err := NewWorkload(name)
		if !errors.Is(err, ErrNotImplemented) {
			t.Fatalf("%s: %v, want ErrNotImplemented", name, err)
		}
	}
	if _, err := NewWorkload("nope"); err == nil {
		t.Fatal("unknown workload accepted")
	}
	for _, name := range []string{"register", "set"} {
		if w, err := NewWorkload(name); err != nil || w.Name() != name {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := NewNemeses([]string{"kill", "meteor"}); err == nil {
		t.Fatal("unknown nemesis accepted")
	}
	if ns, err := NewNemeses(NemesisNames()); err != nil || len(ns) != len(NemesisNames()) {
		t.Fatalf("%v", err)
	}
}

func TestNodeEnv(t *testing.T) {
	if got := NodeEnv([]string{"kill", "power-loss", "pause"}); !slices.Equal(got, []string{PowerLossEnv + "=1"}) {
		t.Fatalf("NodeEnv with power-loss = %v", got)
	}
	if got := NodeEnv([]string{"kill", "membership"}); len(got) != 0 {
		t.Fatalf("NodeEnv without power-loss = %v", got)
	}
}

func TestSetCheck(t *testing.T) {
	env := &Env{Dir: t.TempDir()}
	s := &Set{}
	s.mu.attempted = map[string]Outcome{"a": OK, "b": Info, "c": Fail, "d": OK}
	s.present = map[string]bool{"a": true, "d": true, "b": true}
	if r := s.Check(env); r.Valid != ValidOK {
		t.Fatalf("valid history: %+v", r)
	}
	s.present = map[string]bool{"a": true, "c": true, "z": true}
	r := s.Check(env)
	if r.Valid != ValidViolation || r.Details["lost"] != 1 || r.Details["phantom"] != 1 || r.Details["resurrected"] != 1 {
		t.Fatalf("lost d, phantom z, resurrected c: %+v", r)
	}
	s.present = nil
	if r := s.Check(env); r.Valid != ValidViolation {
		// With no final read every acknowledged add is lost... but the
		// verdict must not be OK either way.
		t.Fatalf("no final read: %+v", r)
	}
}

// requireRoot skips a test that needs root and iptables, saying why.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: cuts links with iptables and runs processes under other group IDs")
	}
	if err := Preflight(context.Background(), 0); err != nil {
		t.Skipf("needs a working iptables: %v", err)
	}
}

// TestMain lets the test binary act as a dialer child: with
// JEPSEN_TEST_DIAL=addr it connects to addr and exits 0 on success.
func TestMain(m *testing.M) {
	if addr := os.Getenv("JEPSEN_TEST_DIAL"); addr != "" {
		c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
		if err != nil {
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(700 * time.Millisecond))
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err != nil { // the listener's greeting: the way back works too
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestNetCutsLinks checks the iptables setup on real sockets: a process
// running as node A's group ID reaches node B's address only while the
// link A->B (or B->A, for the answers) is not cut, and Close leaves
// nothing behind.
func TestNetCutsLinks(t *testing.T) {
	requireRoot(t)
	const base = 61
	ips := []string{"127.0.0.61", "127.0.0.62", "127.0.0.63"}
	gids := []uint32{gidBase + 61, gidBase + 62, gidBase + 63}
	ctx := context.Background()
	n, err := NewNet(ctx, Chain(base), ips, gids)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		if l := Leftovers(ctx, Chain(base)); l != "" {
			t.Errorf("left behind: %s", l)
		}
	})
	lis, err := net.Listen("tcp", "127.0.0.62:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{1})
			c.Close()
		}
	}()
	dial := func(gid uint32) bool {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "JEPSEN_TEST_DIAL="+lis.Addr().String())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: gid, Groups: []uint32{gid}}}
		return cmd.Run() == nil
	}
	if !dial(gids[0]) || !dial(gids[2]) {
		t.Fatal("nodes 1 and 3 cannot reach node 2 before any cut")
	}
	if err := n.Drop(ctx, []Link{{0, 1}}); err != nil {
		t.Fatal(err)
	}
	if dial(gids[0]) {
		t.Fatal("node 1 reaches node 2 with 1->2 cut")
	}
	if !dial(gids[2]) {
		t.Fatal("node 3 cannot reach node 2 with only 1->2 cut")
	}
	if err := n.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if !dial(gids[0]) {
		t.Fatal("node 1 cannot reach node 2 after heal")
	}
	// The way back: node 2's answers to node 1 cut.
	if err := n.Drop(ctx, []Link{{1, 0}}); err != nil {
		t.Fatal(err)
	}
	if dial(gids[0]) {
		t.Fatal("node 1 gets node 2's answers with 2->1 cut")
	}
}
