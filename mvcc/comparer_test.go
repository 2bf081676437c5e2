package mvcc

import (
	"bytes"
	"testing"

	"github.com/strata-kv/strata/storage"
)

// FuzzComparerSplit checks storage.Comparer's Split against the encoding it
// must understand: a full key splits into its KeyPrefix and version, and a
// bare prefix, or the bound just after a key's versions, is not cut.
func FuzzComparerSplit(f *testing.F) {
	f.Add([]byte("k"), uint64(1))
	f.Add([]byte{0}, uint64(0x0001000000000000))
	f.Add([]byte{0, 1, 0, 1}, ^uint64(0))
	f.Add([]byte("\x00\x01\x00\x01\x00\x01\x00\x01\x00\x01"), uint64(0x0100000000000000))
	f.Add([]byte{}, uint64(7))
	split := storage.Comparer.Split
	f.Fuzz(func(t *testing.T, key []byte, version uint64) {
		full := EncodeKey(key, version)
		prefix := KeyPrefix(key)
		if n := split(full); n != len(prefix) || !bytes.Equal(full[:n], prefix) {
			t.Fatalf("Split(EncodeKey(%x, %d)) = %d, want %d", key, version, n, len(prefix))
		}
		if n := split(prefix); n != len(prefix) {
			t.Fatalf("Split(KeyPrefix(%x)) = %d, want all %d bytes", key, n, len(prefix))
		}
		if _, upper := versionsSpan(full); split(upper) != len(upper) {
			t.Fatalf("Split cuts the bound after the versions of %x", key)
		}
		// Prefixes order keys before suffixes (Pebble's property 2).
		other := EncodeKey(append(bytes.Clone(key), 0), version^1)
		if c, cp := bytes.Compare(full, other), bytes.Compare(full[:split(full)], other[:split(other)]); c < 0 && cp > 0 {
			t.Fatalf("%x < %x but their prefixes order the other way", full, other)
		}
	})
}

// TestComparerProperties checks Pebble's three Split properties over keys
// of every kind the store holds: full MVCC keys, bare prefixes and bounds,
// raft-local keys, system and metadata keys. (Pebble's CheckComparer also
// requires prefixes to stay valid with leading bytes cut, for synthetic
// prefixes, which Strata does not use: Split looks at the first byte.)
func TestComparerProperties(t *testing.T) {
	split := storage.Comparer.Split
	var keys [][]byte
	for _, k := range []string{"a", "a\x00", "a\x00\x01", "ab", "b", "\x00\x01", "\x00\x01\x00\x01\x00\x01\x00\x01\x00\x01"} {
		keys = append(keys, KeyPrefix([]byte(k)))
		for _, v := range []uint64{1, 2, 0x0001000000000000, 1 << 40, MaxTimestamp} {
			full := EncodeKey([]byte(k), v)
			keys = append(keys, full)
			_, upper := versionsSpan(full)
			keys = append(keys, upper)
		}
	}
	for _, g := range []uint64{1, 2, 256, 1<<16 + 1} {
		keys = append(keys, storage.LogKey(g, 1), storage.LogKey(g, 256), storage.HardStateKey(g), storage.AppliedStateKey(g))
	}
	keys = append(keys, storage.SystemKey([]byte("shard/\x00\x00\x00\x00\x00\x00\x00\x02")), storage.MetaKey("format-version"))
	lo, hi := storage.UserSpan()
	keys = append(keys, lo, hi)
	prefix := func(k []byte) []byte { return k[:split(k)] }
	for _, a := range keys {
		if len(a) > split(a) && bytes.Compare(prefix(a), a) >= 0 {
			t.Errorf("property 1: prefix of %x does not sort before it", a)
		}
		for _, b := range keys {
			c, cp := bytes.Compare(a, b), bytes.Compare(prefix(a), prefix(b))
			if c <= 0 && cp > 0 || cp < 0 && c >= 0 {
				t.Errorf("property 2: %x vs %x: keys compare %d, prefixes %d", a, b, c, cp)
			}
			if cp == 0 && c != bytes.Compare(a[split(a):], b[split(b):]) {
				t.Errorf("property 3: %x vs %x: suffixes order differently", a, b)
			}
		}
	}
}
