package statemachine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
)

func init() { register(&kvpb.TSOLimitRequest{}, Command{Apply: applyTSOLimit}) }

// applyTSOLimit raises the timestamp oracle's limit in system key
// kvpb.TSOLimitKey to the request's limit, keeping the larger of the stored
// and the new one: a late or repeated save never lowers the mark. It
// answers the limit stored after it.
func applyTSOLimit(b *pebble.Batch, _ raftnode.Entry, _ *kvpb.Header, req *kvpb.RequestUnion) (*kvpb.ResponseUnion, error) {
	key := storage.SystemKey(kvpb.TSOLimitKey)
	cur, err := LoadTSOLimit(b)
	if err != nil {
		return nil, err
	}
	limit := max(cur, req.GetTsoLimit().GetLimit())
	if limit != cur {
		if err := b.Set(key, binary.BigEndian.AppendUint64(nil, limit), nil); err != nil {
			return nil, err
		}
	}
	return &kvpb.ResponseUnion{Value: &kvpb.ResponseUnion_TsoLimit{TsoLimit: &kvpb.TSOLimitResponse{Limit: limit}}}, nil
}

// LoadTSOLimit reads the oracle's stored limit from r: 0 if none was
// saved. A stored value that is not 8 bytes is a storage failure.
func LoadTSOLimit(r pebble.Reader) (uint64, error) {
	v, err := storage.Get(r, storage.SystemKey(kvpb.TSOLimitKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("statemachine: oracle limit %q is %d bytes, not 8", kvpb.TSOLimitKey, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
