package linearizability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"
)

var (
	errNotFound    = errors.New("fake: not found")
	errTimeout     = errors.New("fake: timeout")     // may or may not have applied
	errUnavailable = errors.New("fake: unavailable") // certainly not applied
)

func classifyFake(err error) ErrorClass {
	switch {
	case errors.Is(err, errNotFound):
		return NotFound
	case errors.Is(err, errUnavailable):
		return Definite
	default:
		return Ambiguous
	}
}

// fakeStore is an in-memory key-value store. Correct, it linearizes every
// operation at its mutex. With faults it fails some operations, before or
// after applying them. With staleReads it is broken: it serves some reads
// from a copy of the data that lags behind.
type fakeStore struct {
	faults     bool
	staleReads bool

	mu struct {
		sync.Mutex
		rng    *rand.Rand
		data   map[string]string
		stale  map[string]string // a lagging copy of data
		writes int
	}
}

func newFakeStore(seed uint64, faults, staleReads bool) *fakeStore {
	s := &fakeStore{faults: faults, staleReads: staleReads}
	s.mu.rng = rand.New(rand.NewPCG(seed, 0xfa4e))
	s.mu.data = make(map[string]string)
	s.mu.stale = make(map[string]string)
	return s
}

var _ Client = (*fakeStore)(nil)

// failBeforeLocked returns an error to fail with before applying an op, if
// faults are on and the dice say so.
func (s *fakeStore) failBeforeLocked() error {
	if !s.faults {
		return nil
	}
	switch s.mu.rng.IntN(20) {
	case 0:
		return errUnavailable
	case 1:
		return errTimeout
	}
	return nil
}

// failAfterLocked returns an error to report after applying an op.
func (s *fakeStore) failAfterLocked() error {
	if s.faults && s.mu.rng.IntN(20) == 0 {
		return errTimeout
	}
	return nil
}

// inFlight sleeps briefly before and after an operation takes effect, so
// operations of different clients overlap. The interleaving is not
// reproducible by seed, only each client's choices are.
func inFlight() func() {
	time.Sleep(time.Duration(rand.IntN(20)) * time.Microsecond)
	return func() { time.Sleep(time.Duration(rand.IntN(20)) * time.Microsecond) }
}

func (s *fakeStore) wroteLocked() {
	s.mu.writes++
	if s.mu.writes%25 == 0 {
		s.mu.stale = make(map[string]string, len(s.mu.data))
		for k, v := range s.mu.data {
			s.mu.stale[k] = v
		}
	}
}

func (s *fakeStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	defer inFlight()()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failBeforeLocked(); err != nil {
		return nil, err
	}
	data := s.mu.data
	if s.staleReads && s.mu.rng.IntN(5) == 0 {
		data = s.mu.stale
	}
	v, ok := data[string(key)]
	if !ok {
		return nil, errNotFound
	}
	return []byte(v), s.failAfterLocked()
}

func (s *fakeStore) Put(ctx context.Context, key, value []byte) error {
	defer inFlight()()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failBeforeLocked(); err != nil {
		return err
	}
	s.mu.data[string(key)] = string(value)
	s.wroteLocked()
	return s.failAfterLocked()
}

func (s *fakeStore) Delete(ctx context.Context, key []byte) error {
	defer inFlight()()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failBeforeLocked(); err != nil {
		return err
	}
	delete(s.mu.data, string(key))
	s.wroteLocked()
	return s.failAfterLocked()
}

func (s *fakeStore) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	defer inFlight()()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failBeforeLocked(); err != nil {
		return false, err
	}
	cur, ok := s.mu.data[string(key)]
	if old == nil && ok || old != nil && (!ok || cur != string(old)) {
		return false, s.failAfterLocked()
	}
	s.mu.data[string(key)] = string(new)
	s.wroteLocked()
	return true, s.failAfterLocked()
}

// runWorkload drives clients concurrent clients, each doing opsPerClient
// random operations over keys keys, through a recorder, and returns the
// history. The seed fixes each client's choices, not the interleaving.
func runWorkload(t *testing.T, store Client, seed uint64, clients, opsPerClient, keys int) History {
	t.Helper()
	rec := NewRecorder(classifyFake)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			cl := rec.Client(c, store)
			var last []byte // last value this client saw or wrote
			for i := range opsPerClient {
				key := []byte(fmt.Sprintf("k%d", rng.IntN(keys)))
				value := []byte(fmt.Sprintf("%d.%d", c, i))
				switch n := rng.IntN(100); {
				case n < 45:
					if v, err := cl.Get(ctx, key); err == nil {
						last = v
					}
				case n < 70:
					if cl.Put(ctx, key, value) == nil {
						last = value
					}
				case n < 78:
					_ = cl.Delete(ctx, key)
				default:
					if ok, _ := cl.CompareAndSwap(ctx, key, last, value); ok {
						last = value
					}
				}
			}
		}()
	}
	wg.Wait()
	return rec.History()
}

func TestRecorderCorrectStoreIsOk(t *testing.T) {
	for _, seed := range testSeeds(t, 3) {
		for _, faults := range []bool{false, true} {
			t.Logf("seed %d (STRATA_SEED=%d reproduces) faults=%t", seed, seed, faults)
			h := runWorkload(t, newFakeStore(seed, faults, false), seed, 16, 250, 8)
			res := Check(h, CheckOptions{VisualizeDir: t.TempDir()})
			t.Log(res)
			if res.Verdict != Ok {
				t.Fatalf("seed %d: %s\n%s", seed, res, res.Summary)
			}
			if faults && res.Indeterminate == 0 {
				t.Errorf("seed %d: faults on but no ambiguous ops recorded", seed)
			}
		}
	}
}

// TestRecorderStaleReadsAreCaught proves the checker can fail: a store that
// serves some reads from a stale copy must be caught within a few seeds.
func TestRecorderStaleReadsAreCaught(t *testing.T) {
	const maxSeeds = 10
	for _, seed := range testSeeds(t, maxSeeds) {
		t.Logf("seed %d (STRATA_SEED=%d reproduces)", seed, seed)
		h := runWorkload(t, newFakeStore(seed, true, true), seed, 16, 250, 8)
		res := Check(h, CheckOptions{})
		t.Log(res)
		if res.Verdict == Illegal {
			t.Logf("caught:\n%s", res.Summary)
			return
		}
	}
	t.Fatalf("a store serving stale reads passed %d seeds", maxSeeds)
}

// scriptedClient returns fixed results, to test how the recorder records
// each kind of outcome.
type scriptedClient struct {
	value []byte
	ok    bool
	err   error
}

func (c scriptedClient) Get(context.Context, []byte) ([]byte, error) { return c.value, c.err }
func (c scriptedClient) Put(context.Context, []byte, []byte) error   { return c.err }
func (c scriptedClient) Delete(context.Context, []byte) error        { return c.err }
func (c scriptedClient) CompareAndSwap(context.Context, []byte, []byte, []byte) (bool, error) {
	return c.ok, c.err
}

func TestRecorderClassifies(t *testing.T) {
	ctx := context.Background()
	k, v := []byte("k"), []byte("v")
	for _, tc := range []struct {
		name string
		do   func(Client) error
		c    scriptedClient
		want *Operation // nil: dropped
	}{
		{
			name: "get found",
			c:    scriptedClient{value: v},
			do:   func(c Client) error { _, err := c.Get(ctx, k); return err },
			want: &Operation{Input: Input{Kind: KindGet, Key: "k"}, Output: Output{Value: val("v")}},
		},
		{
			name: "get nil value is the empty value",
			c:    scriptedClient{},
			do:   func(c Client) error { _, err := c.Get(ctx, k); return err },
			want: &Operation{Input: Input{Kind: KindGet, Key: "k"}, Output: Output{Value: val("")}},
		},
		{
			name: "get not found reads absent",
			c:    scriptedClient{err: errNotFound},
			do:   func(c Client) error { _, err := c.Get(ctx, k); return err },
			want: &Operation{Input: Input{Kind: KindGet, Key: "k"}},
		},
		{
			name: "get ambiguous is dropped",
			c:    scriptedClient{err: errTimeout},
			do:   func(c Client) error { _, err := c.Get(ctx, k); return err },
		},
		{
			name: "get definite is dropped",
			c:    scriptedClient{err: errUnavailable},
			do:   func(c Client) error { _, err := c.Get(ctx, k); return err },
		},
		{
			name: "put ok",
			c:    scriptedClient{},
			do:   func(c Client) error { return c.Put(ctx, k, v) },
			want: &Operation{Input: Input{Kind: KindPut, Key: "k", Value: "v"}},
		},
		{
			name: "put ambiguous",
			c:    scriptedClient{err: fmt.Errorf("send: %w", context.DeadlineExceeded)},
			do:   func(c Client) error { return c.Put(ctx, k, v) },
			want: &Operation{Input: Input{Kind: KindPut, Key: "k", Value: "v"}, Output: Output{Ambiguous: true}},
		},
		{
			name: "put definite is dropped",
			c:    scriptedClient{err: errUnavailable},
			do:   func(c Client) error { return c.Put(ctx, k, v) },
		},
		{
			name: "put not found is ambiguous",
			c:    scriptedClient{err: errNotFound},
			do:   func(c Client) error { return c.Put(ctx, k, v) },
			want: &Operation{Input: Input{Kind: KindPut, Key: "k", Value: "v"}, Output: Output{Ambiguous: true}},
		},
		{
			name: "delete not found succeeded",
			c:    scriptedClient{err: errNotFound},
			do:   func(c Client) error { return c.Delete(ctx, k) },
			want: &Operation{Input: Input{Kind: KindDelete, Key: "k"}},
		},
		{
			name: "cas from absent",
			c:    scriptedClient{ok: true},
			do:   func(c Client) error { _, err := c.CompareAndSwap(ctx, k, nil, v); return err },
			want: &Operation{Input: Input{Kind: KindCAS, Key: "k", Value: "v"}, Output: Output{OK: true}},
		},
		{
			name: "cas from empty",
			c:    scriptedClient{ok: false},
			do:   func(c Client) error { _, err := c.CompareAndSwap(ctx, k, []byte{}, v); return err },
			want: &Operation{Input: Input{Kind: KindCAS, Key: "k", Old: val(""), Value: "v"}},
		},
		{
			name: "cas ambiguous",
			c:    scriptedClient{ok: true, err: errTimeout},
			do:   func(c Client) error { _, err := c.CompareAndSwap(ctx, k, v, v); return err },
			want: &Operation{Input: Input{Kind: KindCAS, Key: "k", Old: val("v"), Value: "v"}, Output: Output{Ambiguous: true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewRecorder(func(err error) ErrorClass {
				if errors.Is(err, context.DeadlineExceeded) {
					return Ambiguous
				}
				return classifyFake(err)
			})
			if err := tc.do(rec.Client(3, tc.c)); err != tc.c.err {
				t.Fatalf("error %v not passed through: got %v", tc.c.err, err)
			}
			h := rec.History()
			if tc.want == nil {
				if len(h) != 0 {
					t.Fatalf("want dropped, got %+v", h)
				}
				return
			}
			if len(h) != 1 {
				t.Fatalf("want one op, got %+v", h)
			}
			got := h[0]
			if got.ClientID != 3 || got.Call < 0 || got.Return < got.Call {
				t.Fatalf("bad client or times: %+v", got)
			}
			got.ClientID, got.Call, got.Return = 0, 0, 0
			if !reflect.DeepEqual(got, *tc.want) {
				t.Fatalf("recorded %+v\nwant     %+v", got, *tc.want)
			}
		})
	}
}
