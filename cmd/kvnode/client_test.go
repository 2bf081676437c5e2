package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/client"
	"github.com/strata-kv/strata/server"
	"github.com/strata-kv/strata/txn/tso"
	"google.golang.org/grpc"
)

// serveTestDB opens a two-shard single-node DB, serves it on a loopback port
// without cluster administration, and returns the client address. Cleanup
// stops the server and closes the DB.
func serveTestDB(t *testing.T) string {
	t.Helper()
	db, err := strata.Open(strata.Options{Dir: t.TempDir(), Shards: 2, TickInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{DB: db})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	t.Cleanup(func() {
		g.Stop()
		<-done
		if err := db.Close(); err != nil {
			t.Errorf("closing the DB: %v", err)
		}
	})
	return lis.Addr().String()
}

// cliResult is what one kvnode run did.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// runCLI runs the command line args in-process with stdin.
func runCLI(stdin string, args ...string) cliResult {
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// cliAt runs client commands against addr with a generous timeout (the first
// call may wait for the shards' elections, under the race detector).
func cliAt(addr string) func(stdin string, args ...string) cliResult {
	return func(stdin string, args ...string) cliResult {
		return runCLI(stdin, append([]string{"--endpoints", addr, "--timeout", "20s"}, args...)...)
	}
}

// wantCLIOK fails unless r succeeded, printed stdout and nothing on stderr.
func wantCLIOK(t *testing.T, r cliResult, stdout string) {
	t.Helper()
	if r.code != 0 || r.stdout != stdout || r.stderr != "" {
		t.Fatalf("got %v; want exit 0, stdout %q, no stderr", r, stdout)
	}
}

// wantCLIErr fails unless r failed with code, no stdout, and exactly one
// stderr line starting with "kvnode: " and containing each of subs.
func wantCLIErr(t *testing.T, r cliResult, code int, subs ...string) {
	t.Helper()
	if r.code != code || r.stdout != "" || !strings.HasPrefix(r.stderr, "kvnode: ") ||
		strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("got %v; want exit %d, no stdout, one stderr line starting with \"kvnode: \"", r, code)
	}
	for _, s := range subs {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr %q does not contain %q", r.stderr, s)
		}
	}
}

func TestPutGetDelete(t *testing.T) {
	kv := cliAt(serveTestDB(t))
	wantCLIOK(t, kv("", "put", "greeting", "hello"), "OK\n")
	wantCLIOK(t, kv("", "get", "greeting"), "hello\n")
	wantCLIOK(t, kv("", "put", "greeting", "hello again"), "OK\n")
	wantCLIOK(t, kv("", "get", "greeting"), "hello again\n")

	// A key in the other shard (split at 0x80), and the empty value.
	wantCLIOK(t, kv("", "put", "\xc3\xa9t\xc3\xa9", ""), "OK\n")
	wantCLIOK(t, kv("", "get", "\xc3\xa9t\xc3\xa9"), "\n")

	// Without VALUE, stdin is the value, byte for byte.
	wantCLIOK(t, kv("line one\nline two\n", "put", "note"), "OK\n")
	wantCLIOK(t, kv("", "get", "note"), "line one\nline two\n\n")

	wantCLIOK(t, kv("", "del", "greeting"), "OK\n")
	wantCLIErr(t, kv("", "get", "greeting"), exitError, "kvnode: key not found: greeting")
	// Deleting an absent key is fine.
	wantCLIOK(t, kv("", "delete", "greeting"), "OK\n")
	// A key that is not printable is quoted in messages.
	wantCLIErr(t, kv("", "get", "a\nb"), exitError, `key not found: "a\nb"`)
	// A key starting with "-" after "--".
	wantCLIOK(t, kv("", "put", "--", "-dash", "v"), "OK\n")
	wantCLIOK(t, kv("", "get", "--", "-dash"), "v\n")
}

func TestScan(t *testing.T) {
	kv := cliAt(serveTestDB(t))
	for _, p := range [][2]string{
		{"a/1", "one"}, {"a/2", "two"}, {"a/3", "three"}, {"b/1", "b one"},
		{"\xc3\xa9", "accent"}, // in the second shard
		{"bin", "\xff\x00"},    // not UTF-8
	} {
		wantCLIOK(t, kv("", "put", p[0], p[1]), "OK\n")
	}

	wantCLIOK(t, kv("", "scan", "a/"), "a/1\tone\na/2\ttwo\na/3\tthree\n")
	wantCLIOK(t, kv("", "scan", "a/", "--keys-only"), "a/1\na/2\na/3\n")
	wantCLIOK(t, kv("", "scan", "--from", "a/2", "--to", "b/2"), "a/2\ttwo\na/3\tthree\nb/1\tb one\n")
	wantCLIOK(t, kv("", "scan", "--from", "b/", "--keys-only"), "b/1\nbin\n\xc3\xa9\n")
	wantCLIOK(t, kv("", "scan", "--to", "a/2", "--keys-only"), "a/1\n")
	wantCLIOK(t, kv("", "scan", "--keys-only", "--limit", "2"), "a/1\na/2\n")
	wantCLIOK(t, kv("", "scan", "--keys-only"), "a/1\na/2\na/3\nb/1\nbin\n\xc3\xa9\n")
	wantCLIOK(t, kv("", "scan", "nothing/"), "")
	wantCLIOK(t, kv("", "scan", "nothing/", "--json"), "[]\n")

	r := kv("", "scan", "--from", "a/3", "--json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("scan --json: %v", r)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("scan --json printed %q: %v", r.stdout, err)
	}
	want := []map[string]any{
		{"key": "a/3", "value": "three"},
		{"key": "b/1", "value": "b one"},
		{"key": "bin", "value": "/wA=", "value_base64": true},
		{"key": "\u00e9", "value": "accent"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scan --json = %v; want %v", got, want)
	}

	r = kv("", "scan", "a/", "--keys-only", "--json")
	if r.code != 0 || strings.Contains(r.stdout, "value") || !strings.Contains(r.stdout, `"key": "a/1"`) {
		t.Fatalf("scan --keys-only --json: %v", r)
	}
}

func TestCompareAndSwap(t *testing.T) {
	kv := cliAt(serveTestDB(t))
	wantCLIOK(t, kv("", "cas", "lock", "--absent", "me"), "true\n")
	if r := kv("", "cas", "lock", "--absent", "you"); r.code != exitNotSwapped || r.stdout != "false\n" || r.stderr != "" {
		t.Fatalf("cas --absent on a present key: %v; want exit 2, stdout false", r)
	}
	wantCLIOK(t, kv("", "get", "lock"), "me\n")
	if r := kv("", "cas", "lock", "you", "them"); r.code != exitNotSwapped || r.stdout != "false\n" {
		t.Fatalf("cas with the wrong old value: %v", r)
	}
	wantCLIOK(t, kv("", "cas", "lock", "me", "you"), "true\n")
	wantCLIOK(t, kv("", "get", "lock"), "you\n")
	wantCLIOK(t, kv("", "cas", "lock", "you", "--delete"), "true\n")
	wantCLIErr(t, kv("", "get", "lock"), exitError, "key not found: lock")

	// The empty value is not absent.
	wantCLIOK(t, kv("", "put", "e", ""), "OK\n")
	if r := kv("", "cas", "e", "--absent", "x"); r.code != exitNotSwapped {
		t.Fatalf("cas --absent on an empty value: %v", r)
	}
	wantCLIOK(t, kv("", "cas", "e", "", "x"), "true\n")
	// --absent --delete only checks absence.
	wantCLIOK(t, kv("", "cas", "nokey", "--absent", "--delete"), "true\n")
}

func TestStatus(t *testing.T) {
	kv := cliAt(serveTestDB(t))
	// Status reports leaders as the node knows them, without waiting for
	// elections: wait for them.
	var r cliResult
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r = kv("", "status")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("status: %v", r)
		}
		if !strings.Contains(r.stdout, "none") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status shows no leader after 20s:\n%s", r.stdout)
		}
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("status printed %d lines, want the oracle's timestamp, a header and 3 shards:\n%s", len(lines), r.stdout)
	}
	oracle, lines := strings.Fields(lines[0]), lines[1:]
	if len(oracle) != 4 || oracle[0] != "oracle" || oracle[1] != "timestamp:" {
		t.Fatalf("status line 0 = %q, want the oracle's timestamp", oracle)
	} else if ts, err := tso.Parse(oracle[2]); err != nil || ts == 0 {
		t.Fatalf("status: oracle timestamp %q: %v", oracle[2], err)
	}
	for i, want := range [][]string{
		{"SHARD", "RANGE", "LEADER", "REPLICAS"},
		{"1", "system", "1", "1"},
		{"2", `["",`, `"\x80")`, "1", "1"},
		{"3", `["\x80",`, "+inf)", "1", "1"},
	} {
		if got := strings.Fields(lines[i]); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("status line %d = %q, want fields %q", i, lines[i], want)
		}
	}

	r = kv("", "status", "--json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("status --json: %v", r)
	}
	var st jsonStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json printed %q: %v", r.stdout, err)
	}
	if st.Oracle == "" {
		t.Errorf("status --json has no oracle timestamp: %s", r.stdout)
	}
	if st.NodeID != 1 || len(st.Shards) != 3 || !st.Shards[0].System || st.Shards[0].ID != 1 {
		t.Fatalf("status --json = %+v", st)
	}
	// "\x80" is not UTF-8, so the boundary is base64.
	if s := st.Shards[1]; s.ID != 2 || s.Start != "" || s.End != "gA==" || !s.EndBase64 || s.LeaderID != 1 || s.Local == nil || !s.Local.IsLeader {
		t.Errorf("status --json shard 1 = %+v", s)
	}
	if s := st.Shards[2]; s.ID != 3 || s.Start != "gA==" || !s.StartBase64 || s.End != "" {
		t.Errorf("status --json shard 2 = %+v", s)
	}
}

// TestBadInput checks that every wrong invocation fails with one line on
// stderr, prints nothing else, and writes nothing.
func TestBadInput(t *testing.T) {
	addr := serveTestDB(t)
	kv := cliAt(addr)
	bigValue := strings.Repeat("v", strata.MaxValueSize+1)
	bigKey := strings.Repeat("k", strata.MaxKeySize+1)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		subs  []string
		// absent is a key that must still be absent afterwards.
		absent string
	}{
		{name: "unknown flag", args: []string{"put", "k1", "v", "--bogus"}, subs: []string{"unknown flag: --bogus", "see 'kvnode put --help'"}, absent: "k1"},
		{name: "unknown command", args: []string{"gett", "k"}, subs: []string{`unknown command "gett"`, "did you mean get?", "see 'kvnode --help'"}},
		{name: "unknown subcommand", args: []string{"replica", "ad", "1", "2"}, subs: []string{`unknown command "ad" for "kvnode replica"`}},
		{name: "get without key", args: []string{"get"}, subs: []string{"wrong number of arguments for get: want KEY, got 0"}},
		{name: "put with 3 args", args: []string{"put", "k2", "v", "w"}, subs: []string{"want KEY [VALUE], got 3"}, absent: "k2"},
		{name: "empty key", args: []string{"put", "", "v"}, subs: []string{"empty key"}},
		{name: "key too large", args: []string{"put", bigKey, "v"}, subs: []string{"rejected by the server", "key too large"}},
		{name: "value too large", args: []string{"put", "k3", bigValue}, subs: []string{"put k3: rejected by the server", "value too large"}, absent: "k3"},
		{name: "value too large on stdin", stdin: bigValue, args: []string{"put", "k4"}, subs: []string{"value too large"}, absent: "k4"},
		{name: "cas arg count", args: []string{"cas", "k5", "x"}, subs: []string{"want KEY OLD NEW, got 2"}, absent: "k5"},
		{name: "cas absent arg count", args: []string{"cas", "k5", "--absent", "x", "y"}, subs: []string{"want KEY NEW (with --absent), got 3"}, absent: "k5"},
		{name: "scan prefix and range", args: []string{"scan", "a", "--from", "b"}, subs: []string{"either PREFIX or --from/--to"}},
		{name: "scan empty range", args: []string{"scan", "--from", "b", "--to", "a"}, subs: []string{"--to a must be after --from b"}},
		{name: "scan negative limit", args: []string{"scan", "--limit", "-1"}, subs: []string{"--limit must be 0"}},
		{name: "scan bad limit", args: []string{"scan", "--limit", "x"}, subs: []string{`invalid argument "x" for "--limit"`}},
		{name: "non-numeric shard", args: []string{"replica", "add", "x", "2"}, subs: []string{`invalid shard ID "x"`}},
		{name: "zero node", args: []string{"leader", "transfer", "1", "0"}, subs: []string{`invalid node ID "0"`}},
		{name: "node remove arg count", args: []string{"node", "remove"}, subs: []string{"want NODE, got 0"}},
		{name: "status with args", args: []string{"status", "x"}, subs: []string{"wrong number of arguments for status"}},
		{name: "bad timeout", args: []string{"get", "k", "--timeout", "soon"}, subs: []string{`invalid argument "soon" for "--timeout"`}},
		{name: "no admin on this server", args: []string{"members"}, subs: []string{"members: not supported by the node"}},
		{name: "no admin for replica add", args: []string{"replica", "add", "1", "2"}, subs: []string{"add a replica of shard 1 on node 2: not supported by the node"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCLIErr(t, kv(tc.stdin, tc.args...), exitError, tc.subs...)
			if tc.absent != "" {
				wantCLIErr(t, kv("", "get", tc.absent), exitError, "key not found")
			}
		})
	}

	// Bad endpoints are usage errors.
	wantCLIErr(t, runCLI("", "get", "k", "--endpoints", ""), exitError, "--endpoints is empty")
	wantCLIErr(t, runCLI("", "get", "k", "--endpoints", "nohost"), exitError, `--endpoints: client: endpoint 0 "nohost" is not host:port`)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestUnreachable(t *testing.T) {
	addr := closedAddr(t)
	for _, args := range [][]string{
		{"get", "k"},
		{"put", "k", "v"},
		{"status"},
		{"scan", "a"},
	} {
		start := time.Now()
		r := runCLI("", append([]string{"--endpoints", addr, "--timeout", "500ms"}, args...)...)
		elapsed := time.Since(start)
		wantCLIErr(t, r, exitError, fmt.Sprintf("kvnode: cannot reach any endpoint (%s) within 500ms: ", addr))
		if elapsed > 3*time.Second {
			t.Errorf("%v took %v with --timeout 500ms", args, elapsed)
		}
	}
}

func TestEndpointsFromEnv(t *testing.T) {
	good, bad := serveTestDB(t), closedAddr(t)

	t.Setenv(endpointsEnv, good)
	wantCLIOK(t, runCLI("", "--timeout", "20s", "put", "k", "v"), "OK\n")

	// The flag wins over the environment.
	t.Setenv(endpointsEnv, bad)
	wantCLIOK(t, runCLI("", "--timeout", "20s", "--endpoints", good, "get", "k"), "v\n")
	wantCLIErr(t, runCLI("", "--timeout", "300ms", "get", "k"), exitError, "cannot reach any endpoint ("+bad+")")

	// Several endpoints, one of them down.
	t.Setenv(endpointsEnv, bad+", "+good)
	wantCLIOK(t, runCLI("", "--timeout", "20s", "get", "k"), "v\n")
}

// TestHelp checks that every command has a description, usage and
// examples, and that help is not an error.
func TestHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			walk(sub)
		}
		path := strings.Fields(c.CommandPath())[1:]
		r := runCLI("", append(path, "--help")...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("kvnode %s --help: %v", strings.Join(path, " "), r)
			return
		}
		if c.Short == "" {
			t.Errorf("kvnode %s has no short description", strings.Join(path, " "))
		}
		for _, s := range []string{"Usage:\n", "Examples:\n"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("kvnode %s --help has no %q:\n%s", strings.Join(path, " "), s, r.stdout)
			}
		}
	}
	walk(newRootCmd(func(string) string { return "" }))

	// Without a command, the root prints its help.
	if r := runCLI(""); r.code != 0 || !strings.Contains(r.stdout, "Key-value commands:") {
		t.Errorf("kvnode without arguments: %v", r)
	}
}

func TestExplain(t *testing.T) {
	g := &globals{timeout: time.Second}
	err := g.explain("put k", []string{"127.0.0.1:7370"}, fmt.Errorf("client: Put: node failed: %w", client.ErrAmbiguous))
	if !errors.Is(err, client.ErrAmbiguous) || !strings.Contains(err.Error(), "put k: outcome unknown: the write may or may not have been applied") {
		t.Errorf("explain(ambiguous) = %v", err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte("a/"), []byte("a0")},
		{[]byte("a\xff"), []byte("b")},
		{[]byte("\xff\xff"), nil},
		{nil, nil},
	} {
		if got := prefixEnd(tc.in); !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("unknown command \"x\"\n\nDid you mean this?\n\tget\n"); got != `unknown command "x"; Did you mean this?; get` {
		t.Errorf("oneLine = %q", got)
	}
}

func TestJSONText(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   string
		base64 bool
	}{
		{"plain", "plain", false},
		{"", "", false},
		{"\u00e9\t\n", "\u00e9\t\n", false},
		{"\xff\x00", "/wA=", true},
	} {
		if got, b := jsonText([]byte(tc.in)); got != tc.want || b != tc.base64 {
			t.Errorf("jsonText(%q) = %q, %v; want %q, %v", tc.in, got, b, tc.want, tc.base64)
		}
	}
}
