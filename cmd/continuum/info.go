package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

// topGroup holds the commands that stand alone: continuum info, ping, exec.
var topGroup = &group{
	name:    "",
	summary: "top-level commands",
	commands: []*command{
		infoCommand,
		pingCommand,
		execCommand,
		generateCommand,
		chatCommand,
		doctorCommand,
		dashboardCommand,
	},
}

var infoCommand = &command{
	name:    "info",
	summary: "show the daemon's version, peer id and methods",
	help: `Asks the daemon for kernel/info: its version, protocol version, peer id, and
every method with its scope and kind. --json prints the whole answer, with the
params and result schemas of each method.`,
	example: "continuum info\ncontinuum info --json | jq '.methods[].name'",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				info, err := c.Info(ctx)
				if err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, info, false)
				}
				if err := fields(e.stdout,
					"version", info.Version,
					"protocol", strconv.Itoa(info.Protocol),
					"peer id", orDash(info.PeerID),
					"socket", e.socketPath(),
					"quic", orDash(strings.Join(info.QUICAddrs, ", ")),
					"websocket", webSocketLine(info.WebSocket),
				); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "\n%d methods:\n", len(info.Methods))
				rows := make([][]string, 0, len(info.Methods))
				for _, m := range info.Methods {
					rows = append(rows, []string{m.Name, string(m.NaturalScope), m.Kind, m.Description})
				}
				return table(e.stdout, []string{"NAME", "SCOPE", "KIND", "DESCRIPTION"}, rows)
			})
		}
	},
}

var pingCommand = &command{
	name:    "ping",
	summary: "check that the daemon answers, and how fast",
	help:    `Calls kernel/ping and prints the round-trip time. Exit status 0 means the daemon answered.`,
	example: "continuum ping\ncontinuum ping --socket /tmp/my-continuum/continuumd.sock --timeout 1s",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		count := fs.IntP("count", "c", 1, "pings to send")
		return func(ctx context.Context, e *env, _ []string) error {
			if *count < 1 {
				return usagef("ping", "--count must be at least 1")
			}
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				for i := 0; i < *count; i++ {
					start := time.Now()
					res, err := c.Ping(ctx)
					if err != nil {
						return err
					}
					rtt := time.Since(start)
					if e.jsonOut() {
						if err := printJSON(e.stdout, pingLine{TS: res.TS, RTTMicros: rtt.Microseconds()}, true); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(e.stdout, "pong from %s in %s\n", e.socketPath(), rtt.Round(time.Microsecond))
				}
				return nil
			})
		}
	},
}

// pingLine is one ping in --json output.
type pingLine struct {
	TS        int64 `json:"ts"`        // the daemon's clock, unix ms
	RTTMicros int64 `json:"rttMicros"` // round trip, microseconds
}

// webSocketLine says where the WebSocket listener is, and its dashboard.
func webSocketLine(ws *api.WebSocketInfo) string {
	if ws == nil {
		return "-"
	}
	if ws.Dashboard == "" {
		return ws.Addr + " (no dashboard)"
	}
	return ws.Addr + " (dashboard: continuum dashboard)"
}
