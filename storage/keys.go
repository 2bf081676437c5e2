package storage

// Key layout of a node's single Pebble instance.
//
// Every key starts with a one-byte prefix that says what it holds. The
// prefixes sort in the order below, so each kind of data is one contiguous
// span and one kind can be scanned, snapshotted or deleted by range without
// touching the others.
//
//	0x00 | name                                   store-local metadata (format version, node ID,
//	                                              each destroyed replica's tombstone: "tombstone/"
//	                                              group(8, BE))
//	0x01 | group(8, BE) | 0x01 | index(8, BE)     raft log entry of a group (raftpb.Entry, protobuf)
//	0x01 | group(8, BE) | 0x02                    raft HardState of a group (protobuf)
//	0x01 | group(8, BE) | 0x03                    truncated state: index and term of the last entry
//	                                              removed from the log (16 bytes, BE)
//	0x01 | group(8, BE) | 0x04                    applied state: applied index, its term and the
//	                                              ConfState
//	0x01 | group(8, BE) | 0x05                    the local replica's raft replica ID (8 bytes, BE;
//	                                              absent: the node ID, package replicaid)
//	0x02 | key                                    system data, replicated by the system shard
//	                                              (group 1): shard descriptors, later leases, TSO
//	0x03 | mvcc key                               user data, replicated by the user shard whose
//	                                              range holds the user key
//	0x04 | group(8, BE) | 0x01                    replicated state of a user group: its GC
//	                                              threshold (a timestamp, 8 bytes BE)
//
// A user group's replicated state (0x04 | group) is part of the group's
// spans, like its user data: raft snapshots carry it and replica checksums
// cover it, so a replica that catches up by snapshot has the same threshold
// as the others. Raft state (0x01) is each replica's own and is not.
//
// The MVCC key of user data is encoded by package mvcc as
//
//	escape(user key) | 0x00 0x01 | ^commit timestamp(8, BE)
//
// where escape turns every 0x00 byte into 0x00 0xFF. The escaping keeps the
// encoding prefix-free and order preserving, so user keys sort as their
// bytes do, and the inverted commit timestamp (a txn/tso.Timestamp) sorts
// the versions of one key newest first: a read at a timestamp is one
// forward seek.
//
// Pebble's comparer (comparer.go, recorded in the store since format 2) is
// bytewise but splits a full MVCC key before its version, so bloom filters
// hold user keys and a point read is one SeekPrefixGE.
//
// User data is not prefixed by group, so a split or merge of shards moves no
// data: a group's state-machine span is computed from its key range.
//
// Integers are big-endian so that byte order equals numeric order.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Key prefixes. They must stay in this order; see the layout above.
const (
	PrefixMeta   byte = 0x00
	PrefixRaft   byte = 0x01
	PrefixSystem byte = 0x02
	PrefixUser   byte = 0x03
	PrefixGroup  byte = 0x04
)

// Suffixes of the keys of a user group's replicated state.
const groupSuffixGCThreshold byte = 0x01

// Suffixes of the per-group raft keys.
const (
	raftSuffixLog       byte = 0x01
	raftSuffixHardState byte = 0x02
	raftSuffixTruncated byte = 0x03
	raftSuffixApplied   byte = 0x04
	raftSuffixReplicaID byte = 0x05
)

// ErrBadKey reports a key that does not decode under the layout above.
var ErrBadKey = errors.New("storage: malformed key")

// MetaKey returns the key of a store-local metadata value.
func MetaKey(name string) []byte {
	return append([]byte{PrefixMeta}, name...)
}

func groupKey(group uint64, suffix byte, extra int) []byte {
	k := make([]byte, 1+8+1, 1+8+1+extra)
	k[0] = PrefixRaft
	binary.BigEndian.PutUint64(k[1:], group)
	k[9] = suffix
	return k
}

// LogKey returns the key of the raft log entry at index in group.
func LogKey(group, index uint64) []byte {
	k := groupKey(group, raftSuffixLog, 8)
	return binary.BigEndian.AppendUint64(k, index)
}

// DecodeLogKey returns the group and index of a raft log key.
func DecodeLogKey(k []byte) (group, index uint64, err error) {
	if len(k) != 18 || k[0] != PrefixRaft || k[9] != raftSuffixLog {
		return 0, 0, fmt.Errorf("%w: not a raft log key: %x", ErrBadKey, k)
	}
	return binary.BigEndian.Uint64(k[1:9]), binary.BigEndian.Uint64(k[10:]), nil
}

// logSpan returns the span [start, end) holding every log entry of group.
func logSpan(group uint64) (start, end []byte) {
	return groupKey(group, raftSuffixLog, 0), groupKey(group, raftSuffixLog+1, 0)
}

// HardStateKey returns the key of the HardState of group.
func HardStateKey(group uint64) []byte { return groupKey(group, raftSuffixHardState, 0) }

// TruncatedStateKey returns the key of the truncated state of group.
func TruncatedStateKey(group uint64) []byte { return groupKey(group, raftSuffixTruncated, 0) }

// AppliedStateKey returns the key of the applied state of group.
func AppliedStateKey(group uint64) []byte { return groupKey(group, raftSuffixApplied, 0) }

// ReplicaIDKey returns the key of the raft replica ID of the local replica
// of group (8 bytes, BE). It lives in the group's raft span, so destroying
// the replica's raft state removes it.
func ReplicaIDKey(group uint64) []byte { return groupKey(group, raftSuffixReplicaID, 0) }

// TombstoneKey returns the store-local key of the tombstone of group: the
// lowest raft replica ID (8 bytes, BE) this node may host for the group,
// written when it destroys a replica of it. It outlives the raft state.
func TombstoneKey(group uint64) []byte {
	return binary.BigEndian.AppendUint64(MetaKey("tombstone/"), group)
}

// GroupRaftSpan returns the span of every raft-local key of group.
func GroupRaftSpan(group uint64) (start, end []byte) {
	start = groupKey(group, 0, 0)[:9]
	end = make([]byte, 9)
	end[0] = PrefixRaft
	binary.BigEndian.PutUint64(end[1:], group+1)
	if group == ^uint64(0) {
		end = []byte{PrefixRaft + 1}
	}
	return start, end
}

// SystemKey returns the key of system data named key.
func SystemKey(key []byte) []byte {
	return append([]byte{PrefixSystem}, key...)
}

// SystemSpan returns the span of all system data.
func SystemSpan() (start, end []byte) { return []byte{PrefixSystem}, []byte{PrefixSystem + 1} }

// UserSpan returns the span of all user data.
func UserSpan() (start, end []byte) { return []byte{PrefixUser}, []byte{PrefixUser + 1} }

// GCThresholdKey returns the key of the replicated GC threshold of user
// group: reads below it are refused, as GC may have removed what they
// need. The value is a timestamp, 8 bytes BE.
func GCThresholdKey(group uint64) []byte {
	k := binary.BigEndian.AppendUint64([]byte{PrefixGroup}, group)
	return append(k, groupSuffixGCThreshold)
}

// GroupStateSpan returns the span of the replicated state of user group
// (its GC threshold), a span of the group beside its user data.
func GroupStateSpan(group uint64) (start, end []byte) {
	start = binary.BigEndian.AppendUint64([]byte{PrefixGroup}, group)
	if group == ^uint64(0) {
		return start, []byte{PrefixGroup + 1}
	}
	return start, binary.BigEndian.AppendUint64([]byte{PrefixGroup}, group+1)
}
