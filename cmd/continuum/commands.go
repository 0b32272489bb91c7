package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

var commandsGroup = &group{
	name:    "commands",
	summary: "list commands, and provide one from this terminal",
	commands: []*command{
		commandsListCommand,
		commandsServeCommand,
	},
}

var commandsListCommand = &command{
	name:    "list",
	summary: "list every command and where it runs",
	help:    `Calls commands/list: kernel methods and the commands clients have registered, with their natural scope and provider (kernel, or the id of the client that registered it).`,
	example: "continuum commands list\ncontinuum commands list --json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				cmds, err := c.ListCommands(ctx)
				if err != nil {
					return err
				}
				if e.jsonOut() {
					if cmds == nil {
						cmds = []api.CommandInfo{}
					}
					return printJSON(e.stdout, cmds, false)
				}
				rows := make([][]string, 0, len(cmds))
				for _, ci := range cmds {
					rows = append(rows, []string{ci.Name, string(ci.NaturalScope), ci.Provider, yesNo(ci.Idempotent), ci.Description})
				}
				return table(e.stdout, []string{"NAME", "SCOPE", "PROVIDER", "IDEMPOTENT", "DESCRIPTION"}, rows)
			})
		}
	},
}

var commandsServeCommand = &command{
	name:    "serve",
	args:    "NAME",
	summary: "provide command NAME from this terminal until Ctrl-C",
	help: `Registers NAME with commands/register and answers every call to it until
interrupted; the command goes away when this process exits. Each call is
printed on stdout (time, caller, params; one JSON object per line with --json).

The reply is the call's params (--echo, the default), or a fixed JSON value
(--reply-json). Call it from another terminal with 'continuum exec NAME'.

When continuumd goes away (a restart), serve says so, dials until it is back
and registers NAME again; calls made while it was away fail on the caller's
side (command_not_found) and are not queued. --no-reconnect exits instead,
with unavailable.`,
	example: `continuum commands serve demo/echo --description "echo the params"
continuum commands serve demo/echo --scope grid --price 1   # offered to trusted peers
# in another terminal:
continuum exec demo/echo --param text=hi`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		desc := fs.String("description", "", "what the command does (shown by commands list)")
		replyJSON := fs.String("reply-json", "", "answer every call with this JSON value")
		echo := fs.Bool("echo", false, "answer every call with its params (the default)")
		scope := fs.String("scope", string(api.ScopeEnvironment), "natural scope: environment or grid")
		idempotent := fs.Bool("idempotent", false, "mark the command safe to retry")
		delay := fs.Duration("delay", 0, "wait this long before answering (to try deadlines and cancellation)")
		capability := fs.String("capability", "", "grid: the capability it offers (default the command name)")
		price := fs.Float64("price", 0, "grid: the price per call it offers")
		latency := fs.Float64("latency-ms", 0, "grid: its own estimate of a call's latency, ms")
		noReconnect := fs.Bool("no-reconnect", false, "exit with unavailable when the connection to continuumd goes, instead of registering again once it is back")
		return func(ctx context.Context, e *env, args []string) error {
			var terms *api.Terms
			if fs.Changed("price") || fs.Changed("latency-ms") {
				terms = &api.Terms{Price: *price, EstLatencyMs: *latency}
			}
			var reply any
			if *replyJSON != "" {
				if *echo {
					return usagef("commands serve", "--echo and --reply-json exclude each other")
				}
				v, err := decodeJSON(*replyJSON)
				if err != nil {
					return usagef("commands serve", "--reply-json is not valid JSON: %v", err)
				}
				reply = v
			}
			if *delay < 0 {
				return usagef("commands serve", "--delay must not be negative")
			}
			return serve(ctx, e, api.RegisterParams{
				Name:         args[0],
				NaturalScope: api.Scope(*scope),
				Description:  *desc,
				Idempotent:   *idempotent,
				Capability:   *capability,
				Terms:        terms,
			}, *replyJSON != "", reply, *delay, !*noReconnect)
		}
	},
}

// callLine is one served call in --json output.
type callLine struct {
	TS         int64  `json:"ts"`
	Invocation string `json:"invocation"`
	Command    string `json:"command"`
	Caller     string `json:"caller"`
	Params     any    `json:"params"`
}

func serve(ctx context.Context, e *env, rp api.RegisterParams, fixed bool, reply any, delay time.Duration, reconnect bool) error {
	c, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer func() { c.Close() }()

	var mu sync.Mutex // one line at a time on stdout
	handler := func(hctx context.Context, inv *client.Invocation) (any, error) {
		params := paramsOf(inv.Params)
		line := callLine{TS: time.Now().UnixMilli(), Invocation: inv.ID, Command: inv.Command, Caller: inv.Caller, Params: params}
		mu.Lock()
		if e.jsonOut() {
			_ = printJSON(e.stdout, line, true)
		} else {
			fmt.Fprintf(e.stdout, "%s  %s  from %s  %s\n", clock(line.TS), line.Command, orDash(line.Caller), compactJSON(params))
		}
		mu.Unlock()
		if delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-hctx.Done():
				mu.Lock()
				fmt.Fprintf(e.stderr, "%s  %s  %s: call cancelled (%v)\n", clock(time.Now().UnixMilli()), line.Command, line.Invocation, context.Cause(hctx))
				mu.Unlock()
				return nil, hctx.Err()
			}
		}
		if fixed {
			return reply, nil
		}
		if raw, ok := inv.Params.(api.RawParams); ok && len(raw) > 0 {
			return raw, nil // verbatim, so the caller gets exactly what it sent
		}
		return params, nil
	}
	provide := func(c *client.Client) error {
		rctx, cancel := e.callCtx(ctx)
		defer cancel()
		return c.Provide(rctx, rp, handler)
	}
	if err := provide(c); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "serving %s on %s; Ctrl-C to stop\n", rp.Name, e.socketPath())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
		}
		if !reconnect {
			return api.Errorf(api.CodeUnavailable, "lost the connection to continuumd; %s is no longer served", rp.Name)
		}
		// The daemon went (a restart): dial until it is back and register
		// again. A registration refused for good (the name is taken by now,
		// say) ends serve with that error rather than looping.
		fmt.Fprintf(e.stderr, "lost the connection to continuumd at %s; registering %s again once it is back (Ctrl-C to stop)\n", e.socketPath(), rp.Name)
		c.Close()
		nc := (&follower{e: e}).redial(ctx)
		if nc == nil {
			return nil
		}
		c = nc
		if err := provide(c); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "serving %s again\n", rp.Name)
	}
}

// paramsOf is a provided command's params as a plain value.
func paramsOf(p api.Params) any {
	switch v := p.(type) {
	case nil:
		return nil
	case api.RawParams:
		d, err := decodeMsgpack(v)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return d
	case api.ValueParams:
		return plain(v.V)
	}
	var v any
	if err := p.Decode(&v); err != nil {
		return "<" + err.Error() + ">"
	}
	return plain(v)
}
