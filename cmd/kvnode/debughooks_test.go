package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/powerfs"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDebugEnvNoneSet(t *testing.T) {
	var log bytes.Buffer
	opts := strata.Options{Dir: "d"}
	if err := applyDebugEnvFrom(envOf(nil), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.TickInterval != 0 || opts.FS != nil || opts.UnsafeLocalReads || opts.UnsafeLeaseReads {
		t.Fatalf("options changed without any variable set: %+v", opts)
	}
	if log.Len() != 0 {
		t.Fatalf("logged %q without any variable set", log.String())
	}
}

func TestDebugEnvClockRate(t *testing.T) {
	for _, tc := range []struct {
		rate string
		base time.Duration
		want time.Duration
	}{
		{"3.0", 0, 100 * time.Millisecond / 3},
		{"0.5", 0, 200 * time.Millisecond},
		{"2", 50 * time.Millisecond, 25 * time.Millisecond},
		{"1", 0, 100 * time.Millisecond},
	} {
		var log bytes.Buffer
		opts := strata.Options{TickInterval: tc.base}
		if err := applyDebugEnvFrom(envOf(map[string]string{envClockRate: tc.rate}), &log, &opts); err != nil {
			t.Fatalf("rate %s: %v", tc.rate, err)
		}
		if opts.TickInterval != tc.want {
			t.Errorf("rate %s, base %v: tick %v, want %v", tc.rate, tc.base, opts.TickInterval, tc.want)
		}
		if !strings.HasPrefix(log.String(), debugHookBanner+envClockRate) {
			t.Errorf("rate %s: log %q does not announce the hook", tc.rate, log.String())
		}
	}
}

func TestDebugEnvInvalid(t *testing.T) {
	for _, env := range []map[string]string{
		{envClockRate: "fast"},
		{envClockRate: "0"},
		{envClockRate: "-2"},
		{envClockRate: "NaN"},
		{envClockRate: "1000"},
		{envFsyncDelay: "20"},
		{envFsyncDelay: "-5ms"},
		{envFsyncDelay: "1h"},
		{envUnsafeLocalReads: "yes please"},
		{envUnsafeLeaseReads: "maybe"},
		{envPowerLoss: "on a whim"},
	} {
		var log bytes.Buffer
		opts := strata.Options{}
		err := applyDebugEnvFrom(envOf(env), &log, &opts)
		if err == nil {
			t.Errorf("%v: no error", env)
			continue
		}
		for k := range env {
			if !strings.Contains(err.Error(), k) {
				t.Errorf("%v: error %q does not name the variable", env, err)
			}
		}
	}
}

func TestDebugEnvUnsafeLocalReads(t *testing.T) {
	var log bytes.Buffer
	opts := strata.Options{}
	if err := applyDebugEnvFrom(envOf(map[string]string{envUnsafeLocalReads: "1"}), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if !opts.UnsafeLocalReads {
		t.Fatal("UnsafeLocalReads not set")
	}
	if !strings.Contains(log.String(), "MAY BE STALE") {
		t.Fatalf("log %q does not warn", log.String())
	}
	opts = strata.Options{}
	log.Reset()
	if err := applyDebugEnvFrom(envOf(map[string]string{envUnsafeLocalReads: "0"}), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.UnsafeLocalReads || log.Len() != 0 {
		t.Fatalf("=0 set UnsafeLocalReads=%v, logged %q", opts.UnsafeLocalReads, log.String())
	}
}

func TestDebugEnvUnsafeLeaseReads(t *testing.T) {
	var log bytes.Buffer
	opts := strata.Options{}
	if err := applyDebugEnvFrom(envOf(map[string]string{envUnsafeLeaseReads: "1"}), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if !opts.UnsafeLeaseReads || opts.UnsafeLocalReads {
		t.Fatalf("UnsafeLeaseReads=%v UnsafeLocalReads=%v, want only the first", opts.UnsafeLeaseReads, opts.UnsafeLocalReads)
	}
	if !strings.HasPrefix(log.String(), debugHookBanner+envUnsafeLeaseReads) || !strings.Contains(log.String(), "MAY BE STALE") {
		t.Fatalf("log %q does not announce and warn", log.String())
	}
	opts = strata.Options{}
	log.Reset()
	if err := applyDebugEnvFrom(envOf(map[string]string{envUnsafeLeaseReads: "0"}), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.UnsafeLeaseReads || log.Len() != 0 {
		t.Fatalf("=0 set UnsafeLeaseReads=%v, logged %q", opts.UnsafeLeaseReads, log.String())
	}
}

func TestDebugEnvFsyncDelay(t *testing.T) {
	const delay = 30 * time.Millisecond
	var log bytes.Buffer
	mem := vfs.NewMem()
	opts := strata.Options{FS: mem}
	if err := applyDebugEnvFrom(envOf(map[string]string{envFsyncDelay: "30ms"}), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.FS == mem {
		t.Fatal("FS not wrapped")
	}
	if u, ok := opts.FS.(interface{ Unwrap() vfs.FS }); !ok || u.Unwrap() != mem {
		t.Fatal("wrapped FS does not unwrap to the original")
	}
	if !strings.Contains(log.String(), envFsyncDelay) {
		t.Fatalf("log %q does not announce the hook", log.String())
	}
	f, err := opts.FS.Create("f", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	for name, sync := range map[string]func() error{
		"Sync":     f.Sync,
		"SyncData": f.SyncData,
		"SyncTo":   func() error { _, err := f.SyncTo(4); return err },
	} {
		start := time.Now()
		if err := sync(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if took := time.Since(start); took < delay {
			t.Errorf("%s took %v, want >= %v", name, took, delay)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Reads are not slowed and see the data.
	r, err := opts.FS.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 4)
	if _, err := r.ReadAt(buf, 0); err != nil || string(buf) != "data" {
		t.Fatalf("read %q, %v", buf, err)
	}

	// Without an FS, the OS filesystem is wrapped.
	opts = strata.Options{}
	if err := applyDebugEnvFrom(envOf(map[string]string{envFsyncDelay: "5ms"}), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if s, ok := opts.FS.(*slowSyncFS); !ok || s.FS != vfs.Default {
		t.Fatalf("FS = %T, want a slowSyncFS over vfs.Default", opts.FS)
	}
	// A zero delay is valid and changes nothing.
	opts = strata.Options{}
	if err := applyDebugEnvFrom(envOf(map[string]string{envFsyncDelay: "0s"}), &log, &opts); err != nil || opts.FS != nil {
		t.Fatalf("0s: FS %T, err %v", opts.FS, err)
	}
}

func TestDebugEnvPowerLoss(t *testing.T) {
	var log bytes.Buffer
	dir := t.TempDir()
	// A file created by a killed node whose directory it never synced.
	if err := os.WriteFile(filepath.Join(dir, powerLossJournal), []byte(filepath.Join(dir, "000007.sst")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "000007.sst"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := strata.Options{Dir: dir}
	if err := applyDebugEnvFrom(envOf(map[string]string{envPowerLoss: "1"}), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "000007.sst")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file the killed node had not made durable is still there: %v", err)
	}
	if p, ok := opts.FS.(*powerfs.FS); !ok || p.Unwrap() != vfs.Default {
		t.Fatalf("FS = %T, want a powerfs.FS over vfs.Default", opts.FS)
	}
	if !strings.HasPrefix(log.String(), debugHookBanner+envPowerLoss+"=1") {
		t.Fatalf("log %q does not announce the hook", log.String())
	}
	// With the slow disk too, the power-loss filesystem wraps it.
	opts = strata.Options{}
	if err := applyDebugEnvFrom(envOf(map[string]string{envPowerLoss: "1", envFsyncDelay: "1ms"}), &log, &opts); err != nil {
		t.Fatal(err)
	}
	if p, ok := opts.FS.(*powerfs.FS); !ok {
		t.Fatalf("FS = %T, want a powerfs.FS", opts.FS)
	} else if _, ok := p.Unwrap().(*slowSyncFS); !ok {
		t.Fatalf("powerfs wraps %T, want the slow disk", p.Unwrap())
	}
	opts = strata.Options{}
	log.Reset()
	if err := applyDebugEnvFrom(envOf(map[string]string{envPowerLoss: "0"}), &log, &opts); err != nil || opts.FS != nil || log.Len() != 0 {
		t.Fatalf("=0: FS %T, err %v, logged %q", opts.FS, err, log.String())
	}
}
