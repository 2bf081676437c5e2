package tso

import (
	"errors"
	"testing"
	"time"
)

func TestTimestampParts(t *testing.T) {
	wall := time.Date(2026, 12, 3, 13, 16, 57, 123_456_789, time.UTC)
	ts := FromTime(wall)
	if got, want := ts.Physical(), uint64(wall.UnixMilli()); got != want {
		t.Fatalf("Physical = %d, want %d", got, want)
	}
	if ts.Logical() != 0 {
		t.Fatalf("Logical = %d, want 0", ts.Logical())
	}
	if got, want := ts.WallTime(), wall.Truncate(time.Millisecond); !got.Equal(want) {
		t.Fatalf("WallTime = %v, want %v", got, want)
	}
	if n := ts.Next(); n.Physical() != ts.Physical() || n.Logical() != 1 || !(ts < n) {
		t.Fatalf("Next = %v after %v", n, ts)
	}
	full := New(ts.Physical(), MaxLogical)
	if n := full.Next(); n.Physical() != ts.Physical()+1 || n.Logical() != 0 {
		t.Fatalf("Next of a full logical counter = %v, want %d.0", n, ts.Physical()+1)
	}
	if Max.Next() != Max {
		t.Fatalf("Max.Next() = %v", Max.Next())
	}
	if FromTime(time.Unix(-1, 0)) != Zero {
		t.Fatalf("a time before the epoch should map to Zero")
	}
	if New(MaxPhysical+5, MaxLogical+5) != Max {
		t.Fatalf("New should clamp its parts")
	}
}

func TestTimestampOrderFollowsWallTime(t *testing.T) {
	a := FromTime(time.UnixMilli(1733230000123))
	b := New(a.Physical(), 7)
	c := FromTime(time.UnixMilli(1733230000124))
	if !(a < b && b < c) {
		t.Fatalf("want %v < %v < %v", a, b, c)
	}
}

func TestParse(t *testing.T) {
	ts := New(1733230000123, 5)
	for _, tc := range []struct {
		in   string
		want Timestamp
	}{
		{"1733230000123.5", ts},
		{"454353018275971077", Timestamp(454353018275971077)},
		{"0", Zero},
		{"0.0", Zero},
		{"70368744177663.262143", Max},
		{"2024-12-03T12:46:40.123Z", FromTime(time.UnixMilli(1733230000123))},
		{"2024-12-03T13:46:40.123456+01:00", FromTime(time.UnixMilli(1733230000123))},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if ts.String() != "1733230000123.5" {
		t.Errorf("String = %q", ts.String())
	}
	for _, bad := range []string{"", ".", "1.", ".1", "-1", "+1", "1.2.3", "1.262144",
		"70368744177664.0", "18446744073709551616", "x", "1 ", "2024-12-03", "1969-12-31T23:59:59Z"} {
		if _, err := Parse(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error = %v, want ErrSyntax", bad, err)
		}
	}
}

// FuzzTimestampString checks that Parse reads back what String prints, and
// that the raw integer form reads back too.
func FuzzTimestampString(f *testing.F) {
	for _, v := range []uint64{0, 1, 1<<LogicalBits - 1, 1 << LogicalBits, 454353018275971077, uint64(Max)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v uint64) {
		ts := Timestamp(v)
		got, err := Parse(ts.String())
		if err != nil || got != ts {
			t.Fatalf("Parse(%q) = %v, %v; want %v", ts.String(), got, err, ts)
		}
		if ts.Physical() != got.Physical() || ts.Logical() != got.Logical() {
			t.Fatalf("parts differ: %v vs %v", ts, got)
		}
	})
}

// FuzzParse checks that whatever Parse accepts prints in a form that parses
// back to the same timestamp.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1733230000123.5", "454353018275971077", "0.0",
		"2026-12-03T13:16:57.123Z", "70368744177663.262143", "1.2.3", "T:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		again, err := Parse(ts.String())
		if err != nil || again != ts {
			t.Fatalf("Parse(%q) = %v, but Parse(%q) = %v, %v", s, ts, ts.String(), again, err)
		}
	})
}
