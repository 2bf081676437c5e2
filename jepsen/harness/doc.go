// Package harness breaks real kvnode clusters on purpose and checks every
// history: the library behind the strata-jepsen program (../main.go).
//
// A run starts 3 or 5 kvnode processes, each bound to its own loopback
// address (127.0.0.11, .12, ...) for its client, peer, gossip and HTTP
// ports, drives workloads against them through the Go client while a
// nemesis injects faults, heals everything, reads the final state and checks
// it. Every run leaves, in its directory: the history (history.json), the
// porcupine visualisation on failure, each node's log, the nemesis timeline
// (timeline.jsonl) and result.json. It leaves nothing else: no process, no
// iptables rule, no data directory (see Cluster.Close and Net.Close).
//
// # Network faults
//
// Links are cut with iptables DROP rules in one dedicated chain
// (STRATA-JEPSEN-<first address octet>) jumped to from INPUT and OUTPUT, so
// healing is one flush and cleanup one flush and delete. A TCP connection a
// process opens to 127.0.0.x leaves from 127.0.0.1 whatever address the
// process listens on, so each node runs under its own group ID and a nat
// rule (chain of the same name in table nat, jumped to from POSTROUTING)
// rewrites the source of its outgoing connections to the node's address.
// Two rules then cut A->B: "-s A -d B" drops what A sends to B's
// addresses (on INPUT, after the rewrite), and "-s A -m conntrack
// --ctrepldst B" drops A's answers on connections B opened, whose
// destination netfilter has already rewritten back to 127.0.0.1.
//
// # Clock skew, honestly
//
// Raft timing is counted in ticks and there are no lease reads (raft's
// tick-counted lease survives only as the planted bug
// STRATA_DEBUG_UNSAFE_LEASE_READS, which the matrix's expected-failure run
// must catch), so the only wall clock in Strata's safety path is the one
// the timestamp oracle reads on the system shard's leader. The clock-skew
// nemesis skews both: it restarts one node with STRATA_DEBUG_CLOCK_RATE
// (0.25 to 4), which divides its raft tick interval, so its elections and
// heartbeats run faster or slower than its peers'; and it jumps the
// oracle's wall clock on every running node 1 to 10 seconds forward or
// back through STRATA_DEBUG_CLOCK_OFFSET (set on every node of a run with
// this nemesis; kvnode then serves PUT /debug/clock-offset), resetting the
// offsets at Stop. The timestamps workload checks that timestamps never go
// back. Both hooks need cmd/kvnode to apply them before strata.Open; the
// harness checks each node's log for the hooks' banners and reports a hook
// that was not applied.
//
// # Power loss
//
// A kill -9 keeps what the process wrote into the OS page cache, synced or
// not, so it cannot find a missing fsync. The power-loss nemesis runs every
// node with STRATA_DEBUG_POWER_LOSS=1, which opens its store on
// internal/powerfs: writes stay in process memory until fsynced, so a
// kill -9 loses exactly the unsynced data. Each round it cuts one node or,
// one round in three, every node at once, and restarts them. File data is
// durable only at its file's sync and a new file's name only at its
// directory's sync (the node removes the names it had not made durable
// when it starts again); renames and removes reach the OS at once, as if
// the directory had been synced.
//
// # Membership
//
// The membership nemesis removes a node (kvnode node remove), wipes it,
// has it rejoin and adds its replicas back; in about half the rounds the
// node is killed first and removed while it is down.
//
// # Pausing a leader
//
// pause-leader cuts the leader of a user shard off from its peers and
// SIGSTOPs it until the others have elected a new leader, then resumes it
// still cut off: its raft ticks stood still, so it believes it leads for
// up to two more election timeouts. A node that answers reads from a
// tick-counted lease (the planted STRATA_DEBUG_UNSAFE_LEASE_READS) serves
// stale reads then, which the matrix's expected-failure run must catch.
//
// # Workloads
//
// register: get, put and compare-and-swap on a small set of keys, a unique
// value per write, checked per key by linearizability.Check. set: unique
// adds (each a put of a new key under a prefix), then a final scan: no
// acknowledged add may be lost, no element that was never attempted may
// appear, and no add the client reported as certainly failed may appear.
// timestamps: one client per node fetches timestamps from the cluster's
// oracle (Cluster.Now); each must be above every one returned before it
// was asked for, on any node. bank and list-append are registered but
// return ErrNotImplemented until transactions land.
package harness
