package router

import (
	"bytes"
	"slices"
	"sync"

	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/shard"
	"google.golang.org/protobuf/proto"
)

// cache is the router's shard cache: the node's directory (Config.Routes)
// overlaid with the descriptors that replicas sent back when they refused
// a batch routed by a stale view (kvpb.ShardMismatchError). A replica's
// descriptor is the authority on its shard, so a learned descriptor wins
// over the directory's until the directory itself changes (Routes returns
// another *shard.Router), which drops what was learned.
type cache struct {
	mu struct {
		sync.Mutex
		// base is the directory the learned descriptors overlay.
		base *shard.Router
		// learned are descriptors from refusals, no two overlapping: a
		// newly learned one replaces every older one it overlaps or that
		// has its ID.
		learned []shard.Descriptor
	}
}

// lookup returns the descriptor of the shard holding key: a learned one
// that contains it, else base's.
func (c *cache) lookup(base *shard.Router, key []byte) shard.Descriptor {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rebaseLocked(base)
	for _, d := range c.mu.learned {
		if d.Contains(key) {
			return d
		}
	}
	return base.Lookup(key)
}

// rebaseLocked forgets what was learned over another directory than base.
func (c *cache) rebaseLocked(base *shard.Router) {
	if c.mu.base != base {
		c.mu.base, c.mu.learned = base, nil
	}
}

// learn records descriptors a replica sent back.
func (c *cache) learn(ps []*kvpb.ShardDescriptor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		d := shard.FromProto(proto.CloneOf(p))
		c.mu.learned = slices.DeleteFunc(c.mu.learned, func(o shard.Descriptor) bool {
			return o.ID == d.ID || overlap(o, d)
		})
		c.mu.learned = append(c.mu.learned, d)
	}
}

// overlap reports whether the ranges of a and b intersect.
func overlap(a, b shard.Descriptor) bool {
	return (a.End == nil || bytes.Compare(b.Start, a.End) < 0) &&
		(b.End == nil || bytes.Compare(a.Start, b.End) < 0)
}

// covers reports whether d's range holds [start, end): a nil end is the
// single key start, an empty non-nil end is unbounded (kvpb.Span).
func covers(d shard.Descriptor, start, end []byte) bool {
	if !d.Contains(start) {
		return false
	}
	switch {
	case d.End == nil:
		return true
	case end == nil:
		return true // the single key start, in d
	default:
		return len(end) > 0 && bytes.Compare(end, d.End) <= 0
	}
}

// refutes reports whether a refusal of ba (a batch the router addressed
// by a descriptor of its cache) shows that the cache was stale: the
// refusal carries the shard's descriptor, and its generation is not the
// batch's, or its range does not hold every key of the batch. A refusal
// without the shard's descriptor (the node has no replica of it) does not.
func refutes(sme *kvpb.ShardMismatchError, ba *kvpb.BatchRequest) bool {
	h := ba.GetHeader()
	for _, p := range sme.Descriptors {
		if p.GetId() != h.GetShardId() {
			continue
		}
		if p.GetGeneration() != h.GetShardGeneration() {
			return true
		}
		d := shard.FromProto(p)
		for _, r := range ba.GetRequests() {
			if start, end := kvpb.Span(r); !covers(d, start, end) {
				return true
			}
		}
	}
	return false
}
