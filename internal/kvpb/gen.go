package kvpb

// kvpb.proto imports api/strata.proto as "strata.proto", the name package api
// registers it under, hence api/ on the include path.
//go:generate protoc -I. -I../../api --go_out=. --go_opt=paths=source_relative kvpb.proto
