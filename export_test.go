package strata

import (
	"context"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/router"
	"github.com/strata-kv/strata/shard"
	"github.com/strata-kv/strata/transport"
)

// RoutesForTest returns the node's shard directory (what its replicas
// check batches against).
func (db *DB) RoutesForTest() *shard.Router { return db.router.Load() }

// NewSenderForTest returns a router for db's node like its own, but whose
// shard cache starts from routes instead of the node's directory: a test
// fakes a stale cache with it. Every batch it serves on the local replica
// is reported to seen with its outcome.
func (db *DB) NewSenderForTest(routes func() (*shard.Router, error), seen func(*kvpb.BatchRequest, error)) (*router.DistSender, error) {
	var tr transport.Transport
	if db.tr != nil {
		tr = db.tr
	}
	return router.New(router.Config{
		NodeID:    db.opts.NodeID,
		Local:     observedLocal{Local: db.store, seen: seen},
		Transport: tr,
		Routes:    routes,
		Replicas:  db.replicasOf,
		Closer:    db.closing,
	})
}

// observedLocal reports every batch its Local serves.
type observedLocal struct {
	router.Local
	seen func(*kvpb.BatchRequest, error)
}

func (l observedLocal) Send(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	br, err := l.Local.Send(ctx, ba)
	l.seen(ba, err)
	return br, err
}

// SendForTest sends ba through the node's router and returns its answer,
// whose Timestamp is the commit timestamp of a write batch within one
// shard (the API does not expose it).
func (db *DB) SendForTest(ctx context.Context, ba *kvpb.BatchRequest) (*kvpb.BatchResponse, error) {
	return db.send(ctx, ba)
}
