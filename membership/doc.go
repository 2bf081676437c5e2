// Package membership finds the other nodes of a Strata cluster and tells
// whether they are alive, using hashicorp/memberlist (SWIM gossip).
//
// # What it owns
//
//   - Discovery: a node starts a cluster or joins one through the gossip
//     address of any existing member ([Config.Join]); after that every member
//     learns of every other member by gossip.
//   - Liveness: members probe each other; a member that stops answering is
//     suspected and, once the suspicion timeout ends, reported [Dead]. A member
//     that calls [Membership.Leave] is reported [Left].
//   - Node metadata: each node gossips its [Meta] (node ID and the addresses of
//     its raft transport, client API and HTTP endpoints), so an address is
//     configured once, on the node that owns it.
//
// Every change is reported through [Config.OnChange]; [Membership.Members]
// returns the current view. The memberlist node name is derived from the node
// ID ("node-<id>"), so a node restarted with the same ID replaces its old
// entry, even from a new address once the old one is dead or has left. A
// second process that claims the ID of a live member from another address is
// rejected by the cluster and fails [New] with [ErrDuplicateNodeID].
//
// # What it must not do
//
// The package knows nothing of raft, shards or placement. The kvnode binary
// wires it: on a join or an update it registers the member's PeerAddr with the
// node's transport and records the member in the system shard.
//
// Liveness here is advisory. A member reported Dead is not removed from any
// raft group by this package or by the code reacting to OnChange: replicas on
// a node are replaced by the system shard's leader only after the node has
// been dead longer than a grace period (see DESIGN.md, "Sharding and
// membership"), because gossip can be wrong for a while (a pause, a brief
// partition) and raft tolerates a missing replica anyway.
//
// # Caveats
//
//   - memberlist v0.7.0 reports no event when a member becomes suspect (and
//     leaves Node.State unset in its callbacks), so this package never
//     reports [Suspect]: a failed member goes from [Alive] to [Dead] when the
//     suspicion timeout ends. The state exists so the vocabulary is complete
//     if a later memberlist exposes it.
//   - memberlist reports a death and a leave through the same callback. To
//     tell them apart, Leave first gossips its meta with a leaving flag, then
//     leaves; a member whose last meta carries the flag is [Left]. A member
//     that missed the flag update (lost gossip) reports the leaver [Dead].
//   - OnChange is called synchronously from memberlist's goroutines while
//     memberlist holds its node lock: it must return quickly, and it must not
//     call UpdateMeta, Leave or Close (that would deadlock). Members and Member
//     are safe to call from it.
//   - Gossip is neither encrypted nor authenticated; bind it to a private
//     network.
package membership
