package strata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"google.golang.org/protobuf/proto"
)

// MaxNodeID is the largest node ID: a raft replica ID keeps its node's ID
// in its low bits, above them the replica's incarnation (raftnode.AddLearner).
const MaxNodeID = replicaid.MaxNode

// ErrMustJoin is returned by Open on a new data directory of an initial
// member whose peers already form a cluster in which this node took part:
// its disk was lost or wiped. Bootstrapping again would make it an empty
// voter that the others count as holding what it acknowledged. Start it
// with Options.Join (kvnode start --join) and add its replicas back.
var ErrMustJoin = errors.New("strata: this node's data is gone but its peers already form a cluster: start it with Join (kvnode start --join)")

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
	b, err := proto.Marshal(&kvpb.NodeRecord{Id: r.ID, PeerAddr: r.PeerAddr, ClientAddr: r.ClientAddr, HttpAddr: r.HTTPAddr})
	if err != nil {
		panic(fmt.Sprintf("strata: marshal node record: %v", err)) // only on a bug: no required fields
	}
	return b
}

func decodeNodeRecord(b []byte) (NodeRecord, error) {
	p := &kvpb.NodeRecord{}
	if err := proto.Unmarshal(b, p); err != nil {
		return NodeRecord{}, fmt.Errorf("strata: malformed node record: %w", err)
	}
	if p.GetId() == 0 {
		return NodeRecord{}, errors.New("strata: malformed node record: no node ID")
	}
	return NodeRecord{ID: p.GetId(), PeerAddr: p.GetPeerAddr(), ClientAddr: p.GetClientAddr(), HTTPAddr: p.GetHttpAddr()}, nil
}

// RegisterNode records (or updates) a node in the registry of the system
// shard, replicated like any write.
func (db *DB) RegisterNode(ctx context.Context, r NodeRecord) error {
	if r.ID == 0 {
		return errors.New("strata: node ID must be > 0")
	}
	return db.systemPut(ctx, nodeRegistryKey(r.ID), r.encode())
}

// ForgetNode removes a node from the registry. It does not touch the
// node's replicas (remove those first, with RemoveReplica) nor how to reach
// it: a node removed, wiped and started again under the same ID and
// address must be reachable at once, and gossip may not report it as new.
func (db *DB) ForgetNode(ctx context.Context, id uint64) error {
	if id == 0 || id == db.opts.NodeID {
		return fmt.Errorf("strata: cannot forget node %d from itself", id)
	}
	return db.systemPut(ctx, nodeRegistryKey(id), nil)
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
	it, err := db.eng.Reader().NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
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
