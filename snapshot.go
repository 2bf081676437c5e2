package strata

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"

	"github.com/strata-kv/strata/api"
)

// ErrSnapshotClosed is returned by reads of a closed Snapshot.
var ErrSnapshotClosed = errors.New("strata: snapshot closed")

// ErrFutureTimestamp rejects SnapshotAt of a timestamp the oracle has not
// handed out yet: writes could still commit at or below it.
var ErrFutureTimestamp = errors.New("strata: timestamp is in the future")

// Snapshot is a consistent, read-only view of the whole database at one
// timestamp: it sees exactly the writes committed at or below it, on every
// shard. It is safe for concurrent use. Reads of a snapshot older than
// Options.HistoryRetention may fail with ErrTimestampTooOld.
type Snapshot struct {
	db     *DB
	ts     Timestamp
	closed atomic.Bool
}

// Snapshot returns a snapshot at a timestamp taken now: it sees every write
// acknowledged before the call and none that begins after it returns.
func (db *DB) Snapshot(ctx context.Context) (*Snapshot, error) {
	ts, err := db.Now(ctx)
	if err != nil {
		return nil, err
	}
	return &Snapshot{db: db, ts: ts}, nil
}

// SnapshotAt returns a snapshot at ts, a past timestamp (one the oracle has
// handed out), within Options.HistoryRetention for its reads to succeed.
func (db *DB) SnapshotAt(ctx context.Context, ts Timestamp) (*Snapshot, error) {
	if ts == 0 {
		return nil, fmt.Errorf("%w: timestamp 0", ErrTimestampTooOld)
	}
	now, err := db.Now(ctx)
	if err != nil {
		return nil, err
	}
	if ts > now {
		return nil, fmt.Errorf("%w: %v is after the oracle's %v", ErrFutureTimestamp, ts, now)
	}
	return &Snapshot{db: db, ts: ts}, nil
}

// Timestamp returns the snapshot's timestamp.
func (s *Snapshot) Timestamp() Timestamp { return s.ts }

// Get returns the value key had at the snapshot's timestamp, or
// ErrNotFound if it had none.
func (s *Snapshot) Get(ctx context.Context, key []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrSnapshotClosed
	}
	return s.db.get(ctx, key, api.ReadLevel_READ_LEVEL_LINEARIZABLE, s.ts)
}

// Scan returns the keys in [start, end) and their values at the snapshot's
// timestamp, in key order, at most limit of them (limit <= 0: no limit); a
// nil end means no upper bound.
func (s *Snapshot) Scan(ctx context.Context, start, end []byte, limit int) ([]KV, error) {
	if s.closed.Load() {
		return nil, ErrSnapshotClosed
	}
	return s.db.scan(ctx, start, end, limit, false, s.ts)
}

// ScanKeys is Scan without the values (each KV's Value is nil).
func (s *Snapshot) ScanKeys(ctx context.Context, start, end []byte, limit int) ([]KV, error) {
	if s.closed.Load() {
		return nil, ErrSnapshotClosed
	}
	return s.db.scan(ctx, start, end, limit, true, s.ts)
}

// ScanPage is Scan returning at most about maxBytes of keys and values
// (at least one pair, if any is left): resume is where the rest of the
// range starts (pass it as the next page's start), nil once the range or
// the limit is exhausted. Pages of one snapshot form one consistent read.
func (s *Snapshot) ScanPage(ctx context.Context, start, end []byte, limit, maxBytes int, keysOnly bool) (kvs []KV, resume []byte, err error) {
	if s.closed.Load() {
		return nil, nil, ErrSnapshotClosed
	}
	if maxBytes <= 0 {
		return nil, nil, fmt.Errorf("strata: ScanPage needs maxBytes > 0, got %d", maxBytes)
	}
	return s.db.scanPage(ctx, start, end, limit, keysOnly, s.ts, maxBytes)
}

// iterPageBytes is about how much of the range All holds at a time.
const iterPageBytes = 1 << 20

// All yields the keys in [start, end) and their values at the snapshot's
// timestamp, in key order (a nil end means no upper bound). It reads the
// range a page of about 1 MiB at a time, so memory stays bounded however
// large the range: unlike Scan, it never holds the whole result. An error
// is yielded once, last.
//
//	for kv, err := range snap.All(ctx, []byte("user/"), []byte("user0")) { ... }
func (s *Snapshot) All(ctx context.Context, start, end []byte) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		for {
			kvs, resume, err := s.ScanPage(ctx, start, end, 0, iterPageBytes, false)
			if err != nil {
				yield(KV{}, err)
				return
			}
			for _, kv := range kvs {
				if !yield(kv, nil) {
					return
				}
			}
			if resume == nil {
				return
			}
			start = resume
		}
	}
}

// Close ends the snapshot; its reads then fail with ErrSnapshotClosed.
func (s *Snapshot) Close() { s.closed.Store(true) }
