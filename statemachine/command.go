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
)

// ErrBadCommand reports a command that does not decode.
var ErrBadCommand = errors.New("statemachine: malformed command")

// Command is one state-machine command.
type Command struct {
	Op        Op
	Key       []byte
	Value     []byte // OpPut, OpSystemPut
	Old       []byte // OpCAS: expected value
	OldAbsent bool   // OpCAS: expect the key to be absent
	New       []byte // OpCAS: new value
	NewAbsent bool   // OpCAS, OpSystemPut: delete instead of set
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
func (c *Command) Encode() []byte {
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

// Decode parses a command's stored form. The returned slices alias data.
func Decode(data []byte) (Command, error) {
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
