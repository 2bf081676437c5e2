// Package server serves one Strata node to clients over gRPC: the KV and
// Cluster services of package api, over a *strata.DB.
//
// Any node answers any call; the DB forwards a key's request to the leader of
// the key's shard. Errors reach clients as gRPC status codes, chosen in one
// place (statusOf) and documented in api/strata.proto.
//
// The node's binary creates the grpc.Server (and its TLS, interceptors and
// message size limits) and calls Register:
//
//	srv, err := server.New(server.Config{DB: db, Admin: admin, Registry: reg})
//	g := grpc.NewServer(server.ServerOptions()...) // keepalive
//	srv.Register(g)
//	g.Serve(lis)
//
// Scans are bounded in memory: Scan answers one page of at most
// MaxScanResponseBytes; ScanStream streams pages of StreamMessageBytes,
// reading at most one ahead, and ends a stream whose client takes no
// message for Config.SendTimeout. ServerOptions' keepalive closes
// connections to clients that answer no pings, which frees what gRPC still
// queued for them. docs/scans.md has the details and the measured cost.
//
// gRPC servers accept requests up to 4 MiB by default; a DB takes batches
// up to strata.MaxBatchSize (32 MiB), so a binary that wants such batches
// over the wire raises grpc.MaxRecvMsgSize. Larger requests fail with
// ResourceExhausted before they reach the DB.
package server
