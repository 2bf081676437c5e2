package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/strata-kv/strata/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults of the global flags.
const (
	defaultEndpoint    = "127.0.0.1:7370"
	defaultTimeout     = 5 * time.Second
	defaultDialTimeout = 2 * time.Second
	// endpointsEnv names the environment variable read when --endpoints
	// is not given.
	endpointsEnv = "STRATA_ENDPOINTS"
	// unlimitedRetries lets --timeout alone bound a command's retries (the
	// client backs off up to a second between attempts).
	unlimitedRetries = 1 << 20
)

// globals are the client commands' global flags.
type globals struct {
	getenv      func(string) string
	endpoints   []string
	timeout     time.Duration
	dialTimeout time.Duration
}

func (g *globals) addFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringSliceVar(&g.endpoints, "endpoints", nil,
		"client addresses of cluster nodes, host:port,... (default $"+endpointsEnv+" if set, else "+defaultEndpoint+")")
	f.DurationVar(&g.timeout, "timeout", defaultTimeout, "time limit of a client command, retries included")
	f.DurationVar(&g.dialTimeout, "dial-timeout", defaultDialTimeout, "time limit of one attempt to connect to an endpoint")
}

// resolveEndpoints returns the endpoints: the flag's if given, else the
// environment's if set, else the default.
// from names their source for messages.
func (g *globals) resolveEndpoints(cmd *cobra.Command) (eps []string, from string, err error) {
	raw := g.endpoints
	from = "--endpoints"
	if !cmd.Flags().Changed("endpoints") {
		raw, from = []string{defaultEndpoint}, "the default"
		if env := strings.TrimSpace(g.getenv(endpointsEnv)); env != "" {
			raw, from = strings.Split(env, ","), "$"+endpointsEnv
		}
	}
	for _, ep := range raw {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, from, usagef("%s is empty: give at least one host:port", from)
	}
	return eps, from, nil
}

// call runs f with a client of the endpoints and a context bounded by
// --timeout, and turns f's error into a message about op (e.g. `put "k"`).
func (g *globals) call(cmd *cobra.Command, op string, f func(context.Context, *client.Client) error) error {
	return g.callWith(cmd, op, false, func(ctx context.Context, c *client.Client, _ func()) error { return f(ctx, c) })
}

// callStream is call for a command that reads a stream as long as it
// lasts: --timeout bounds the wait for the stream's first pair (f calls
// started when it has one) and then each message, not the whole command;
// a broken stream is resumed a bounded number of times
// (client.DefaultMaxRetries).
func (g *globals) callStream(cmd *cobra.Command, op string, f func(ctx context.Context, c *client.Client, started func()) error) error {
	return g.callWith(cmd, op, true, f)
}

func (g *globals) callWith(cmd *cobra.Command, op string, stream bool, f func(context.Context, *client.Client, func()) error) error {
	eps, from, err := g.resolveEndpoints(cmd)
	if err != nil {
		return err
	}
	if g.timeout <= 0 {
		return usagef("--timeout must be positive, got %v", g.timeout)
	}
	if g.dialTimeout <= 0 {
		return usagef("--dial-timeout must be positive, got %v", g.dialTimeout)
	}
	retries := unlimitedRetries
	if stream {
		retries = client.DefaultMaxRetries
	}
	c, err := client.New(client.Config{
		Endpoints:      eps,
		DialTimeout:    g.dialTimeout,
		RequestTimeout: g.timeout,
		MaxRetries:     retries,
	})
	if err != nil {
		return usagef("%s: %w", from, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	started := func() {}
	if stream {
		ctx, cancel = context.WithCancel(cmd.Context())
		t := time.AfterFunc(g.timeout, cancel)
		defer t.Stop()
		started = func() { t.Stop() }
	}
	defer cancel()
	if err := f(ctx, c, started); err != nil {
		return g.explain(op, eps, err)
	}
	return nil
}

// explain turns a client error into a message for an operator: what
// happened to op and what it means, with the client's error as detail.
func (g *globals) explain(op string, eps []string, err error) error {
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	switch {
	case errors.Is(err, client.ErrAmbiguous):
		return fmt.Errorf("%s: outcome unknown: the write may or may not have been applied; read the key to find out: %w", op, err)
	case errors.Is(err, client.ErrInvalidArgument):
		return fmt.Errorf("%s: rejected by the server: %s", op, statusMessage(err))
	case errors.Is(err, client.ErrUnavailable) && !answered(err):
		return fmt.Errorf("cannot reach any endpoint (%s) within %v: %w", strings.Join(eps, ","), g.timeout, err)
	case errors.Is(err, client.ErrUnavailable):
		return fmt.Errorf("%s: cluster unavailable within %v: %w", op, g.timeout, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: timed out after %v (--timeout): %w", op, g.timeout, err)
	case status.Code(err) == codes.Unimplemented:
		return fmt.Errorf("%s: not supported by the node: %s", op, statusMessage(err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// cliError is an error a command made itself, already worded for the
// operator (not a client error to explain).
type cliError struct{ err error }

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// answered reports whether err carries a gRPC status, that is whether some
// node answered the call at all.
func answered(err error) bool {
	var s interface{ GRPCStatus() *status.Status }
	return errors.As(err, &s)
}

// statusMessage is the server's own message in err, or err's text.
func statusMessage(err error) string {
	if st, ok := status.FromError(err); ok && st.Message() != "" {
		return st.Message()
	}
	return err.Error()
}

// wantArgs checks that a command got between min and max arguments; usage
// names them, e.g. "KEY [VALUE]".
func wantArgs(cmd *cobra.Command, args []string, min, max int, usage string) error {
	if len(args) < min || len(args) > max {
		return usagef("wrong number of arguments for %s: want %s, got %d", cmd.Name(), usage, len(args))
	}
	return nil
}

// checkKey rejects an empty key here rather than at the server.
func checkKey(key string) error {
	if key == "" {
		return usagef("empty key: a key is at least one byte")
	}
	return nil
}

// parseID parses a shard or node ID argument.
func parseID(what, s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usagef("invalid %s ID %q: want a positive integer", what, s)
	}
	return id, nil
}

// show renders bytes in a message or table cell: as they are when they are
// printable UTF-8, quoted Go-style otherwise (so output stays one line).
func show(b []byte) string {
	s := string(b)
	if s != "" && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// argBytes converts an argument to bytes, empty but not nil for "" (for the
// client nil means "absent" or "no bound").
func argBytes(s string) []byte {
	return append([]byte{}, s...)
}

// jsonText renders bytes for JSON output: the string itself when it is
// valid UTF-8, else its standard base64 encoding with isBase64 set.
func jsonText(b []byte) (s string, isBase64 bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

// writeJSON writes v indented, without escaping <, > and &.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
