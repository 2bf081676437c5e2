package testcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/transport"
	"github.com/strata-kv/strata/transport/faultnet"
)

// Cluster is an in-process cluster of n nodes with IDs 1..n.
type Cluster struct {
	t     testing.TB
	opts  strata.Options
	dirs  map[uint64]string
	addrs map[uint64]string
	dbs   map[uint64]*strata.DB // nil while a node is down
	net   *faultnet.Net         // nil: a perfect network
	// fs holds each node's crashable in-memory filesystem when the cluster
	// runs on them (StartFaulty); nil for real directories.
	fs map[uint64]*vfs.MemFS
	// joins holds the nodes wiped by Wipe: they open with Options.Join
	// and must be joined (Join) rather than bootstrap a cluster again.
	joins map[uint64]bool
	// edits change a node's options from its next start (Edit).
	edits map[uint64]func(*strata.Options)
	// crash holds the crashes armed by ArmCrash, which the nodes' pebble
	// goroutines trigger from inside their filesystems; its lock also
	// guards the writes of fs.
	crash struct {
		sync.Mutex
		armed map[uint64]*armedCrash
	}
}

// armedCrash is a power loss waiting for its node's k-th sync.
type armedCrash struct {
	left  int               // syncs still allowed; the crash comes before the next one at 0
	cfg   vfs.CrashCloneCfg // what survives of the unsynced data
	clone *vfs.MemFS        // the disk as the power loss left it; nil until it happened
	done  chan struct{}     // closed when it happened
}

// FreeAddrs returns n loopback addresses with free ports below 32768:
// ports in the ephemeral range can be taken, while a node is down, by a
// client's own outgoing connection (a TCP self-connect), or by the kernel
// for another test's connection before the node binds them.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var ls []net.Listener
	for tries := 0; len(ls) < n; tries++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err == nil {
			ls = append(ls, l)
		} else if tries > 100*n {
			t.Fatalf("no free port below 32768: %v", err)
		}
	}
	addrs := make([]string, 0, n)
	for _, l := range ls {
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	return addrs
}

// Start starts n nodes with base as their common options (Dir, NodeID,
// PeerAddr and InitialCluster are filled in). Fast ticks are the default.
func Start(t testing.TB, n int, base strata.Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: base, dirs: map[uint64]string{}, addrs: map[uint64]string{}, dbs: map[uint64]*strata.DB{}}
	for i, a := range FreeAddrs(t, n) {
		id := uint64(i + 1)
		c.addrs[id] = a
		c.dirs[id] = t.TempDir()
	}
	c.startAll()
	return c
}

// StartFaulty starts n nodes whose traffic goes through net and whose data
// lives on crashable in-memory filesystems, so Crash loses exactly what was
// not synced.
func StartFaulty(t testing.TB, n int, base strata.Options, net *faultnet.Net) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: base, dirs: map[uint64]string{}, addrs: map[uint64]string{},
		dbs: map[uint64]*strata.DB{}, net: net, fs: map[uint64]*vfs.MemFS{}}
	for i, a := range FreeAddrs(t, n) {
		id := uint64(i + 1)
		c.addrs[id] = a
		c.dirs[id] = fmt.Sprintf("node-%d", id)
		c.fs[id] = vfs.NewCrashableMem()
	}
	c.startAll()
	return c
}

func (c *Cluster) startAll() {
	t := c.t
	t.Helper()
	if c.opts.TickInterval == 0 {
		c.opts.TickInterval = 10 * time.Millisecond
	}
	for id := range c.addrs {
		c.Restart(id)
	}
	t.Cleanup(c.Close)
}

// IDs returns the node IDs in order.
func (c *Cluster) IDs() []uint64 {
	ids := make([]uint64, 0, len(c.addrs))
	for id := range c.addrs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Options returns the options node id runs with.
func (c *Cluster) Options(id uint64) strata.Options {
	o := c.opts
	o.Dir, o.NodeID, o.PeerAddr, o.InitialCluster = c.dirs[id], id, c.addrs[id], c.addrs
	if c.net != nil {
		o.WrapTransport = func(tr transport.Transport) transport.Transport { return c.net.Wrap(id, tr) }
	}
	if c.fs != nil {
		o.FS = errorfs.Wrap(c.fs[id], crashInjector{c: c, id: id})
	}
	o.Join = c.joins[id]
	if edit := c.edits[id]; edit != nil {
		edit(&o)
	}
	return o
}

// Edit makes node id open with edit applied to its options from its next
// start (Restart), for a node unlike the others (a slower tick, say).
func (c *Cluster) Edit(id uint64, edit func(*strata.Options)) {
	if c.edits == nil {
		c.edits = make(map[uint64]func(*strata.Options))
	}
	c.edits[id] = edit
}

// crashInjector is the hook of ArmCrash in a node's filesystem: it sees
// every operation before it runs and never fails one.
type crashInjector struct {
	c  *Cluster
	id uint64
}

func (ci crashInjector) String() string { return fmt.Sprintf("testcluster: crash of node %d", ci.id) }

// MaybeError takes the armed crash's copy of the disk just before the
// sync that was to be the node's last.
func (ci crashInjector) MaybeError(op errorfs.Op) error {
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
	default:
		return nil
	}
	c := ci.c
	c.crash.Lock()
	defer c.crash.Unlock()
	a := c.crash.armed[ci.id]
	if a == nil || a.clone != nil {
		return nil
	}
	if a.left > 0 {
		a.left--
		return nil
	}
	// As in Crash: cut the node off first, so that nothing it does after
	// the copy reaches anyone. It runs on, on a disk that is discarded.
	c.net.SetDown(ci.id, true)
	a.clone = c.fs[ci.id].CrashClone(a.cfg)
	close(a.done)
	return nil
}

// DB returns node id's DB, or nil while it is down.
func (c *Cluster) DB(id uint64) *strata.DB { return c.dbs[id] }

// Live returns the IDs of the running nodes.
func (c *Cluster) Live() []uint64 {
	var ids []uint64
	for _, id := range c.IDs() {
		if c.dbs[id] != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// Stop closes node id. Its directory stays for Restart.
func (c *Cluster) Stop(id uint64) {
	c.t.Helper()
	if db := c.dbs[id]; db != nil {
		if err := db.Close(); err != nil {
			c.t.Errorf("close node %d: %v", id, err)
		}
		c.dbs[id] = nil
	}
}

// Crash stops node id as a power loss would: its next start sees only the
// data it had synced. If a crash armed by ArmCrash happened, the node
// restarts on the disk that one left; an armed crash that did not happen
// is disarmed. Only for clusters from StartFaulty.
func (c *Cluster) Crash(id uint64) {
	c.t.Helper()
	if c.fs == nil {
		c.t.Fatal("Crash needs a cluster on crashable filesystems (StartFaulty)")
	}
	if c.dbs[id] == nil {
		return
	}
	// Cut the node off first: whatever it persists after the copy must not
	// reach (and be acknowledged to) anyone, as after a real power loss.
	if c.net != nil {
		c.net.SetDown(id, true)
	}
	c.crash.Lock()
	a := c.crash.armed[id]
	delete(c.crash.armed, id)
	if a != nil && a.clone != nil {
		c.fs[id] = a.clone
	} else {
		c.fs[id] = c.fs[id].CrashClone(vfs.CrashCloneCfg{})
	}
	c.crash.Unlock()
	// Closing stops the node's goroutines; what it writes while closing
	// goes to the old filesystem, which is discarded.
	c.Stop(id)
}

// ArmCrash makes node id lose power just before its next sync after syncs
// more (0: before the very next one): its network is cut and a copy of its
// disk is kept with only the synced data and the share of the unsynced
// data cfg says. The node itself runs on, unheard, until Crash stops it
// and brings it back on that copy. The channel is closed when the power
// loss happened. Only for clusters from StartFaulty, with the node up.
func (c *Cluster) ArmCrash(id uint64, syncs int, cfg vfs.CrashCloneCfg) <-chan struct{} {
	c.t.Helper()
	if c.fs == nil || c.net == nil {
		c.t.Fatal("ArmCrash needs a cluster on crashable filesystems (StartFaulty)")
	}
	if c.dbs[id] == nil {
		c.t.Fatalf("ArmCrash: node %d is down", id)
	}
	a := &armedCrash{left: syncs, cfg: cfg, done: make(chan struct{})}
	c.crash.Lock()
	defer c.crash.Unlock()
	if c.crash.armed == nil {
		c.crash.armed = map[uint64]*armedCrash{}
	}
	c.crash.armed[id] = a
	return a.done
}

// Wipe deletes node id's data, as a lost disk would; the node must be
// down. Its next start opens with Options.Join, as an operator would start
// a node that must not bootstrap a cluster again; Join then joins it.
func (c *Cluster) Wipe(id uint64) {
	c.t.Helper()
	if c.dbs[id] != nil {
		c.t.Fatalf("Wipe: node %d is running", id)
	}
	if c.fs != nil {
		c.crash.Lock() // the other nodes' crash hooks read c.fs
		c.fs[id] = vfs.NewCrashableMem()
		c.crash.Unlock()
	} else {
		c.dirs[id] = c.t.TempDir()
	}
	if c.joins == nil {
		c.joins = map[uint64]bool{}
	}
	c.joins[id] = true
}

// Join makes node id, started after Wipe, join the cluster through the
// other nodes.
func (c *Cluster) Join(ctx context.Context, id uint64) error {
	db := c.dbs[id]
	if db == nil {
		return fmt.Errorf("testcluster: join: node %d is down", id)
	}
	peers := map[uint64]string{}
	for other, addr := range c.addrs {
		if other != id {
			peers[other] = addr
		}
	}
	if err := db.Join(ctx, peers); err != nil {
		return fmt.Errorf("testcluster: node %d: %w", id, err)
	}
	return nil
}

// Restart opens node id on its directory.
func (c *Cluster) Restart(id uint64) {
	c.t.Helper()
	if c.dbs[id] != nil {
		c.t.Fatalf("node %d is running", id)
	}
	if c.net != nil {
		c.net.SetDown(id, false)
	}
	var err error
	// The port may still be held briefly by the stopped node's listener.
	for i := 0; i < 50; i++ {
		if c.dbs[id], err = strata.Open(c.Options(id)); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("open node %d: %v", id, err)
}

// Close stops every node.
func (c *Cluster) Close() {
	for _, id := range c.IDs() {
		c.Stop(id)
	}
}

// Shards returns the IDs of every group: the system shard and the user
// shards.
func (c *Cluster) Shards() []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	for _, id := range c.Live() {
		for _, g := range c.dbs[id].Node().Groups() {
			if !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Hosts returns the live nodes hosting a replica of group.
func (c *Cluster) Hosts(group uint64) []uint64 {
	var ids []uint64
	for _, id := range c.Live() {
		if _, _, err := c.dbs[id].Node().Leader(group); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// Leader returns the node that leads group according to itself and that
// every live node agrees on, or 0.
func (c *Cluster) Leader(group uint64) uint64 {
	var leader uint64
	for _, id := range c.Hosts(group) {
		lead, _, err := c.dbs[id].Node().Leader(group)
		if err != nil || lead == 0 || (leader != 0 && lead != leader) {
			return 0
		}
		leader = lead
	}
	if leader == 0 || c.dbs[leader] == nil {
		return 0
	}
	if _, isLeader, _ := c.dbs[leader].Node().Leader(group); !isLeader {
		return 0
	}
	return leader
}

// WaitLeaders waits until every group has a leader the live nodes agree on.
func (c *Cluster) WaitLeaders(ctx context.Context) error {
	for {
		ok := true
		for _, g := range c.Shards() {
			if c.Leader(g) == 0 {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("groups without an agreed leader: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// WaitConverged waits until every live replica of every group has applied
// the same index, then checks that their state checksums are equal.
func (c *Cluster) WaitConverged(ctx context.Context) error {
	for _, g := range c.Shards() {
		for {
			idx := map[uint64]uint64{}
			sums := map[uint32][]uint64{}
			for _, id := range c.Hosts(g) {
				a, s, err := c.dbs[id].Node().Checksum(g)
				if err != nil {
					return fmt.Errorf("node %d group %d: %w", id, g, err)
				}
				idx[a] = id
				sums[s] = append(sums[s], id)
			}
			if len(idx) == 1 {
				if len(sums) != 1 {
					return fmt.Errorf("group %d: replicas at the same applied index differ: %v", g, sums)
				}
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("group %d: replicas did not converge (applied indexes %v): %w", g, idx, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}
