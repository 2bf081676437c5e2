package raftnode

import (
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/storage"
)

// Checksum returns the applied index of the local replica of group and a
// CRC-32C of its replicated state (every key and value of its spans) at
// that index, read from one Pebble snapshot. Replicas of a group at the
// same applied index must have the same checksum.
func (n *Node) Checksum(groupID uint64) (applied uint64, sum uint32, err error) {
	g, err := n.group(groupID)
	if err != nil {
		return 0, 0, err
	}
	snap := n.eng.NewSnapshot()
	defer snap.Close()
	as, err := storage.LoadAppliedState(snap, groupID)
	if err != nil {
		return 0, 0, err
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	for _, s := range g.spans {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: s.Start, UpperBound: s.End})
		if err != nil {
			return 0, 0, err
		}
		for valid := it.First(); valid; valid = it.Next() {
			h.Write(it.Key())
			v, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return 0, 0, err
			}
			h.Write(v)
		}
		if err := it.Close(); err != nil {
			return 0, 0, err
		}
	}
	return as.Index, h.Sum32(), nil
}
