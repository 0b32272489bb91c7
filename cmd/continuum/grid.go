package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

var gridGroup = &group{
	name:    "grid",
	summary: "link this install to others: invite, join, trust, untrust, peers, status, routes, policy-reload",
	commands: []*command{
		gridInviteCommand,
		gridJoinCommand,
		gridTrustCommand,
		gridUntrustCommand,
		gridPeersCommand,
		gridStatusCommand,
		gridRoutesCommand,
		gridPolicyReloadCommand,
	},
}

var gridRoutesCommand = &command{
	name:    "routes",
	summary: "show the capability index: which peers offer what",
	help: `Calls grid/routes: every capability a trusted peer's manifest offers, with
the command that serves it, the peer, the circle this install trusts it in,
its terms (price, latency estimate, concurrency), its load, whether its
manifest is live or stale, and whether a link to it is up (routing needs a
live manifest and a link). --capability shows one capability.`,
	example: "continuum grid routes\ncontinuum grid routes --capability llm:tiny --json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		capability := fs.String("capability", "", "only this capability")
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var r api.RoutesResult
				if err := c.Call(ctx, api.MethodGridRoutes, api.RoutesParams{Capability: *capability}, &r); err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, r, false)
				}
				rows := make([][]string, 0, len(r.Routes))
				for _, rt := range r.Routes {
					link := "down"
					if rt.LinkUp {
						link = fmt.Sprintf("up %.2fms", rt.RTTMs)
					}
					price := fmt.Sprintf("%g", rt.Terms.Price)
					if rt.Terms.Currency != "" {
						price += " " + rt.Terms.Currency
					}
					rows = append(rows, []string{rt.Capability, rt.Command, rt.PeerID, rt.Circle, price,
						fmt.Sprintf("%gms", rt.Terms.EstLatencyMs), fmt.Sprintf("%.2f", rt.Load), rt.State, link})
				}
				return table(e.stdout, []string{"CAPABILITY", "COMMAND", "PEER", "CIRCLE", "PRICE", "EST", "LOAD", "MANIFEST", "LINK"}, rows)
			})
		}
	},
}

var gridPolicyReloadCommand = &command{
	name:    "policy-reload",
	summary: "read the grid policy file again (as SIGHUP does)",
	help: `Calls grid/policy-reload: continuumd reads policy.json in its state
directory, validates it and runs its tests section; a policy that passes is
swapped in whole, anything else keeps the policy in force and the reason is
printed (and the command fails). A missing or empty file means the defaults
(household only). docs/GRID.md describes the file.`,
	example: "continuum grid policy-reload",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var r api.PolicyReloadResult
				if err := c.Call(ctx, api.MethodGridPolicyReload, api.Empty{}, &r); err != nil {
					return err
				}
				if e.jsonOut() {
					if err := printJSON(e.stdout, r, false); err != nil {
						return err
					}
				} else if r.Loaded {
					fmt.Fprintf(e.stdout, "policy loaded from %s (%s), %d tests passed\n", r.Path, r.Source, r.Tests)
				}
				if !r.Loaded {
					return api.Errorf(api.CodeInvalidArgument, "policy kept: %s", r.Reason)
				}
				return nil
			})
		}
	},
}

const circlesHelp = "household, trusted-orgs, extended or public-mesh"

var gridInviteCommand = &command{
	name:    "invite",
	summary: "print a one-off invite token for a circle",
	help: `Calls grid/invite. The token is signed by this install's key and names its
QUIC addresses, the circle and a random nonce; it works once, until --ttl
passes (default 10m). Give it to the other install's operator, who runs
'continuum grid join TOKEN'; both sides then trust each other in the circle.
continuumd must run with --listen-quic so the joiner can reach it.`,
	example: "continuum grid invite --circle household\ncontinuum grid invite --circle extended --ttl 1h --json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		circle := fs.String("circle", "", "the circle to invite into: "+circlesHelp+" (required)")
		ttl := fs.Duration("ttl", 0, "how long the token works (default 10m, at most 168h)")
		return func(ctx context.Context, e *env, _ []string) error {
			if *circle == "" {
				return usagef("grid invite", "--circle is required (%s)", circlesHelp)
			}
			if *ttl < 0 || (*ttl > 0 && *ttl < time.Second) {
				return usagef("grid invite", "--ttl must be at least 1s")
			}
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var r api.InviteResult
				if err := c.Call(ctx, api.MethodGridInvite, api.InviteParams{Circle: *circle, TTLSeconds: int(*ttl / time.Second)}, &r); err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, r, false)
				}
				fmt.Fprintln(e.stdout, r.Token)
				fmt.Fprintf(e.stderr, "one-off invite into %s, expires %s; on the other install run:\n  continuum grid join %s\n", *circle, clock(r.ExpiresAtMs), r.Token)
				return nil
			})
		}
	},
}

var gridJoinCommand = &command{
	name:    "join",
	args:    "TOKEN",
	summary: "redeem an invite token: link to the inviter and trust each other",
	help: `Calls grid/join. The daemon checks the token's signature and expiry, dials the
inviter (pinned to the inviter's key), presents the token, and once the inviter
accepts, records trust of the inviter in the token's circle. The link is kept
from then on, across restarts of either side.`,
	example: "continuum grid join cinv1.eyJpbnZpdGVyIjoi...",
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var r api.JoinResult
				if err := c.Call(ctx, api.MethodGridJoin, api.JoinParams{Token: args[0]}, &r); err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, r, false)
				}
				fmt.Fprintf(e.stdout, "joined %s in %s\n", r.PeerID, r.Circle)
				return nil
			})
		}
	},
}

var gridTrustCommand = &command{
	name:    "trust",
	args:    "PEER_ID",
	summary: "trust a peer in a circle and keep a link to it",
	help: `Calls grid/trust. Only this install's operator adds trust; nothing is learned
from peers. With --addr the daemon dials the peer (and redials with backoff);
without, it waits for the peer to dial. The other side must trust this install
too (its own grid trust, or an invite) before a link comes up.`,
	example: "continuum grid trust cabc... --circle household --addr 192.168.1.20:7946",
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		circle := fs.String("circle", "", "the circle: "+circlesHelp+" (required)")
		addrs := fs.StringArray("addr", nil, "the peer's QUIC address host:port (repeatable)")
		return func(ctx context.Context, e *env, args []string) error {
			if *circle == "" {
				return usagef("grid trust", "--circle is required (%s)", circlesHelp)
			}
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var p api.GridPeer
				if err := c.Call(ctx, api.MethodGridTrust, api.TrustParams{PeerID: args[0], Circle: *circle, Addrs: *addrs}, &p); err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, p, false)
				}
				fmt.Fprintf(e.stdout, "trusted %s in %s\n", p.PeerID, p.Circle)
				return nil
			})
		}
	},
}

var gridUntrustCommand = &command{
	name:    "untrust",
	args:    "PEER_ID",
	summary: "stop trusting a peer; its link closes at once",
	help:    `Calls grid/untrust. The live link (and replication over it) closes at once, and the peer is refused from then on.`,
	example: "continuum grid untrust cabc...",
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var r api.UntrustResult
				if err := c.Call(ctx, api.MethodGridUntrust, api.UntrustParams{PeerID: args[0]}, &r); err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, r, false)
				}
				if r.Removed {
					fmt.Fprintf(e.stdout, "untrusted %s\n", args[0])
				} else {
					fmt.Fprintf(e.stdout, "%s was not trusted\n", args[0])
				}
				return nil
			})
		}
	},
}

var gridPeersCommand = &command{
	name:    "peers",
	summary: "list trusted peers and their links",
	help:    `Calls grid/peers: every trusted peer with its circle, addresses, link state (up, connecting, down), round trip and when it was last seen.`,
	example: "continuum grid peers\ncontinuum grid peers --json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var r api.PeersResult
				if err := c.Call(ctx, api.MethodGridPeers, api.Empty{}, &r); err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, r, false)
				}
				rows := make([][]string, 0, len(r.Peers))
				for _, p := range r.Peers {
					rtt := "-"
					if p.State == "up" {
						rtt = fmt.Sprintf("%.2fms", p.RTTMs)
					}
					seen := "-"
					if p.LastSeenMs > 0 {
						seen = clock(p.LastSeenMs)
					}
					rows = append(rows, []string{p.PeerID, p.Circle, p.State, rtt, seen, orDash(strings.Join(p.Addrs, ","))})
				}
				return table(e.stdout, []string{"PEER", "CIRCLE", "STATE", "RTT", "LAST SEEN", "ADDRS"}, rows)
			})
		}
	},
}

var gridStatusCommand = &command{
	name:    "status",
	summary: "show this install's peer id, QUIC addresses, vectors and counters",
	help:    `Calls grid/status: the peer id, where links are accepted, the log epoch, per channel the highest originSeq held from each origin, and the grid's counters (refusals and closes by reason).`,
	example: "continuum grid status\ncontinuum grid status --json | jq .channels",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var s api.GridStatus
				if err := c.Call(ctx, api.MethodGridStatus, api.Empty{}, &s); err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, s, false)
				}
				if err := fields(e.stdout,
					"peer id", s.PeerID,
					"quic", orDash(strings.Join(s.QUICAddrs, ", ")),
					"epoch", fmt.Sprint(s.Epoch),
					"links up", fmt.Sprint(s.Links),
				); err != nil {
					return err
				}
				if len(s.Channels) > 0 {
					fmt.Fprintln(e.stdout, "\nchannels:")
					var rows [][]string
					for _, ch := range sortedKeysOf(s.Channels) {
						for _, origin := range sortedKeysOf(s.Channels[ch]) {
							rows = append(rows, []string{ch, origin, fmt.Sprint(s.Channels[ch][origin])})
						}
					}
					if err := table(e.stdout, []string{"CHANNEL", "ORIGIN", "HIGHEST SEQ"}, rows); err != nil {
						return err
					}
				}
				if len(s.Counters) > 0 {
					fmt.Fprintln(e.stdout, "\ncounters:")
					var rows [][]string
					for _, k := range sortedKeysOf(s.Counters) {
						rows = append(rows, []string{k, fmt.Sprint(s.Counters[k])})
					}
					return table(e.stdout, []string{"NAME", "COUNT"}, rows)
				}
				return nil
			})
		}
	},
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
