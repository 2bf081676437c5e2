package transport

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-kv/strata/transport/transportpb"
)

// FuzzDecodeBatch feeds arbitrary bytes to the inbound decoder: it must never
// panic, and every envelope is either delivered or counted as bad.
func FuzzDecodeBatch(f *testing.F) {
	good, _ := proto.Marshal(msgApp(2, 1, 5, 1).Msg)
	seed, _ := proto.Marshal(&transportpb.RaftBatch{From: 2, To: 1, Envelopes: []*transportpb.Envelope{
		{Group: 5, Message: good}, {Group: 6, Message: []byte{1, 2, 3}},
	}})
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b transportpb.RaftBatch
		if proto.Unmarshal(data, &b) != nil {
			return
		}
		envs, bad := decodeBatch(1, &b)
		if len(envs)+bad != len(b.GetEnvelopes()) {
			t.Fatalf("%d delivered + %d bad != %d envelopes", len(envs), bad, len(b.GetEnvelopes()))
		}
		for _, e := range envs {
			if e.Msg == nil || e.Msg.GetTo() != 1 || e.Msg.GetFrom() != b.GetFrom() {
				t.Fatalf("delivered a bad envelope: %v", e)
			}
		}
	})
}
