package membership

import "errors"

var (
	// ErrInvalidConfig is returned by New for a Config it cannot use.
	ErrInvalidConfig = errors.New("membership: invalid config")
	// ErrInvalidMeta is returned for a Meta that cannot be gossiped (missing
	// or malformed address, too large) and for gossiped bytes that do not
	// decode.
	ErrInvalidMeta = errors.New("membership: invalid meta")
	// ErrJoinFailed is returned by New when none of the join addresses
	// answered within the join timeout.
	ErrJoinFailed = errors.New("membership: join failed")
	// ErrDuplicateNodeID is returned by New when the cluster already has a
	// live member with this node ID at another gossip address.
	ErrDuplicateNodeID = errors.New("membership: node ID already live at another address")
	// ErrBroadcastTimeout is returned by UpdateMeta when the update was not
	// gossiped to any member within the broadcast timeout. The new meta is in
	// effect locally and still spreads by gossip.
	ErrBroadcastTimeout = errors.New("membership: broadcast timeout")
	// ErrClosed is returned by calls on a Membership that was closed or left.
	ErrClosed = errors.New("membership: closed")
)
