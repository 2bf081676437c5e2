package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/client"
	"github.com/strata-kv/strata/txn/tso"
)

func addClusterCommands(root *cobra.Command, g *globals) {
	replica := newGroupCmd("replica", "Add or remove a replica of a shard",
		`  kvnode replica add 3 4
  kvnode replica remove 3 1`)
	replica.AddCommand(newReplicaAddCmd(g), newReplicaRemoveCmd(g))
	leader := newGroupCmd("leader", "Move the leadership of a shard",
		`  kvnode leader transfer 3 2`)
	leader.AddCommand(newLeaderTransferCmd(g))
	node := newGroupCmd("node", "Take a node out of the cluster",
		`  kvnode node remove 4`)
	node.AddCommand(newNodeRemoveCmd(g))
	for _, c := range []*cobra.Command{newStatusCmd(g), newMembersCmd(g), replica, leader, node} {
		c.GroupID = groupCluster
		root.AddCommand(c)
	}
}

// newGroupCmd returns a command that only holds subcommands: alone it
// prints its help; with an unknown subcommand it fails.
func newGroupCmd(name, short, example string) *cobra.Command {
	return &cobra.Command{
		Use:     name + " COMMAND",
		Short:   short,
		Example: example,
		Args:    unknownSubcommand,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// jsonStatus is the output of status --json. Keys that are not valid UTF-8
// are base64 with start_base64 or end_base64 true; an empty end means no
// upper bound.
type jsonStatus struct {
	NodeID uint64 `json:"node_id"`
	// Oracle is a timestamp fresh from the cluster's oracle, in its printed
	// form (physical.logical), or empty if the oracle did not answer.
	Oracle string      `json:"oracle_timestamp,omitempty"`
	Shards []jsonShard `json:"shards"`
}

type jsonShard struct {
	ID          uint64       `json:"id"`
	System      bool         `json:"system,omitempty"`
	Start       string       `json:"start"`
	StartBase64 bool         `json:"start_base64,omitempty"`
	End         string       `json:"end"`
	EndBase64   bool         `json:"end_base64,omitempty"`
	LeaderID    uint64       `json:"leader_id"`
	LeaderAddr  string       `json:"leader_addr,omitempty"`
	Replicas    []uint64     `json:"replicas"`
	Local       *jsonReplica `json:"local,omitempty"`
}

type jsonReplica struct {
	Term     uint64   `json:"term"`
	Commit   uint64   `json:"commit"`
	Applied  uint64   `json:"applied"`
	IsLeader bool     `json:"is_leader"`
	Voters   []uint64 `json:"voters"`
	Learners []uint64 `json:"learners"`
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the shards: key ranges, leaders and replicas",
		Long: `Show every shard as the node answering sees it: its ID, key range
[start, end), leader (node ID and client address, when known) and the nodes
holding a replica. Shard 0 is the system shard, which holds no user keys.

The first line is a timestamp fresh from the cluster's timestamp oracle
(physical milliseconds.logical counter, and its wall time).

--json also gives the answering node's ID and its own replicas' raft state
(term, commit, applied, voters, learners).`,
		Example: `  kvnode status
  kvnode status --json | jq '.shards[] | {id, leader_id}'`,
		Args: func(cmd *cobra.Command, args []string) error { return wantArgs(cmd, args, 0, 0, "no arguments") },
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				st     *api.StatusResponse
				now    tso.Timestamp
				nowErr error
			)
			err := g.call(cmd, "status", func(ctx context.Context, c *client.Client) (err error) {
				if st, err = c.Status(ctx); err != nil {
					return err
				}
				// The status stands without the oracle (a cluster with no
				// system shard leader, or an older node).
				now, nowErr = c.Now(ctx)
				return nil
			})
			if err != nil {
				return err
			}
			if asJSON {
				js := statusJSON(st)
				if nowErr == nil {
					js.Oracle = now.String()
				}
				return writeJSON(cmd.OutOrStdout(), js)
			}
			if nowErr != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "oracle timestamp: unavailable (%v)\n", nowErr)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "oracle timestamp: %v (%s)\n", now, now.WallTime().Format(time.RFC3339Nano))
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func statusJSON(st *api.StatusResponse) jsonStatus {
	out := jsonStatus{NodeID: st.GetNodeId(), Shards: []jsonShard{}}
	for _, s := range st.GetShards() {
		js := jsonShard{
			ID:         s.GetId(),
			System:     s.GetSystem(),
			LeaderID:   s.GetLeaderId(),
			LeaderAddr: s.GetLeaderAddr(),
			Replicas:   nonNil(s.GetReplicas()),
		}
		js.Start, js.StartBase64 = jsonText(s.GetStart())
		js.End, js.EndBase64 = jsonText(s.GetEnd())
		if l := s.GetLocal(); l != nil {
			js.Local = &jsonReplica{
				Term: l.GetTerm(), Commit: l.GetCommit(), Applied: l.GetApplied(), IsLeader: l.GetIsLeader(),
				Voters: nonNil(l.GetVoters()), Learners: nonNil(l.GetLearners()),
			}
		}
		out.Shards = append(out.Shards, js)
	}
	return out
}

func printStatus(w io.Writer, st *api.StatusResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tRANGE\tLEADER\tREPLICAS")
	for _, s := range st.GetShards() {
		rng := "system"
		if !s.GetSystem() {
			end := "+inf"
			if len(s.GetEnd()) > 0 {
				end = strconv.Quote(string(s.GetEnd()))
			}
			rng = fmt.Sprintf("[%s, %s)", strconv.Quote(string(s.GetStart())), end)
		}
		leader := "none"
		if id := s.GetLeaderId(); id != 0 {
			leader = strconv.FormatUint(id, 10)
			if a := s.GetLeaderAddr(); a != "" {
				leader += " (" + a + ")"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.GetId(), rng, leader, joinIDs(s.GetReplicas()))
	}
	return tw.Flush()
}

// jsonMember is one node in members --json.
type jsonMember struct {
	ID         uint64 `json:"id"`
	State      string `json:"state"`
	ClientAddr string `json:"client_addr"`
	PeerAddr   string `json:"peer_addr"`
	HTTPAddr   string `json:"http_addr"`
	GossipAddr string `json:"gossip_addr"`
}

func newMembersCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the cluster's nodes",
		Long: `List the cluster's nodes as membership sees them: ID, liveness state
(alive, suspect, dead, left) and their client, peer, HTTP and gossip
addresses.`,
		Example: `  kvnode members
  kvnode members --json | jq -r '.[] | select(.state == "alive") | .client_addr'`,
		Args: func(cmd *cobra.Command, args []string) error { return wantArgs(cmd, args, 0, 0, "no arguments") },
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ms []*api.Member
			err := g.call(cmd, "members", func(ctx context.Context, c *client.Client) (err error) {
				ms, err = c.Members(ctx)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]jsonMember, len(ms))
				for i, m := range ms {
					out[i] = jsonMember{
						ID: m.GetNodeId(), State: m.GetState(), ClientAddr: m.GetClientAddr(),
						PeerAddr: m.GetPeerAddr(), HTTPAddr: m.GetHttpAddr(), GossipAddr: m.GetGossipAddr(),
					}
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tCLIENT\tPEER\tHTTP\tGOSSIP")
			for _, m := range ms {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", m.GetNodeId(), orDash(m.GetState()),
					orDash(m.GetClientAddr()), orDash(m.GetPeerAddr()), orDash(m.GetHttpAddr()), orDash(m.GetGossipAddr()))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// shardNodeArgs checks the arguments SHARD NODE.
func shardNodeArgs(cmd *cobra.Command, args []string) error {
	if err := wantArgs(cmd, args, 2, 2, "SHARD NODE"); err != nil {
		return err
	}
	if _, err := parseID("shard", args[0]); err != nil {
		return err
	}
	_, err := parseID("node", args[1])
	return err
}

// shardNodeCmd returns a command taking SHARD NODE that calls f and prints
// done (with the shard and node IDs filled in).
func shardNodeCmd(g *globals, c *cobra.Command, op, done string, f func(ctx context.Context, c *client.Client, shard, node uint64) error) *cobra.Command {
	c.Args = shardNodeArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		shard, _ := parseID("shard", args[0])
		node, _ := parseID("node", args[1])
		err := g.call(cmd, fmt.Sprintf(op, shard, node), func(ctx context.Context, c *client.Client) error {
			return f(ctx, c, shard, node)
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), done+"\n", shard, node)
		return err
	}
	return c
}

func newReplicaAddCmd(g *globals) *cobra.Command {
	return shardNodeCmd(g, &cobra.Command{
		Use:   "add SHARD NODE",
		Short: "Give a node a replica of a shard",
		Long: `Give node NODE a replica of shard SHARD. The replica joins as a learner,
catches up, and is promoted to a voter; the command returns once it votes.
Adding a replica the node already has is not an error. Catching up a large
shard may take longer than the default --timeout.`,
		Example: `  kvnode replica add 3 4
  kvnode replica add 3 4 --timeout 5m`,
	}, "add a replica of shard %d on node %d", "added a replica of shard %d on node %d",
		func(ctx context.Context, c *client.Client, shard, node uint64) error {
			return c.AddReplica(ctx, shard, node)
		})
}

func newReplicaRemoveCmd(g *globals) *cobra.Command {
	return shardNodeCmd(g, &cobra.Command{
		Use:     "remove SHARD NODE",
		Aliases: []string{"rm"},
		Short:   "Remove a node's replica of a shard",
		Example: `  kvnode replica remove 3 1`,
	}, "remove the replica of shard %d on node %d", "removed the replica of shard %d on node %d",
		func(ctx context.Context, c *client.Client, shard, node uint64) error {
			return c.RemoveReplica(ctx, shard, node)
		})
}

func newLeaderTransferCmd(g *globals) *cobra.Command {
	return shardNodeCmd(g, &cobra.Command{
		Use:     "transfer SHARD NODE",
		Short:   "Make a node's replica the leader of a shard",
		Long:    `Make node NODE, which must hold a replica of shard SHARD, the shard's leader.`,
		Example: `  kvnode leader transfer 3 2`,
	}, "transfer the leadership of shard %d to node %d", "shard %d: node %d leads",
		func(ctx context.Context, c *client.Client, shard, node uint64) error {
			return c.TransferLeader(ctx, shard, node)
		})
}

func newNodeRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NODE",
		Aliases: []string{"rm"},
		Short:   "Take a node out of the cluster, moving its replicas away",
		Long: `Take node NODE out of the cluster: its replicas are moved to other nodes
first, which may take longer than the default --timeout.`,
		Example: `  kvnode node remove 4
  kvnode node remove 4 --timeout 10m`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := wantArgs(cmd, args, 1, 1, "NODE"); err != nil {
				return err
			}
			_, err := parseID("node", args[0])
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			node, _ := parseID("node", args[0])
			err := g.call(cmd, fmt.Sprintf("remove node %d", node), func(ctx context.Context, c *client.Client) error {
				return c.RemoveNode(ctx, node)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed node %d from the cluster\n", node)
			return err
		},
	}
}

func joinIDs(ids []uint64) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, ",")
}

func nonNil(ids []uint64) []uint64 {
	if ids == nil {
		return []uint64{}
	}
	return ids
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
