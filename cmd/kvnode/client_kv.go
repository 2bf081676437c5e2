package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/strata-kv/strata/client"
	"github.com/strata-kv/strata/txn/tso"
)

// maxStdinValue bounds a value read from stdin, so that a mistaken pipe
// does not exhaust memory. (The server's own limit is lower: 1 MiB.)
const maxStdinValue = 16 << 20

// defaultScanLimit is scan's --limit default.
const defaultScanLimit = 1000

func addKVCommands(root *cobra.Command, g *globals) {
	for _, c := range []*cobra.Command{newGetCmd(g), newPutCmd(g), newDelCmd(g), newScanCmd(g), newCASCmd(g)} {
		c.GroupID = groupKV
		root.AddCommand(c)
	}
}

func newGetCmd(g *globals) *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of a key",
		Long: `Print the value of a key, followed by a newline.

An absent key is an error: "kvnode: key not found: KEY" on stderr and exit
status 1. The read is linearizable.

--at TS reads the value the key had at a past timestamp, within the
cluster's history retention (1 hour by default). TS is a timestamp as
kvnode prints them (1733230000123.5: Unix milliseconds and a logical
counter), its integer form, or an RFC 3339 time.`,
		Example: `  kvnode get greeting
  kvnode get greeting --endpoints 10.0.0.1:7370
  kvnode get greeting --at 2026-12-03T14:00:00Z
  if v=$(kvnode get lock 2>/dev/null); then echo "held by $v"; fi`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := wantArgs(cmd, args, 1, 1, "KEY"); err != nil {
				return err
			}
			if _, err := parseAt(at); err != nil {
				return err
			}
			return checkKey(args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key := argBytes(args[0])
			ts, _ := parseAt(at)
			var v []byte
			err := g.call(cmd, "get "+show(key), func(ctx context.Context, c *client.Client) (err error) {
				if ts != 0 {
					v, err = c.GetAt(ctx, key, ts)
				} else {
					v, err = c.Get(ctx, key)
				}
				if errors.Is(err, client.ErrNotFound) {
					return &cliError{fmt.Errorf("key not found: %s", show(key))}
				}
				return err
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if _, err := w.Write(v); err != nil {
				return err
			}
			_, err = io.WriteString(w, "\n")
			return err
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "read at this past timestamp (printed form, integer or RFC 3339)")
	return cmd
}

// parseAt parses an --at flag; "" is 0 (now).
func parseAt(s string) (tso.Timestamp, error) {
	if s == "" {
		return 0, nil
	}
	ts, err := tso.Parse(s)
	if err != nil {
		return 0, usagef("--at %q: %v", s, err)
	}
	if ts == 0 {
		return 0, usagef("--at must be a timestamp after 0")
	}
	return ts, nil
}

func newPutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "put KEY [VALUE]",
		Short: "Set a key to a value",
		Long: `Set a key to a value and print OK.

Without VALUE the value is read from stdin, byte for byte: a trailing
newline is kept (use printf or echo -n to leave it out). Keys are 1 to 4096
bytes and values up to 1 MiB; the server rejects larger ones and nothing is
written.

If the outcome is unknown (a node failed while writing), the command fails
saying the write may or may not have been applied: read the key to find out.`,
		Example: `  kvnode put greeting hello
  kvnode put config/app < app.json
  printf 'no newline' | kvnode put note`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := wantArgs(cmd, args, 1, 2, "KEY [VALUE]"); err != nil {
				return err
			}
			return checkKey(args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key := argBytes(args[0])
			var value []byte
			if len(args) == 2 {
				value = argBytes(args[1])
			} else {
				var err error
				if value, err = readValue(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			err := g.call(cmd, "put "+show(key), func(ctx context.Context, c *client.Client) error {
				return c.Put(ctx, key, value)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "OK")
			return err
		},
	}
}

// readValue reads a value from r, up to maxStdinValue bytes.
func readValue(r io.Reader) ([]byte, error) {
	v, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), maxStdinValue+1))
	if err != nil {
		return nil, fmt.Errorf("reading the value from stdin: %w", err)
	}
	if len(v) > maxStdinValue {
		return nil, fmt.Errorf("value on stdin is over %d MiB; the server accepts at most 1 MiB", maxStdinValue>>20)
	}
	return v, nil
}

func newDelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "del KEY",
		Aliases: []string{"delete"},
		Short:   "Delete a key",
		Long: `Delete a key and print OK. Deleting an absent key is not an error.

If the outcome is unknown (a node failed while writing), the command fails
saying the write may or may not have been applied.`,
		Example: `  kvnode del greeting`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := wantArgs(cmd, args, 1, 1, "KEY"); err != nil {
				return err
			}
			return checkKey(args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key := argBytes(args[0])
			err := g.call(cmd, "del "+show(key), func(ctx context.Context, c *client.Client) error {
				return c.Delete(ctx, key)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "OK")
			return err
		},
	}
}

// scanOpts are scan's flags.
type scanOpts struct {
	from, to string
	limit    int
	keysOnly bool
	json     bool
	at       string // --at: a past timestamp to read at
}

// jsonKV is one pair of scan --json. A key or value that is not valid
// UTF-8 is base64 (standard encoding) with key_base64 or value_base64 true.
// value is left out by --keys-only.
type jsonKV struct {
	Key         string  `json:"key"`
	KeyBase64   bool    `json:"key_base64,omitempty"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 bool    `json:"value_base64,omitempty"`
}

func newScanCmd(g *globals) *cobra.Command {
	var o scanOpts
	cmd := &cobra.Command{
		Use:   "scan [PREFIX | --from START --to END]",
		Short: "List keys and values by prefix or range, in key order",
		Long: `List the keys starting with PREFIX, or the keys in [START, END), in key
order, one "key<TAB>value" line each (one "key" line with --keys-only).
Without PREFIX, --from or --to it lists from the first key. --to alone
starts at the first key; --from alone goes to the last one.

Lines show keys and values byte for byte, so values holding tabs or
newlines make them ambiguous: use --json for such data. --json prints an
array of {"key": ..., "value": ...} objects; a key or value that is not
valid UTF-8 is printed in standard base64 and marked with "key_base64": true
or "value_base64": true.

At most --limit pairs are printed (0: no limit). The scan is one
consistent snapshot: every shard is read at one timestamp, taken when it
begins, or the past timestamp --at gives (as for kvnode get --at).

Pairs are printed as they arrive (the node streams about 1 MiB at a time),
so a scan of any size runs in little memory. --timeout bounds the wait for
the first pair and then for each part of the stream, not the whole scan;
if the scan fails midway, the lines printed so far stand and the command
fails.`,
		Example: `  kvnode scan user/
  kvnode scan user/ --keys-only
  kvnode scan --from a --to m --limit 10
  kvnode scan user/ --at 1733230000123.5
  kvnode scan --json | jq -r '.[].key'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := wantArgs(cmd, args, 0, 1, "[PREFIX]"); err != nil {
				return err
			}
			flags := cmd.Flags()
			if len(args) == 1 && (flags.Changed("from") || flags.Changed("to")) {
				return usagef("give either PREFIX or --from/--to, not both")
			}
			if flags.Changed("to") {
				if o.to == "" {
					return usagef("--to must not be empty (leave it out to scan to the last key)")
				}
				if o.from >= o.to {
					return usagef("--to %s must be after --from %s", show([]byte(o.to)), show([]byte(o.from)))
				}
			}
			if o.limit < 0 {
				return usagef("--limit must be 0 (no limit) or more, got %d", o.limit)
			}
			_, err := parseAt(o.at)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			start, end := argBytes(o.from), []byte(nil)
			if cmd.Flags().Changed("to") {
				end = argBytes(o.to)
			}
			if len(args) == 1 {
				start, end = argBytes(args[0]), prefixEnd([]byte(args[0]))
			}
			// Pairs are printed as they come: a scan of any size holds a
			// message of about 1 MiB at a time. If it fails midway, what
			// was printed stands and the command fails.
			out := newKVPrinter(cmd.OutOrStdout(), o)
			err := g.callStream(cmd, "scan", func(ctx context.Context, c *client.Client, started func()) error {
				ts, _ := parseAt(o.at)
				for kv, err := range c.All(ctx, start, end, client.ScanOptions{Limit: o.limit, KeysOnly: o.keysOnly, Timestamp: ts}) {
					if err != nil {
						return err
					}
					started()
					if err := out.print(kv); err != nil {
						return err
					}
				}
				return nil
			})
			if ferr := out.finish(err == nil); err == nil {
				err = ferr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "first key of the range")
	f.StringVar(&o.to, "to", "", "first key after the range (default: no upper bound)")
	f.IntVar(&o.limit, "limit", defaultScanLimit, "most pairs printed; 0 for no limit")
	f.BoolVar(&o.keysOnly, "keys-only", false, "print keys without values")
	f.BoolVar(&o.json, "json", false, "print a JSON array of {key, value} objects")
	f.StringVar(&o.at, "at", "", "read at this past timestamp (printed form, integer or RFC 3339)")
	return cmd
}

// kvPrinter prints scan's pairs one by one, as lines or as one JSON array.
type kvPrinter struct {
	w    *bufio.Writer
	o    scanOpts
	n    int // pairs printed
	buf  bytes.Buffer
	json *json.Encoder // into buf
}

func newKVPrinter(w io.Writer, o scanOpts) *kvPrinter {
	p := &kvPrinter{w: bufio.NewWriter(w), o: o}
	p.json = json.NewEncoder(&p.buf)
	p.json.SetEscapeHTML(false)
	p.json.SetIndent("  ", "  ") // as writeJSON indents an array's items
	return p
}

func (p *kvPrinter) print(kv client.KV) error {
	defer func() { p.n++ }()
	if !p.o.json {
		p.w.Write(kv.Key)
		if !p.o.keysOnly {
			p.w.WriteByte('\t')
			p.w.Write(kv.Value)
		}
		return p.w.WriteByte('\n')
	}
	var item jsonKV
	item.Key, item.KeyBase64 = jsonText(kv.Key)
	if !p.o.keysOnly {
		var v string
		v, item.ValueBase64 = jsonText(kv.Value)
		item.Value = &v
	}
	p.buf.Reset()
	if err := p.json.Encode(item); err != nil {
		return err
	}
	if p.n == 0 {
		p.w.WriteString("[\n  ")
	} else {
		p.w.WriteString(",\n  ")
	}
	_, err := p.w.Write(bytes.TrimSuffix(p.buf.Bytes(), []byte("\n")))
	return err
}

// finish ends the output: a JSON array is closed if complete.
func (p *kvPrinter) finish(complete bool) error {
	if p.o.json && complete {
		if p.n == 0 {
			p.w.WriteString("[]\n")
		} else {
			p.w.WriteString("\n]\n")
		}
	}
	return p.w.Flush()
}

// prefixEnd returns the first key after every key starting with p, or nil
// (no bound) when there is none.
func prefixEnd(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// casOpts are cas's flags.
type casOpts struct {
	absent, delete bool
}

func newCASCmd(g *globals) *cobra.Command {
	var o casOpts
	cmd := &cobra.Command{
		Use:   "cas KEY OLD NEW",
		Short: "Compare and swap: set a key only if it has an expected value",
		Long: `Set KEY to NEW only if its value is OLD, atomically, and print true if it
did, false if not.

--absent expects the key to be absent instead of OLD (then give KEY NEW);
--delete deletes the key when it matches instead of setting NEW (then give
KEY OLD). An empty argument is the empty value, which is not absent.

Exit status: 0 if swapped (prints true), 2 if not (prints false), 1 on error.
If the outcome is unknown the command fails saying the write may or may not
have been applied.`,
		Example: `  kvnode cas counter 41 42
  kvnode cas lock --absent me            # take a lock
  kvnode cas lock me --delete            # release it, if still ours
  if kvnode cas lock --absent me >/dev/null; then echo locked; fi`,
		Args: func(cmd *cobra.Command, args []string) error {
			n, usage := 3, "KEY OLD NEW"
			switch {
			case o.absent && o.delete:
				n, usage = 1, "KEY (with --absent and --delete)"
			case o.absent:
				n, usage = 2, "KEY NEW (with --absent)"
			case o.delete:
				n, usage = 2, "KEY OLD (with --delete)"
			}
			if err := wantArgs(cmd, args, n, n, usage); err != nil {
				return err
			}
			return checkKey(args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key := argBytes(args[0])
			rest := args[1:]
			var old, new []byte // nil: absent, delete
			if !o.absent {
				old, rest = argBytes(rest[0]), rest[1:]
			}
			if !o.delete {
				new = argBytes(rest[0])
			}
			var swapped bool
			err := g.call(cmd, "cas "+show(key), func(ctx context.Context, c *client.Client) (err error) {
				swapped, err = c.CompareAndSwap(ctx, key, old, new)
				return err
			})
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(cmd.OutOrStdout(), swapped); err != nil {
				return err
			}
			if !swapped {
				return &exitCodeError{code: exitNotSwapped}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.absent, "absent", false, "expect the key to be absent (no OLD argument)")
	cmd.Flags().BoolVar(&o.delete, "delete", false, "delete the key when it matches (no NEW argument)")
	return cmd
}
