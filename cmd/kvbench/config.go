package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Config is one benchmark run: the target, the workload and the load.
type Config struct {
	// System is "strata" or "etcd". Default: strata.
	System string
	// Endpoints are the target's client addresses (host:port). Required.
	Endpoints []string
	// Workload is put, get, mixed, scan, batch, cas or load. Default: put.
	Workload string
	// ReadLevel of get, mixed and scan reads: linearizable (default) or
	// serializable (any replica answers from local state; may be stale).
	ReadLevel string
	// ReadRatio is the share of reads in mixed: 0.5 is YCSB A, 0.95 YCSB
	// B. Default: 0.5.
	ReadRatio float64
	// ScanRatio is the share of scans in scan (the rest are puts, as in
	// YCSB E). Default: 0.95.
	ScanRatio float64
	// ScanLength is the longest scan; each scan reads a uniform 1..
	// ScanLength keys, as in YCSB E. Default: 100.
	ScanLength int
	// Clients is the number of concurrent clients. Default: 16.
	Clients int
	// Conns is the number of client connections the clients share
	// round-robin. Default: min(Clients, 4).
	Conns int
	// Ops bounds the run by operations (0: by Duration).
	Ops int64
	// Duration bounds the run by time when Ops is 0. Default: 10s.
	Duration time.Duration
	// KeySpace is the number of distinct keys. Default: 100000.
	KeySpace int64
	// KeySize and ValueSize are in bytes. Defaults: 16 and 128.
	KeySize, ValueSize int
	// Dist is the key distribution: uniform or zipfian. Default: uniform.
	Dist string
	// Rate, if > 0, runs open-loop: requests are due at fixed intervals
	// of 1/Rate seconds, and latency counts from when a request was due.
	// Default: 0, closed loop (each client sends its next request when
	// the last one returned).
	Rate float64
	// BatchSize is the keys of one batch call. Default: 1000.
	BatchSize int
	// HotKeys is the number of keys cas contends on. Default: 8.
	HotKeys int64
	// Timeout bounds one operation. Default: 10s.
	Timeout time.Duration
	// ProbeTimeout bounds the probe of the target before the run.
	// Default: 5s.
	ProbeTimeout time.Duration
	// Seed seeds the key and value generators (0: from the clock).
	Seed uint64
	// Label names the run in the output. Default: the workload.
	Label string
	// JSON prints the result as one JSON object instead of a table.
	JSON bool
	// JSONOut, if set, is a file the result is appended to as one JSON
	// line (the table still goes to stdout unless JSON is set).
	JSONOut string
	// Progress: auto (a bar when stderr is a terminal), on or off.
	Progress string
	// CPUProfile is where to write kvbench's own CPU profile ("": none).
	CPUProfile string
}

var workloads = []string{"put", "get", "mixed", "scan", "batch", "cas", "load"}

// parseFlags parses args into a Config and validates it. Its errors are one
// line each.
func parseFlags(args []string, stderr io.Writer) (*Config, error) {
	cfg := &Config{}
	fs := flag.NewFlagSet("kvbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kvbench [flags]   (a benchmark run)\n       kvbench summarize --runs FILE [--json OUT] [--md OUT]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var endpoints string
	fs.StringVar(&cfg.System, "system", "strata", "target system: strata or etcd")
	fs.StringVar(&endpoints, "endpoints", "", "comma-separated client addresses host:port of the target (required)")
	fs.StringVar(&cfg.Workload, "workload", "put", "put, get, mixed, scan, batch, cas or load (fills the key space)")
	fs.StringVar(&cfg.ReadLevel, "read", readLinearizable, "read level of reads: linearizable or serializable")
	fs.Float64Var(&cfg.ReadRatio, "read-ratio", 0.5, "share of reads in mixed (0.5: YCSB A, 0.95: YCSB B)")
	fs.Float64Var(&cfg.ScanRatio, "scan-ratio", 0.95, "share of scans in scan, the rest puts (YCSB E: 0.95)")
	fs.IntVar(&cfg.ScanLength, "scan-length", 100, "longest scan; each reads uniform 1..N keys")
	fs.IntVar(&cfg.Clients, "clients", 16, "concurrent clients")
	fs.IntVar(&cfg.Conns, "conns", 0, "client connections shared by the clients (default min(clients, 4))")
	fs.Int64Var(&cfg.Ops, "ops", 0, "total operations (0: run for --duration)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "run time when --ops is 0")
	fs.Int64Var(&cfg.KeySpace, "keys", 100000, "key space: number of distinct keys")
	fs.IntVar(&cfg.KeySize, "key-size", 16, "key size in bytes")
	fs.IntVar(&cfg.ValueSize, "value-size", 128, "value size in bytes")
	fs.StringVar(&cfg.Dist, "dist", "uniform", "key distribution: uniform or zipfian (YCSB, theta 0.99)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: offered operations per second in total (0: closed loop)")
	fs.IntVar(&cfg.BatchSize, "batch-size", 1000, "keys per batch call (batch and load)")
	fs.Int64Var(&cfg.HotKeys, "hot-keys", 8, "keys that cas contends on")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "timeout of one operation")
	fs.DurationVar(&cfg.ProbeTimeout, "probe-timeout", 5*time.Second, "timeout of the probe of the target before the run")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the generators (0: from the clock)")
	fs.StringVar(&cfg.Label, "label", "", "name of the run in the output (default: the workload)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the result as JSON")
	fs.StringVar(&cfg.JSONOut, "json-out", "", "also append the result as one JSON line to this file")
	fs.StringVar(&cfg.Progress, "progress", "auto", "progress bar: auto (when stderr is a terminal), on or off")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write kvbench's own CPU profile (go tool pprof) of the run to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageErr(oneLine(err.Error()))
	}
	if fs.NArg() > 0 {
		return nil, usageErr(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	for _, ep := range strings.Split(endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			cfg.Endpoints = append(cfg.Endpoints, ep)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, usageErr(err.Error())
	}
	return cfg, nil
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (see 'kvbench --help')" }

func usageErr(msg string) error { return &usageError{msg} }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// validate checks cfg and fills in the defaults that depend on other
// fields.
func (c *Config) validate() error {
	switch c.System {
	case "strata", "etcd":
	default:
		return fmt.Errorf("--system %q: want strata or etcd", c.System)
	}
	if len(c.Endpoints) == 0 {
		return errors.New("--endpoints is required: the target's client addresses, host:port,...")
	}
	for _, ep := range c.Endpoints {
		if i := strings.LastIndexByte(ep, ':'); i <= 0 || i == len(ep)-1 || strings.Contains(ep, "://") {
			return fmt.Errorf("--endpoints: %q is not host:port", ep)
		}
	}
	known := false
	for _, w := range workloads {
		known = known || w == c.Workload
	}
	if !known {
		return fmt.Errorf("--workload %q: want one of %s", c.Workload, strings.Join(workloads, ", "))
	}
	switch c.ReadLevel {
	case readLinearizable:
	case readSerializable:
	default:
		return fmt.Errorf("--read %q: want linearizable or serializable", c.ReadLevel)
	}
	switch {
	case c.ReadRatio < 0 || c.ReadRatio > 1:
		return fmt.Errorf("--read-ratio %g: want 0 to 1", c.ReadRatio)
	case c.ScanRatio < 0 || c.ScanRatio > 1:
		return fmt.Errorf("--scan-ratio %g: want 0 to 1", c.ScanRatio)
	case c.ScanLength < 1:
		return fmt.Errorf("--scan-length %d: want >= 1", c.ScanLength)
	case c.Clients < 1:
		return fmt.Errorf("--clients %d: want >= 1", c.Clients)
	case c.Conns < 0:
		return fmt.Errorf("--conns %d: want >= 1", c.Conns)
	case c.Ops < 0:
		return fmt.Errorf("--ops %d: want >= 0", c.Ops)
	case c.Ops == 0 && c.Duration <= 0 && c.Workload != "load":
		return fmt.Errorf("--duration %s: want > 0 (or give --ops)", c.Duration)
	case c.KeySpace < 1:
		return fmt.Errorf("--keys %d: want >= 1", c.KeySpace)
	case c.KeySize < minKeySize(c.KeySpace) || c.KeySize > 4096:
		return fmt.Errorf("--key-size %d: want %d to 4096 for %d keys", c.KeySize, minKeySize(c.KeySpace), c.KeySpace)
	case c.ValueSize < 16 || c.ValueSize > 1<<20:
		return fmt.Errorf("--value-size %d: want 16 to 1048576", c.ValueSize)
	case c.Rate < 0:
		return fmt.Errorf("--rate %g: want >= 0", c.Rate)
	case c.BatchSize < 1:
		return fmt.Errorf("--batch-size %d: want >= 1", c.BatchSize)
	case c.Workload == "batch" && int64(c.BatchSize) > c.KeySpace:
		return fmt.Errorf("--batch-size %d: a batch names distinct keys, so it needs --keys >= %d", c.BatchSize, c.BatchSize)
	case c.HotKeys < 1 || c.HotKeys > c.KeySpace:
		return fmt.Errorf("--hot-keys %d: want 1 to --keys (%d)", c.HotKeys, c.KeySpace)
	case c.Timeout <= 0 || c.ProbeTimeout <= 0:
		return errors.New("--timeout and --probe-timeout must be > 0")
	}
	if c.Workload == "load" && c.Rate > 0 {
		return errors.New("--rate: load always runs closed-loop")
	}
	if _, err := newChooser(c.Dist, 1); err != nil {
		return fmt.Errorf("--dist: %v", err)
	}
	switch c.Progress {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("--progress %q: want auto, on or off", c.Progress)
	}
	if c.Conns == 0 {
		c.Conns = min(c.Clients, 4)
	}
	if c.Conns > c.Clients {
		c.Conns = c.Clients
	}
	if c.Label == "" {
		c.Label = c.Workload
	}
	return nil
}
