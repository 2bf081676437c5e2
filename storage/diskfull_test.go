package storage

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestOpenRefusesFullDisk: a store whose filesystem has less free space
// than the reserve is refused with ErrDiskFull (a node restarted on a full
// disk otherwise neither fails nor serves: Pebble retries its compactions
// in a tight loop), unless the check is disabled.
func TestOpenRefusesFullDisk(t *testing.T) {
	fs := vfs.NewMem()
	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 20, TotalBytes: 64 << 20, UsedBytes: 63 << 20})
	e, err := Open(Options{Dir: "db", FS: fs})
	if !errors.Is(err, ErrDiskFull) {
		if err == nil {
			_ = e.Close()
		}
		t.Fatalf("Open with 1 MiB free: %v, want ErrDiskFull", err)
	}
	t.Logf("Open with 1 MiB free: %v", err)

	e, err = Open(Options{Dir: "db", FS: fs, MinFreeBytes: -1})
	if err != nil {
		t.Fatalf("Open with the check disabled: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 2 << 30, UsedBytes: 1 << 30})
	e, err = Open(Options{Dir: "db", FS: fs})
	if err != nil {
		t.Fatalf("Open with 1 GiB free: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestErrorLogRateLimited: Pebble's error lines are kept, but a line
// repeated in a loop (a compaction failing on a full disk) is written at
// most once per interval, with a count of the lines left out.
func TestErrorLogRateLimited(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1000, 0)
	l := quietLogger{lim: newLogLimiter(&out, func() time.Time { return now })}
	for range 10000 {
		l.Errorf("background error: %s", "no space left on device")
		now = now.Add(time.Millisecond / 10)
	}
	l.Errorf("other error %d", 1)
	now = now.Add(time.Second)
	l.Errorf("background error: %s", "no space left on device")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	t.Logf("%d lines:\n%s", len(lines), out.String())
	if len(lines) > 4 {
		t.Fatalf("10000 repeated errors in one second wrote %d lines, want at most 4", len(lines))
	}
	if !strings.Contains(lines[len(lines)-1], "suppressed") {
		t.Fatalf("last line %q does not count the suppressed lines", lines[len(lines)-1])
	}
	if !strings.Contains(out.String(), "other error 1") {
		t.Fatal("a different error was suppressed")
	}
}
