package tso

import (
	"sync/atomic"
	"time"
)

// Clock reads the wall clock. Implementations are safe for concurrent use.
type Clock interface {
	Now() time.Time
}

// SystemClock is the machine's wall clock.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// OffsetClock is a Clock that reads another clock plus an adjustable offset.
// A node's debug endpoint sets the offset so that a clock nemesis can move
// the wall clock the oracle reads, seconds forward and back, without
// touching the machine's clock.
type OffsetClock struct {
	base   Clock
	offset atomic.Int64 // nanoseconds added to base.Now()
}

var _ Clock = (*OffsetClock)(nil)

// NewOffsetClock returns a clock that reads base (SystemClock{} if nil) with
// offset zero.
func NewOffsetClock(base Clock) *OffsetClock {
	if base == nil {
		base = SystemClock{}
	}
	return &OffsetClock{base: base}
}

// Now returns the base clock's time plus the offset.
func (c *OffsetClock) Now() time.Time {
	return c.base.Now().Add(time.Duration(c.offset.Load()))
}

// SetOffset sets the offset added to the base clock; it may be negative.
func (c *OffsetClock) SetOffset(d time.Duration) { c.offset.Store(int64(d)) }

// Offset returns the current offset.
func (c *OffsetClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }
