package statemachine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

func init() { register(&kvpb.GCRequest{}, Command{Apply: applyGC}) }

// applyGC raises the group's replicated GC threshold (storage.GCThresholdKey)
// to the request's, keeping the larger of the stored and the new one, then
// removes, in the group's user data from the request's from key on, the
// versions that no read at or above the stored threshold can see
// (mvcc.GC), examining at most about max_versions of them. It answers the
// threshold, the versions removed and where the next request of the chain
// resumes.
//
// The threshold and the removals are in one batch, so a reader that finds
// the threshold lower finds the versions still there; a reader must check
// the threshold under the same Pebble snapshot it reads from (GCThreshold).
// Everything it reads and writes is in e.Spans (KV.check checked the
// threshold key), so replicas at the same index agree, also one that caught
// up by snapshot.
func applyGC(b *pebble.Batch, e raftnode.Entry, _ *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error) {
	r := req.GetGc()
	cur, err := GCThreshold(b, e.Group)
	if err != nil {
		return nil, err
	}
	threshold := max(cur, r.GetThreshold())
	if threshold != cur {
		if err := b.Set(storage.GCThresholdKey(e.Group), binary.BigEndian.AppendUint64(nil, threshold), nil); err != nil {
			return nil, err
		}
	}
	resp := &kvpb.GCResponse{Threshold: threshold}
	if lower, upper, ok := userSpan(e.Spans); ok {
		if from := r.GetFrom(); len(from) > 0 {
			if p := mvcc.KeyPrefix(from); bytes.Compare(p, lower) > 0 {
				lower = p
			}
		}
		removed, resume, err := mvcc.GC(b, b, lower, upper, threshold, int(min(r.GetMaxVersions(), 1<<30)))
		if err != nil {
			return nil, fmt.Errorf("statemachine: GC of entry %d/%d: %w", e.Group, e.Index, err)
		}
		resp.Removed, resp.ResumeKey = uint64(removed), resume
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_Gc{Gc: resp}}, nil
}

// userSpan returns the span of e.Spans that holds user data; ok is false
// if there is none.
func userSpan(spans []raftnode.Span) (lower, upper []byte, ok bool) {
	for _, s := range spans {
		if len(s.Start) > 0 && s.Start[0] == storage.PrefixUser {
			return s.Start, s.End, true
		}
	}
	return nil, nil, false
}

// GCThreshold reads the replicated GC threshold of user group from r: 0 if
// the group was never collected. A read at a timestamp below it must be
// refused (kvpb.TimestampTooOldError): GC may have removed what it needs.
// A stored value that is not 8 bytes is a storage failure.
func GCThreshold(r pebble.Reader, group uint64) (uint64, error) {
	v, err := storage.Get(r, storage.GCThresholdKey(group))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("statemachine: GC threshold of group %d is %d bytes, not 8", group, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
