package raftnode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/strata-kv/strata/storage"
	"go.etcd.io/raft/v3/raftpb"
)

// FuzzReadSnapshotBody feeds arbitrary bytes to the snapshot body reader: it
// must not panic, and a body it accepts holds only keys inside the group's
// spans, with the applied state it was sent with.
func FuzzReadSnapshotBody(f *testing.F) {
	spans := []Span{{Start: []byte{storage.PrefixUser, 'a'}, End: []byte{storage.PrefixUser, 'm'}}}
	as, err := (&storage.AppliedState{Index: 12, Term: 3, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}).Encode()
	if err != nil {
		f.Fatal(err)
	}
	body := append([]byte(nil), snapMagic...)
	body = binary.AppendUvarint(body, uint64(len(as)))
	body = append(body, as...)
	for _, kv := range [][2]string{{"\x03b", "1"}, {"\x03c", ""}} {
		body = binary.AppendUvarint(body, uint64(len(kv[0])))
		body = append(body, kv[0]...)
		body = binary.AppendUvarint(body, uint64(len(kv[1])))
		body = append(body, kv[1]...)
	}
	f.Add(body)
	f.Add(body[:len(body)-1])
	f.Add([]byte(snapMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := readSnapshotBody(bufio.NewReader(bytes.NewReader(b)), spans)
		if err != nil {
			return
		}
		for _, kv := range in.kvs {
			if !inSpans(kv[0], spans) {
				t.Fatalf("accepted key %x outside the spans", kv[0])
			}
		}
		if in.applied.ConfState == nil {
			t.Fatalf("accepted a body without a ConfState")
		}
	})
}
