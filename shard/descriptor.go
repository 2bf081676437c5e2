package shard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/strata-kv/strata/internal/kvpb"
	"google.golang.org/protobuf/proto"
)

// SystemID is the ID of the system shard, which holds the shard directory
// and other cluster-wide data. User shards have IDs above it.
const SystemID uint64 = 1

// ErrBadDescriptor reports a descriptor that does not decode or is invalid.
var ErrBadDescriptor = errors.New("shard: malformed descriptor")

// Descriptor describes one user shard: the user keys [Start, End) and the
// nodes holding replicas. A nil End means "to the end of the key space".
type Descriptor struct {
	ID uint64
	// Generation grows with every change of the shard's key range (split,
	// merge); a request routed with another generation is refused.
	Generation uint64
	Start      []byte
	End        []byte
	Replicas   []uint64
}

// Contains reports whether key falls in the shard.
func (d *Descriptor) Contains(key []byte) bool {
	return bytes.Compare(key, d.Start) >= 0 && (d.End == nil || bytes.Compare(key, d.End) < 0)
}

// DirectoryPrefix is the system key prefix under which descriptors live.
const DirectoryPrefix = "shard/"

// DirectoryKey returns the system key of shard id's descriptor.
func DirectoryKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(DirectoryPrefix), id)
}

// Encode returns the stored form of d: its kvpb.ShardDescriptor in
// protobuf.
func (d *Descriptor) Encode() []byte {
	b, err := proto.Marshal(d.Proto())
	if err != nil {
		panic(fmt.Sprintf("shard: marshal descriptor: %v", err)) // only on a bug: the message has no required fields
	}
	return b
}

// Proto returns d as the wire message.
func (d *Descriptor) Proto() *kvpb.ShardDescriptor {
	p := &kvpb.ShardDescriptor{Id: d.ID, Generation: d.Generation, Start: d.Start, Replicas: d.Replicas}
	if d.End != nil {
		p.End = d.End
	}
	return p
}

// FromProto returns the descriptor p carries; its slices are p's.
func FromProto(p *kvpb.ShardDescriptor) Descriptor {
	d := Descriptor{ID: p.GetId(), Generation: p.GetGeneration(), Start: p.GetStart(), Replicas: p.GetReplicas()}
	if d.Start == nil {
		d.Start = []byte{}
	}
	if p.End != nil {
		d.End = p.GetEnd()
		if d.End == nil {
			d.End = []byte{}
		}
	}
	return d
}

// Decode parses the stored form of a descriptor.
func Decode(b []byte) (Descriptor, error) {
	p := &kvpb.ShardDescriptor{}
	if err := proto.Unmarshal(b, p); err != nil {
		return Descriptor{}, fmt.Errorf("%w: %w", ErrBadDescriptor, err)
	}
	if err := kvpb.ValidateDescriptor(p); err != nil {
		return Descriptor{}, fmt.Errorf("%w: %w", ErrBadDescriptor, err)
	}
	return FromProto(p), nil
}

// Initial returns the user shards of a new cluster: shards split at
// splitKeys (which must be non-empty and strictly increasing), or, if
// splitKeys is empty, count shards split evenly over the first key byte.
// Every shard is replicated on every node in replicas. IDs start at
// SystemID+1.
func Initial(count int, splitKeys [][]byte, replicas []uint64) ([]Descriptor, error) {
	if len(splitKeys) == 0 {
		if count < 1 || count > 256 {
			return nil, fmt.Errorf("shard: shard count %d out of range [1, 256]", count)
		}
		for i := 1; i < count; i++ {
			splitKeys = append(splitKeys, []byte{byte(i * 256 / count)})
		}
	} else if count != 0 && count != len(splitKeys)+1 {
		return nil, fmt.Errorf("shard: %d split keys make %d shards, not %d", len(splitKeys), len(splitKeys)+1, count)
	}
	for i, k := range splitKeys {
		if len(k) == 0 {
			return nil, errors.New("shard: empty split key")
		}
		if i > 0 && bytes.Compare(splitKeys[i-1], k) >= 0 {
			return nil, fmt.Errorf("shard: split keys not strictly increasing at %q", k)
		}
	}
	reps := append([]uint64(nil), replicas...)
	sort.Slice(reps, func(i, j int) bool { return reps[i] < reps[j] })
	var ds []Descriptor
	start := []byte{}
	for i := 0; i <= len(splitKeys); i++ {
		var end []byte
		if i < len(splitKeys) {
			end = append([]byte(nil), splitKeys[i]...)
		}
		ds = append(ds, Descriptor{ID: SystemID + 1 + uint64(i), Start: start, End: end, Replicas: reps})
		start = end
	}
	return ds, nil
}

// Router maps keys to shards. It is immutable; build a new one when the
// directory changes.
type Router struct {
	shards []Descriptor // sorted by Start, covering the key space
}

// NewRouter returns a router over ds, which must tile the key space.
func NewRouter(ds []Descriptor) (*Router, error) {
	s := append([]Descriptor(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return bytes.Compare(s[i].Start, s[j].Start) < 0 })
	if len(s) == 0 || len(s[0].Start) != 0 {
		return nil, errors.New("shard: directory does not start at the empty key")
	}
	for i := range s {
		if s[i].End != nil && bytes.Compare(s[i].Start, s[i].End) >= 0 {
			return nil, fmt.Errorf("shard: shard %d is empty: [%q, %q)", s[i].ID, s[i].Start, s[i].End)
		}
		last := i == len(s)-1
		if last != (s[i].End == nil) || (!last && !bytes.Equal(s[i].End, s[i+1].Start)) {
			return nil, fmt.Errorf("shard: directory has a gap or overlap at shard %d", s[i].ID)
		}
	}
	return &Router{shards: s}, nil
}

// Lookup returns the shard holding key.
func (r *Router) Lookup(key []byte) Descriptor {
	i := sort.Search(len(r.shards), func(i int) bool { return bytes.Compare(r.shards[i].Start, key) > 0 })
	return r.shards[i-1]
}

// Overlapping returns, in key order, the shards intersecting [start, end)
// (end nil = unbounded).
func (r *Router) Overlapping(start, end []byte) []Descriptor {
	var out []Descriptor
	for _, d := range r.shards {
		if d.End != nil && bytes.Compare(d.End, start) <= 0 {
			continue
		}
		if end != nil && bytes.Compare(d.Start, end) >= 0 {
			break
		}
		out = append(out, d)
	}
	return out
}

// All returns every shard in key order.
func (r *Router) All() []Descriptor { return append([]Descriptor(nil), r.shards...) }

// Place assigns each descriptor rf replicas out of members (sorted),
// rotating the starting member so replicas spread evenly. rf <= 0 or rf
// above len(members) means every member.
func Place(ds []Descriptor, members []uint64, rf int) {
	ms := append([]uint64(nil), members...)
	sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
	if rf <= 0 || rf > len(ms) {
		rf = len(ms)
	}
	for i := range ds {
		reps := make([]uint64, 0, rf)
		for j := 0; j < rf; j++ {
			reps = append(reps, ms[(i+j)%len(ms)])
		}
		sort.Slice(reps, func(a, b int) bool { return reps[a] < reps[b] })
		ds[i].Replicas = reps
	}
}

// Move is one replica to add: node gets a replica of shard.
type Move struct {
	Shard, Node uint64
}

// PlanUpReplication returns the replicas to add so that every shard in ds
// has rf replicas where there are enough candidates: for each shard below
// rf, the candidates holding the fewest replicas (ties to the lower ID),
// never one already holding it. It is deterministic and does no I/O.
func PlanUpReplication(ds []Descriptor, candidates []uint64, rf int) []Move {
	load := map[uint64]int{}
	for _, c := range candidates {
		load[c] = 0
	}
	for _, d := range ds {
		for _, r := range d.Replicas {
			if _, ok := load[r]; ok {
				load[r]++
			}
		}
	}
	cs := append([]uint64(nil), candidates...)
	var moves []Move
	for _, d := range ds {
		have := map[uint64]bool{}
		for _, r := range d.Replicas {
			have[r] = true
		}
		for need := rf - len(d.Replicas); need > 0; need-- {
			sort.Slice(cs, func(i, j int) bool {
				if load[cs[i]] != load[cs[j]] {
					return load[cs[i]] < load[cs[j]]
				}
				return cs[i] < cs[j]
			})
			var pick uint64
			for _, c := range cs {
				if !have[c] {
					pick = c
					break
				}
			}
			if pick == 0 {
				break // fewer candidates than rf
			}
			have[pick] = true
			load[pick]++
			moves = append(moves, Move{Shard: d.ID, Node: pick})
		}
	}
	return moves
}
