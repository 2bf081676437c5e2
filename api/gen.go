// Package api holds Strata's client wire API, package strata.v1: the KV and
// Cluster gRPC services and their messages. The Go files are generated from
// strata.proto; regenerate them with `go generate` (needs protoc,
// protoc-gen-go and protoc-gen-go-grpc on PATH). Changes are additive only.
package api

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative strata.proto
