package membership

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
)

// Meta is what a node gossips about itself, so no address is configured twice.
type Meta struct {
	// NodeID identifies the node in the cluster; it must not be 0. The gossip
	// node name is derived from it (see [NodeName]).
	NodeID uint64
	// PeerAddr is the host:port of the raft/transport gRPC server. Required.
	PeerAddr string
	// ClientAddr is the host:port of the client gRPC API. Required.
	ClientAddr string
	// HTTPAddr is the host:port serving /metrics, /livez and /readyz.
	// Optional: empty when the node serves no HTTP.
	HTTPAddr string
}

// maxMetaSize is memberlist's limit on gossiped node metadata
// (memberlist.MetaMaxSize).
const maxMetaSize = 512

// Meta encoding, version 1:
//
//	byte    version (1)
//	byte    flags: bit 0 = leaving (set by Leave just before the node leaves;
//	        other bits are ignored)
//	uvarint NodeID
//	uvarint len, bytes PeerAddr
//	uvarint len, bytes ClientAddr
//	uvarint len, bytes HTTPAddr
//
// Later versions may only append fields: a decoder reads the fields it knows
// from any version >= 1 and ignores what follows them when the version is
// newer than its own, so a cluster can gossip during a rolling upgrade. Bytes
// after the last field of a version-1 encoding are an error.
const (
	metaVersion      = 1
	flagLeaving byte = 1 << 0
)

// wireMeta is what a node gossips: its Meta and whether it is leaving.
//
// memberlist reports a member that left and a member that died through the
// same callback (EventDelegate.NotifyLeave) and does not say which
// (Node.State is not set in callbacks), so Leave first re-gossips the meta
// with the leaving flag, and a member whose last meta has it is Left.
type wireMeta struct {
	Meta
	leaving bool
}

// encodeMeta returns the gossip encoding of m. It does not validate m.
func encodeMeta(m wireMeta) []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+3*binary.MaxVarintLen16+
		len(m.PeerAddr)+len(m.ClientAddr)+len(m.HTTPAddr))
	var flags byte
	if m.leaving {
		flags |= flagLeaving
	}
	b = append(b, metaVersion, flags)
	b = binary.AppendUvarint(b, m.NodeID)
	for _, s := range [...]string{m.PeerAddr, m.ClientAddr, m.HTTPAddr} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeMeta decodes what encodeMeta produced (or a newer version of it). It
// checks structure only, never panics, and wraps ErrInvalidMeta on failure.
// Use validate for the meaning of the fields.
func decodeMeta(b []byte) (wireMeta, error) {
	var m wireMeta
	if len(b) < 2 {
		return m, fmt.Errorf("%w: %d bytes", ErrInvalidMeta, len(b))
	}
	version, flags := b[0], b[1]
	if version == 0 {
		return m, fmt.Errorf("%w: version 0", ErrInvalidMeta)
	}
	m.leaving = flags&flagLeaving != 0
	rest := b[2:]
	id, n := binary.Uvarint(rest)
	if n <= 0 {
		return m, fmt.Errorf("%w: bad node ID varint", ErrInvalidMeta)
	}
	m.NodeID = id
	rest = rest[n:]
	for _, dst := range [...]*string{&m.PeerAddr, &m.ClientAddr, &m.HTTPAddr} {
		l, n := binary.Uvarint(rest)
		if n <= 0 {
			return wireMeta{}, fmt.Errorf("%w: bad length varint", ErrInvalidMeta)
		}
		rest = rest[n:]
		if l > uint64(len(rest)) {
			return wireMeta{}, fmt.Errorf("%w: truncated (field of %d bytes, %d left)", ErrInvalidMeta, l, len(rest))
		}
		*dst = string(rest[:l])
		rest = rest[l:]
	}
	if version == metaVersion && len(rest) != 0 {
		return wireMeta{}, fmt.Errorf("%w: %d trailing bytes", ErrInvalidMeta, len(rest))
	}
	return m, nil
}

// validate checks that m can be gossiped: a node ID, the required addresses
// in host:port form, and an encoding within memberlist's size limit.
func (m Meta) validate() error {
	if m.NodeID == 0 {
		return fmt.Errorf("%w: NodeID must not be 0", ErrInvalidMeta)
	}
	for _, f := range [...]struct {
		name, addr string
		required   bool
	}{
		{"PeerAddr", m.PeerAddr, true},
		{"ClientAddr", m.ClientAddr, true},
		{"HTTPAddr", m.HTTPAddr, false},
	} {
		if f.addr == "" {
			if f.required {
				return fmt.Errorf("%w: %s is required", ErrInvalidMeta, f.name)
			}
			continue
		}
		if err := checkDialAddr(f.addr); err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrInvalidMeta, f.name, f.addr, err)
		}
	}
	if n := len(encodeMeta(wireMeta{Meta: m, leaving: true})); n > maxMetaSize {
		return fmt.Errorf("%w: encodes to %d bytes, the gossip limit is %d", ErrInvalidMeta, n, maxMetaSize)
	}
	return nil
}

// checkDialAddr checks that addr is a host:port another node can dial: a
// non-empty host and a port in 1..65535.
func checkDialAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("missing host")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("port must be 1..65535")
	}
	return nil
}

// NodeName returns the memberlist node name of a node ID: "node-<id>".
func NodeName(nodeID uint64) string {
	return "node-" + strconv.FormatUint(nodeID, 10)
}
