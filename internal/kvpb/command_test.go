package kvpb

import (
	"errors"
	"testing"

	"github.com/strata-kv/strata/api"
	"google.golang.org/protobuf/proto"
)

func TestCommandRoundTrip(t *testing.T) {
	c := &ReplicatedCommand{
		Header: &Header{ShardId: 2, ShardGeneration: 3, Timestamp: 1 << 40},
		Writes: []*RequestUnion{
			putReq("a", "1"),
			{Value: &RequestUnion_Delete{Delete: &api.DeleteRequest{Key: []byte("b")}}},
			{Value: &RequestUnion_Cas{Cas: &api.CompareAndSwapRequest{Key: []byte("c"), Old: []byte{}, New: nil}}},
		},
	}
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != CommandFormatV1 || IsLegacyCommand(b) {
		t.Fatalf("encoded command starts with %#x", b[0])
	}
	got, err := DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(c, got) {
		t.Fatalf("decoded %v, want %v", got, c)
	}
	// Presence survives: CAS old set and empty, new unset (delete).
	cas := got.Writes[2].GetCas()
	if cas.Old == nil || cas.New != nil {
		t.Fatalf("CAS old %v new %v: presence lost", cas.Old, cas.New)
	}
	// The result does not alias the input.
	for i := range b {
		b[i] = 0
	}
	if string(got.Writes[0].GetPut().GetKey()) != "a" {
		t.Fatal("decoded command aliases its input")
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	enc := func(c *ReplicatedCommand) []byte {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{CommandFormatV1}, b...)
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"legacy put":   {1, 0, 1, 'k', 0, 0},
		"legacy batch": {5, 0},
		"other tag":    {0x81},
		"garbage":      {CommandFormatV1, 0xff, 0xff},
		"no writes":    enc(&ReplicatedCommand{Header: &Header{ShardId: 2}}),
		"a read":       enc(&ReplicatedCommand{Writes: []*RequestUnion{getReq("a")}}),
		"admin":        enc(&ReplicatedCommand{Writes: []*RequestUnion{{Value: &RequestUnion_Progress{Progress: &ProgressRequest{}}}}}),
		"unset write":  enc(&ReplicatedCommand{Writes: []*RequestUnion{{}}}),
		"empty key":    enc(&ReplicatedCommand{Writes: []*RequestUnion{putReq("", "v")}}),
		"system mixed": enc(&ReplicatedCommand{Writes: []*RequestUnion{putReq("a", ""), sysPutReq("s")}}),
	} {
		if _, err := DecodeCommand(b); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestIsLegacyCommand(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want bool
	}{
		{nil, false}, {[]byte{0}, false}, {[]byte{1}, true}, {[]byte{5, 9}, true}, {[]byte{6}, false},
		{[]byte{CommandFormatV1}, false},
	} {
		if got := IsLegacyCommand(tc.b); got != tc.want {
			t.Errorf("IsLegacyCommand(%v) = %v", tc.b, got)
		}
	}
}

// FuzzDecodeCommand checks that DecodeCommand never panics, that what it
// accepts is a batch of well-formed writes that encodes and decodes to
// itself, and that it never accepts a legacy command.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []*ReplicatedCommand{
		{Header: &Header{ShardId: 2, Timestamp: 5}, Writes: []*RequestUnion{putReq("a", "b")}},
		{Writes: []*RequestUnion{sysPutReq("shard/x"), {Value: &RequestUnion_SystemDelete{SystemDelete: &SystemDeleteRequest{Key: []byte("y")}}}}},
		{Writes: []*RequestUnion{{Value: &RequestUnion_Gc{Gc: &GCRequest{Threshold: 9, MaxVersions: 100}}}}},
	} {
		b, _ := EncodeCommand(c)
		f.Add(b)
	}
	f.Add([]byte{1, 0, 1, 'k', 1, 'v', 0})
	f.Add([]byte{5, 1, 0, 1, 'k', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if IsLegacyCommand(b) {
			t.Fatal("accepted a legacy command")
		}
		for i, w := range c.Writes {
			if !MethodOf(w).Flags().Has(IsWrite) {
				t.Fatalf("write %d is %v", i, MethodOf(w))
			}
		}
		again, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("re-encoded command refused: %v", err)
		}
		if !proto.Equal(c, c2) {
			t.Fatal("not equal after a round trip")
		}
	})
}
