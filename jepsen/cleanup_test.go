package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-kv/strata/jepsen/harness"
)

// buildBinaries builds kvnode and the harness into a temp folder.
func buildBinaries(t *testing.T) (kvnode, jepsen string) {
	t.Helper()
	dir := t.TempDir()
	kvnode, jepsen = filepath.Join(dir, "kvnode"), filepath.Join(dir, "strata-jepsen")
	for _, b := range [][]string{{kvnode, "../cmd/kvnode"}, {jepsen, "."}} {
		out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	return kvnode, jepsen
}

// processesMentioning returns the command lines of running processes that
// mention s.
func processesMentioning(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// TestCleanupAfterInterruptAndPanic runs the harness binary on a real
// cluster, stops it mid-run (SIGINT, as Ctrl-C does; or an injected panic)
// once the first fault is in place, and checks that no kvnode process,
// iptables rule or data directory is left; the run directory with the
// results stays.
func TestCleanupAfterInterruptAndPanic(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the harness cuts links with iptables")
	}
	if err := harness.Preflight(context.Background(), 0); err != nil {
		t.Skipf("needs a working iptables: %v", err)
	}
	if testing.Short() {
		t.Skip("runs real clusters; skipped with -short")
	}
	kvnode, jepsen := buildBinaries(t)
	for _, tc := range []struct {
		name   string
		ipBase int
		panic  bool
	}{
		{"sigint", 41, false},
		{"panic", 51, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := filepath.Join(t.TempDir(), "tmp")
			if err := os.Mkdir(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			runDir := filepath.Join(t.TempDir(), "run")
			cmd := exec.Command(jepsen, "--kvnode", kvnode, "--dir", runDir, "--ip-base", itoa(tc.ipBase),
				"--nemesis", "partition-halves,kill", "--time", "60s", "--clients", "2")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			if tc.panic {
				cmd.Env = append(cmd.Env, "STRATA_JEPSEN_TEST_PANIC=1")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			faulted := make(chan struct{})
			var out bytes.Buffer
			scanDone := make(chan struct{})
			go func() {
				defer close(scanDone)
				sc := bufio.NewScanner(stdout)
				once := false
				for sc.Scan() {
					out.WriteString(sc.Text() + "\n")
					if !once && strings.Contains(sc.Text(), " start ") && strings.Contains(sc.Text(), "kill") {
						once = true
						close(faulted)
					}
				}
			}()
			select {
			case <-faulted:
			case <-scanDone:
			case <-time.After(90 * time.Second):
				t.Fatal("no fault started within 90s")
			}
			if !tc.panic {
				// Nodes run, one is killed, links are cut: interrupt now.
				time.Sleep(300 * time.Millisecond)
				if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			}
			waitErr := make(chan error, 1)
			go func() { <-scanDone; waitErr <- cmd.Wait() }()
			var werr error
			select {
			case werr = <-waitErr:
			case <-time.After(60 * time.Second):
				t.Fatalf("harness still running 60s after the interrupt\n%s", out.String())
			}
			var ee *exec.ExitError
			if !errors.As(werr, &ee) {
				t.Fatalf("harness exited with %v, want a failure status\n%s\n%s", werr, out.String(), stderr.String())
			}
			if tc.panic {
				if !strings.Contains(stderr.String(), "panic injected") {
					t.Fatalf("want the injected panic on stderr, got:\n%s", stderr.String())
				}
			} else if ee.ExitCode() != exitInterrupted {
				t.Fatalf("exit status %d, want %d\n%s\n%s", ee.ExitCode(), exitInterrupted, out.String(), stderr.String())
			}

			// Nothing left: processes, iptables, data.
			if ps := processesMentioning(tmp); len(ps) > 0 {
				t.Errorf("processes left behind:\n%s", strings.Join(ps, "\n"))
			}
			if ps := processesMentioning("127.0.0." + itoa(tc.ipBase) + ":"); len(ps) > 0 {
				t.Errorf("processes left behind on the run's addresses:\n%s", strings.Join(ps, "\n"))
			}
			if l := harness.Leftovers(context.Background(), harness.Chain(tc.ipBase)); l != "" {
				t.Errorf("iptables left behind: %s", l)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("temp directories left behind in %s: %v", tmp, names)
			}
			// The results stay.
			for _, f := range []string{"result.json", "timeline.jsonl", "node1.log"} {
				if _, err := os.Stat(filepath.Join(runDir, f)); err != nil {
					t.Errorf("run directory lacks %s: %v", f, err)
				}
			}
			t.Logf("harness output:\n%s", out.String())
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
