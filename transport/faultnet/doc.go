// Package faultnet is a fault-injecting network for tests: it wraps each
// node's transport.Transport and, driven by one seeded random source,
// partitions any sets of nodes (also one way), loses, delays, duplicates
// and so reorders messages, and loses forwarded requests or their replies.
//
// It is for tests only and must not be imported by production code.
package faultnet
