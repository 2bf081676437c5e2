package mvcc

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Value is one stored version of a key.
type Value struct {
	// Value is the value; nil for a tombstone.
	Value []byte
	// Version is the version the value was written at.
	Version uint64
	// Deleted is true for a tombstone.
	Deleted bool
}

// KV is a live key returned by Scan.
type KV struct {
	Key, Value []byte
	// Version is the version of Value.
	Version uint64
}

func checkVersion(version uint64) error {
	if version == 0 {
		return fmt.Errorf("%w: version 0 is reserved", ErrBadKey)
	}
	return nil
}

// Put writes value as version of key into w.
func Put(w pebble.Writer, key, value []byte, version uint64) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	return w.Set(EncodeKey(key, version), EncodeValue(value, false), nil)
}

// Delete writes a tombstone as version of key into w: reads at version or
// above do not see key until a newer version is put.
func Delete(w pebble.Writer, key []byte, version uint64) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	return w.Set(EncodeKey(key, version), EncodeValue(nil, true), nil)
}

// Get returns the newest version of key with version <= ts. found is false if
// there is none or it is a tombstone; for a tombstone, version is the
// tombstone's version (0 if there is no version at all).
func Get(r pebble.Reader, key []byte, ts uint64) (value []byte, version uint64, found bool, err error) {
	if ts == 0 {
		return nil, 0, false, nil // no version is <= 0
	}
	seek := EncodeKey(key, ts)
	lower, upper := versionsSpan(seek)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, 0, false, err
	}
	defer it.Close()
	// With storage.Comparer the prefix is the user key: the seek consults
	// the bloom filters and stays among key's versions. (Under a comparer
	// that does not split, the prefix is the whole key and the seek would
	// find only version ts exactly; mvcc is used with storage.Comparer.)
	if !it.SeekPrefixGE(seek) {
		return nil, 0, false, it.Error()
	}
	v, err := current(it, nil)
	if err != nil {
		return nil, 0, false, err
	}
	if v.Deleted {
		return nil, v.Version, false, nil
	}
	return bytes.Clone(v.Value), v.Version, true, nil
}

// current decodes the version the valid iterator it is positioned at.
func current(it *pebble.Iterator, keyBuf []byte) (v Value, err error) {
	v, _, err = currentKey(it, keyBuf)
	return v, err
}

// currentKey is current also returning the user key, appended to
// keyBuf[:0]. v.Value aliases the iterator's memory.
func currentKey(it *pebble.Iterator, keyBuf []byte) (v Value, userKey []byte, err error) {
	userKey, v.Version, err = decodeKey(keyBuf, it.Key())
	if err != nil {
		return Value{}, nil, err
	}
	raw, err := it.ValueAndErr()
	if err != nil {
		return Value{}, nil, err
	}
	v.Value, v.Deleted, err = DecodeValue(raw)
	if err != nil {
		return Value{}, nil, fmt.Errorf("%w (key %q version %d)", err, userKey, v.Version)
	}
	return v, userKey, nil
}

// versionsSpan returns the span of every version of the user key of the
// encoded key k: its KeyPrefix, aliasing k, and the first key after it.
func versionsSpan(k []byte) (lower, upper []byte) {
	lower = k[:len(k)-versionLen]
	upper = append([]byte(nil), lower...)
	upper[len(upper)-1]++
	return lower, upper
}

// nextKey moves the iterator, positioned at a well-formed MVCC key, to the
// first version of the next user key. It steps a few times before it seeks:
// keys with few versions are the common case and a step is cheaper. buf is
// scratch space, returned for reuse.
func nextKey(it *pebble.Iterator, buf []byte) (valid bool, _ []byte) {
	k := it.Key()
	prefix := append(buf[:0], k[:len(k)-versionLen]...) // copied: it.Key() changes as it moves
	for range 4 {
		if !it.Next() {
			return false, prefix
		}
		if !bytes.HasPrefix(it.Key(), prefix) {
			return true, prefix
		}
	}
	prefix[len(prefix)-1]++ // the first key after every version
	return it.SeekGE(prefix), prefix
}

// Versions returns every version of key, tombstones included, newest first.
func Versions(r pebble.Reader, key []byte) ([]Value, error) {
	lower, upper := versionsSpan(EncodeKey(key, 0))
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Value
	for valid := it.First(); valid; valid = it.Next() {
		v, err := current(it, nil)
		if err != nil {
			return nil, err
		}
		v.Value = bytes.Clone(v.Value)
		out = append(out, v)
	}
	return out, it.Error()
}

// Scan returns the live keys in [start, end) (an empty end means no upper
// bound) as of ts, in key order, at most limit of them (limit <= 0: no
// limit). With keysOnly the Value of every KV is nil. Returned slices are
// copies owned by the caller.
func Scan(r pebble.Reader, start, end []byte, ts uint64, limit int, keysOnly bool) ([]KV, error) {
	if ts == 0 {
		return nil, nil
	}
	lower, upper := Span(start, end)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()

	var out []KV
	var keyBuf, seekBuf []byte
	valid := it.First()
	for valid {
		v, userKey, err := currentKey(it, keyBuf)
		if err != nil {
			return nil, err
		}
		keyBuf = userKey
		if v.Version > ts {
			// Skip the versions of this key newer than ts. The seek lands on
			// the newest version <= ts or on a later key.
			valid = it.SeekGE(EncodeKey(userKey, ts))
			continue
		}
		if !v.Deleted {
			kv := KV{Key: bytes.Clone(userKey), Version: v.Version}
			if !keysOnly {
				kv.Value = bytes.Clone(v.Value)
			}
			out = append(out, kv)
			if len(out) == limit {
				break
			}
		}
		valid, seekBuf = nextKey(it, seekBuf)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return out, nil
}

// GC deletes, within the Pebble span [lower, upper) of user data, every
// version that is superseded at or below horizon: for each key the newest
// version <= horizon stays, unless it is a tombstone, which then goes too;
// older versions go; versions > horizon stay. It writes the deletions into w
// and returns how many versions it removed. Reads at any ts >= horizon see
// the same data before and after. lower and upper must fall between user
// keys (as Span and KeyPrefix make them).
//
// GC examines at most about maxVersions versions (0: no bound): once it has
// examined that many, it stops before the next user key and returns that
// key as resume, where a later call continues; resume is nil when GC
// reached upper. The versions of one key are never split between calls. The
// same data and arguments give the same deletions and the same resume, so
// every replica that applies a GC command does the same.
//
// r and w may be the same indexed batch: the deletions are not seen by the
// iteration that finds them. On error, w may hold part of the deletions; the
// caller discards it.
func GC(r pebble.Reader, w pebble.Writer, lower, upper []byte, horizon uint64, maxVersions int) (removed int, resume []byte, err error) {
	if horizon == 0 || bytes.Compare(lower, upper) >= 0 {
		return 0, nil, nil
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, nil, err
	}
	defer it.Close()

	var keyBuf []byte
	examined := 0
	valid := it.First()
	for valid {
		// it is at the first version of a user key.
		v, userKey, err := currentKey(it, keyBuf)
		if err != nil {
			return removed, nil, err
		}
		keyBuf = userKey
		if maxVersions > 0 && examined >= maxVersions {
			return removed, bytes.Clone(userKey), nil
		}
		examined++
		prefix := KeyPrefix(userKey)
		if v.Version > horizon {
			valid = it.SeekGE(EncodeKey(userKey, horizon))
			if !valid || !bytes.HasPrefix(it.Key(), prefix) {
				continue // no version <= horizon: the key stays whole
			}
			if v, err = current(it, keyBuf); err != nil {
				return removed, nil, err
			}
			examined++
		}
		// v is the newest version <= horizon: it stays unless it is a
		// tombstone; every older version goes.
		if v.Deleted {
			if err := w.Delete(it.Key(), nil); err != nil {
				return removed, nil, err
			}
			removed++
		}
		for valid = it.Next(); valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
			if len(it.Key()) != len(prefix)+versionLen {
				return removed, nil, fmt.Errorf("%w: version of %d bytes, want %d: %x",
					ErrBadKey, len(it.Key())-len(prefix), versionLen, it.Key())
			}
			if err := w.Delete(it.Key(), nil); err != nil {
				return removed, nil, err
			}
			removed++
			examined++
		}
	}
	if err := it.Error(); err != nil {
		return removed, nil, err
	}
	return removed, nil, nil
}
