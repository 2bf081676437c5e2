// Command kvnode runs a Strata node and talks to a running cluster.
//
// `kvnode start` runs a node. The other commands are clients of a cluster:
// they reach any node's client address (--endpoints, or the environment
// variable STRATA_ENDPOINTS; default 127.0.0.1:7370) and read, write and
// administer the cluster through it.
//
//	kvnode put greeting hello
//	kvnode get greeting
//	kvnode scan user/ --json
//	kvnode status
//
// Every failure is one line on stderr starting with "kvnode: " and a
// non-zero exit status; see `kvnode --help` for the exit statuses.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // any failure, including a key not found by get
	// exitNotSwapped: cas compared and did not swap (it prints false).
	exitNotSwapped = 2
)

// Command groups of the root command's help.
const (
	groupKV      = "kv"
	groupCluster = "cluster"
	groupNode    = "node"
)

// run runs kvnode with args (without the program name) and returns the
// exit status. Commands read stdin and write their output to stdout;
// errors go to stderr as one line each.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(os.Getenv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code := exitError
	var ee *exitCodeError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code // the command already said what happened
		}
		err = ee.err
	}
	msg := oneLine(err.Error())
	var ue *usageError
	if errors.As(err, &ue) {
		if cmd == nil {
			cmd = root
		}
		msg += fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
	}
	fmt.Fprintln(stderr, "kvnode: "+msg)
	return code
}

// newRootCmd returns the command tree. getenv reads the environment
// (os.Getenv outside tests).
func newRootCmd(getenv func(string) string) *cobra.Command {
	g := &globals{getenv: getenv}
	root := &cobra.Command{
		Use:   "kvnode",
		Short: "Run a Strata node, and read, write and administer a Strata cluster",
		Long: `kvnode runs a Strata node (kvnode start) and is the command-line client
of a running cluster. The client commands reach any node's client address:
--endpoints, else the environment variable STRATA_ENDPOINTS (comma-separated),
else 127.0.0.1:7370. Any node serves any request.

Keys and values are taken byte for byte from the arguments. A key that
starts with "-" goes after "--": kvnode get -- -key.

Exit status: 0 on success; 1 on any error (one line on stderr starting with
"kvnode: "), including a key not found by get; 2 when cas compared and did
not swap.`,
		Example: `  # Against a node on 127.0.0.1:7370 (the default):
  kvnode put greeting hello
  kvnode get greeting
  kvnode scan user/

  # Against a three-node cluster:
  kvnode --endpoints 10.0.0.1:7370,10.0.0.2:7370,10.0.0.3:7370 status
  STRATA_ENDPOINTS=10.0.0.1:7370 kvnode members`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Args and RunE make an unknown command a one-line error rather
		// than cobra's multi-line message.
		Args: unknownSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	// The commands that only group others are runnable (see Args above),
	// but their usage should not offer running them alone.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddGroup(
		&cobra.Group{ID: groupKV, Title: "Key-value commands:"},
		&cobra.Group{ID: groupCluster, Title: "Cluster commands:"},
		&cobra.Group{ID: groupNode, Title: "Node commands:"},
	)
	g.addFlags(root)

	start := newStartCmd()
	start.GroupID = groupNode
	root.AddCommand(start)
	addKVCommands(root, g)
	addClusterCommands(root, g)
	return root
}

// usageError is a wrong invocation: an unknown command or flag, a bad flag
// value, wrong arguments. Its message gets a hint to --help.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// exitCodeError makes run exit with code, printing err unless it is nil.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitCodeError) Unwrap() error { return e.err }

// unknownSubcommand is the Args of a command that only groups others: any
// argument is an unknown subcommand.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	}
	return &usageError{errors.New(msg)}
}

// oneLine joins the lines of a message so that an error is one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var parts []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
