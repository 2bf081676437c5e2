// Package transportpb holds the wire messages and the gRPC service of package
// transport. The Go files are generated from transport.proto; regenerate them
// with `go generate` (needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH).
package transportpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative transport.proto
