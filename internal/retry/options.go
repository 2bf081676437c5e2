package retry

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Options.
const (
	DefaultInitial    = 50 * time.Millisecond
	DefaultMax        = time.Second
	DefaultMultiplier = 2.0
	DefaultJitter     = 0.2
)

// NoJitter, as Options.Jitter, turns jitter off.
const NoJitter = -1.0

var (
	// ErrExhausted is wrapped when a loop stops because it used up its
	// attempts or its time (MaxAttempts, MaxElapsed, a Backoffer's MaxSleep).
	ErrExhausted = errors.New("retry: budget exhausted")
	// ErrClosed is wrapped when a loop stops because its Closer closed.
	ErrClosed = errors.New("retry: closed")
)

// Options configure a backoff: waits that start at Initial and grow by
// Multiplier up to Max, each drawn at random from [w·(1−Jitter), w·(1+Jitter)].
// Zero fields take their defaults; the zero Options is valid.
type Options struct {
	// Initial is the first wait. Default 50 ms.
	Initial time.Duration
	// Max caps a wait before jitter. Default 1 s.
	Max time.Duration
	// Multiplier is how much each wait grows; at least 1. Default 2.
	Multiplier float64
	// Jitter is the randomization factor, in [0, 1]. Default 0.2; NoJitter
	// turns it off.
	Jitter float64
	// MaxAttempts stops the loop after this many attempts (for a Backoffer's
	// Config: this many backoffs of that cause). Default 0, unlimited.
	MaxAttempts int
	// MaxElapsed stops the loop once this much time has passed since Start
	// (for a Backoffer's Config: once this cause has slept this long); the
	// last wait is cut short to fit. Default 0, unlimited: the context's
	// deadline is the usual bound.
	MaxElapsed time.Duration
	// Closer, when closed, stops the loop (for example when the DB closes).
	// Default nil, never. A Backoffer uses its own, not its Configs'.
	Closer <-chan struct{}
	// Clock is for tests. Default the system clock. A Backoffer uses its
	// own, not its Configs'.
	Clock Clock
}

// Validate reports fields out of range. Start and a Backoffer do not fail on
// them: they use the default, or the nearest valid value, instead.
func (o Options) Validate() error {
	var errs []error
	if o.Initial < 0 || o.Max < 0 || o.MaxElapsed < 0 {
		errs = append(errs, fmt.Errorf("negative duration (Initial %v, Max %v, MaxElapsed %v)", o.Initial, o.Max, o.MaxElapsed))
	}
	if o.Multiplier != 0 && o.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("multiplier %v below 1", o.Multiplier))
	}
	if o.Jitter != NoJitter && (o.Jitter < 0 || o.Jitter > 1) {
		errs = append(errs, fmt.Errorf("jitter %v outside [0, 1]", o.Jitter))
	}
	if o.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("MaxAttempts %d negative", o.MaxAttempts))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("retry: invalid options: %w", err)
	}
	return nil
}

// withDefaults returns o with defaults in place of zero and invalid fields.
func (o Options) withDefaults() Options {
	if o.Initial <= 0 {
		o.Initial = DefaultInitial
	}
	if o.Max <= 0 {
		o.Max = max(DefaultMax, o.Initial)
	}
	o.Max = max(o.Max, o.Initial)
	if o.Multiplier == 0 {
		o.Multiplier = DefaultMultiplier
	}
	o.Multiplier = max(o.Multiplier, 1)
	switch {
	case o.Jitter == NoJitter:
		o.Jitter = 0
	case o.Jitter == 0:
		o.Jitter = DefaultJitter
	default:
		o.Jitter = min(max(o.Jitter, 0), 1)
	}
	o.MaxAttempts = max(o.MaxAttempts, 0)
	o.MaxElapsed = max(o.MaxElapsed, 0)
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	return o
}
