package retry

import (
	"context"
	"time"
)

// Clock is the time source of the waits, so tests can run them without
// waiting.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a timer made by a Clock, like time.Timer.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type systemClock struct{}

var _ Clock = systemClock{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

// sleep waits d on clock, or until ctx ends (its error) or closer closes
// (ErrClosed).
func sleep(ctx context.Context, clock Clock, closer <-chan struct{}, d time.Duration) error {
	if err := stopped(ctx, closer); err != nil {
		return err
	}
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-closer:
		return ErrClosed
	}
}

// stopped returns ctx's error or ErrClosed if either has ended.
func stopped(ctx context.Context, closer <-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-closer:
		return ErrClosed
	default:
		return nil
	}
}
