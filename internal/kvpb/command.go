package kvpb

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// CommandFormatV1 is the first byte of a raft entry holding a
// ReplicatedCommand: the protobuf encoding follows it. Legacy commands
// (package statemachine's hand-written format) start with their op byte,
// 1 to 5, so the two never meet; a later format takes another tag.
const CommandFormatV1 byte = 0x80

// The first and last op bytes of a legacy command.
const (
	legacyFirstOp = 1
	legacyLastOp  = 5
)

// ErrBadCommand reports a raft payload that is not a well-formed
// ReplicatedCommand.
var ErrBadCommand = errors.New("kvpb: malformed replicated command")

// EncodeCommand returns c's stored form: CommandFormatV1 followed by c's
// protobuf encoding.
func EncodeCommand(c *ReplicatedCommand) ([]byte, error) {
	b := make([]byte, 1, 1+proto.Size(c))
	b[0] = CommandFormatV1
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, c)
	if err != nil {
		return nil, fmt.Errorf("kvpb: encode command: %w", err)
	}
	return b, nil
}

// DecodeCommand parses a stored ReplicatedCommand and checks that it holds
// at least one write, every one a known write method, well formed. Every
// replica decodes the same bytes, so a refusal is the same on all of them:
// apply it as a failed command, not a node failure. The result does not
// alias data.
//
// A field or union case a newer version adds is unknown here: an unknown
// case is refused, an unknown field ignored. Either way replicas of
// different versions would apply the command differently, so a leader must
// not propose what the cluster version does not yet allow.
func DecodeCommand(data []byte) (*ReplicatedCommand, error) {
	if len(data) == 0 || data[0] != CommandFormatV1 {
		if IsLegacyCommand(data) {
			return nil, fmt.Errorf("%w: a legacy command (op %d)", ErrBadCommand, data[0])
		}
		return nil, fmt.Errorf("%w: no format tag", ErrBadCommand)
	}
	c := &ReplicatedCommand{}
	if err := proto.Unmarshal(data[1:], c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if len(c.Writes) == 0 {
		return nil, fmt.Errorf("%w: no writes", ErrBadCommand)
	}
	for i, w := range c.Writes {
		m := MethodOf(w)
		if !m.Flags().Has(IsWrite) {
			return nil, fmt.Errorf("%w: write %d is %v, not a write", ErrBadCommand, i, m)
		}
	}
	if err := validateRequests(c.Writes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	return c, nil
}

// IsLegacyCommand reports whether data is a command in package
// statemachine's legacy format (first byte an op, 1 to 5), which
// DecodeCommand does not read.
func IsLegacyCommand(data []byte) bool {
	return len(data) > 0 && data[0] >= legacyFirstOp && data[0] <= legacyLastOp
}
