package shard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// SystemID is the ID of the system shard, which holds the shard directory
// and other cluster-wide data. User shards have IDs above it.
const SystemID uint64 = 1

// ErrBadDescriptor reports a descriptor that does not decode or is invalid.
var ErrBadDescriptor = errors.New("shard: malformed descriptor")

// Descriptor describes one user shard: the user keys [Start, End) and the
// nodes holding replicas. A nil End means "to the end of the key space".
type Descriptor struct {
	ID       uint64
	Start    []byte
	End      []byte
	Replicas []uint64
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

// Encode returns the stored form of d:
//
//	version(1)=1 | uvarint id | uvarint len | start | hasEnd(1) | [uvarint len | end] | uvarint n | n × uvarint replica
func (d *Descriptor) Encode() []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, d.ID)
	b = binary.AppendUvarint(b, uint64(len(d.Start)))
	b = append(b, d.Start...)
	if d.End == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(d.End)))
		b = append(b, d.End...)
	}
	b = binary.AppendUvarint(b, uint64(len(d.Replicas)))
	for _, r := range d.Replicas {
		b = binary.AppendUvarint(b, r)
	}
	return b
}

// Decode parses the stored form of a descriptor.
func Decode(b []byte) (Descriptor, error) {
	r := reader{b: b}
	if v := r.byte(); v != 1 {
		return Descriptor{}, fmt.Errorf("%w: version %d", ErrBadDescriptor, v)
	}
	d := Descriptor{ID: r.uvarint()}
	d.Start = r.bytes()
	if d.Start == nil {
		d.Start = []byte{}
	}
	switch hasEnd := r.byte(); hasEnd {
	case 0:
	case 1:
		d.End = r.bytes()
		if d.End == nil {
			d.End = []byte{}
		}
	default:
		return Descriptor{}, fmt.Errorf("%w: end flag %d", ErrBadDescriptor, hasEnd)
	}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return Descriptor{}, fmt.Errorf("%w: %d replicas", ErrBadDescriptor, n)
	}
	for i := uint64(0); i < n; i++ {
		d.Replicas = append(d.Replicas, r.uvarint())
	}
	if r.err != nil {
		return Descriptor{}, r.err
	}
	if len(r.b) != 0 {
		return Descriptor{}, fmt.Errorf("%w: %d trailing bytes", ErrBadDescriptor, len(r.b))
	}
	return d, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", ErrBadDescriptor, what)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail("byte")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("integer")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	l := r.uvarint()
	if l > uint64(len(r.b)) {
		r.fail("bytes")
		return nil
	}
	v := append([]byte(nil), r.b[:l]...)
	r.b = r.b[l:]
	return v
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
