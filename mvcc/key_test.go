package mvcc

import (
	"bytes"
	"cmp"
	"errors"
	"testing"

	"github.com/strata-kv/strata/storage"
)

// seedKeys are user keys that exercise the escaping: empty, 0x00 and 0xFF
// bytes, and keys that are prefixes of each other.
var seedKeys = [][]byte{
	nil, {0x00}, {0x00, 0x00}, {0x00, 0x01}, {0x00, 0xFF}, {0x01}, {0xFF}, {0xFF, 0x00},
	[]byte("a"), []byte("a\x00"), []byte("a\x00b"), []byte("ab"), []byte("a\xff"),
}

var seedVersions = []uint64{0, 1, 2, 255, 256, 1 << 32, MaxTimestamp - 1, MaxTimestamp}

func TestEncodeKeyLayout(t *testing.T) {
	got := EncodeKey([]byte("a\x00b"), 1)
	want := []byte{storage.PrefixUser, 'a', 0x00, 0xFF, 'b', 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeKey = %x, want %x", got, want)
	}
	if p := KeyPrefix([]byte("a\x00b")); !bytes.Equal(p, want[:len(want)-8]) {
		t.Fatalf("KeyPrefix = %x, want %x", p, want[:len(want)-8])
	}
}

func TestDecodeKeyErrors(t *testing.T) {
	for _, k := range [][]byte{
		nil,
		{storage.PrefixSystem, 'a', 0, 1, 0, 0, 0, 0, 0, 0, 0, 1},
		{storage.PrefixUser},
		{storage.PrefixUser, 'a'},
		{storage.PrefixUser, 'a', 0},
		{storage.PrefixUser, 'a', 0, 2, 0, 0, 0, 0, 0, 0, 0, 1},
		{storage.PrefixUser, 'a', 0, 1, 0, 0, 0, 0, 0, 0, 1},
		{storage.PrefixUser, 'a', 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1},
	} {
		if _, _, err := DecodeKey(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("DecodeKey(%x) error = %v, want ErrBadKey", k, err)
		}
	}
}

func TestDecodeValue(t *testing.T) {
	for _, tc := range []struct {
		in      []byte
		value   []byte
		deleted bool
		bad     bool
	}{
		{in: nil, bad: true},
		{in: []byte{2}, bad: true},
		{in: []byte{1, 'x'}, bad: true},
		{in: []byte{1}, deleted: true},
		{in: []byte{0}, value: []byte{}},
		{in: []byte{0, 'x'}, value: []byte("x")},
	} {
		v, d, err := DecodeValue(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrBadValue) {
				t.Errorf("DecodeValue(%x) error = %v, want ErrBadValue", tc.in, err)
			}
			continue
		}
		if err != nil || d != tc.deleted || !bytes.Equal(v, tc.value) {
			t.Errorf("DecodeValue(%x) = %q, %v, %v", tc.in, v, d, err)
		}
	}
}

func TestSpanTiles(t *testing.T) {
	us, ue := storage.UserSpan()
	s, e := Span(nil, nil)
	if !bytes.Equal(s, us) || !bytes.Equal(e, ue) {
		t.Fatalf("Span(nil, nil) = %x, %x, want the user span %x, %x", s, e, us, ue)
	}
	_, e1 := Span(nil, []byte("m"))
	s2, e2 := Span([]byte("m"), []byte{})
	if !bytes.Equal(e1, s2) || !bytes.Equal(e2, ue) {
		t.Fatalf("adjacent spans do not tile: %x %x %x", e1, s2, e2)
	}
}

func FuzzKeyRoundTrip(f *testing.F) {
	for _, k := range seedKeys {
		for _, v := range seedVersions {
			f.Add(k, v)
		}
	}
	f.Fuzz(func(t *testing.T, userKey []byte, version uint64) {
		enc := EncodeKey(userKey, version)
		if len(enc) != encodedLen(userKey) {
			t.Fatalf("len(EncodeKey) = %d, want %d", len(enc), encodedLen(userKey))
		}
		k, v, err := DecodeKey(enc)
		if err != nil {
			t.Fatalf("DecodeKey(EncodeKey(%x, %d)): %v", userKey, version, err)
		}
		if !bytes.Equal(k, userKey) || v != version {
			t.Fatalf("round trip of (%x, %d) gave (%x, %d)", userKey, version, k, v)
		}
	})
}

// FuzzKeyOrder checks that the encoding preserves the order of user keys
// and sorts the versions of one key newest first.
func FuzzKeyOrder(f *testing.F) {
	for i, a := range seedKeys {
		for j, b := range seedKeys {
			f.Add(a, seedVersions[i%len(seedVersions)], b, seedVersions[j%len(seedVersions)])
		}
	}
	f.Add([]byte("a"), uint64(1), []byte("a"), uint64(2))
	f.Fuzz(func(t *testing.T, a []byte, va uint64, b []byte, vb uint64) {
		got := bytes.Compare(EncodeKey(a, va), EncodeKey(b, vb))
		want := bytes.Compare(a, b)
		if want == 0 {
			want = cmp.Compare(vb, va) // newest first
		}
		if got != want {
			t.Fatalf("compare(EncodeKey(%x, %d), EncodeKey(%x, %d)) = %d, want %d", a, va, b, vb, got, want)
		}
	})
}

// FuzzSpanBounds checks KeyPrefix and Span: a key's versions fall in
// Span(start, end) exactly when the key is in [start, end).
func FuzzSpanBounds(f *testing.F) {
	for _, k := range seedKeys {
		for _, s := range seedKeys {
			f.Add(k, uint64(7), s, []byte("a\x00"))
			f.Add(k, MaxTimestamp, s, []byte{})
		}
	}
	f.Fuzz(func(t *testing.T, k []byte, v uint64, start, end []byte) {
		enc := EncodeKey(k, v)
		p := KeyPrefix(k)
		if !bytes.HasPrefix(enc, p) || bytes.Compare(p, enc) >= 0 {
			t.Fatalf("KeyPrefix(%x) = %x is not a proper prefix of %x", k, p, enc)
		}
		// Relative to another key s: smaller keys sort before s's prefix,
		// greater keys after every version of s (version 0 encodes last).
		for _, s := range [][]byte{start, end} {
			switch bytes.Compare(k, s) {
			case -1:
				if bytes.Compare(enc, KeyPrefix(s)) >= 0 {
					t.Fatalf("%x < %x but EncodeKey >= KeyPrefix", k, s)
				}
			case 1:
				if bytes.Compare(enc, EncodeKey(s, 0)) <= 0 {
					t.Fatalf("%x > %x but EncodeKey <= the last version of %x", k, s, s)
				}
			}
		}

		lo, hi := Span(start, end)
		us, ue := storage.UserSpan()
		if bytes.Compare(lo, us) < 0 || bytes.Compare(hi, ue) > 0 {
			t.Fatalf("Span(%x, %x) = [%x, %x) is outside the user span", start, end, lo, hi)
		}
		inRange := bytes.Compare(k, start) >= 0 && (len(end) == 0 || bytes.Compare(k, end) < 0)
		inSpan := bytes.Compare(enc, lo) >= 0 && bytes.Compare(enc, hi) < 0
		if inRange != inSpan {
			t.Fatalf("key %x in [%x, %x) = %v, but its version in Span = %v", k, start, end, inRange, inSpan)
		}
	})
}

// FuzzDecodeKey checks that DecodeKey never panics and accepts exactly the
// keys EncodeKey produces.
func FuzzDecodeKey(f *testing.F) {
	for _, k := range seedKeys {
		enc := EncodeKey(k, 42)
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(KeyPrefix(k))
	}
	f.Add([]byte{})
	f.Add([]byte{storage.PrefixUser, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, v, err := DecodeKey(data)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("DecodeKey(%x) error %v does not wrap ErrBadKey", data, err)
			}
			return
		}
		if enc := EncodeKey(k, v); !bytes.Equal(enc, data) {
			t.Fatalf("DecodeKey(%x) = (%x, %d), which encodes to %x", data, k, v, enc)
		}
	})
}

// FuzzDecodeValue checks that DecodeValue never panics and accepts exactly
// the values EncodeValue produces.
func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{0, 0xFF})
	f.Add([]byte{1})
	f.Add([]byte{1, 0})
	f.Add([]byte{2, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, deleted, err := DecodeValue(data)
		if err != nil {
			if !errors.Is(err, ErrBadValue) {
				t.Fatalf("DecodeValue(%x) error %v does not wrap ErrBadValue", data, err)
			}
			return
		}
		if enc := EncodeValue(v, deleted); !bytes.Equal(enc, data) {
			t.Fatalf("DecodeValue(%x) = (%x, %v), which encodes to %x", data, v, deleted, enc)
		}
	})
}
