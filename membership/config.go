package membership

import (
	"fmt"
	"log"
	"net"
	"strconv"
	"time"
)

// Config configures a Membership. The zero value of every tuning field takes
// the default of the profile: LAN (memberlist.DefaultLANConfig, for real
// clusters) unless Fast is set.
type Config struct {
	// Meta is what this node gossips about itself. NodeID, PeerAddr and
	// ClientAddr are required.
	Meta Meta
	// BindAddr is the host:port to gossip on (TCP and UDP), e.g.
	// "127.0.0.1:7372". The host must be an IP address; an empty host binds
	// all interfaces. Port 0 picks a free port (see Membership.GossipAddr).
	// Required.
	BindAddr string
	// AdvertiseAddr is the host:port other members reach this node's gossip
	// at, when it differs from BindAddr (NAT, containers). Port 0 means the
	// bound port. Default: derived from BindAddr (a private interface address
	// when binding all interfaces).
	AdvertiseAddr string
	// Join lists gossip addresses of existing members. Empty starts a new
	// cluster. This node's own address is skipped, so every node of a
	// cluster may be given the same list. New retries until one of them
	// answers or JoinTimeout passes.
	Join []string
	// OnChange, if set, receives every change the local node sees: joins
	// (including this node's own, before New returns), meta updates, deaths
	// and leaves. It is called from memberlist's goroutines, one call at a
	// time, in order, while memberlist holds its node lock: it must not block
	// for long and must not call UpdateMeta, Leave or Close. It is not called
	// after Close or Leave returns.
	OnChange func(Member)

	// Fast selects the test profile for tuning fields left zero: failure
	// detection in about a second on loopback, at the cost of much more
	// traffic. Never use it across a real network.
	Fast bool
	// ProbeInterval is how often a node probes a random member.
	// Default: LAN 1s, Fast 100ms.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for a direct ack before asking
	// other members to probe indirectly; it must be less than ProbeInterval.
	// Default: LAN 500ms, Fast 50ms.
	ProbeTimeout time.Duration
	// SuspicionMult scales the suspicion timeout: a suspect member is
	// declared dead after SuspicionMult * max(1, log10(N)) * ProbeInterval
	// when others confirm the suspicion, up to 6 times that without
	// confirmations. Default: LAN 4, Fast 3.
	SuspicionMult int
	// GossipInterval is how often a node gossips queued messages to a few
	// members. Default: LAN 200ms, Fast 20ms.
	GossipInterval time.Duration
	// PushPullInterval is how often a node syncs its full state with a
	// random member (this repairs lost gossip). Default: LAN 30s, Fast 1s.
	PushPullInterval time.Duration
	// DeadNodeReclaim is how long a member must have been dead before a node
	// with the same ID may take its name from a different address (a member
	// that left may be replaced at once). Default: LAN 10s, Fast 200ms.
	DeadNodeReclaim time.Duration
	// ForgetAfter is how long a dead or departed member stays in Members.
	// Default: 24h in both profiles.
	ForgetAfter time.Duration
	// JoinTimeout bounds how long New retries the join addresses (one
	// attempt may overrun it by a TCP timeout). Default: LAN 30s, Fast 5s.
	JoinTimeout time.Duration
	// BroadcastTimeout bounds how long UpdateMeta waits for its update to go
	// out. Default: LAN 5s, Fast 1s.
	BroadcastTimeout time.Duration
	// LeavePropagateDelay is how long Leave keeps gossiping after its leave
	// message went out, so that it spreads before the node stops.
	// Default: LAN 1s, Fast 50ms.
	LeavePropagateDelay time.Duration

	// Logger receives this package's messages (rejected members, conflicts)
	// and memberlist's warnings and errors. Default: log.Default().
	Logger *log.Logger
	// LogGossip also passes memberlist's DEBUG and INFO lines to Logger.
	// Default false: they are discarded.
	LogGossip bool
}

// profile holds the tuning that memberlist has but Config does not expose.
type profile struct {
	tcpTimeout          time.Duration
	gossipToTheDeadTime time.Duration
	joinBackoff         time.Duration // first wait between join attempts
}

// withDefaults returns a copy of c with zero tuning fields set from the
// profile, and the hidden tuning of that profile.
func (c Config) withDefaults() (Config, profile) {
	def := func(d *time.Duration, lan, fast time.Duration) {
		if *d == 0 {
			*d = lan
			if c.Fast {
				*d = fast
			}
		}
	}
	def(&c.ProbeInterval, time.Second, 100*time.Millisecond)
	def(&c.ProbeTimeout, 500*time.Millisecond, 50*time.Millisecond)
	def(&c.GossipInterval, 200*time.Millisecond, 20*time.Millisecond)
	def(&c.PushPullInterval, 30*time.Second, time.Second)
	def(&c.DeadNodeReclaim, 10*time.Second, 200*time.Millisecond)
	def(&c.ForgetAfter, 24*time.Hour, 24*time.Hour)
	def(&c.JoinTimeout, 30*time.Second, 5*time.Second)
	def(&c.BroadcastTimeout, 5*time.Second, time.Second)
	def(&c.LeavePropagateDelay, time.Second, 50*time.Millisecond)
	if c.SuspicionMult == 0 {
		c.SuspicionMult = 4
		if c.Fast {
			c.SuspicionMult = 3
		}
	}
	if c.Logger == nil {
		c.Logger = log.Default()
	}
	p := profile{tcpTimeout: 10 * time.Second, gossipToTheDeadTime: 30 * time.Second, joinBackoff: 200 * time.Millisecond}
	if c.Fast {
		p = profile{tcpTimeout: time.Second, gossipToTheDeadTime: 5 * time.Second, joinBackoff: 50 * time.Millisecond}
	}
	return c, p
}

// validate checks a Config after withDefaults.
func (c *Config) validate() error {
	if err := c.Meta.validate(); err != nil {
		return fmt.Errorf("%w: Meta: %w", ErrInvalidConfig, err)
	}
	if c.BindAddr == "" {
		return fmt.Errorf("%w: BindAddr is required", ErrInvalidConfig)
	}
	if _, _, err := splitIPPort(c.BindAddr); err != nil {
		return fmt.Errorf("%w: BindAddr %q: %v", ErrInvalidConfig, c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if ip, _, err := splitIPPort(c.AdvertiseAddr); err != nil || ip == "" {
			if err == nil {
				err = fmt.Errorf("missing host")
			}
			return fmt.Errorf("%w: AdvertiseAddr %q: %v", ErrInvalidConfig, c.AdvertiseAddr, err)
		}
	}
	for i, j := range c.Join {
		if j == "" {
			return fmt.Errorf("%w: Join[%d] is empty", ErrInvalidConfig, i)
		}
	}
	for _, d := range [...]struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"PushPullInterval", c.PushPullInterval},
		{"DeadNodeReclaim", c.DeadNodeReclaim},
		{"ForgetAfter", c.ForgetAfter},
		{"JoinTimeout", c.JoinTimeout},
		{"BroadcastTimeout", c.BroadcastTimeout},
		{"LeavePropagateDelay", c.LeavePropagateDelay},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s must not be negative, got %v", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("%w: ProbeTimeout (%v) must be less than ProbeInterval (%v)", ErrInvalidConfig, c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 {
		return fmt.Errorf("%w: SuspicionMult must be at least 1, got %d", ErrInvalidConfig, c.SuspicionMult)
	}
	return nil
}

// splitIPPort splits "ip:port" where ip is an IP literal or empty and port is
// 0..65535.
func splitIPPort(addr string) (ip string, port int, err error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host != "" && net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("host %q is not an IP address", host)
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q must be 0..65535", ps)
	}
	return host, int(p), nil
}
