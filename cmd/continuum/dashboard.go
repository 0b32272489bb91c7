package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

var dashboardCommand = &command{
	name:    "dashboard",
	summary: "print the URL of the live dashboard, token included",
	help: `Asks the daemon (kernel/info) where its WebSocket listener is, reads the
listener's token file, and prints the dashboard's URL:
http://127.0.0.1:7777/dashboard/#token=…. Open it in a browser on this machine.
The token travels in the URL's fragment, which a browser never sends to a
server; the page keeps it in that tab only. Whoever has the URL can do
anything this user can do with continuumd: do not paste it anywhere.

The daemon must run with a WebSocket listener (continuumd --listen-ws
127.0.0.1:7777); it serves the dashboard there unless started with
--ws-dashboard=false. docs/SERVICE.md ("Dashboard") has the details.`,
	example: "continuum dashboard\nxdg-open \"$(continuum dashboard)\"\ncontinuum dashboard --json | jq -r .url",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		tokenFile := fs.String("ws-token-file", "", "read the token from this file (default: the file the daemon says it uses)")
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				info, err := c.Info(ctx)
				if err != nil {
					return err
				}
				d, err := dashboardURL(info.WebSocket, *tokenFile, e.socketPath())
				if err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, d, false)
				}
				fmt.Fprintln(e.stdout, d.URL)
				return nil
			})
		}
	},
}

// dashboardInfo is what continuum dashboard --json prints.
type dashboardInfo struct {
	URL       string `json:"url"`
	Addr      string `json:"addr"`
	TokenFile string `json:"tokenFile"`
}

// dashboardURL builds the page's URL from what kernel/info says of the
// listener, with the token read from tokenFile (default: the daemon's).
func dashboardURL(ws *api.WebSocketInfo, tokenFile, socket string) (dashboardInfo, error) {
	if ws == nil || ws.Addr == "" {
		return dashboardInfo{}, fmt.Errorf("continuumd at %s has no WebSocket listener, so no dashboard\nrestart it with: continuumd --listen-ws 127.0.0.1:7777", socket)
	}
	if ws.Dashboard == "" {
		return dashboardInfo{}, fmt.Errorf("continuumd serves a WebSocket at %s but not the dashboard (it was started with --ws-dashboard=false)\nrestart it without --ws-dashboard=false", ws.Addr)
	}
	if tokenFile == "" {
		tokenFile = ws.TokenFile
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		hint := "it is the file continuumd --ws-token-file names; run this as the daemon's user"
		if errors.Is(err, os.ErrNotExist) {
			hint = "continuumd makes it when it starts with --listen-ws; --ws-token-file here must name the same file as continuumd's --ws-token-file"
		}
		return dashboardInfo{}, fmt.Errorf("cannot read the WebSocket token: %w\n%s", err, hint)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return dashboardInfo{}, fmt.Errorf("the WebSocket token file %s is empty", tokenFile)
	}
	u := url.URL{Scheme: "http", Host: ws.Addr, Path: ws.Dashboard, Fragment: "token=" + url.QueryEscape(token)}
	return dashboardInfo{URL: u.String(), Addr: ws.Addr, TokenFile: tokenFile}, nil
}
