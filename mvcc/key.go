package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/strata-kv/strata/storage"
)

var (
	// ErrBadKey reports a Pebble key that is not a well-formed MVCC key, or
	// a version that may not be written.
	ErrBadKey = errors.New("mvcc: malformed key")
	// ErrBadValue reports a Pebble value that is not a well-formed MVCC value.
	ErrBadValue = errors.New("mvcc: malformed value")
)

// MaxTimestamp reads the newest version.
const MaxTimestamp = ^uint64(0)

const (
	escapeByte     byte = 0x00 // starts an escape sequence or the terminator
	escapedZero    byte = 0xFF // 0x00 0xFF stands for a 0x00 byte of the user key
	terminatorByte byte = 0x01 // 0x00 0x01 ends the user key
	versionLen          = 8
)

// Value tags: the first byte of every stored value.
const (
	tagValue     byte = 0
	tagTombstone byte = 1
)

// appendPrefix appends PrefixUser | escape(userKey) | 0x00 0x01 to dst.
func appendPrefix(dst, userKey []byte) []byte {
	dst = append(dst, storage.PrefixUser)
	for {
		i := bytes.IndexByte(userKey, escapeByte)
		if i < 0 {
			break
		}
		dst = append(dst, userKey[:i+1]...)
		dst = append(dst, escapedZero)
		userKey = userKey[i+1:]
	}
	dst = append(dst, userKey...)
	return append(dst, escapeByte, terminatorByte)
}

// encodedLen is the length of EncodeKey(userKey, v).
func encodedLen(userKey []byte) int {
	return 1 + len(userKey) + bytes.Count(userKey, []byte{escapeByte}) + 2 + versionLen
}

// EncodeKey returns the Pebble key of version of userKey.
func EncodeKey(userKey []byte, version uint64) []byte {
	k := appendPrefix(make([]byte, 0, encodedLen(userKey)), userKey)
	return binary.BigEndian.AppendUint64(k, ^version)
}

// DecodeKey returns the user key and version of a Pebble key written by
// EncodeKey. The user key is a new slice. Anything else, including a key that
// EncodeKey cannot produce, returns an error wrapping ErrBadKey.
func DecodeKey(k []byte) (userKey []byte, version uint64, err error) {
	return decodeKey(nil, k)
}

// decodeKey is DecodeKey appending the user key to dst[:0].
func decodeKey(dst, k []byte) (userKey []byte, version uint64, err error) {
	if len(k) == 0 || k[0] != storage.PrefixUser {
		return nil, 0, fmt.Errorf("%w: no user data prefix: %x", ErrBadKey, k)
	}
	userKey = dst[:0]
	rest := k[1:]
	for {
		i := bytes.IndexByte(rest, escapeByte)
		if i < 0 || i+1 == len(rest) {
			return nil, 0, fmt.Errorf("%w: unterminated user key: %x", ErrBadKey, k)
		}
		userKey = append(userKey, rest[:i]...)
		switch rest[i+1] {
		case escapedZero:
			userKey = append(userKey, escapeByte)
			rest = rest[i+2:]
		case terminatorByte:
			rest = rest[i+2:]
			if len(rest) != versionLen {
				return nil, 0, fmt.Errorf("%w: version of %d bytes, want %d: %x", ErrBadKey, len(rest), versionLen, k)
			}
			return userKey, ^binary.BigEndian.Uint64(rest), nil
		default:
			return nil, 0, fmt.Errorf("%w: bad escape 0x00 0x%02x: %x", ErrBadKey, rest[i+1], k)
		}
	}
}

// KeyPrefix is the encoding of userKey without the version: every version of
// userKey sorts at or after it, every key smaller than userKey sorts before
// it, and every key greater than userKey sorts after all versions of
// userKey. Use it as a span bound.
func KeyPrefix(userKey []byte) []byte {
	return appendPrefix(make([]byte, 0, encodedLen(userKey)-versionLen), userKey)
}

// Span returns the Pebble span [start, end) holding the versions of every
// user key in [startKey, endKey). An empty startKey starts at the start of
// storage.UserSpan and an empty (or nil) endKey ends at its end, so the spans
// of adjacent key ranges tile the user span without a gap.
func Span(startKey, endKey []byte) (start, end []byte) {
	start, end = storage.UserSpan()
	if len(startKey) > 0 {
		start = KeyPrefix(startKey)
	}
	if len(endKey) > 0 {
		end = KeyPrefix(endKey)
	}
	return start, end
}

// EncodeValue returns the stored form of a value, or of a tombstone if
// deleted is true (value is then ignored).
func EncodeValue(value []byte, deleted bool) []byte {
	if deleted {
		return []byte{tagTombstone}
	}
	v := make([]byte, 1+len(value))
	v[0] = tagValue
	copy(v[1:], value)
	return v
}

// DecodeValue returns the value held by a stored value, or deleted = true for
// a tombstone. The returned value aliases b. A value that EncodeValue cannot
// produce returns an error wrapping ErrBadValue.
func DecodeValue(b []byte) (value []byte, deleted bool, err error) {
	if len(b) == 0 {
		return nil, false, fmt.Errorf("%w: empty", ErrBadValue)
	}
	switch b[0] {
	case tagValue:
		return b[1:], false, nil
	case tagTombstone:
		if len(b) != 1 {
			return nil, false, fmt.Errorf("%w: tombstone with %d bytes of value", ErrBadValue, len(b)-1)
		}
		return nil, true, nil
	default:
		return nil, false, fmt.Errorf("%w: unknown tag %d", ErrBadValue, b[0])
	}
}
