package strata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/statemachine"
	"github.com/strata-kv/strata/transport"
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
	if err := validateKey(key); err != nil {
		return nil, err
	}
	resp, err := db.do(ctx, &request{op: opGet, key: key})
	if err != nil {
		return nil, err
	}
	if !resp.found {
		return nil, ErrNotFound
	}
	return resp.value, nil
}

// GetSerializable returns the value of key as a replica of its shard has
// it, without confirming that the replica is up to date: the local replica
// when the node has one, else another. It is cheaper than Get (no ReadIndex
// round, no hop to the leader) but may miss writes acknowledged recently,
// by as much as that replica lags; it never returns a value that was not
// written. Like etcd's serializable reads.
func (db *DB) GetSerializable(ctx context.Context, key []byte) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	resp, err := db.do(ctx, &request{op: opGet, key: key, stale: true})
	if err != nil {
		return nil, err
	}
	if !resp.found {
		return nil, ErrNotFound
	}
	return resp.value, nil
}

// Put sets key to value.
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if err := validateValue(value); err != nil {
		return err
	}
	_, err := db.do(ctx, &request{op: opPut, key: key, value: value})
	return err
}

// Delete removes key. Deleting an absent key is not an error.
func (db *DB) Delete(ctx context.Context, key []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	_, err := db.do(ctx, &request{op: opDelete, key: key})
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
	resp, err := db.do(ctx, &request{op: opCAS, key: key, old: old, absentA: old == nil, value: new, absentB: new == nil})
	return err == nil && resp.found, err
}

// Scan returns the keys in [start, end) with their values, in key order,
// at most limit of them (limit <= 0: no limit). A nil end means no upper
// bound. Each shard's part is read linearizably; the scan as a whole is
// not atomic across shards.
func (db *DB) Scan(ctx context.Context, start, end []byte, limit int) ([]KV, error) {
	return db.scan(ctx, start, end, limit, false)
}

func (db *DB) scan(ctx context.Context, start, end []byte, limit int, keysOnly bool) ([]KV, error) {
	if len(start) > MaxKeySize || len(end) > MaxKeySize {
		return nil, fmt.Errorf("%w: scan bound over %d bytes", ErrKeyTooLarge, MaxKeySize)
	}
	if end != nil && bytes.Compare(end, start) <= 0 {
		return nil, fmt.Errorf("%w: end %q is not after start %q", ErrInvalidRange, end, start)
	}
	if err := db.begin(); err != nil {
		return nil, err
	}
	defer db.ops.Done()
	router, err := db.routes()
	if err != nil {
		return nil, err
	}
	var out []KV
	for _, d := range router.Overlapping(start, end) {
		s, e := start, end
		if bytes.Compare(d.Start, s) > 0 {
			s = d.Start
		}
		if d.End != nil && (e == nil || bytes.Compare(d.End, e) < 0) {
			e = d.End
		}
		req := &request{op: opScan, shard: d.ID, key: s, value: e, absentA: e == nil, keysOnly: keysOnly}
		if limit > 0 {
			req.limit = limit - len(out)
		}
		resp, err := db.doLocked(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, resp.kvs...)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// do runs req against the leader of its shard, retrying on a missing or
// moved leader and on dropped proposals until ctx ends.
func (db *DB) do(ctx context.Context, req *request) (response, error) {
	if err := db.begin(); err != nil {
		return response{}, err
	}
	defer db.ops.Done()
	return db.doLocked(ctx, req)
}

// errRetry marks a failure after which the request certainly did not take
// effect and may be sent again.
var errRetry = errors.New("strata: retry")

func (db *DB) doLocked(ctx context.Context, req *request) (response, error) {
	if req.shard == 0 {
		router, err := db.routes()
		if err != nil {
			return response{}, err
		}
		req.shard = router.Lookup(req.key).ID
	}
	backoff := 2 * time.Millisecond
	var last error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last != nil {
				return response{}, fmt.Errorf("%w (last attempt: %v)", err, last)
			}
			return response{}, err
		}
		resp, err := db.execLocal(ctx, req)
		var nle *NotLeaderError
		var via uint64 // the replica a request with no local leader went to
		if db.tr != nil && (errors.Is(err, raftnode.ErrUnknownGroup) || (errors.As(err, &nle) && nle.Leader == 0)) {
			// No local replica, or one that knows no leader (new, or cut
			// off): ask another replica, which serves the request or names
			// its leader.
			if other := db.otherReplica(req.shard, attempt); other != 0 {
				via = other
				resp, err = db.forward(ctx, other, req)
			}
		}
		if errors.As(err, &nle) && nle.Leader != 0 && nle.Leader != db.opts.NodeID && db.tr != nil {
			if via != 0 {
				via = nle.Leader
			}
			resp, err = db.forward(ctx, nle.Leader, req)
		}
		if via != 0 {
			db.noteVia(req.shard, via, err)
		}
		switch {
		case err == nil:
			return resp, nil
		case errors.As(err, &nle), errors.Is(err, raftnode.ErrProposalDropped), errors.Is(err, errRetry),
			errors.Is(err, raftnode.ErrUnknownGroup):
			last = err
		default:
			return response{}, err
		}
		if err := db.waitBackoff(ctx, backoff); err != nil {
			if errors.Is(err, ErrClosed) {
				return response{}, err
			}
			continue // reported at the top of the loop, with the last error
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// otherReplica returns the replica of shard, other than this node, to ask
// on the attempt-th try: first the one that served the last forwarded
// request (db.via), then the others in turn; 0 if there is none.
func (db *DB) otherReplica(shardID uint64, attempt int) uint64 {
	d, err := db.descriptor(shardID)
	if err != nil {
		return 0
	}
	var others []uint64
	for _, id := range d.Replicas {
		if id != db.opts.NodeID {
			others = append(others, id)
		}
	}
	if len(others) == 0 {
		return 0
	}
	if v, ok := db.via.Load(shardID); ok {
		if i := slices.Index(others, v.(uint64)); i >= 0 {
			return others[(i+attempt)%len(others)]
		}
	}
	return others[attempt%len(others)]
}

// noteVia records node as the replica to forward shard's requests to when
// it served one (err is its answer), or forgets it when it could not.
func (db *DB) noteVia(shardID, node uint64, err error) {
	var nle *NotLeaderError
	switch {
	case errors.Is(err, errRetry), errors.Is(err, ErrAmbiguous), errors.As(err, &nle),
		errors.Is(err, raftnode.ErrUnknownGroup):
		db.via.CompareAndDelete(shardID, node)
	default:
		db.via.Store(shardID, node)
	}
}

// execLocal runs req on the local replica of its shard.
func (db *DB) execLocal(ctx context.Context, req *request) (response, error) {
	switch req.op {
	case opGet, opScan:
		if !db.opts.UnsafeLocalReads && !req.stale {
			if err := db.node.ReadIndex(ctx, req.shard); err != nil {
				return response{}, err
			}
		}
		if req.stale {
			// Served only by a node that hosts the shard: a node without
			// a replica must ask one (it would read nothing here).
			if _, err := db.node.AppliedIndex(req.shard); err != nil {
				return response{}, err
			}
		}
		if req.op == opGet {
			v, _, found, err := mvcc.Get(db.eng.DB(), req.key, mvcc.MaxTimestamp)
			return response{found: found, value: v}, err
		}
		var end []byte
		if !req.absentA {
			end = req.value
		}
		kvs, err := mvcc.Scan(db.eng.DB(), req.key, end, mvcc.MaxTimestamp, req.limit, req.keysOnly)
		if err != nil {
			return response{}, err
		}
		resp := response{kvs: make([]KV, len(kvs))}
		for i, kv := range kvs {
			resp.kvs[i] = KV{Key: kv.Key, Value: kv.Value}
		}
		return resp, nil
	case opBatch:
		// The origin encoded the command; check it is one before proposing.
		if c, err := statemachine.Decode(req.value); err != nil || c.Op != statemachine.OpBatch {
			return response{}, fmt.Errorf("%w: batch command", errBadWire)
		}
		res, err := db.node.Propose(ctx, req.shard, req.value)
		if err == nil {
			err = res.Err
		}
		return response{}, err
	case opSystemPut:
		cmd := statemachine.Command{Op: statemachine.OpSystemPut, Key: req.key, Value: req.value, NewAbsent: req.absentB}
		res, err := db.node.Propose(ctx, req.shard, cmd.Encode())
		if err == nil {
			err = res.Err
		}
		return response{}, err
	case opConfChange, opTransfer, opProgress, opCreateReplica, opDirectory, opReplicaState:
		return db.execAdmin(ctx, req)
	case opPut, opDelete, opCAS:
		cmd := statemachine.Command{Key: req.key}
		switch req.op {
		case opPut:
			cmd.Op, cmd.Value = statemachine.OpPut, req.value
		case opDelete:
			cmd.Op = statemachine.OpDelete
		case opCAS:
			cmd.Op, cmd.Old, cmd.OldAbsent, cmd.New, cmd.NewAbsent = statemachine.OpCAS, req.old, req.absentA, req.value, req.absentB
		}
		res, err := db.node.Propose(ctx, req.shard, cmd.Encode())
		if err != nil {
			return response{}, err
		}
		if res.Err != nil {
			return response{}, res.Err
		}
		return response{found: bytes.Equal(res.Data, statemachine.Swapped)}, nil
	}
	return response{}, fmt.Errorf("strata: unknown request op %d", req.op)
}

// forward sends req to node leader and turns its answer back into the
// errors execLocal would have returned there.
func (db *DB) forward(ctx context.Context, leader uint64, req *request) (response, error) {
	out, err := db.node.Forward(ctx, leader, req.encode())
	if err != nil {
		if errors.Is(err, transport.ErrNotSent) || errors.Is(err, transport.ErrUnknownPeer) {
			return response{}, fmt.Errorf("%w: %w", errRetry, err)
		}
		if req.op.isWrite() {
			// The leader may have received and proposed it.
			return response{}, fmt.Errorf("%w: forwarding to node %d: %w", ErrAmbiguous, leader, err)
		}
		return response{}, fmt.Errorf("%w: forwarding to node %d: %w", errRetry, leader, err)
	}
	resp, err := decodeResponse(out)
	if err != nil {
		if req.op.isWrite() {
			return response{}, fmt.Errorf("%w: node %d: %w", ErrAmbiguous, leader, err)
		}
		return response{}, err
	}
	switch resp.code {
	case codeOK:
		return resp, nil
	case codeNotLeader:
		return response{}, &NotLeaderError{Group: req.shard, Leader: resp.leader}
	case codeDropped:
		return response{}, raftnode.ErrProposalDropped
	case codeAmbiguous:
		return response{}, fmt.Errorf("%w: on node %d: %s", ErrAmbiguous, leader, resp.message)
	case codeUnavailable:
		return response{}, fmt.Errorf("%w: node %d: %s", errRetry, leader, resp.message)
	}
	if req.op.isWrite() {
		// An unexpected failure on the leader: it may have proposed.
		return response{}, fmt.Errorf("%w: node %d: %s", ErrAmbiguous, leader, resp.message)
	}
	return response{}, fmt.Errorf("strata: node %d: %s", leader, resp.message)
}

// serveForward executes a request forwarded by another node.
func (db *DB) serveForward(ctx context.Context, b []byte) ([]byte, error) {
	if err := db.begin(); err != nil {
		return nil, err
	}
	defer db.ops.Done()
	req, err := decodeRequest(b)
	if err != nil {
		return nil, err
	}
	resp, err := db.execLocal(ctx, &req)
	var nle *NotLeaderError
	switch {
	case err == nil:
	case errors.As(err, &nle):
		resp = response{code: codeNotLeader, leader: nle.Leader}
	case errors.Is(err, raftnode.ErrProposalDropped):
		resp = response{code: codeDropped}
	case errors.Is(err, ErrAmbiguous):
		resp = response{code: codeAmbiguous, message: err.Error()}
	case errors.Is(err, ErrStopped), errors.Is(err, raftnode.ErrUnknownGroup):
		resp = response{code: codeUnavailable, message: err.Error()}
	default:
		resp = response{code: codeError, message: err.Error()}
	}
	return resp.encode(), nil
}
