package strata

import (
	"errors"
	"github.com/strata-kv/strata/storage"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/raftnode"
)

// Limits on keys and values.
const (
	// MaxKeySize is the largest key, in bytes.
	MaxKeySize = 4 << 10
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 1 << 20
)

var (
	// ErrDiskFull is returned by Open when the data directory's filesystem
	// has less free space than Options.MinFreeBytes.
	ErrDiskFull = storage.ErrDiskFull
	// ErrNotFound is returned by Get for an absent key.
	ErrNotFound = errors.New("strata: key not found")
	// ErrEmptyKey rejects an empty key.
	ErrEmptyKey = errors.New("strata: empty key")
	// ErrKeyTooLarge rejects a key longer than MaxKeySize.
	ErrKeyTooLarge = errors.New("strata: key too large")
	// ErrValueTooLarge rejects a value longer than MaxValueSize.
	ErrValueTooLarge = errors.New("strata: value too large")
	// ErrInvalidRange rejects a scan whose end is not after its start.
	ErrInvalidRange = errors.New("strata: invalid range")
	// ErrClosed is returned by calls on a closed DB.
	ErrClosed = errors.New("strata: db closed")
	// ErrAmbiguous means a write may or may not have been applied.
	ErrAmbiguous = kvpb.ErrAmbiguous
	// ErrTimestampTooOld rejects a read at a timestamp below its shard's
	// replicated GC threshold, below which GC may have removed history
	// (Options.HistoryRetention, DB.GC).
	ErrTimestampTooOld = kvpb.ErrTimestampTooOld
	// ErrStopped means the node stopped, e.g. after a storage failure.
	ErrStopped = raftnode.ErrStopped
)

// NotLeaderError is returned (wrapped with the context's error) by a call
// that could not reach the leader of a shard before its context ended;
// Leader is the last leader known (0 if none).
type NotLeaderError = kvpb.NotLeaderError
