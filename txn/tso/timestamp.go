package tso

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// LogicalBits is the width of a Timestamp's logical counter.
const LogicalBits = 18

const (
	logicalMask = 1<<LogicalBits - 1
	// MaxPhysical is the largest physical part, in Unix milliseconds
	// (about the year 4200).
	MaxPhysical = math.MaxUint64 >> LogicalBits
	// MaxLogical is the largest logical part.
	MaxLogical = logicalMask
)

// Timestamp is a hybrid timestamp: Unix milliseconds in the high 46 bits and
// a logical counter in the low LogicalBits bits. Timestamps compare with the
// ordinary operators (a < b), and Next carries a full logical counter into
// the physical part, so a timestamp past the wall clock stays valid.
type Timestamp uint64

const (
	// Zero is below every timestamp the oracle hands out.
	Zero Timestamp = 0
	// Max is the largest timestamp; a read at Max sees every write.
	Max Timestamp = math.MaxUint64
)

// ErrSyntax is wrapped by the errors of Parse.
var ErrSyntax = errors.New("tso: invalid timestamp")

// New returns the timestamp with the given physical milliseconds and logical
// counter. Parts out of range are clamped to MaxPhysical and MaxLogical.
func New(physical uint64, logical uint32) Timestamp {
	physical = min(physical, MaxPhysical)
	logical = min(logical, MaxLogical)
	return Timestamp(physical<<LogicalBits | uint64(logical))
}

// FromTime returns the first timestamp of t's millisecond. Times before the
// Unix epoch map to Zero.
func FromTime(t time.Time) Timestamp {
	ms := t.UnixMilli()
	if ms < 0 {
		return Zero
	}
	return New(uint64(ms), 0)
}

// Physical returns the physical part, in Unix milliseconds.
func (t Timestamp) Physical() uint64 { return uint64(t) >> LogicalBits }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint32 { return uint32(t & logicalMask) }

// WallTime returns the wall time of t's physical part, in UTC.
func (t Timestamp) WallTime() time.Time {
	return time.UnixMilli(int64(t.Physical())).UTC()
}

// Next returns the smallest timestamp above t (Max stays Max). A full
// logical counter carries into the physical part.
func (t Timestamp) Next() Timestamp {
	if t == Max {
		return Max
	}
	return t + 1
}

// String formats t as "physical.logical", for example "1733230000123.5".
// Parse reads it back.
func (t Timestamp) String() string {
	return strconv.FormatUint(t.Physical(), 10) + "." + strconv.FormatUint(uint64(t.Logical()), 10)
}

// Parse reads a timestamp in one of three forms:
//   - the printed form "physical.logical" (see String), e.g. "1733230000123.5";
//   - the raw integer, e.g. "454353018275971077";
//   - an RFC 3339 time, e.g. "2026-12-03T13:16:57.123Z", which maps to
//     FromTime (logical 0, sub-millisecond digits dropped).
func Parse(s string) (Timestamp, error) {
	if strings.ContainsAny(s, "T:") {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Zero, fmt.Errorf("%w %q: %w", ErrSyntax, s, err)
		}
		if tm.UnixMilli() < 0 || uint64(tm.UnixMilli()) > MaxPhysical {
			return Zero, fmt.Errorf("%w %q: time out of range", ErrSyntax, s)
		}
		return FromTime(tm), nil
	}
	phys, logical, dotted := strings.Cut(s, ".")
	p, err := strconv.ParseUint(phys, 10, 64)
	if err != nil {
		return Zero, fmt.Errorf("%w %q: %w", ErrSyntax, s, err)
	}
	if !dotted {
		return Timestamp(p), nil
	}
	l, err := strconv.ParseUint(logical, 10, 32)
	if err != nil {
		return Zero, fmt.Errorf("%w %q: logical part: %w", ErrSyntax, s, err)
	}
	if p > MaxPhysical || l > MaxLogical {
		return Zero, fmt.Errorf("%w %q: part out of range (physical ≤ %d, logical ≤ %d)",
			ErrSyntax, s, uint64(MaxPhysical), MaxLogical)
	}
	return New(p, uint32(l)), nil
}
