package shard

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"testing"
)

// shardTestSeed returns the seed of a randomized test: STRATA_SEED if set,
// else a fresh one. It logs the seed so a failure can be reproduced.
func shardTestSeed(t *testing.T) int64 {
	t.Helper()
	seed := rand.Int63()
	if s := os.Getenv("STRATA_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("STRATA_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (reproduce with STRATA_SEED=%d)", seed, seed)
	return seed
}

// descEqual compares descriptors, treating a nil and an empty Start or
// Replicas alike (the encoding does not tell them apart) but a nil End
// ("unbounded") apart from a set one.
func descEqual(a, b Descriptor) bool {
	return a.ID == b.ID && a.Generation == b.Generation && bytes.Equal(a.Start, b.Start) &&
		(a.End == nil) == (b.End == nil) && bytes.Equal(a.End, b.End) &&
		slices.Equal(a.Replicas, b.Replicas)
}

func TestDescriptorRoundTrip(t *testing.T) {
	for _, d := range []Descriptor{
		{ID: 2, Start: []byte{}, End: nil, Replicas: []uint64{1, 2, 3}},
		{ID: 3, Generation: 7, Start: []byte("a"), End: []byte("b")},
		{ID: 4, Start: nil, End: []byte{0}},
		{ID: math.MaxUint64, Generation: math.MaxUint64, Start: []byte{0, 0xff}, End: []byte{0xff, 0}, Replicas: []uint64{math.MaxUint64, 1}},
	} {
		got, err := Decode(d.Encode())
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", d, err)
		}
		if !descEqual(got, d) {
			t.Fatalf("round trip %+v -> %+v", d, got)
		}
		if got.Start == nil {
			t.Fatalf("decoded Start is nil for %+v", d)
		}
	}
}

func FuzzDescriptorRoundTrip(f *testing.F) {
	f.Add(uint64(2), uint64(0), []byte{}, []byte("m"), false, []byte{1, 2, 3})
	f.Add(uint64(1), uint64(3), []byte("a\x00b"), []byte{}, true, []byte{})
	f.Add(uint64(math.MaxUint64), uint64(1), []byte{0xff}, []byte{0xff, 0xff}, false, []byte{255})
	f.Fuzz(func(t *testing.T, id, gen uint64, start, end []byte, endNil bool, reps []byte) {
		d := Descriptor{ID: max(id, 1), Generation: gen, Start: start, End: end}
		if endNil || bytes.Compare(end, start) <= 0 {
			d.End = nil
		}
		seen := map[uint64]bool{}
		for i, r := range reps {
			if n := uint64(r)<<(7*(i%10)) | 1; !seen[n] {
				seen[n] = true
				d.Replicas = append(d.Replicas, n)
			}
		}
		enc := d.Encode()
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", d, err)
		}
		if !descEqual(got, d) {
			t.Fatalf("round trip %+v -> %+v", d, got)
		}
		if re := got.Encode(); !bytes.Equal(re, enc) {
			t.Fatalf("re-encode differs: %x vs %x", re, enc)
		}
		// Decode copies: changing the input does not change the result.
		for i := range enc {
			enc[i] ^= 0xff
		}
		if !descEqual(got, d) {
			t.Fatalf("decoded descriptor aliases its input")
		}
	})
}

// FuzzDecodeDescriptor feeds arbitrary bytes to Decode: it must not panic,
// must fail with ErrBadDescriptor, and what it accepts must re-encode to
// something that decodes to the same descriptor.
func FuzzDecodeDescriptor(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2, 0, 0, 0, 0})
	f.Add((&Descriptor{ID: 2, Start: []byte("a"), End: []byte("b"), Replicas: []uint64{1, 2}}).Encode())
	f.Add((&Descriptor{ID: 3, Start: []byte("z")}).Encode())
	f.Add([]byte{1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("Decode(%x) error %v does not wrap ErrBadDescriptor", b, err)
			}
			return
		}
		if d.Start == nil {
			t.Fatalf("Decode(%x) returned a nil Start", b)
		}
		d2, err := Decode(d.Encode())
		if err != nil || !descEqual(d, d2) {
			t.Fatalf("Decode(%x) = %+v; re-decode gives %+v, %v", b, d, d2, err)
		}
	})
}

// TestDecodeErrors: what is not a valid descriptor is refused with
// ErrBadDescriptor, whatever the bytes are.
func TestDecodeErrors(t *testing.T) {
	for name, b := range map[string][]byte{
		"not protobuf":  {0xff, 0xff, 0xff},
		"no ID":         (&Descriptor{Start: []byte("a")}).Encode(),
		"empty range":   (&Descriptor{ID: 2, Start: []byte("b"), End: []byte("a")}).Encode(),
		"repeated node": (&Descriptor{ID: 2, Replicas: []uint64{3, 3}}).Encode(),
		"replica zero":  (&Descriptor{ID: 2, Replicas: []uint64{0}}).Encode(),
		"truncated":     (&Descriptor{ID: 300, Start: []byte("abc"), End: []byte("abd")}).Encode()[:4],
	} {
		if d, err := Decode(b); !errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%s: Decode = %+v, %v; want ErrBadDescriptor", name, d, err)
		}
	}
}

func TestDescriptorContains(t *testing.T) {
	d := Descriptor{Start: []byte("b"), End: []byte("d")}
	for k, want := range map[string]bool{"": false, "a": false, "b": true, "b\x00": true, "c": true, "czz": true, "d": false, "e": false} {
		if got := d.Contains([]byte(k)); got != want {
			t.Fatalf("[b, d).Contains(%q) = %v", k, got)
		}
	}
	u := Descriptor{Start: []byte{}}
	if !u.Contains(nil) || !u.Contains([]byte{0xff, 0xff}) {
		t.Fatal("[\"\", ∞) does not contain everything")
	}
}

func TestDirectoryKey(t *testing.T) {
	// Directory keys sort by shard ID.
	prev := DirectoryKey(0)
	for _, id := range []uint64{1, 2, 255, 256, 1 << 32, math.MaxUint64} {
		k := DirectoryKey(id)
		if !bytes.HasPrefix(k, []byte(DirectoryPrefix)) || bytes.Compare(prev, k) >= 0 {
			t.Fatalf("DirectoryKey(%d) = %x, previous %x", id, k, prev)
		}
		prev = k
	}
}

// checkTiling checks that ds are the shards of Initial: consecutive IDs from
// SystemID+1, tiling the key space in order, each with replicas reps.
func checkTiling(t *testing.T, ds []Descriptor, n int, reps []uint64) {
	t.Helper()
	if len(ds) != n {
		t.Fatalf("%d shards, want %d", len(ds), n)
	}
	for i, d := range ds {
		if d.ID != SystemID+1+uint64(i) {
			t.Fatalf("shard %d has ID %d", i, d.ID)
		}
		if i == 0 && (d.Start == nil || len(d.Start) != 0) {
			t.Fatalf("first shard starts at %q (nil: %v)", d.Start, d.Start == nil)
		}
		if i > 0 && !bytes.Equal(d.Start, ds[i-1].End) {
			t.Fatalf("shard %d starts at %q, previous ends at %q", i, d.Start, ds[i-1].End)
		}
		if last := i == n-1; last != (d.End == nil) {
			t.Fatalf("shard %d of %d has End %q", i, n, d.End)
		}
		if d.End != nil && bytes.Compare(d.Start, d.End) >= 0 {
			t.Fatalf("shard %d is empty: [%q, %q)", i, d.Start, d.End)
		}
		if !slices.Equal(d.Replicas, reps) {
			t.Fatalf("shard %d replicas %v, want %v", i, d.Replicas, reps)
		}
	}
	if _, err := NewRouter(ds); err != nil {
		t.Fatalf("NewRouter(Initial): %v", err)
	}
}

func TestInitialCount(t *testing.T) {
	for n := 1; n <= 8; n++ {
		ds, err := Initial(n, nil, []uint64{3, 1, 2})
		if err != nil {
			t.Fatalf("Initial(%d): %v", n, err)
		}
		checkTiling(t, ds, n, []uint64{1, 2, 3})
		// Even split over the first byte.
		for i := 1; i < n; i++ {
			if want := []byte{byte(i * 256 / n)}; !bytes.Equal(ds[i].Start, want) {
				t.Fatalf("Initial(%d) shard %d starts at %x, want %x", n, i, ds[i].Start, want)
			}
		}
	}
	for _, n := range []int{16, 255, 256} {
		ds, err := Initial(n, nil, []uint64{1})
		if err != nil {
			t.Fatalf("Initial(%d): %v", n, err)
		}
		checkTiling(t, ds, n, []uint64{1})
	}
	for _, n := range []int{0, -1, 257} {
		if _, err := Initial(n, nil, []uint64{1}); err == nil {
			t.Fatalf("Initial(%d) succeeded", n)
		}
	}
}

func TestInitialSplitKeys(t *testing.T) {
	keys := [][]byte{[]byte("b"), []byte("b\x00"), []byte("m"), {0xff, 0xff}}
	for _, count := range []int{0, 5} {
		ds, err := Initial(count, keys, []uint64{7})
		if err != nil {
			t.Fatalf("Initial(%d, keys): %v", count, err)
		}
		checkTiling(t, ds, 5, []uint64{7})
		for i, k := range keys {
			if !bytes.Equal(ds[i].End, k) || !bytes.Equal(ds[i+1].Start, k) {
				t.Fatalf("split %d at %q: shards %+v", i, k, ds)
			}
		}
	}
	// The descriptors do not alias the caller's split keys.
	own := [][]byte{[]byte("k")}
	ds, err := Initial(0, own, nil)
	if err != nil {
		t.Fatal(err)
	}
	own[0][0] = 'z'
	if string(ds[0].End) != "k" {
		t.Fatalf("descriptor aliases the split key: %q", ds[0].End)
	}

	for name, c := range map[string]struct {
		count int
		keys  [][]byte
	}{
		"empty key":         {0, [][]byte{{}}},
		"empty key later":   {0, [][]byte{[]byte("a"), {}}},
		"nil key":           {0, [][]byte{nil}},
		"equal keys":        {0, [][]byte{[]byte("a"), []byte("a")}},
		"decreasing keys":   {0, [][]byte{[]byte("b"), []byte("a")}},
		"decreasing later":  {0, [][]byte{[]byte("a"), []byte("c"), []byte("b")}},
		"count too small":   {2, [][]byte{[]byte("a"), []byte("b")}},
		"count too large":   {4, [][]byte{[]byte("a"), []byte("b")}},
		"count of one":      {1, [][]byte{[]byte("a")}},
		"prefix then equal": {0, [][]byte{[]byte("a"), []byte("a\x00"), []byte("a\x00")}},
	} {
		if ds, err := Initial(c.count, c.keys, []uint64{1}); err == nil {
			t.Fatalf("%s: Initial(%d, %q) = %+v, want an error", name, c.count, c.keys, ds)
		}
	}
}

// randKey returns a short key over a small alphabet, so that random keys
// often share prefixes and hit split keys exactly.
func randKey(rng *rand.Rand) []byte {
	alphabet := []byte{0x00, 0x01, 'a', 'b', 'c', 0xfe, 0xff}
	k := make([]byte, rng.Intn(4))
	for i := range k {
		k[i] = alphabet[rng.Intn(len(alphabet))]
	}
	return k
}

// randTiling returns a random set of descriptors tiling the key space, in a
// random order.
func randTiling(rng *rand.Rand) []Descriptor {
	set := map[string]bool{}
	for i := rng.Intn(12); i > 0; i-- {
		if k := randKey(rng); len(k) > 0 {
			set[string(k)] = true
		}
	}
	var keys [][]byte
	for k := range set {
		keys = append(keys, []byte(k))
	}
	slices.SortFunc(keys, bytes.Compare)
	ds, err := Initial(0, keys, []uint64{1})
	if len(keys) == 0 {
		ds, err = Initial(1, nil, []uint64{1})
	}
	if err != nil {
		panic(err)
	}
	rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	return ds
}

// TestRouterModel checks Lookup and Overlapping against a brute-force scan
// of the descriptors on random tilings and keys.
func TestRouterModel(t *testing.T) {
	rng := rand.New(rand.NewSource(shardTestSeed(t)))
	for round := 0; round < 300; round++ {
		ds := randTiling(rng)
		r, err := NewRouter(ds)
		if err != nil {
			t.Fatalf("round %d: NewRouter(%+v): %v", round, ds, err)
		}
		all := r.All()
		if len(all) != len(ds) {
			t.Fatalf("All() has %d shards, want %d", len(all), len(ds))
		}
		for i := 1; i < len(all); i++ {
			if bytes.Compare(all[i-1].Start, all[i].Start) >= 0 {
				t.Fatalf("All() not in key order: %+v", all)
			}
		}
		for q := 0; q < 50; q++ {
			k := randKey(rng)
			var want []Descriptor
			for _, d := range ds {
				if d.Contains(k) {
					want = append(want, d)
				}
			}
			if len(want) != 1 {
				t.Fatalf("model: key %q in %d shards of %+v", k, len(want), ds)
			}
			if got := r.Lookup(k); !descEqual(got, want[0]) {
				t.Fatalf("round %d: Lookup(%q) = shard %d [%q, %q), want %d", round, k, got.ID, got.Start, got.End, want[0].ID)
			}

			// Overlapping on a non-empty range [s, e), e nil = unbounded.
			s, e := randKey(rng), randKey(rng)
			if rng.Intn(4) == 0 {
				e = nil
			} else if bytes.Compare(s, e) >= 0 {
				s, e = e, s
				if bytes.Equal(s, e) {
					e = append(slices.Clone(e), 0)
				}
			}
			var wantO []Descriptor
			for _, d := range all {
				startsBeforeEnd := e == nil || bytes.Compare(d.Start, e) < 0
				endsAfterStart := d.End == nil || bytes.Compare(d.End, s) > 0
				if startsBeforeEnd && endsAfterStart {
					wantO = append(wantO, d)
				}
			}
			gotO := r.Overlapping(s, e)
			if !slices.EqualFunc(gotO, wantO, descEqual) {
				t.Fatalf("round %d: Overlapping(%q, %q) = %v, want %v", round, s, e, ids(gotO), ids(wantO))
			}
			if len(gotO) == 0 || !descEqual(gotO[0], r.Lookup(s)) {
				t.Fatalf("round %d: Overlapping(%q, %q) does not start with the shard of %q", round, s, e, s)
			}
		}
	}
}

func ids(ds []Descriptor) []uint64 {
	var out []uint64
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func TestNewRouterRejects(t *testing.T) {
	d := func(id uint64, start, end string, bounded bool) Descriptor {
		x := Descriptor{ID: id, Start: []byte(start)}
		if bounded {
			x.End = []byte(end)
		}
		return x
	}
	for name, ds := range map[string][]Descriptor{
		"empty":                    nil,
		"no empty start":           {d(2, "a", "", false)},
		"gap":                      {d(2, "", "b", true), d(3, "c", "", false)},
		"overlap":                  {d(2, "", "c", true), d(3, "b", "", false)},
		"bounded last":             {d(2, "", "b", true), d(3, "b", "z", true)},
		"unbounded middle":         {d(2, "", "", false), d(3, "b", "", false)},
		"duplicate":                {d(2, "", "b", true), d(3, "b", "", false), d(4, "b", "", false)},
		"two firsts":               {d(2, "", "b", true), d(3, "", "b", true), d(4, "b", "", false)},
		"zero-width shard":         {d(2, "", "b", true), d(3, "b", "b", true), d(4, "b", "", false)},
		"zero-width first":         {d(2, "", "", true), d(3, "", "", false)},
		"inverted shard":           {d(2, "", "c", true), d(3, "c", "b", true), d(4, "b", "", false)},
		"unbounded first and more": {d(2, "", "", false), d(3, "", "", false)},
	} {
		// Whatever order the caller passes them in.
		for perm := 0; perm < 6; perm++ {
			p := slices.Clone(ds)
			rng := rand.New(rand.NewSource(int64(perm)))
			rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
			if r, err := NewRouter(p); err == nil {
				t.Fatalf("%s (order %v): NewRouter accepted %v", name, ids(p), ids(r.All()))
			}
		}
	}
	// A valid tiling is accepted in any order.
	ds := []Descriptor{d(2, "", "b", true), d(3, "b", "m", true), d(4, "m", "", false)}
	for perm := 0; perm < 6; perm++ {
		p := slices.Clone(ds)
		rng := rand.New(rand.NewSource(int64(perm)))
		rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		r, err := NewRouter(p)
		if err != nil {
			t.Fatalf("NewRouter(%v): %v", ids(p), err)
		}
		if got := ids(r.All()); fmt.Sprint(got) != "[2 3 4]" {
			t.Fatalf("All() = %v", got)
		}
	}
}

// TestRouterImmutable: a router does not share its slice with the caller.
func TestRouterImmutable(t *testing.T) {
	ds, err := Initial(3, nil, []uint64{1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRouter(ds)
	if err != nil {
		t.Fatal(err)
	}
	ds[0].ID = 99
	all := r.All()
	all[1].ID = 98
	if got := ids(r.All()); fmt.Sprint(got) != "[2 3 4]" {
		t.Fatalf("router changed under its caller: %v", got)
	}
}
