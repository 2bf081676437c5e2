// Package testcluster runs a Strata cluster inside one test process: every
// node a strata.DB with its own directory, talking over real loopback gRPC.
// Tests stop, crash and restart nodes and check the replicas agree.
//
// It is for tests only and must not be imported by production code.
package testcluster
