package strata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
)

// NodeRecord is a node's entry in the cluster's node registry, kept in the
// system shard.
type NodeRecord struct {
	ID         uint64
	PeerAddr   string
	ClientAddr string
	HTTPAddr   string
}

const nodeRegistryPrefix = "node/"

func nodeRegistryKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(nodeRegistryPrefix), id)
}

func (r *NodeRecord) encode() []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, r.ID)
	for _, s := range []string{r.PeerAddr, r.ClientAddr, r.HTTPAddr} {
		b = appendBytes(b, []byte(s))
	}
	return b
}

func decodeNodeRecord(b []byte) (NodeRecord, error) {
	w := wire{b: b}
	if v := w.byte(); v != 1 {
		return NodeRecord{}, fmt.Errorf("strata: node record version %d", v)
	}
	r := NodeRecord{ID: w.uvarint(), PeerAddr: string(w.bytes()), ClientAddr: string(w.bytes()), HTTPAddr: string(w.bytes())}
	if w.err != nil || len(w.b) != 0 {
		return NodeRecord{}, errors.New("strata: malformed node record")
	}
	return r, nil
}

// RegisterNode records (or updates) a node in the registry of the system
// shard, replicated like any write.
func (db *DB) RegisterNode(ctx context.Context, r NodeRecord) error {
	if r.ID == 0 {
		return errors.New("strata: node ID must be > 0")
	}
	if err := db.begin(); err != nil {
		return err
	}
	defer db.ops.Done()
	_, err := db.doLocked(ctx, &request{op: opSystemPut, shard: shard.SystemID, key: nodeRegistryKey(r.ID), value: r.encode()})
	return err
}

// ForgetNode removes a node from the registry. It does not touch the
// node's replicas (remove those first, with RemoveReplica) nor how to reach
// it: a node removed, wiped and started again under the same ID and
// address must be reachable at once, and gossip may not report it as new.
func (db *DB) ForgetNode(ctx context.Context, id uint64) error {
	if id == 0 || id == db.opts.NodeID {
		return fmt.Errorf("strata: cannot forget node %d from itself", id)
	}
	if err := db.begin(); err != nil {
		return err
	}
	defer db.ops.Done()
	if _, err := db.doLocked(ctx, &request{op: opSystemPut, shard: shard.SystemID, key: nodeRegistryKey(id), absentB: true}); err != nil {
		return err
	}
	return nil
}

// TransportStats returns the counters of the node's transport to its
// peers; ok is false for a node without one.
func (db *DB) TransportStats() (st transport.Stats, ok bool) {
	if db.tr == nil {
		return transport.Stats{}, false
	}
	return db.tr.Stats(), true
}

// Nodes returns the node registry as the local replica of the system shard
// holds it (possibly behind the leader's; empty on a node without one).
func (db *DB) Nodes() ([]NodeRecord, error) {
	prefix := storage.SystemKey([]byte(nodeRegistryPrefix))
	it, err := db.eng.DB().NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []NodeRecord
	for valid := it.First(); valid; valid = it.Next() {
		r, err := decodeNodeRecord(it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, it.Error()
}
