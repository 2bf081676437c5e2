package powerfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// readAll reads name through fs.
func readAll(t *testing.T, fs vfs.FS, name string) string {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// onDisk is what a kill leaves of name: the OS file.
func onDisk(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, f vfs.File, s string) {
	t.Helper()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func TestUnsyncedWritesAreLostSyncedSurvive(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	fs := New(vfs.Default)
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "synced")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	write(t, f, "+unsynced")

	// Reads see the unsynced writes, through this handle and others.
	buf := make([]byte, 32)
	n, err := f.ReadAt(buf, 0)
	if !errors.Is(err, io.EOF) || string(buf[:n]) != "synced+unsynced" {
		t.Fatalf("ReadAt: %q, %v", buf[:n], err)
	}
	if got := readAll(t, fs, name); got != "synced+unsynced" {
		t.Fatalf("another handle reads %q", got)
	}
	if fi, err := fs.Stat(name); err != nil || fi.Size() != 15 {
		t.Fatalf("Stat: %v, %v", fi, err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 15 {
		t.Fatalf("File.Stat: %v, %v", fi, err)
	}
	if got := fs.UnsyncedBytes(); got != 9 {
		t.Fatalf("UnsyncedBytes = %d, want 9", got)
	}

	// A kill keeps what the OS has: the synced data only. A new FS over
	// the directory (the restarted process) reads just that.
	if got := onDisk(t, name); got != "synced" {
		t.Fatalf("on disk before the sync: %q, want only the synced data", got)
	}
	if got := readAll(t, New(vfs.Default), name); got != "synced" {
		t.Fatalf("after a simulated kill: %q", got)
	}

	// SyncTo promises nothing, so nothing reaches the disk.
	if full, err := f.SyncTo(15); full || err != nil {
		t.Fatalf("SyncTo: %v, %v", full, err)
	}
	if got := onDisk(t, name); got != "synced" {
		t.Fatalf("on disk after SyncTo: %q", got)
	}
	if err := f.SyncData(); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, name); got != "synced+unsynced" {
		t.Fatalf("on disk after SyncData: %q", got)
	}
	if got := fs.UnsyncedBytes(); got != 0 {
		t.Fatalf("UnsyncedBytes after the sync = %d", got)
	}
	// A close does not sync.
	write(t, f, "!")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, name); got != "synced+unsynced" {
		t.Fatalf("a close synced: %q", got)
	}
	if got := readAll(t, fs, name); got != "synced+unsynced!" {
		t.Fatalf("after close: %q", got)
	}
}

// TestOverwriteInPlace is how Pebble recycles a WAL: an old synced file
// renamed and overwritten from its start.
func TestOverwriteInPlace(t *testing.T) {
	dir := t.TempDir()
	old, name := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	if err := os.WriteFile(old, []byte("AAAAAAAAAA"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := New(nil)
	f, err := fs.ReuseForWrite(old, name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "BB")
	if _, err := f.WriteAt([]byte("C"), 12); err != nil { // past the end: a hole
		t.Fatal(err)
	}
	if got, want := readAll(t, fs, name), "BBAAAAAAAA\x00\x00C"; got != want {
		t.Fatalf("reads %q, want %q", got, want)
	}
	if got := onDisk(t, name); got != "AAAAAAAAAA" {
		t.Fatalf("on disk %q", got)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := onDisk(t, name), "BBAAAAAAAA\x00\x00C"; got != want {
		t.Fatalf("on disk after sync %q, want %q", got, want)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNamesFollowUnsyncedData: a rename and a link carry the unsynced
// writes, a remove drops them, and a sync through a reader after the
// writer closed still writes them.
func TestNamesFollowUnsyncedData(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	fs := New(vfs.Default)
	f, err := fs.Create(a, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, "data")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if err := fs.Link(b, c); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fs, b); got != "data" {
		t.Fatalf("renamed: %q", got)
	}
	if got := readAll(t, fs, c); got != "data" {
		t.Fatalf("linked: %q", got)
	}
	if got := onDisk(t, c); got != "" {
		t.Fatalf("on disk %q", got)
	}
	r, err := fs.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write through a reader: %v", err)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if got := onDisk(t, b); got != "data" {
		t.Fatalf("after a sync through a reader: %q", got)
	}

	// Remove forgets unsynced data.
	g, err := fs.Create(a, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	write(t, g, "gone")
	g.Close()
	if err := fs.Remove(a); err != nil {
		t.Fatal(err)
	}
	if got := fs.UnsyncedBytes(); got != 0 {
		t.Fatalf("UnsyncedBytes after remove = %d", got)
	}
	if _, err := fs.Stat(a); err == nil {
		t.Fatal("removed file still there")
	}
	// Removed while open, written, closed: nothing is kept.
	h, err := fs.Create(a, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove(a); err != nil {
		t.Fatal(err)
	}
	write(t, h, "orphan")
	ino := h.(*file).ino
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if ino.mu.pending != nil || ino.mu.keeper != nil {
		t.Fatalf("a removed, closed file keeps %d writes and handle %v", len(ino.mu.pending), ino.mu.keeper)
	}
}

const childEnv = "POWERFS_TEST_PEBBLE_DIR"

// TestMain runs the child of TestPebbleKilled when childEnv is set.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := pebbleChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(3) // not reached: the child kills itself
	}
	os.Exit(m.Run())
}

// pebbleChild writes "synced" with a sync and "unsynced" without, waits
// until Pebble has written the second to its WAL file (in memory), and
// kills itself with SIGKILL.
func pebbleChild(dir string) error {
	fs, err := Open(vfs.Default, Options{EntryJournal: filepath.Join(dir, ".powerfs-entries")})
	if err != nil {
		return err
	}
	db, err := pebble.Open(dir, &pebble.Options{FS: fs})
	if err != nil {
		return err
	}
	if err := db.Set([]byte("synced"), []byte("1"), pebble.Sync); err != nil {
		return err
	}
	before := fs.UnsyncedBytes()
	// Pebble's WAL writer writes a block out without a sync only once it
	// is full (32 KiB): a large value fills a few.
	if err := db.Set([]byte("unsynced"), make([]byte, 256<<10), pebble.NoSync); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for fs.UnsyncedBytes() <= before {
		if time.Now().After(deadline) {
			return errors.New("the unsynced write never reached the WAL file")
		}
		time.Sleep(time.Millisecond) // a poll of a condition, not a wait for time to pass
	}
	return syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// TestPebbleKilled runs Pebble on the filesystem in a child process that
// SIGKILLs itself: after it, Pebble opens the directory, the synced write
// is there and the write that reached the WAL file but was not synced
// (which a plain kill would keep in the OS cache) is not.
func TestPebbleKilled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, out)
	}
	// As kvnode restarts: the journal's entries go first.
	fs, err := Open(vfs.Default, Options{EntryJournal: filepath.Join(dir, ".powerfs-entries")})
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, closer, err := db.Get([]byte("synced")); err != nil {
		t.Fatalf("synced write lost: %v", err)
	} else {
		closer.Close()
	}
	if _, closer, err := db.Get([]byte("unsynced")); !errors.Is(err, pebble.ErrNotFound) {
		if err == nil {
			closer.Close()
		}
		t.Fatalf("unsynced write survived the kill: %v", err)
	}
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	_, err := os.Stat(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestEntriesDurableAtDirSync: with a journal, a file created since its
// directory's last sync is gone after a kill (the next Open), synced data
// or not; a rename keeps the durability of the entry it moves.
func TestEntriesDurableAtDirSync(t *testing.T) {
	dir := t.TempDir()
	journal := filepath.Join(dir, ".journal")
	fs, err := Open(vfs.Default, Options{EntryJournal: journal})
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string) {
		f, err := fs.Create(filepath.Join(dir, name), vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		write(t, f, name)
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	create("early")
	create("moved")
	d, err := fs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	create("late")     // after the directory's sync
	create("late-tmp") // renamed: still not durable
	if err := fs.Rename(filepath.Join(dir, "late-tmp"), filepath.Join(dir, "late-renamed")); err != nil {
		t.Fatal(err)
	}
	if err := fs.Rename(filepath.Join(dir, "moved"), filepath.Join(dir, "moved-renamed")); err != nil {
		t.Fatal(err)
	}
	if err := fs.Link(filepath.Join(dir, "early"), filepath.Join(dir, "early-link")); err != nil {
		t.Fatal(err)
	}
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, ".journal") || len(names) != 5 {
		t.Fatalf("List = %v, want 5 names and no journal", names)
	}

	// The kill: the next process opens the directory.
	if _, err := Open(vfs.Default, Options{EntryJournal: journal}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"early": true, "moved-renamed": true,
		"late": false, "late-renamed": false, "early-link": false,
	} {
		if got := exists(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s exists = %v after the kill, want %v", name, got, want)
		}
	}
	d.Close()
}
