package membership

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{NodeID: 1, PeerAddr: "127.0.0.1:7000", ClientAddr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:7002"},
		{NodeID: 1<<64 - 1, PeerAddr: "[::1]:7000", ClientAddr: "db-3.example.com:443"},
		{},
	} {
		for _, leaving := range []bool{false, true} {
			w := wireMeta{Meta: m, leaving: leaving}
			got, err := decodeMeta(encodeMeta(w))
			if err != nil || got != w {
				t.Fatalf("decode(encode(%+v)) = %+v, %v", w, got, err)
			}
		}
	}
}

func TestMetaSizeLimit(t *testing.T) {
	// version + flags + 10 bytes of ID + (2 + 166) + 2 * (2 + 164) = 512 bytes.
	host := func(n int) string { return strings.Repeat("h", n-5) + ":7000" }
	ok := Meta{NodeID: 1<<64 - 1, PeerAddr: host(166), ClientAddr: host(164), HTTPAddr: host(164)}
	if err := ok.validate(); err != nil {
		t.Fatalf("meta of %d bytes: %v", len(encodeMeta(wireMeta{Meta: ok})), err)
	}
	big := ok
	big.PeerAddr = host(167)
	if err := big.validate(); !errors.Is(err, ErrInvalidMeta) || !strings.Contains(err.Error(), "512") {
		t.Fatalf("meta of %d bytes: got %v, want ErrInvalidMeta naming the 512-byte limit", len(encodeMeta(wireMeta{Meta: big})), err)
	}
}

func TestDecodeMetaVersions(t *testing.T) {
	m := Meta{NodeID: 7, PeerAddr: "10.0.0.7:7000", ClientAddr: "10.0.0.7:7001", HTTPAddr: "10.0.0.7:7002"}
	v1 := encodeMeta(wireMeta{Meta: m})

	// A newer version that appended a field and set an unknown flag: this
	// decoder reads what it knows.
	v2 := append([]byte{2, 0x80 | flagLeaving}, v1[2:]...)
	v2 = append(v2, 0x05, 'e', 'x', 't', 'r', 'a')
	if got, err := decodeMeta(v2); err != nil || got.Meta != m || !got.leaving {
		t.Fatalf("v2 with an appended field: got %+v, %v; want %+v leaving", got, err, m)
	}

	for name, b := range map[string][]byte{
		"empty":             nil,
		"version 0":         append([]byte{0}, v1[1:]...),
		"v1 trailing bytes": append(bytes.Clone(v1), 0),
		"truncated":         v1[:len(v1)-1],
		"only version":      {1},
		"no node ID":        {1, 0},
		"bad id varint":     {1, 0, 0x80},
		"id overflow":       {1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"length overflow":   {1, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"length past end":   {1, 0, 7, 10, 'a'},
	} {
		if _, err := decodeMeta(b); !errors.Is(err, ErrInvalidMeta) {
			t.Errorf("%s: got %v, want ErrInvalidMeta", name, err)
		}
	}
}

// FuzzDecodeMeta checks that decoding never panics, and that what decodes
// re-encodes to bytes that decode to the same Meta.
func FuzzDecodeMeta(f *testing.F) {
	m := Meta{NodeID: 42, PeerAddr: "127.0.0.1:7000", ClientAddr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:7002"}
	f.Add(encodeMeta(wireMeta{Meta: m}))
	f.Add(encodeMeta(wireMeta{Meta: Meta{NodeID: 1, PeerAddr: "a:1", ClientAddr: "b:2"}, leaving: true}))
	f.Add(append(append([]byte{9}, encodeMeta(wireMeta{Meta: m})[1:]...), 1, 2, 3))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0x80, 0x80})
	f.Add([]byte{1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidMeta) {
				t.Fatalf("error %v does not wrap ErrInvalidMeta", err)
			}
			return
		}
		again, err := decodeMeta(encodeMeta(got))
		if err != nil || again != got {
			t.Fatalf("re-encoding %+v: got %+v, %v", got, again, err)
		}
		_ = got.validate() // must not panic either
	})
}

// FuzzEncodeMeta checks that any Meta (and leaving flag) survives encoding.
func FuzzEncodeMeta(f *testing.F) {
	f.Add(uint64(1), "127.0.0.1:7000", "127.0.0.1:7001", "", false)
	f.Add(uint64(1<<64-1), "", "\x00\xff", strings.Repeat("x", 300), true)
	f.Fuzz(func(t *testing.T, id uint64, peer, client, http string, leaving bool) {
		m := wireMeta{Meta: Meta{NodeID: id, PeerAddr: peer, ClientAddr: client, HTTPAddr: http}, leaving: leaving}
		got, err := decodeMeta(encodeMeta(m))
		if err != nil || got != m {
			t.Fatalf("round trip of %+v: got %+v, %v", m, got, err)
		}
	})
}
