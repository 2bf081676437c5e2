package strata

import (
	"bytes"
	"context"
	"fmt"

	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/internal/kvpb"
)

// KV is a key and its value, as returned by Scan.
type KV struct {
	Key   []byte
	Value []byte
}

func validateKey(key []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), MaxKeySize)
	}
	return nil
}

func validateValue(v []byte) error {
	if len(v) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(v), MaxValueSize)
	}
	return nil
}

// Get returns the value of key, or ErrNotFound. It is linearizable.
func (db *DB) Get(ctx context.Context, key []byte) ([]byte, error) {
	return db.get(ctx, key, api.ReadLevel_READ_LEVEL_LINEARIZABLE, 0)
}

// GetSerializable returns the value of key as a replica of its shard has
// it, without confirming that the replica is up to date: the local replica
// when the node has one, else another. It is cheaper than Get (no ReadIndex
// round, no hop to the leader) but may miss writes acknowledged recently,
// by as much as that replica lags; it never returns a value that was not
// written. Like etcd's serializable reads.
func (db *DB) GetSerializable(ctx context.Context, key []byte) ([]byte, error) {
	return db.get(ctx, key, api.ReadLevel_READ_LEVEL_SERIALIZABLE, 0)
}

// get reads key at ts (0: the newest version).
func (db *DB) get(ctx context.Context, key []byte, level api.ReadLevel, ts Timestamp) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	br, err := db.send(ctx, batch(&kvpb.Header{ReadLevel: level, Timestamp: uint64(ts)},
		&kvpb.RequestUnion{Value: &kvpb.RequestUnion_Get{Get: &api.GetRequest{Key: key}}}))
	if err != nil {
		return nil, err
	}
	g := br.GetResponses()[0].GetGet()
	if !g.GetFound() {
		return nil, ErrNotFound
	}
	if g.GetValue() == nil {
		return []byte{}, nil // present and empty (the wire does not tell empty from unset)
	}
	return g.GetValue(), nil
}

// Put sets key to value.
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if err := validateValue(value); err != nil {
		return err
	}
	_, err := db.send(ctx, batch(nil, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Put{Put: &api.PutRequest{Key: key, Value: value}}}))
	return err
}

// Delete removes key. Deleting an absent key is not an error.
func (db *DB) Delete(ctx context.Context, key []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	_, err := db.send(ctx, batch(nil, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Delete{Delete: &api.DeleteRequest{Key: key}}}))
	return err
}

// CompareAndSwap sets key to new if its current value equals old, and
// reports whether it did. A nil old means "key is absent"; a nil new
// deletes the key. (An empty, non-nil slice is the empty value.)
func (db *DB) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	if err := validateKey(key); err != nil {
		return false, err
	}
	if err := validateValue(old); err != nil {
		return false, err
	}
	if err := validateValue(new); err != nil {
		return false, err
	}
	br, err := db.send(ctx, batch(nil, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Cas{
		Cas: &api.CompareAndSwapRequest{Key: key, Old: old, New: new}}}))
	if err != nil {
		return false, err
	}
	return br.GetResponses()[0].GetCas().GetSwapped(), nil
}

// Scan returns the keys in [start, end) with their values, in key order,
// at most limit of them (limit <= 0: no limit). A nil end means no upper
// bound. It is one consistent cut: every shard is read at one timestamp,
// taken when the scan begins, so it sees every write acknowledged before
// it began and none that began after.
func (db *DB) Scan(ctx context.Context, start, end []byte, limit int) ([]KV, error) {
	ts, err := db.Now(ctx)
	if err != nil {
		return nil, err
	}
	return db.scan(ctx, start, end, limit, false, ts)
}

// ScanKeys is Scan without the values.
func (db *DB) ScanKeys(ctx context.Context, start, end []byte, limit int) ([][]byte, error) {
	ts, err := db.Now(ctx)
	if err != nil {
		return nil, err
	}
	kvs, err := db.scan(ctx, start, end, limit, true, ts)
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys, nil
}

// scan reads [start, end) at ts (0: the newest versions, shard by shard).
func (db *DB) scan(ctx context.Context, start, end []byte, limit int, keysOnly bool, ts Timestamp) ([]KV, error) {
	kvs, _, err := db.scanPage(ctx, start, end, limit, keysOnly, ts, 0)
	return kvs, err
}

// scanPage is scan stopping once about maxBytes of keys and values are read
// (0: no bound); resume is where the rest of the range starts, nil when
// the scan is complete (or its limit reached).
func (db *DB) scanPage(ctx context.Context, start, end []byte, limit int, keysOnly bool, ts Timestamp, maxBytes int) (_ []KV, resume []byte, _ error) {
	if len(start) > MaxKeySize || len(end) > MaxKeySize {
		return nil, nil, fmt.Errorf("%w: scan bound over %d bytes", ErrKeyTooLarge, MaxKeySize)
	}
	if end != nil && bytes.Compare(end, start) <= 0 {
		return nil, nil, fmt.Errorf("%w: end %q is not after start %q", ErrInvalidRange, end, start)
	}
	sc := &api.ScanRequest{Start: start, End: end, KeysOnly: keysOnly}
	if limit > 0 {
		sc.Limit = uint32(min(limit, 1<<31))
	}
	h := &kvpb.Header{Timestamp: uint64(ts), MaxBytes: uint64(max(maxBytes, 0))}
	br, err := db.send(ctx, batch(h, &kvpb.RequestUnion{Value: &kvpb.RequestUnion_Scan{Scan: sc}}))
	if err != nil {
		return nil, nil, err
	}
	kvs := br.GetResponses()[0].GetScan().GetKvs()
	resume = br.GetResponses()[0].GetScan().GetResumeKey()
	out := make([]KV, len(kvs))
	for i, kv := range kvs {
		out[i] = KV{Key: kv.GetKey(), Value: kv.GetValue()}
		if !keysOnly && out[i].Value == nil {
			out[i].Value = []byte{}
		}
	}
	return out, resume, nil
}

// batch returns a batch of reqs with header h (nil: the defaults), routed
// by its keys.
func batch(h *kvpb.Header, reqs ...*kvpb.RequestUnion) *kvpb.BatchRequest {
	if h == nil {
		h = &kvpb.Header{}
	}
	return &kvpb.BatchRequest{Header: h, Requests: reqs}
}

// send sends ba through the node's router.
func (db *DB) send(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	if err := db.begin(); err != nil {
		return nil, err
	}
	defer db.ops.Done()
	if _, err := db.routes(); err != nil {
		return nil, err
	}
	return db.sender.Send(ctx, ba)
}
