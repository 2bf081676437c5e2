package storage

import (
	"bytes"

	"github.com/cockroachdb/pebble/v2"
)

// VersionLen is the length of the version suffix of an MVCC key (see the
// layout in keys.go).
const VersionLen = 8

// ComparerName is recorded by Pebble in the store; a store written with
// another comparer does not open (see Open).
const ComparerName = "strata.mvcc.v1"

// Comparer orders keys bytewise, like Pebble's default, and tells Pebble
// where the version suffix of an MVCC key starts, so that bloom filters hold
// user keys without their versions and a point read is one SeekPrefixGE.
//
// Split must be exact on every key Pebble may see: full MVCC keys, the bare
// prefixes mvcc uses as span bounds (PrefixUser | escape(key) | 0x00 0x01,
// no version), their successors, and every non-user key. The rule: a key
// of user data whose bytes at len-10 and len-9 are the terminator 0x00 0x01
// has an 8-byte version suffix; any other key is all prefix. The escaped
// user key never holds 0x00 0x01 (a 0x00 of the user key is written 0x00
// 0xFF), so the terminator is found only where it ends the user key, and a
// bare prefix, whose terminator is its last two bytes, is never cut.
//
// Separator and Successor return their first argument unchanged: shortened
// index keys could otherwise end inside a version and break the ordering of
// prefixes that Split promises Pebble. This costs some index-block bytes.
var Comparer = func() *pebble.Comparer {
	c := *pebble.DefaultComparer
	c.Name = ComparerName
	c.Split = splitMVCC
	c.Separator = func(dst, a, _ []byte) []byte { return append(dst, a...) }
	c.Successor = func(dst, a []byte) []byte { return append(dst, a...) }
	c.ComparePointSuffixes = bytes.Compare
	c.CompareRangeSuffixes = bytes.Compare
	c.Compare = bytes.Compare
	c.Equal = bytes.Equal
	return &c
}()

// splitMVCC returns the length of k's prefix: k without its version for a
// full MVCC key, all of k otherwise.
func splitMVCC(k []byte) int {
	n := len(k)
	if n >= 1+2+VersionLen && k[0] == PrefixUser && k[n-VersionLen-2] == 0x00 && k[n-VersionLen-1] == 0x01 {
		return n - VersionLen
	}
	return n
}
