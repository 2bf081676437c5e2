package statemachine

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Op is the kind of a command.
type Op byte

// Command kinds. Values are stored in raft logs: never renumber.
const (
	OpPut       Op = 1 // set Key to Value
	OpDelete    Op = 2 // delete Key
	OpCAS       Op = 3 // if Key's value is Old (absent if OldAbsent) set it to New (delete if NewAbsent)
	OpSystemPut Op = 4 // set system key Key to Value (system shard only); NewAbsent deletes
	OpBatch     Op = 5 // apply every mutation of Batch, atomically
)

// Mutation is one write of a batch.
type Mutation struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// ErrBadCommand reports a command that does not decode.
var ErrBadCommand = errors.New("statemachine: malformed command")

// Command is one state-machine command.
type Command struct {
	Op        Op
	Key       []byte
	Value     []byte     // OpPut, OpSystemPut
	Old       []byte     // OpCAS: expected value
	OldAbsent bool       // OpCAS: expect the key to be absent
	New       []byte     // OpCAS: new value
	NewAbsent bool       // OpCAS, OpSystemPut: delete instead of set
	Batch     []Mutation // OpBatch
}

const (
	flagOldAbsent = 1 << 0
	flagNewAbsent = 1 << 1
)

// Encode returns the command's stored form:
//
//	op(1) | flags(1) | uvarint len | key | uvarint len | a | uvarint len | b
//
// where a and b are Value and nothing (put), Old and New (CAS).
//
// An OpBatch is instead
//
//	op(1) | uvarint count | count × ( delete(1) | uvarint len | key | uvarint len | value )
func (c *Command) Encode() []byte {
	if c.Op == OpBatch {
		return encodeBatch(c.Batch)
	}
	a, b := c.Value, []byte(nil)
	if c.Op == OpCAS {
		a, b = c.Old, c.New
	}
	var flags byte
	if c.OldAbsent {
		flags |= flagOldAbsent
	}
	if c.NewAbsent {
		flags |= flagNewAbsent
	}
	buf := make([]byte, 0, 2+3*binary.MaxVarintLen32+len(c.Key)+len(a)+len(b))
	buf = append(buf, byte(c.Op), flags)
	for _, p := range [][]byte{c.Key, a, b} {
		buf = binary.AppendUvarint(buf, uint64(len(p)))
		buf = append(buf, p...)
	}
	return buf
}

func encodeBatch(muts []Mutation) []byte {
	size := 1 + binary.MaxVarintLen32
	for _, m := range muts {
		size += 1 + 2*binary.MaxVarintLen32 + len(m.Key) + len(m.Value)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, byte(OpBatch))
	buf = binary.AppendUvarint(buf, uint64(len(muts)))
	for _, m := range muts {
		var del byte
		if m.Delete {
			del = 1
		}
		buf = append(buf, del)
		buf = binary.AppendUvarint(buf, uint64(len(m.Key)))
		buf = append(buf, m.Key...)
		buf = binary.AppendUvarint(buf, uint64(len(m.Value)))
		buf = append(buf, m.Value...)
	}
	return buf
}

func decodeBatch(data []byte) (Command, error) {
	rest := data[1:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) {
		return Command{}, fmt.Errorf("%w: bad batch count", ErrBadCommand)
	}
	rest = rest[k:]
	field := func() ([]byte, bool) {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return nil, false
		}
		p := rest[k : k+int(l)]
		rest = rest[k+int(l):]
		return p, true
	}
	c := Command{Op: OpBatch, Batch: make([]Mutation, 0, n)}
	for i := uint64(0); i < n; i++ {
		if len(rest) < 1 || rest[0] > 1 {
			return Command{}, fmt.Errorf("%w: bad batch mutation %d", ErrBadCommand, i)
		}
		m := Mutation{Delete: rest[0] == 1}
		rest = rest[1:]
		var ok1, ok2 bool
		m.Key, ok1 = field()
		m.Value, ok2 = field()
		if !ok1 || !ok2 || len(m.Key) == 0 {
			return Command{}, fmt.Errorf("%w: bad batch mutation %d", ErrBadCommand, i)
		}
		c.Batch = append(c.Batch, m)
	}
	if len(rest) != 0 {
		return Command{}, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(rest))
	}
	return c, nil
}

// Decode parses a command's stored form. The returned slices alias data.
func Decode(data []byte) (Command, error) {
	if len(data) >= 1 && Op(data[0]) == OpBatch {
		return decodeBatch(data)
	}
	if len(data) < 2 {
		return Command{}, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(data))
	}
	c := Command{Op: Op(data[0])}
	flags := data[1]
	c.OldAbsent, c.NewAbsent = flags&flagOldAbsent != 0, flags&flagNewAbsent != 0
	rest := data[2:]
	var parts [3][]byte
	for i := range parts {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return Command{}, fmt.Errorf("%w: bad length of field %d", ErrBadCommand, i)
		}
		parts[i] = rest[n : n+int(l)]
		rest = rest[n+int(l):]
	}
	if len(rest) != 0 {
		return Command{}, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(rest))
	}
	c.Key = parts[0]
	switch c.Op {
	case OpPut, OpSystemPut:
		c.Value = parts[1]
	case OpDelete:
	case OpCAS:
		c.Old, c.New = parts[1], parts[2]
	default:
		return Command{}, fmt.Errorf("%w: unknown op %d", ErrBadCommand, c.Op)
	}
	if len(c.Key) == 0 {
		return Command{}, fmt.Errorf("%w: empty key", ErrBadCommand)
	}
	return c, nil
}
