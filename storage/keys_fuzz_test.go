package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzLogKeyRoundTrip checks that LogKey and DecodeLogKey are inverse and
// that the byte order of two log keys is their (group, index) order.
func FuzzLogKeyRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(uint64(1), uint64(1), uint64(1), uint64(2))
	f.Add(uint64(1), uint64(math.MaxUint64), uint64(2), uint64(0))
	f.Add(uint64(255), uint64(256), uint64(256), uint64(255))
	f.Add(uint64(math.MaxUint64), uint64(math.MaxUint64), uint64(math.MaxUint64), uint64(math.MaxUint64-1))
	f.Add(uint64(1<<56), uint64(1), uint64(1), uint64(1<<56))
	f.Fuzz(func(t *testing.T, g1, i1, g2, i2 uint64) {
		k1, k2 := LogKey(g1, i1), LogKey(g2, i2)
		for _, c := range []struct{ g, i uint64 }{{g1, i1}, {g2, i2}} {
			k := LogKey(c.g, c.i)
			if len(k) != 18 || k[0] != PrefixRaft {
				t.Fatalf("LogKey(%d, %d) = %x: want 18 bytes with prefix %#x", c.g, c.i, k, PrefixRaft)
			}
			g, i, err := DecodeLogKey(k)
			if err != nil || g != c.g || i != c.i {
				t.Fatalf("DecodeLogKey(LogKey(%d, %d)) = %d, %d, %v", c.g, c.i, g, i, err)
			}
		}
		want := cmpPair(g1, i1, g2, i2)
		if got := bytes.Compare(k1, k2); got != want {
			t.Fatalf("Compare(LogKey(%d,%d), LogKey(%d,%d)) = %d, want %d (group-major, index-minor)", g1, i1, g2, i2, got, want)
		}
		// Every log key of a group lies in the group's log span and raft span.
		ls, le := logSpan(g1)
		if bytes.Compare(k1, ls) < 0 || bytes.Compare(k1, le) >= 0 {
			t.Fatalf("LogKey(%d,%d) = %x outside logSpan [%x, %x)", g1, i1, k1, ls, le)
		}
		rs, re := GroupRaftSpan(g1)
		if bytes.Compare(k1, rs) < 0 || bytes.Compare(k1, re) >= 0 {
			t.Fatalf("LogKey(%d,%d) = %x outside GroupRaftSpan [%x, %x)", g1, i1, k1, rs, re)
		}
	})
}

func cmpPair(g1, i1, g2, i2 uint64) int {
	switch {
	case g1 < g2:
		return -1
	case g1 > g2:
		return 1
	case i1 < i2:
		return -1
	case i1 > i2:
		return 1
	}
	return 0
}

// FuzzDecodeLogKey feeds arbitrary bytes to DecodeLogKey: it must not panic,
// and whatever it accepts must be the exact encoding of what it returns.
func FuzzDecodeLogKey(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{PrefixRaft})
	f.Add(LogKey(1, 1))
	f.Add(LogKey(math.MaxUint64, 7))
	f.Add(HardStateKey(3))
	f.Add(AppliedStateKey(3))
	f.Add(append(LogKey(1, 1), 0))
	f.Add(LogKey(1, 1)[:17])
	f.Add(SystemKey([]byte("shard/x")))
	f.Fuzz(func(t *testing.T, k []byte) {
		g, i, err := DecodeLogKey(k)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("DecodeLogKey(%x) error %v does not wrap ErrBadKey", k, err)
			}
			return
		}
		if re := LogKey(g, i); !bytes.Equal(re, k) {
			t.Fatalf("DecodeLogKey(%x) = %d, %d but LogKey gives %x", k, g, i, re)
		}
	})
}

// FuzzAppliedStateRoundTrip checks Encode then DecodeAppliedState gives back
// the state.
func FuzzAppliedStateRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint64(0), uint64(0), []byte{}, []byte{}, false)
	f.Add(uint64(10), uint64(2), uint64(99), []byte{1, 2, 3}, []byte{4}, true)
	f.Add(uint64(math.MaxUint64), uint64(math.MaxUint64), uint64(math.MaxUint64), []byte{255}, []byte{}, false)
	f.Fuzz(func(t *testing.T, index, term, _ uint64, voters, learners []byte, autoLeave bool) {
		cs := &raftpb.ConfState{AutoLeave: proto.Bool(autoLeave)}
		for _, v := range voters {
			cs.Voters = append(cs.Voters, uint64(v))
		}
		for _, l := range learners {
			cs.Learners = append(cs.Learners, uint64(l)<<40)
		}
		if len(voters) > 2 {
			cs.VotersOutgoing = append(cs.VotersOutgoing, uint64(voters[0]))
		}
		a := AppliedState{Index: index, Term: term, ConfState: cs}
		b, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeAppliedState(b)
		if err != nil {
			t.Fatalf("DecodeAppliedState(Encode(%+v)): %v", a, err)
		}
		if got.Index != index || got.Term != term || !proto.Equal(got.ConfState, cs) {
			t.Fatalf("round trip: got %+v, want %+v", got, a)
		}
	})
}

// TestAppliedStateNilConfState: a nil ConfState encodes as the empty one.
func TestAppliedStateNilConfState(t *testing.T) {
	b, err := (&AppliedState{Index: 5, Term: 1}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAppliedState(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != 5 || got.Term != 1 || got.ConfState == nil || !proto.Equal(got.ConfState, &raftpb.ConfState{}) {
		t.Fatalf("got %+v", got)
	}
}

// FuzzDecodeAppliedState feeds arbitrary bytes to DecodeAppliedState: it
// must not panic, and what it accepts must survive a re-encode.
func FuzzDecodeAppliedState(f *testing.F) {
	good, _ := (&AppliedState{Index: 7, Term: 3, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}).Encode()
	f.Add([]byte{})
	f.Add(make([]byte, 23))
	f.Add(make([]byte, 16))
	f.Add(good)
	f.Add(append(make([]byte, 16), 0xff, 0xff, 0xff))
	f.Add(append(make([]byte, 16), 0x0a, 0x05, 0x01))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAppliedState(b)
		if err != nil {
			return
		}
		if a.ConfState == nil {
			t.Fatalf("DecodeAppliedState(%x) returned a nil ConfState", b)
		}
		if a.Index != binary.BigEndian.Uint64(b) || a.Term != binary.BigEndian.Uint64(b[8:]) {
			t.Fatalf("DecodeAppliedState(%x) = %+v: header fields differ", b, a)
		}
		re, err := a.Encode()
		if err != nil {
			t.Fatalf("re-encode %+v: %v", a, err)
		}
		a2, err := DecodeAppliedState(re)
		if err != nil {
			t.Fatalf("decode re-encoded %x: %v", re, err)
		}
		if a2.Index != a.Index || a2.Term != a.Term || !proto.Equal(a2.ConfState, a.ConfState) {
			t.Fatalf("re-encode changed the state: %+v -> %+v", a, a2)
		}
	})
}

// FuzzKeyLayoutOrder checks the documented order of the key kinds:
// meta < raft < system < user < group state, whatever the suffixes.
func FuzzKeyLayoutOrder(f *testing.F) {
	f.Add("format-version", uint64(1), uint64(1), []byte("shard/"), []byte("a"))
	f.Add("\xff\xff\xff", uint64(math.MaxUint64), uint64(math.MaxUint64), []byte{0xff, 0xff}, []byte{})
	f.Add("", uint64(0), uint64(0), []byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, meta string, group, index uint64, sys, user []byte) {
		userKey := append([]byte{PrefixUser}, user...) // as package mvcc writes it
		raftKeys := [][]byte{LogKey(group, index), HardStateKey(group), TruncatedStateKey(group), AppliedStateKey(group)}
		kinds := [][][]byte{{MetaKey(meta)}, raftKeys, {SystemKey(sys)}, {userKey}, {GCThresholdKey(group)}}
		for i := 0; i < len(kinds); i++ {
			for j := i + 1; j < len(kinds); j++ {
				for _, a := range kinds[i] {
					for _, b := range kinds[j] {
						if bytes.Compare(a, b) >= 0 {
							t.Fatalf("kind %d key %x does not sort before kind %d key %x", i, a, j, b)
						}
					}
				}
			}
		}
		ss, se := SystemSpan()
		if k := SystemKey(sys); bytes.Compare(k, ss) < 0 || bytes.Compare(k, se) >= 0 {
			t.Fatalf("SystemKey %x outside SystemSpan [%x, %x)", k, ss, se)
		}
		us, ue := UserSpan()
		if bytes.Compare(userKey, us) < 0 || bytes.Compare(userKey, ue) >= 0 {
			t.Fatalf("user key %x outside UserSpan [%x, %x)", userKey, us, ue)
		}
		if bytes.Compare(se, us) > 0 {
			t.Fatalf("SystemSpan end %x after UserSpan start %x", se, us)
		}
		if gs, _ := GroupStateSpan(group); bytes.Compare(ue, gs) > 0 {
			t.Fatalf("UserSpan end %x after the group state span start %x", ue, gs)
		}
	})
}

// FuzzGroupStateSpan checks that the replicated state span of group g holds
// g's GC threshold and no other group's, nor any key of another kind.
func FuzzGroupStateSpan(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(2), uint64(1))
	f.Add(uint64(math.MaxUint64), uint64(math.MaxUint64-1))
	f.Add(uint64(math.MaxUint64-1), uint64(math.MaxUint64))
	f.Add(uint64(255), uint64(256))
	f.Fuzz(func(t *testing.T, g, other uint64) {
		start, end := GroupStateSpan(g)
		in := func(k []byte) bool { return bytes.Compare(k, start) >= 0 && bytes.Compare(k, end) < 0 }
		if k := GCThresholdKey(g); !in(k) {
			t.Fatalf("GC threshold key %x of group %d outside its span [%x, %x)", k, g, start, end)
		}
		if k := GCThresholdKey(other); other != g && in(k) {
			t.Fatalf("GC threshold key %x of group %d inside the span [%x, %x) of group %d", k, other, start, end, g)
		}
		us, _ := UserSpan()
		for _, k := range [][]byte{us, {PrefixUser, 0xff, 0xff}, {PrefixGroup + 1}, AppliedStateKey(g), SystemKey(nil)} {
			if in(k) {
				t.Fatalf("key %x inside the state span of group %d", k, g)
			}
		}
	})
}

// FuzzGroupRaftSpan checks that the raft span of group g holds exactly the
// raft-local keys of g: each of g's keys, none of another group's.
func FuzzGroupRaftSpan(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint64(5))
	f.Add(uint64(0), uint64(1), uint64(0))
	f.Add(uint64(math.MaxUint64), uint64(math.MaxUint64-1), uint64(math.MaxUint64))
	f.Add(uint64(math.MaxUint64-1), uint64(math.MaxUint64), uint64(1))
	f.Add(uint64(255), uint64(256), uint64(1))
	f.Fuzz(func(t *testing.T, g, other, index uint64) {
		start, end := GroupRaftSpan(g)
		in := func(k []byte) bool { return bytes.Compare(k, start) >= 0 && bytes.Compare(k, end) < 0 }
		keysOf := func(g uint64) [][]byte {
			return [][]byte{LogKey(g, 0), LogKey(g, index), LogKey(g, math.MaxUint64), HardStateKey(g), TruncatedStateKey(g), AppliedStateKey(g)}
		}
		for _, k := range keysOf(g) {
			if !in(k) {
				t.Fatalf("key %x of group %d outside its span [%x, %x)", k, g, start, end)
			}
		}
		if other != g {
			for _, k := range keysOf(other) {
				if in(k) {
					t.Fatalf("key %x of group %d inside the span [%x, %x) of group %d", k, other, start, end, g)
				}
			}
		}
		// No key of another kind falls in a raft span.
		for _, k := range [][]byte{MetaKey("\xff\xff"), SystemKey(nil), {PrefixUser}, {PrefixRaft + 1}} {
			if in(k) {
				t.Fatalf("key %x inside the raft span of group %d", k, g)
			}
		}
		// The log span of g is inside its raft span.
		ls, le := logSpan(g)
		if bytes.Compare(ls, start) < 0 || bytes.Compare(le, end) > 0 {
			t.Fatalf("logSpan(%d) [%x, %x) not inside GroupRaftSpan [%x, %x)", g, ls, le, start, end)
		}
	})
}
