package statemachine

// Budget is what the reads of one batch may still return: Keys pairs and
// Bytes bytes (keys and values). 0 means no bound for that dimension. The
// reads of a batch share one Budget and each spends what it returns, so a
// caller sets it from the header's max_keys and max_bytes (or its
// defaults) and hands the same Budget to every Eval of the batch. A nil
// *Budget has no bounds.
//
// A scan stops once the next pair would not fit and returns a resume key;
// it still returns one pair when none fits, so that paging always makes
// progress. A get never refuses: a value found spends one key and the
// value's bytes, and may exhaust the budget for the reads after it.
//
// A bounded dimension that is spent to zero or below is exhausted, not
// unbounded: Budget remembers that, and then keeps Keys or Bytes at 0.
type Budget struct {
	Keys, Bytes uint64

	// keysOut and bytesOut record a bounded dimension spent to exhaustion,
	// whose 0 no longer means no bound.
	keysOut, bytesOut bool
}

// Exhausted reports whether a bounded dimension of b has nothing left, so
// that a scan would return only its progress pair.
func (b *Budget) Exhausted() bool {
	return b != nil && (b.keysOut || b.bytesOut)
}

// fits reports whether one more pair of size bytes is within b.
func (b *Budget) fits(size uint64) bool {
	if b == nil {
		return true
	}
	if b.keysOut || b.bytesOut {
		return false
	}
	return b.Bytes == 0 || size <= b.Bytes
}

// keysLeft returns how many more pairs b allows, and false if that is not
// bounded.
func (b *Budget) keysLeft() (uint64, bool) {
	switch {
	case b == nil:
		return 0, false
	case b.keysOut:
		return 0, true
	case b.Keys == 0:
		return 0, false
	}
	return b.Keys, true
}

// bytesLeft returns how many more bytes b allows, and false if that is
// not bounded.
func (b *Budget) bytesLeft() (uint64, bool) {
	switch {
	case b == nil:
		return 0, false
	case b.bytesOut:
		return 0, true
	case b.Bytes == 0:
		return 0, false
	}
	return b.Bytes, true
}

// spend takes keys pairs of size bytes from b, marking a bounded dimension
// exhausted when it reaches zero.
func (b *Budget) spend(keys, size uint64) {
	if b == nil {
		return
	}
	b.Keys, b.keysOut = take(b.Keys, b.keysOut, keys)
	b.Bytes, b.bytesOut = take(b.Bytes, b.bytesOut, size)
}

// take subtracts n from the remaining amount left of a dimension; out says
// it is already exhausted. An unbounded dimension (left 0, not out) stays
// unbounded.
func take(left uint64, out bool, n uint64) (uint64, bool) {
	if out || left == 0 || n == 0 {
		return left, out
	}
	if n >= left {
		return 0, true
	}
	return left - n, false
}
