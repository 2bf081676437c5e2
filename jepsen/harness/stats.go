package harness

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/strata-kv/strata/client"
	"github.com/strata-kv/strata/linearizability"
	"google.golang.org/grpc/status"
)

// Classify maps the Go client's errors to what they mean for a history.
// It is conservative: an error is Definite only when the client says the
// request certainly had no effect.
//
//   - ErrNotFound: NotFound.
//   - ErrAmbiguous: Ambiguous (the client says so).
//   - a deadline or cancellation: Ambiguous, even when the client ran out of
//     time between attempts that certainly failed: it is cheap to be safe.
//   - ErrInvalidArgument, ErrClosed: Definite (rejected before sending).
//   - ErrUnavailable without a deadline: Definite. The client retries a
//     write only after an attempt that certainly had no effect (not sent,
//     NOT_LEADER, NODE_UNAVAILABLE) and returns ErrAmbiguous at once for any
//     other failure, so running out of attempts means none applied.
//   - anything else: Ambiguous.
func Classify(err error) linearizability.ErrorClass {
	switch {
	case errors.Is(err, client.ErrNotFound):
		return linearizability.NotFound
	case errors.Is(err, client.ErrAmbiguous):
		return linearizability.Ambiguous
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return linearizability.Ambiguous
	case errors.Is(err, client.ErrInvalidArgument), errors.Is(err, client.ErrClosed):
		return linearizability.Definite
	case errors.Is(err, client.ErrUnavailable):
		return linearizability.Definite
	default:
		return linearizability.Ambiguous
	}
}

// ErrorKind names an error for the error counts of result.json.
func ErrorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, client.ErrNotFound):
		return "not-found"
	case errors.Is(err, client.ErrAmbiguous):
		return "ambiguous"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, client.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, client.ErrInvalidArgument):
		return "invalid-argument"
	case errors.Is(err, client.ErrClosed):
		return "closed"
	}
	if st, ok := status.FromError(err); ok {
		return "grpc-" + st.Code().String()
	}
	return "other"
}

// Outcome is what an operation did.
type Outcome int

const (
	// OK: the operation succeeded (a read of an absent key included).
	OK Outcome = iota
	// Fail: the operation certainly did not take effect.
	Fail
	// Info: the operation may or may not have taken effect.
	Info
)

// OutcomeOf returns the outcome of an operation that returned err; a
// failed read is a Fail, whatever its error.
func OutcomeOf(err error, write bool) Outcome {
	if err == nil {
		return OK
	}
	switch Classify(err) {
	case linearizability.NotFound:
		return OK
	case linearizability.Definite:
		return Fail
	}
	if !write {
		return Fail
	}
	return Info
}

// Counts are operation counts.
type Counts struct {
	Total     int `json:"total"`
	OK        int `json:"ok"`
	Failed    int `json:"failed"`
	Ambiguous int `json:"ambiguous"`
}

func (c *Counts) add(o Outcome) {
	c.Total++
	switch o {
	case OK:
		c.OK++
	case Fail:
		c.Failed++
	case Info:
		c.Ambiguous++
	}
}

// Stats counts the operations of a run, per workload, per error kind and
// per second of the run (by completion time). It is safe for concurrent
// use.
type Stats struct {
	start time.Time
	mu    struct {
		sync.Mutex
		byWorkload map[string]*Counts
		errors     map[string]int
		seconds    []Counts
	}
}

// NewStats returns Stats whose clock starts at start.
func NewStats(start time.Time) *Stats {
	s := &Stats{start: start}
	s.mu.byWorkload = map[string]*Counts{}
	s.mu.errors = map[string]int{}
	return s
}

// Record counts one operation of workload that returned err.
func (s *Stats) Record(workload string, err error, write bool) {
	o := OutcomeOf(err, write)
	sec := int(time.Since(s.start) / time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.mu.byWorkload[workload]
	if c == nil {
		c = &Counts{}
		s.mu.byWorkload[workload] = c
	}
	c.add(o)
	if k := ErrorKind(err); k != "" && k != "not-found" {
		s.mu.errors[k]++
	}
	for len(s.mu.seconds) <= sec {
		s.mu.seconds = append(s.mu.seconds, Counts{})
	}
	s.mu.seconds[sec].add(o)
}

// Snapshot returns copies of the counts.
func (s *Stats) Snapshot() (total Counts, byWorkload map[string]Counts, errs map[string]int, seconds []Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byWorkload = map[string]Counts{}
	for w, c := range s.mu.byWorkload {
		byWorkload[w] = *c
		total.Total += c.Total
		total.OK += c.OK
		total.Failed += c.Failed
		total.Ambiguous += c.Ambiguous
	}
	errs = map[string]int{}
	for k, v := range s.mu.errors {
		errs[k] = v
	}
	return total, byWorkload, errs, append([]Counts(nil), s.mu.seconds...)
}

// Interval is a span of the run, as offsets from its start.
type Interval struct {
	From time.Duration `json:"from_ns"`
	To   time.Duration `json:"to_ns"`
}

// Availability is how the cluster served while faults were active.
type Availability struct {
	// Share is the share of operations completed in a second with a
	// fault active that succeeded.
	Share float64 `json:"share"`
	// MinSecond is the lowest share of one such second.
	MinSecond float64 `json:"min_second"`
	// FaultSeconds is how many seconds had a fault active.
	FaultSeconds int `json:"fault_seconds"`
	// OpsPerSecFaulty and OpsPerSecHealthy are the successful operations
	// per second with and without a fault active.
	OpsPerSecFaulty  float64 `json:"ok_ops_per_s_faulty"`
	OpsPerSecHealthy float64 `json:"ok_ops_per_s_healthy"`
}

// ComputeAvailability computes availability from per-second counts and
// the intervals in which faults were active. A second counts as faulty if
// any fault was active during it.
func ComputeAvailability(seconds []Counts, faults []Interval) Availability {
	a := Availability{MinSecond: 1}
	var fOK, fTotal, hOK, hSecs int
	for i, c := range seconds {
		from, to := time.Duration(i)*time.Second, time.Duration(i+1)*time.Second
		faulty := false
		for _, f := range faults {
			if f.From < to && f.To > from {
				faulty = true
				break
			}
		}
		if !faulty {
			hOK += c.OK
			hSecs++
			continue
		}
		a.FaultSeconds++
		fOK += c.OK
		fTotal += c.Total
		share := 0.0
		if c.Total > 0 {
			share = float64(c.OK) / float64(c.Total)
		}
		a.MinSecond = min(a.MinSecond, share)
	}
	if fTotal > 0 {
		a.Share = float64(fOK) / float64(fTotal)
	}
	if a.FaultSeconds == 0 {
		a.MinSecond = 0
	} else {
		a.OpsPerSecFaulty = float64(fOK) / float64(a.FaultSeconds)
	}
	if hSecs > 0 {
		a.OpsPerSecHealthy = float64(hOK) / float64(hSecs)
	}
	return a
}
