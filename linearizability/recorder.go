package linearizability

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Client is the key-value interface a [Recorder] wraps. A Get of an absent
// key must return an error that the recorder's classifier maps to
// [NotFound]; a nil error always means the key was present (a nil slice is
// the empty value).
type Client interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, key, value []byte) error
	Delete(ctx context.Context, key []byte) error
	CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error)
}

// ErrorClass says what an error means for the history.
type ErrorClass int

const (
	// Ambiguous: the operation may or may not have taken effect (a
	// timeout, a deadline, a connection lost after the request was sent).
	// A write is recorded as possibly applied; a read is dropped. It is
	// the zero value because it is the safe reading of an unknown error.
	Ambiguous ErrorClass = iota
	// Definite: the operation certainly did not take effect; it is
	// dropped from the history.
	Definite
	// NotFound: the key was absent. For a Get this is a successful read
	// of "absent"; for a Delete it is a successful delete. For a Put or a
	// CompareAndSwap it makes no sense and is treated as Ambiguous.
	NotFound
)

func (c ErrorClass) String() string {
	switch c {
	case Ambiguous:
		return "Ambiguous"
	case Definite:
		return "Definite"
	case NotFound:
		return "NotFound"
	default:
		return "ErrorClass(?)"
	}
}

// Recorder records the operations of any number of concurrent clients against
// one monotonic clock.
type Recorder struct {
	classify func(error) ErrorClass
	start    time.Time // its monotonic reading is the clock's zero

	mu struct {
		sync.Mutex
		ops []Operation
	}
}

// NewRecorder returns a Recorder whose clock starts now. classify maps every
// non-nil error a client returns to its meaning; nil treats every error as
// Ambiguous.
func NewRecorder(classify func(error) ErrorClass) *Recorder {
	if classify == nil {
		classify = func(error) ErrorClass { return Ambiguous }
	}
	return &Recorder{classify: classify, start: time.Now()}
}

// Client returns a Client that passes every call to c unchanged and records
// it. clientID should be zero-indexed and dense, and each returned Client
// used by one goroutine at a time, so the visualisation draws one row of
// sequential operations per client; the checker itself does not care.
func (r *Recorder) Client(clientID int, c Client) Client {
	return &recordingClient{r: r, id: clientID, c: c}
}

// History returns the recorded operations, ordered by call time. It is safe
// to call at any time, but operations still in flight are missing from it, so
// call it after all clients are done.
func (r *Recorder) History() History {
	r.mu.Lock()
	h := slices.Clone(r.mu.ops)
	r.mu.Unlock()
	slices.SortStableFunc(h, func(a, b Operation) int { return cmp.Compare(a.Call, b.Call) })
	return History(h)
}

// now reads the clock: nanoseconds since the recorder started.
func (r *Recorder) now() int64 {
	return int64(time.Since(r.start))
}

func (r *Recorder) add(op Operation) {
	r.mu.Lock()
	r.mu.ops = append(r.mu.ops, op)
	r.mu.Unlock()
}

// recordingClient records the calls of one client.
type recordingClient struct {
	r  *Recorder
	id int
	c  Client
}

var _ Client = (*recordingClient)(nil)

func (rc *recordingClient) Get(ctx context.Context, key []byte) ([]byte, error) {
	call := rc.r.now()
	v, err := rc.c.Get(ctx, key)
	ret := rc.r.now()
	var out Output
	switch {
	case err == nil:
		s := string(v)
		out.Value = &s
	case rc.r.classify(err) == NotFound:
		// A successful read of "absent": out.Value stays nil.
	default:
		return v, err // A failed read has no effect: drop it.
	}
	rc.record(Input{Kind: KindGet, Key: string(key)}, out, call, ret)
	return v, err
}

func (rc *recordingClient) Put(ctx context.Context, key, value []byte) error {
	call := rc.r.now()
	err := rc.c.Put(ctx, key, value)
	ret := rc.r.now()
	rc.recordWrite(Input{Kind: KindPut, Key: string(key), Value: string(value)}, Output{}, err, false, call, ret)
	return err
}

func (rc *recordingClient) Delete(ctx context.Context, key []byte) error {
	call := rc.r.now()
	err := rc.c.Delete(ctx, key)
	ret := rc.r.now()
	rc.recordWrite(Input{Kind: KindDelete, Key: string(key)}, Output{}, err, true, call, ret)
	return err
}

func (rc *recordingClient) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	in := Input{Kind: KindCAS, Key: string(key), Value: string(new)}
	if old != nil {
		s := string(old)
		in.Old = &s
	}
	call := rc.r.now()
	ok, err := rc.c.CompareAndSwap(ctx, key, old, new)
	ret := rc.r.now()
	rc.recordWrite(in, Output{OK: ok}, err, false, call, ret)
	return ok, err
}

// recordWrite records a write according to its error: kept as is on success
// (or on NotFound when notFoundOK), dropped when it definitely failed, and
// kept as ambiguous otherwise.
func (rc *recordingClient) recordWrite(in Input, out Output, err error, notFoundOK bool, call, ret int64) {
	if err != nil {
		switch class := rc.r.classify(err); {
		case class == Definite:
			return
		case class == NotFound && notFoundOK:
		default:
			out = Output{Ambiguous: true}
		}
	}
	rc.record(in, out, call, ret)
}

func (rc *recordingClient) record(in Input, out Output, call, ret int64) {
	rc.r.add(Operation{ClientID: rc.id, Input: in, Output: out, Call: call, Return: ret})
}
