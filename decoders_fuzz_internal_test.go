package strata

import (
	"slices"
	"testing"
)

// FuzzDecodeNodeRecord: arbitrary bytes never panic the node-record
// decoder, and what it accepts re-encodes to a record that decodes the same.
func FuzzDecodeNodeRecord(f *testing.F) {
	good := (&NodeRecord{ID: 3, PeerAddr: "127.0.0.1:7381", ClientAddr: "127.0.0.1:7380", HTTPAddr: ":7383"}).encode()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 3})
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeNodeRecord(b)
		if err != nil {
			return
		}
		if r.ID == 0 {
			t.Fatalf("decodeNodeRecord(%x) accepted a record without an ID", b)
		}
		r2, err := decodeNodeRecord(r.encode())
		if err != nil || r2 != r {
			t.Fatalf("decodeNodeRecord(%x) = %+v; re-decoded %+v, %v", b, r, r2, err)
		}
	})
}

// FuzzDecodeIDs: the saved replica list decodes only from whole 8-byte IDs,
// and round-trips.
func FuzzDecodeIDs(f *testing.F) {
	f.Add(encodeIDs([]uint64{1, 2, 1 << 40}))
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeIDs(b)
		if (err == nil) != (len(b)%8 == 0) {
			t.Fatalf("decodeIDs(%d bytes) = %v, %v", len(b), ids, err)
		}
		if err == nil && !slices.Equal(decodeMust(t, encodeIDs(ids)), ids) {
			t.Fatalf("decodeIDs(%x) does not round-trip", b)
		}
	})
}

func decodeMust(t *testing.T, b []byte) []uint64 {
	t.Helper()
	ids, err := decodeIDs(b)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
