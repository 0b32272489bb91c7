package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/paths"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel/airc"
	flag "github.com/spf13/pflag"
)

var logGroup = &group{
	name:    "log",
	summary: "inspect and maintain the airc log of broadcast events",
	commands: []*command{
		logStatsCommand,
		logTailCommand,
		logReplayCommand,
		logCompactCommand,
	},
}

var logStatsCommand = &command{
	name:    "stats",
	summary: "show what the airc log holds: head, clock, channels, counts and sizes",
	help: `Calls log/stats: the log's head seq, lamport clock and epoch, how many events
and bytes it holds, the size of the whole state file, and per channel the
events, bytes, newest seq and highest lamport. Retention (continuumd
--retain-*) lowers the counts; the file only shrinks with 'continuum log
compact'.`,
	example: "continuum log stats\ncontinuum log stats --json | jq '.channels[] | select(.events > 1000)'",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var st api.LogStats
				if err := c.Call(ctx, api.MethodLogStats, nil, &st); err != nil {
					return err
				}
				if e.jsonOut() {
					if st.Channels == nil {
						st.Channels = []api.LogChannelStats{}
					}
					return printJSON(e.stdout, st, false)
				}
				if err := fields(e.stdout,
					"head", strconv.FormatUint(st.Head, 10),
					"lamport", strconv.FormatUint(st.Lamport, 10),
					"epoch", strconv.FormatUint(st.Epoch, 10),
					"events", strconv.FormatUint(st.Events, 10),
					"event bytes", strconv.FormatUint(st.Bytes, 10),
					"file bytes", strconv.FormatInt(st.FileBytes, 10),
					"rejections", strconv.FormatUint(st.Rejections, 10),
					"forked origins", strconv.Itoa(st.ForkedOrigins),
				); err != nil {
					return err
				}
				if len(st.Channels) == 0 {
					fmt.Fprintln(e.stdout, "\nno channels yet")
					return nil
				}
				fmt.Fprintf(e.stdout, "\n%d channels:\n", len(st.Channels))
				rows := make([][]string, 0, len(st.Channels))
				for _, ch := range st.Channels {
					rows = append(rows, []string{ch.Channel, strconv.FormatUint(ch.Events, 10), strconv.FormatUint(ch.Bytes, 10),
						strconv.FormatUint(ch.LastSeq, 10), strconv.FormatUint(ch.LastLamport, 10)})
				}
				return table(e.stdout, []string{"CHANNEL", "EVENTS", "BYTES", "LAST-SEQ", "LAST-LAMPORT"}, rows)
			})
		}
	},
}

var logTailCommand = &command{
	name:    "tail",
	args:    "[PATTERN]",
	summary: "print a channel's logged events as they are committed, until Ctrl-C",
	help: `Subscribes to the log (events/subscribe with from or durable) and prints each
logged event of --channel, one line each under a header: seq, lamport, time,
class, sender (the program that emitted it, as name:pid/connection), payload
as compact JSON. --json prints each whole envelope as one JSON object per
line, with no header. Unlike 'events tail', it reads the log itself: it never
drops an event however slow the terminal, and prints only events that are on
disk.

When continuumd stops or restarts, the tail says so, waits for it to come
back and goes on after the last event it printed, so nothing logged in
between is missed. --no-reconnect exits with status 1 instead.

--from start replays the channel from the beginning first; --from SEQ resumes
after that seq; the default starts at the log's current head. With --durable
NAME the position is kept in the daemon: each printed event is acknowledged,
and the next tail with the same name goes on after the last one printed
(--from only counts the first time).`,
	example: `continuum log tail --channel general
continuum log tail 'chat:*' --channel general --from start --json
continuum log tail --channel general --durable my-notes`,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		channel := fs.String("channel", "", "channel to follow (required)")
		from := fs.String("from", "now", "now, start, or a seq to resume after")
		durable := fs.String("durable", "", "name of a durable cursor to resume from and acknowledge")
		noReconnect := fs.Bool("no-reconnect", false, "exit with unavailable when the connection to continuumd goes, instead of waiting for it to come back")
		return func(ctx context.Context, e *env, args []string) error {
			if *channel == "" {
				return usagef("log tail", "--channel is required (continuum log stats lists the channels)")
			}
			f, err := api.ParseFrom(*from)
			if err != nil {
				return usagef("log tail", "--from: %v", err)
			}
			pattern := "*"
			if len(args) > 0 {
				pattern = args[0]
			}
			return logTail(ctx, e, api.SubscribeParams{Pattern: pattern, Channel: *channel, From: f, Durable: *durable}, !*noReconnect)
		}
	},
}

// logTail follows the log of one channel. After a reconnect it resumes
// after the last event it printed (or, with --durable, after the last one it
// acknowledged, which the daemon keeps), so a daemon restart loses nothing.
func logTail(ctx context.Context, e *env, sp api.SubscribeParams, reconnect bool) error {
	var out *streamTable
	var last uint64 // the seq of the last event printed
	f := &follower{e: e, reconnect: reconnect}
	f.subscribe = func(ctx context.Context, c *client.Client, resumed bool) (*client.Subscription, error) {
		sctx, cancel := e.callCtx(ctx)
		defer cancel()
		p := sp
		switch {
		case resumed && p.Durable == "" && last > 0:
			p.From = api.FromSeq(last)
		case p.From.IsZero():
			// "now" as a position in the log, so the subscription is
			// log-backed (no drops) rather than a live one; an empty log
			// starts at 0.
			var st api.LogStats
			if err := c.Call(sctx, api.MethodLogStats, nil, &st); err != nil {
				return nil, err
			}
			p.From = api.FromSeq(st.Head)
			if st.Head == 0 {
				p.From = api.FromStart
			}
			sp.From = p.From // a resume before any event goes on from here
		}
		sub, err := c.Subscribe(sctx, p)
		if err != nil {
			return nil, err
		}
		if resumed {
			fmt.Fprintf(e.stderr, "following channel %s again after seq %d\n", sp.Channel, sub.Cursor())
			return sub, nil
		}
		fmt.Fprintf(e.stderr, "following channel %s (%s) after seq %d at %s; Ctrl-C to stop\n", sp.Channel, sp.Pattern, sub.Cursor(), e.socketPath())
		if !e.jsonOut() {
			if out, err = newStreamTable(e.stdout, logColumns, logMinWidths); err != nil {
				return nil, err
			}
		}
		return sub, nil
	}
	f.handle = func(ctx context.Context, c *client.Client, sub *client.Subscription, ev api.Event) error {
		if ev.Seq == 0 || ev.Seq <= last {
			return nil // a local event on the same pattern (not in the log), or one already printed
		}
		if e.jsonOut() {
			if err := printJSON(e.stdout, &ev, true); err != nil {
				return err
			}
		} else if err := out.row(logRow(&ev)); err != nil {
			return err
		}
		last = ev.Seq
		if sp.Durable != "" {
			actx, cancel := e.callCtx(ctx)
			err := c.Ack(actx, sp.Durable, ev.Seq)
			cancel()
			if err != nil && ctx.Err() == nil {
				if errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
					return err // reconnect; the daemon resends from the last ack
				}
				return fmt.Errorf("ack seq %d on %s: %w", ev.Seq, sp.Durable, err)
			}
		}
		if lag := sub.Lagged(); lag.Client > 0 {
			// The daemon never drops from a log-backed subscription, so only
			// this process could have; say so rather than look complete.
			return api.Errorf(api.CodeResourceExhausted, "this terminal fell %d events behind; rerun with --from %d", lag.Client, ev.Seq)
		}
		return nil
	}
	return f.run(ctx)
}

// The columns of a logged event, in log tail and log replay.
var (
	logColumns   = []string{"SEQ", "LAMPORT", "TIME", "CLASS", "SENDER", "PAYLOAD"}
	logMinWidths = []int{4, 7, 12, 14, 24}
)

func logRow(ev *api.Event) []string {
	return []string{strconv.FormatUint(ev.Seq, 10), strconv.FormatUint(ev.Lamport, 10), clock(ev.TS), ev.Class, orDash(ev.Sender), compactJSON(ev.Payload)}
}

var logReplayCommand = &command{
	name:    "replay",
	summary: "page through a channel's transcript in (lamport, id) order",
	help: `Calls events/replay: a page of --channel's events in transcript order
(lamport, then id), as a table of seq, lamport, time, class, sender, id and
payload. Without --after or --before it is the first page; --before end is the
newest page. When there is more, stderr says which flag gives the next page
(the cursor is opaque). --all follows the pages to the end. --json prints
{events, next}.`,
	example: `continuum log replay --channel general
continuum log replay --channel general --before end --limit 20
continuum log replay --channel general --all --json | jq '.events | length'`,
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		channel := fs.String("channel", "", "channel to page (required)")
		after := fs.String("after", "", "cursor: the page after it (from a previous page)")
		before := fs.String("before", "", "cursor: the page before it; end for the newest page")
		limit := fs.Int("limit", 0, "events per page, 1 to 500 (default 100)")
		all := fs.Bool("all", false, "follow the pages to the end of the channel")
		return func(ctx context.Context, e *env, _ []string) error {
			switch {
			case *channel == "":
				return usagef("log replay", "--channel is required (continuum log stats lists the channels)")
			case *after != "" && *before != "":
				return usagef("log replay", "pass --after or --before, not both")
			case *limit < 0 || *limit > 500:
				return usagef("log replay", "--limit %d: want 1 to 500", *limit)
			}
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				p := api.ReplayParams{Channel: *channel, Limit: *limit}
				if *after != "" {
					p.After = after
				}
				if *before != "" {
					p.Before = before
				}
				var out api.ReplayResult
				for {
					res, err := c.Replay(ctx, p)
					if err != nil {
						return err
					}
					if *before != "" {
						out.Events = append(res.Events, out.Events...)
					} else {
						out.Events = append(out.Events, res.Events...)
					}
					out.Next = res.Next
					if !*all || res.Next == nil {
						break
					}
					if *before != "" {
						p.Before = res.Next
					} else {
						p.After = res.Next
					}
				}
				if out.Events == nil {
					out.Events = []api.Event{}
				}
				if e.jsonOut() {
					return printJSON(e.stdout, out, false)
				}
				rows := make([][]string, 0, len(out.Events))
				for _, ev := range out.Events {
					rows = append(rows, []string{strconv.FormatUint(ev.Seq, 10), strconv.FormatUint(ev.Lamport, 10), clock(ev.TS),
						ev.Class, orDash(ev.Sender), ev.ID, compactJSON(ev.Payload)})
				}
				if err := table(e.stdout, []string{"SEQ", "LAMPORT", "TIME", "CLASS", "SENDER", "ID", "PAYLOAD"}, rows); err != nil {
					return err
				}
				if out.Next != nil {
					dir := "--after"
					if *before != "" {
						dir = "--before"
					}
					fmt.Fprintf(e.stderr, "more: continuum log replay --channel %s %s %s\n", *channel, dir, *out.Next)
				}
				return nil
			})
		}
	},
}

var logCompactCommand = &command{
	name:    "compact",
	summary: "rewrite the state file without its free pages (offline: stop continuumd first)",
	help: `Copies the daemon's bbolt file (continuum.db in --state-dir) into a new file
without the free pages that deleted events (retention) left behind, fsyncs it,
and puts it in place of the old one in one rename. Every event, cursor, class
and key is kept. It works on the file directly, not through the daemon, so it
refuses while a continuumd holds the file: stop the daemon, compact, start it
again. The file is locked for the whole run, so a daemon started meanwhile
waits and then reports the state dir in use.

Compaction does not always shrink the file: a small file with little free
space can come out a step larger (bbolt allocates a fresh file in steps, 32
KiB then 64 KiB, …), and the command then says so. It pays off once
retention has deleted many events.`,
	example: "continuum log compact\ncontinuum log compact --state-dir ~/.local/state/continuum --json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		stateDir := fs.String("state-dir", paths.StateDir(), "the daemon's state folder")
		return func(ctx context.Context, e *env, _ []string) error {
			res, err := airc.Compact(filepath.Join(*stateDir, paths.StateFile))
			if err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, res, false)
			}
			if res.Kept {
				// bbolt grows a fresh file in steps (32 KiB, 64 KiB, …), so
				// a copy of a small file with little free space would come
				// out larger: airc.Compact keeps the original then.
				fmt.Fprintf(e.stdout, "kept %s as it was (%d bytes): a compacted copy would not be smaller\n", res.Path, res.Before)
				fmt.Fprintf(e.stderr, "note: the file has little free space to give back; compaction pays off after retention deleted many events (continuum log stats: file bytes against event bytes)\n")
				return nil
			}
			fmt.Fprintf(e.stdout, "compacted %s: %d → %d bytes\n", res.Path, res.Before, res.After)
			return nil
		}
	},
}

// compactResult is what log compact did, for --json.
type compactResult = airc.CompactResult
