package main

import (
	"context"
	"time"

	"github.com/continuum-grid/continuum/api"
	flag "github.com/spf13/pflag"
	"github.com/vmihailenco/msgpack/v5"
)

var execCommand = &command{
	name:    "exec",
	args:    "COMMAND",
	summary: "run a command (kernel method or one a client provides) and print its result",
	help: `Calls commands/execute. COMMAND is any name 'continuum commands list' shows,
including every protocol method (events/list-classes, kernel/info, ...).

Params come from --json (a JSON value; "-" reads it from stdin) and/or
--param key=value pairs, which are set on the --json object.

` + paramSyntaxHelp + `

The result is printed as JSON (indented; compact with --output json). Byte
strings in it are base64. --timeout is also sent as the command's deadline, so
the provider is cancelled when it passes.`,
	example: `continuum exec events/list-classes
continuum exec demo/echo --param text=hi --param n=3
continuum exec demo/echo --grid --policy cheapest --param text=hi
continuum exec events/get-class --json '{"name":"chat:posted"}'
echo '{"name":"chat:posted"}' | continuum exec events/get-class --json -`,
	minArgs:   1,
	maxArgs:   1,
	inputJSON: true,
	flags: func(fs *flag.FlagSet) action {
		params := fs.StringArrayP("param", "p", nil, "a param as key=value (repeatable)")
		jsonText := fs.String("json", "", `params as JSON ("-" reads stdin)`)
		scope := fs.String("scope", "", "run it here: local, environment or grid (default: the command's natural scope)")
		peer := fs.String("peer", "", "peer id to run it on (implies --grid)")
		onGrid := fs.Bool("grid", false, "run it on a peer (scope grid): one that offers it, picked by --policy")
		capability := fs.String("capability", "", "the capability a peer must offer (implies --grid)")
		strategy := fs.String("policy", "", "how to pick the peer: cheapest, fastest, closest or load-balance (default the policy file's)")
		minCircle := fs.String("min-circle", "", "least trusted circle to accept: "+circlesHelp)
		return func(ctx context.Context, e *env, args []string) error {
			p, err := buildMap("exec", "--json", *jsonText, *params, e.stdin)
			if err != nil {
				return err
			}
			ep := api.ExecuteParams{Command: args[0], Params: p}
			if *onGrid || *capability != "" || *strategy != "" || *minCircle != "" {
				if *scope != "" && *scope != string(api.ScopeGrid) {
					return usagef("exec", "--grid and --scope %s disagree", *scope)
				}
				*scope = string(api.ScopeGrid)
			}
			if *scope != "" || *peer != "" {
				switch api.Scope(*scope) {
				case "", api.ScopeLocal, api.ScopeEnvironment, api.ScopeGrid:
				default:
					return usagef("exec", "--scope %q: want local, environment or grid", *scope)
				}
				ep.Scope = &api.ScopeParams{Target: api.Scope(*scope), PeerID: *peer, Capability: *capability, Policy: *strategy, MinTrustCircle: *minCircle}
			}
			c, err := e.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			// The daemon enforces the deadline (and cancels the provider);
			// the local one is a little later, so its typed error arrives.
			cctx, cancel := context.WithCancel(ctx)
			if e.timeout > 0 {
				ep.TimeoutMs = e.timeout.Milliseconds()
				cancel()
				cctx, cancel = context.WithTimeout(ctx, e.timeout+time.Second)
			}
			defer cancel()
			var raw msgpack.RawMessage
			if err := c.Execute(cctx, ep, &raw); err != nil {
				return err
			}
			res, err := decodeMsgpack(raw)
			if err != nil {
				return err
			}
			return printJSON(e.stdout, res, e.jsonOut())
		}
	},
}
