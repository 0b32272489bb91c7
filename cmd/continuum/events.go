package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

var eventsGroup = &group{
	name:    "events",
	summary: "declare event classes, emit events, and watch them",
	commands: []*command{
		eventsDeclareCommand,
		eventsListCommand,
		eventsGetCommand,
		eventsEmitCommand,
		eventsTailCommand,
		eventsResolveCommand,
	},
}

var eventsDeclareCommand = &command{
	name:    "declare",
	args:    "NAME",
	summary: "declare event class NAME (idempotent when the contract matches)",
	help: `Calls events/declare-class and prints the resolved config. Declaring again with
the same broadcast, channel, schema version and on-unknown-schema is a no-op;
any difference fails with conflicting_redeclaration: bump --schema-version to
change a class's contract. A broadcast class needs a --channel other than local.`,
	example: `continuum events declare chat:posted --schema-version v1 --broadcast --channel byRoomId
continuum events declare ui:clicked --schema-version v1 --on-unknown-schema warn`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		schema := fs.String("schema-version", "", "payload schema version (required), e.g. v1")
		broadcast := fs.Bool("broadcast", false, "log the class's events and replicate them on a channel")
		channel := fs.String("channel", "", "local, global, byRoomId, byPeerId or custom (default local)")
		onUnknown := fs.String("on-unknown-schema", "", "what an emit with another schema version does: warn or fail (default fail)")
		desc := fs.String("description", "", "free text")
		return func(ctx context.Context, e *env, args []string) error {
			if *schema == "" {
				return usagef("events declare", "--schema-version is required")
			}
			cfg := api.ClassConfig{
				Name:            args[0],
				Broadcast:       *broadcast,
				Channel:         api.ChannelStrategy(*channel),
				SchemaVersion:   *schema,
				OnUnknownSchema: api.OnUnknownSchema(*onUnknown),
				Description:     *desc,
			}
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				got, err := c.DeclareClass(ctx, cfg)
				if err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, got, false)
				}
				fmt.Fprintf(e.stdout, "declared %s\n", got.Name)
				return printClass(e, &got)
			})
		}
	},
}

func printClass(e *env, c *api.ClassConfig) error {
	return fields(e.stdout,
		"name", c.Name,
		"broadcast", yesNo(c.Broadcast),
		"channel", string(c.Channel),
		"schema version", c.SchemaVersion,
		"on unknown schema", string(c.OnUnknownSchema),
		"description", orDash(c.Description),
	)
}

var eventsListCommand = &command{
	name:    "list",
	summary: "list the declared event classes",
	help:    `Calls events/list-classes: every declared class, sorted by name.`,
	example: "continuum events list\ncontinuum events list --json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				classes, err := c.ListClasses(ctx)
				if err != nil {
					return err
				}
				if e.jsonOut() {
					if classes == nil {
						classes = []api.ClassConfig{}
					}
					return printJSON(e.stdout, classes, false)
				}
				rows := make([][]string, 0, len(classes))
				for _, cl := range classes {
					rows = append(rows, []string{cl.Name, yesNo(cl.Broadcast), string(cl.Channel), cl.SchemaVersion, string(cl.OnUnknownSchema), cl.Description})
				}
				return table(e.stdout, []string{"NAME", "BROADCAST", "CHANNEL", "SCHEMA", "ON-UNKNOWN", "DESCRIPTION"}, rows)
			})
		}
	},
}

var eventsGetCommand = &command{
	name:    "get",
	args:    "NAME",
	summary: "show one event class",
	help:    `Calls events/get-class. An undeclared class fails with not_found (exit status 1).`,
	example: "continuum events get chat:posted",
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				cl, err := c.GetClass(ctx, args[0])
				if err != nil {
					return err
				}
				if cl == nil {
					return api.Errorf(api.CodeNotFound, "class %q is not declared (continuum events declare)", args[0])
				}
				if e.jsonOut() {
					return printJSON(e.stdout, cl, false)
				}
				return printClass(e, cl)
			})
		}
	},
}

var eventsEmitCommand = &command{
	name:    "emit",
	args:    "NAME",
	summary: "emit an event of class NAME",
	help: `Calls events/emit with the payload from --json (a JSON value; "-" reads stdin)
and/or --param key=value pairs. For a broadcast class the daemon answers once
the event is on disk; the reply gives the event id, channel, lamport time and
log position.

An undeclared class is delivered to local subscribers only, and is often a
typo: the CLI then warns on stderr (naming a declared class that looks close)
and the JSON result says "declared": false. --strict refuses an undeclared
class instead (undeclared_class, exit status 1, nothing delivered).

` + paramSyntaxHelp,
	example: `continuum events emit chat:posted --json '{"roomId":"general","text":"hello"}'
continuum events emit ui:clicked --param button=ok --param x=10
continuum events emit chat:posted --strict --param roomId=general --param text=hi`,
	minArgs:   1,
	maxArgs:   1,
	inputJSON: true,
	flags: func(fs *flag.FlagSet) action {
		jsonText := fs.String("json", "", `payload as JSON ("-" reads stdin)`)
		params := fs.StringArrayP("param", "p", nil, "a payload field as key=value (repeatable)")
		id := fs.String("id", "", "event id; reuse it to make a retry idempotent")
		channel := fs.String("channel", "", "explicit channel (classes with channel custom)")
		schema := fs.String("schema-version", "", "payload schema version (default: the class's)")
		headers := fs.StringArrayP("header", "H", nil, "a header as key=value (repeatable)")
		strict := fs.Bool("strict", false, "refuse an undeclared class (undeclared_class) instead of delivering it locally")
		return func(ctx context.Context, e *env, args []string) error {
			payload, err := buildMap("events emit", "--json", *jsonText, *params, e.stdin)
			if err != nil {
				return err
			}
			p := api.EmitParams{Name: args[0], Payload: payload, ID: *id, Channel: *channel, SchemaVersion: *schema, Strict: *strict}
			for _, h := range *headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok || k == "" {
					return usagef("events emit", "--header %q: want key=value", h)
				}
				if p.Headers == nil {
					p.Headers = map[string]string{}
				}
				p.Headers[k] = v
			}
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				res, err := c.Emit(ctx, p)
				if err != nil {
					if api.CodeOf(err) == api.CodeUndeclaredClass {
						return withClassHint(ctx, c, p.Name, err)
					}
					return err
				}
				if !res.Declared {
					warnUndeclared(ctx, e, c, p.Name)
				}
				if e.jsonOut() {
					return printJSON(e.stdout, res, false)
				}
				if res.Channel == "" {
					fmt.Fprintf(e.stdout, "emitted %s (local)\n", res.ID)
					return nil
				}
				if res.Seq == 0 {
					fmt.Fprintf(e.stdout, "emitted %s on channel %s\n", res.ID, res.Channel)
					return nil
				}
				fmt.Fprintf(e.stdout, "emitted %s on channel %s (lamport %d, seq %d)\n", res.ID, res.Channel, res.Lamport, res.Seq)
				return nil
			})
		}
	},
}

// warnUndeclared tells the user that an emit went to an undeclared class,
// which reaches only local subscribers of that exact class and is most often
// a typo.
func warnUndeclared(ctx context.Context, e *env, c *client.Client, name string) {
	fmt.Fprintf(e.stderr, "warning: class %q is not declared: the event went only to local subscribers of that class, and is not logged%s\n", name, classSuggestion(ctx, c, name))
	fmt.Fprintln(e.stderr, "  (declare it with continuum events declare; --strict refuses undeclared classes)")
}

// withClassHint adds "did you mean" to an undeclared_class error.
func withClassHint(ctx context.Context, c *client.Client, name string, err error) error {
	hint := classSuggestion(ctx, c, name)
	if hint == "" {
		return err
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return &api.Error{Code: ae.Code, Message: ae.Message + hint, Data: ae.Data}
	}
	return err
}

// classSuggestion is "; did you mean X?" naming the declared class closest
// to name, or "" when none is close.
func classSuggestion(ctx context.Context, c *client.Client, name string) string {
	classes, err := c.ListClasses(ctx)
	if err != nil {
		return ""
	}
	names := make([]string, len(classes))
	for i, cl := range classes {
		names[i] = cl.Name
	}
	return didYouMean(name, names)
}

var eventsTailCommand = &command{
	name:    "tail",
	args:    "[PATTERN]",
	summary: "print matching events live, until Ctrl-C",
	help: `Subscribes with events/subscribe and prints each event as it arrives, one line
each under a header: time, class, channel ("-" when local), sender (the
program that emitted it, as name:pid/connection), payload as compact JSON.
--json prints each event's whole envelope as one JSON object per line, with
no header.

When continuumd stops or restarts, the tail says so and waits for it to come
back, then watches again from that moment (a live tail does not replay what
it missed; 'continuum log tail' does, for logged classes). --no-reconnect
exits with status 1 instead.

PATTERN matches class names segment by segment; * matches one segment, and
the lone pattern * (the default) every class. Quote it from the shell.`,
	example: `continuum events tail 'chat:*'
continuum events tail '*' --channel global --json`,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		channel := fs.String("channel", "", "only events on this channel")
		from := fs.String("from", "", `where to start: now (default), start, or a seq (needs the airc log)`)
		noReconnect := fs.Bool("no-reconnect", false, "exit with unavailable when the connection to continuumd goes, instead of waiting for it to come back")
		return func(ctx context.Context, e *env, args []string) error {
			pattern := "*"
			if len(args) > 0 {
				pattern = args[0]
			}
			sp := api.SubscribeParams{Pattern: pattern, Channel: *channel}
			if *from != "" {
				f, err := api.ParseFrom(*from)
				if err != nil {
					return usagef("events tail", "--from: %v", err)
				}
				sp.From = f
			}
			return tail(ctx, e, sp, !*noReconnect)
		}
	},
}

// tail follows sp live. After a reconnect it subscribes again from now:
// what was emitted while the daemon was away is gone for a live tail (log
// tail replays the log instead), and it says so.
func tail(ctx context.Context, e *env, sp api.SubscribeParams, reconnect bool) error {
	var out *streamTable
	var dropped uint64
	f := &follower{e: e, reconnect: reconnect}
	f.subscribe = func(ctx context.Context, c *client.Client, resumed bool) (*client.Subscription, error) {
		p := sp
		if resumed {
			p.From = api.From{} // now
		}
		sctx, cancel := e.callCtx(ctx)
		sub, err := c.Subscribe(sctx, p)
		cancel()
		if err != nil {
			return nil, err
		}
		dropped = 0
		if resumed {
			fmt.Fprintln(e.stderr, "watching again from now: events emitted while continuumd was away are not shown (continuum log tail replays logged ones)")
			return sub, nil
		}
		where := ""
		if sp.Channel != "" {
			where = " on channel " + sp.Channel
		}
		fmt.Fprintf(e.stderr, "watching %s%s at %s; Ctrl-C to stop\n", sp.Pattern, where, e.socketPath())
		if !e.jsonOut() {
			if out, err = newStreamTable(e.stdout, []string{"TIME", "CLASS", "CHANNEL", "SENDER", "PAYLOAD"}, []int{12, 14, 8, 24}); err != nil {
				return nil, err
			}
		}
		return sub, nil
	}
	f.handle = func(_ context.Context, _ *client.Client, sub *client.Subscription, ev api.Event) error {
		if e.jsonOut() {
			if err := printJSON(e.stdout, &ev, true); err != nil {
				return err
			}
		} else if err := out.row([]string{clock(ev.TS), ev.Class, orDash(ev.Channel), orDash(ev.Sender), compactJSON(ev.Payload)}); err != nil {
			return err
		}
		// Say so when events were lost, without stopping.
		if lag := sub.Lagged(); lag.Kernel+lag.Client != dropped {
			fmt.Fprintf(e.stderr, "warning: %d events dropped (this terminal could not keep up)\n", lag.Kernel+lag.Client-dropped)
			dropped = lag.Kernel + lag.Client
		}
		return nil
	}
	return f.run(ctx)
}

var eventsResolveCommand = &command{
	name:      "resolve",
	args:      "NAME",
	summary:   "show the channel an event of class NAME would go to",
	help:      `Calls events/resolve-channel with the payload from --json and/or --param pairs (and --channel for custom classes).` + "\n\n" + paramSyntaxHelp,
	example:   `continuum events resolve chat:posted --param roomId=general`,
	minArgs:   1,
	maxArgs:   1,
	inputJSON: true,
	flags: func(fs *flag.FlagSet) action {
		jsonText := fs.String("json", "", `payload as JSON ("-" reads stdin)`)
		params := fs.StringArrayP("param", "p", nil, "a payload field as key=value (repeatable)")
		channel := fs.String("channel", "", "explicit channel (classes with channel custom)")
		return func(ctx context.Context, e *env, args []string) error {
			payload, err := buildMap("events resolve", "--json", *jsonText, *params, e.stdin)
			if err != nil {
				return err
			}
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				ch, err := c.ResolveChannel(ctx, api.ResolveChannelParams{Name: args[0], Payload: payload, Channel: *channel})
				if err != nil {
					return err
				}
				if e.jsonOut() {
					return printJSON(e.stdout, api.ChannelResult{Channel: ch}, false)
				}
				fmt.Fprintln(e.stdout, ch)
				return nil
			})
		}
	},
}
