package strata

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A request is one shard-level operation: what a node executes locally
// when it leads the shard, or sends to the leader that does.
type request struct {
	op       reqOp
	shard    uint64
	key      []byte // the key; a scan's start
	value    []byte // put value; CAS new value; a scan's end
	old      []byte // CAS expected value
	absentA  bool   // CAS: old absent; scan: end unbounded
	absentB  bool   // CAS: new absent (delete)
	keysOnly bool
	stale    bool // a read served from local state without ReadIndex
	fresh    bool // opCreateReplica: replace any existing replica with an empty one
	limit    int
	node     uint64 // the node a membership, transfer or progress request is about
}

type reqOp byte

const (
	opGet reqOp = iota + 1
	opPut
	opDelete
	opCAS
	opScan
	opBatch         // value: an encoded statemachine OpBatch command
	opSystemPut     // key, value: a system key and its value (system shard)
	opConfChange    // value: a raftpb.ConfChangeType (1 byte), node: the member; run by the shard's leader
	opTransfer      // node: the node to hand leadership to
	opProgress      // node: a member; the leader answers its commit, the member's match and the membership
	opCreateReplica // value: an encoded shard descriptor; the receiving node starts hosting it (fresh: an empty one)
	opDirectory     // the receiving node answers its shard directory (kvs: key, descriptor)
	opReplicaState  // the receiving node answers its own replica's state (found: hosted; value: applied, member)
)

func (o reqOp) isWrite() bool {
	switch o {
	case opPut, opDelete, opCAS, opBatch, opSystemPut, opConfChange:
		return true
	}
	return false
}

// response is a request's outcome.
type response struct {
	found   bool   // get: key present; cas: swapped
	value   []byte // get
	kvs     []KV   // scan
	code    respCode
	leader  uint64 // codeNotLeader: the leader's node ID
	message string // codeError
}

type respCode byte

const (
	codeOK respCode = iota
	codeNotLeader
	codeDropped
	codeAmbiguous
	codeUnavailable
	codeError
)

const requestVersion = 1

var errBadWire = errors.New("strata: malformed forwarded message")

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func (r *request) encode() []byte {
	var flags byte
	for i, f := range []bool{r.absentA, r.absentB, r.keysOnly, r.stale, r.fresh} {
		if f {
			flags |= 1 << i
		}
	}
	b := []byte{requestVersion, byte(r.op), flags}
	b = binary.AppendUvarint(b, r.shard)
	b = binary.AppendUvarint(b, uint64(max(r.limit, 0)))
	b = binary.AppendUvarint(b, r.node)
	b = appendBytes(b, r.key)
	b = appendBytes(b, r.value)
	return appendBytes(b, r.old)
}

func decodeRequest(b []byte) (request, error) {
	d := wire{b: b}
	if v := d.byte(); v != requestVersion {
		return request{}, fmt.Errorf("%w: request version %d", errBadWire, v)
	}
	r := request{op: reqOp(d.byte())}
	flags := d.byte()
	r.absentA, r.absentB, r.keysOnly, r.stale, r.fresh = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0, flags&16 != 0
	r.shard = d.uvarint()
	r.limit = int(d.uvarint())
	r.node = d.uvarint()
	r.key, r.value, r.old = d.bytes(), d.bytes(), d.bytes()
	if d.err != nil || len(d.b) != 0 {
		return request{}, fmt.Errorf("%w: request", errBadWire)
	}
	if r.op < opGet || r.op > opReplicaState {
		return request{}, fmt.Errorf("%w: op %d", errBadWire, r.op)
	}
	return r, nil
}

func (r *response) encode() []byte {
	b := []byte{byte(r.code)}
	b = binary.AppendUvarint(b, r.leader)
	b = appendBytes(b, []byte(r.message))
	if r.found {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendBytes(b, r.value)
	b = binary.AppendUvarint(b, uint64(len(r.kvs)))
	for _, kv := range r.kvs {
		b = appendBytes(b, kv.Key)
		b = appendBytes(b, kv.Value)
	}
	return b
}

func decodeResponse(b []byte) (response, error) {
	d := wire{b: b}
	r := response{code: respCode(d.byte()), leader: d.uvarint(), message: string(d.bytes())}
	r.found = d.byte() == 1
	r.value = d.bytes()
	n := d.uvarint()
	if n > uint64(len(b)) {
		return response{}, fmt.Errorf("%w: %d pairs", errBadWire, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		r.kvs = append(r.kvs, KV{Key: d.bytes(), Value: d.bytes()})
	}
	if d.err != nil || len(d.b) != 0 {
		return response{}, fmt.Errorf("%w: response", errBadWire)
	}
	return r, nil
}

// wire decodes the primitives above, remembering the first error.
type wire struct {
	b   []byte
	err error
}

func (w *wire) byte() byte {
	if len(w.b) == 0 {
		w.err = errBadWire
		return 0
	}
	v := w.b[0]
	w.b = w.b[1:]
	return v
}

func (w *wire) uvarint() uint64 {
	v, n := binary.Uvarint(w.b)
	if n <= 0 {
		w.err = errBadWire
		w.b = nil
		return 0
	}
	w.b = w.b[n:]
	return v
}

func (w *wire) bytes() []byte {
	l := w.uvarint()
	if l > uint64(len(w.b)) {
		w.err = errBadWire
		w.b = nil
		return nil
	}
	v := append([]byte(nil), w.b[:l]...)
	w.b = w.b[l:]
	return v
}
