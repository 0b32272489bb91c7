package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

// chatCommand is `continuum chat ROOM`, a top-level command (topGroup).
var chatCommand = &command{
	name:    "chat",
	args:    "ROOM",
	summary: "chat in a room: its history, then live messages and a line to type",
	help: `Opens ROOM (any channel name: general, team-a, ...): prints the room's last
messages (chat/history), then every new one as it is posted, and sends each
line typed as a message (chat/send). Each line shows the time, who said it and
the text: the sender is the posting program as name:pid, "you" for this
session, and personas are marked [persona]. A reply says which message it
answers.

/quit or Ctrl-D (end of input) leaves; so does Ctrl-C. Blank lines are not
sent. Lines read from a pipe are sent the same way, so a script can post:
  echo hello | continuum chat general
--send TEXT posts one message and exits without reading input; --json prints
each message as a JSON object per line (the chat/history entry).

Nothing is missed between the history and the live part: the live part is a
subscription to the log from the point the history was read. When continuumd
stops or restarts, the session says so, waits for it to come back and goes on
after the last message shown, so what was posted meanwhile still shows; a
line typed while it is away is not sent (it says so). --no-reconnect exits
with status 1 instead.`,
	example: `continuum chat general
continuum chat general --send "hello, room"
continuum chat general --history 200 --json < /dev/null`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		limit := fs.Int("history", 50, "how many past messages to show on open (0 for none, at most 500)")
		send := fs.String("send", "", "post this one message and exit")
		replyTo := fs.String("reply-to", "", "with --send: the id of the message answered")
		noReconnect := fs.Bool("no-reconnect", false, "exit with unavailable when the connection to continuumd goes, instead of waiting for it to come back")
		return func(ctx context.Context, e *env, args []string) error {
			room := args[0]
			if err := api.CheckName("ROOM", room, api.MaxChannelLen); err != nil || strings.TrimSpace(room) == "" {
				return usagef("chat", "ROOM %q is not a room name: at most %d bytes, no control characters, not blank", room, api.MaxChannelLen)
			}
			if *limit < 0 || *limit > api.MaxChatHistory {
				return usagef("chat", "--history %d is outside 0..%d", *limit, api.MaxChatHistory)
			}
			if fs.Changed("send") {
				return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
					var r api.EmitResult
					if err := c.Call(ctx, api.MethodChatSend, api.ChatSendParams{RoomID: room, Text: *send, ReplyTo: *replyTo}, &r); err != nil {
						return err
					}
					if e.jsonOut() {
						return printJSON(e.stdout, r, true)
					}
					_, err := fmt.Fprintf(e.stdout, "sent %s to %s (seq %d)\n", r.ID, room, r.Seq)
					return err
				})
			}
			if *replyTo != "" {
				return usagef("chat", "--reply-to goes with --send")
			}
			return chatSession(ctx, e, room, *limit, !*noReconnect)
		}
	},
}

// chatView prints messages for one session: one writer at a time (live
// messages and errors come from two goroutines), each message once.
type chatView struct {
	e    *env
	room string

	mu sync.Mutex
	// seen holds the ids printed from the history, so that a message in
	// both the history and the live part prints once. Live messages come in
	// seq order, so once one is past the history's last seq no repeat can
	// follow and seen is dropped: a session left open for days stays small.
	seen    map[string]bool
	histMax uint64            // the highest seq in the history
	mine    map[string]bool   // ids this session sent, to learn its own sender id
	me      string            // this session's sender id, once known
	short   map[string]string // message id → its line's label, for replies
}

// maxReplyLabels bounds the messages a reply can name by sender.
const maxReplyLabels = 4096

func newChatView(e *env, room string) *chatView {
	return &chatView{e: e, room: room, seen: map[string]bool{}, mine: map[string]bool{}, short: map[string]string{}}
}

// sent records the id of a message this session posted.
func (v *chatView) sent(id string) {
	v.mu.Lock()
	v.mine[id] = true
	v.mu.Unlock()
}

func (v *chatView) show(m api.ChatEntry) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.seen == nil:
	case m.Seq > v.histMax:
		v.seen = nil
	case v.seen[m.ID]:
		return nil
	default:
		v.seen[m.ID] = true
	}
	if v.mine[m.ID] {
		v.me = m.Sender
		delete(v.mine, m.ID)
	}
	if len(v.short) >= maxReplyLabels {
		v.short = map[string]string{} // replies to older messages show the id instead
	}
	if v.e.jsonOut() {
		return printJSON(v.e.stdout, m, true)
	}
	who := senderLabel(m)
	if m.Sender != "" && m.Sender == v.me {
		who = "you"
	}
	v.short[m.ID] = who
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", clock(m.TS), who)
	if m.ReplyTo != "" {
		if to, ok := v.short[m.ReplyTo]; ok {
			fmt.Fprintf(&b, " (to %s)", to)
		} else {
			fmt.Fprintf(&b, " (re %s)", m.ReplyTo)
		}
	}
	b.WriteString(": ")
	// A message may hold several lines: the later ones are indented under
	// the first, so that each still reads as part of it.
	b.WriteString(strings.ReplaceAll(terminalSafe(m.Text), "\n", "\n    "))
	b.WriteByte('\n')
	_, err := io.WriteString(v.e.stdout, b.String())
	return err
}

func (v *chatView) note(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	fmt.Fprintf(v.e.stderr, format+"\n", args...)
}

// senderLabel is how a sender shows in the chat: a persona by its name,
// marked as one (api.ChatEntry.Persona: its signed header on an event it
// signed itself), a client by its id without the connection counter
// (continuum:4242/c6 → continuum:4242, the program and its pid).
func senderLabel(m api.ChatEntry) string {
	if m.Persona != "" {
		return "[persona] " + terminalSafe(m.Persona)
	}
	sender := m.Sender
	if sender == "" {
		return "?"
	}
	if i := strings.LastIndex(sender, "/c"); i > 0 {
		return terminalSafe(sender[:i])
	}
	return terminalSafe(sender)
}

// terminalSafe drops control characters but newline and tab: a message is
// someone else's bytes, and an escape sequence in it must not drive the
// reader's terminal.
func terminalSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || !unicode.IsControl(r) {
			return r
		}
		return -1
	}, s)
}

// chatSession runs the interactive chat until /quit, the end of input, or
// Ctrl-C.
func chatSession(ctx context.Context, e *env, room string, limit int, reconnect bool) error {
	c, err := e.dial(ctx)
	if err != nil {
		return err
	}
	cur := &currentClient{c: c}
	defer cur.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := newChatView(e, room)

	// The history first, then a subscription from the log head read before
	// it: a message posted in between arrives live (and one in both is
	// printed once).
	var h api.ChatHistoryResult
	if limit > 0 {
		hctx, hcancel := e.callCtx(ctx)
		err = c.Call(hctx, api.MethodChatHistory, api.ChatHistoryParams{RoomID: room, Limit: limit}, &h)
		hcancel()
		if err != nil {
			return err
		}
	} else {
		// No history: only the head, so the live part starts now.
		var st api.LogStats
		hctx, hcancel := e.callCtx(ctx)
		err = c.Call(hctx, api.MethodLogStats, nil, &st)
		hcancel()
		if err != nil {
			return err
		}
		h.Cursor = st.Head
	}
	subscribe := func(c *client.Client, after uint64) (*client.Subscription, error) {
		from := api.FromSeq(after)
		if after == 0 {
			from = api.FromStart // an empty log: "after seq 0" would read as "now"
		}
		sctx, scancel := e.callCtx(ctx)
		defer scancel()
		return c.Subscribe(sctx, api.SubscribeParams{Pattern: api.EventChatPosted, Channel: room, From: from})
	}
	sub, err := subscribe(c, h.Cursor)
	if err != nil {
		return err
	}
	if !e.jsonOut() {
		older := ""
		if h.Next != nil {
			older = " (older ones: --history)"
		}
		v.note("chat in %s at %s: %d earlier messages%s; type a line and Enter to send, /quit or Ctrl-D to leave", room, e.socketPath(), len(h.Messages), older)
	}
	for _, m := range h.Messages {
		v.histMax = max(v.histMax, m.Seq)
	}
	for _, m := range h.Messages {
		if err := v.show(m); err != nil {
			return err
		}
	}

	live := make(chan error, 1)
	liveDone := make(chan struct{})
	// Nothing is printed once chatSession returns: the caller (a test, or
	// main printing an error) owns the streams again.
	defer func() {
		cancel()
		<-liveDone
	}()
	go func() {
		defer close(liveDone)
		after := h.Cursor // the last seq followed, where a new subscription resumes
		for {
			ev, err := sub.Next(ctx)
			if err == nil {
				after = max(after, ev.Seq)
				if err := v.show(api.ChatEntryOf(ev)); err != nil {
					live <- err
					return
				}
				continue
			}
			if ctx.Err() != nil || !reconnect || !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
				live <- err
				return
			}
			// The daemon went (a restart): dial until it is back, and
			// follow the room again after the last message shown, so that
			// what was posted meanwhile still shows.
			v.note("lost the connection to continuumd at %s; reconnecting until it is back (Ctrl-C to stop)", e.socketPath())
			for {
				nc := (&follower{e: e}).redial(ctx)
				if nc == nil {
					live <- ctx.Err()
					return
				}
				if sub, err = subscribe(nc, after); err == nil {
					cur.set(nc)
					break
				}
				nc.Close()
			}
			v.note("reconnected")
		}
	}()

	lines := make(chan string)
	inputDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(e.stdin)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		inputDone <- sc.Err()
	}()

	for {
		select {
		case <-ctx.Done():
			return nil // Ctrl-C: the normal way to stop too
		case err := <-live:
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
				return api.Errorf(api.CodeUnavailable, "lost the connection to continuumd (%v)", err)
			}
			return err
		case err := <-inputDone:
			if err != nil {
				return fmt.Errorf("reading input: %w", err)
			}
			return nil // Ctrl-D
		case line := <-lines:
			text := strings.TrimRight(line, "\r")
			switch strings.TrimSpace(text) {
			case "":
				continue
			case "/quit", "/exit":
				return nil
			}
			// The id is chosen here and noted before the send: the message
			// may come back live before the reply does, and must already
			// read as this session's.
			id := newMessageID()
			v.sent(id)
			cctx, ccancel := e.callCtx(ctx)
			err := cur.get().Call(cctx, api.MethodChatSend, api.ChatSendParams{RoomID: room, Text: text, ID: id}, nil)
			ccancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if reconnect && errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
					v.note("not sent: continuumd is away; type it again once reconnected")
					continue
				}
				if ae := api.AsError(err); ae != nil && ae.Code == api.CodeInvalidArgument {
					// The line is refused (too long...): say why, stay.
					v.note("not sent: %s: %s", ae.Code, ae.Message)
					continue
				}
				return err
			}
		}
	}
}

// currentClient is the session's connection, replaced when it reconnects.
type currentClient struct {
	mu sync.Mutex
	c  *client.Client
}

func (cc *currentClient) get() *client.Client {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.c
}

func (cc *currentClient) set(c *client.Client) {
	cc.mu.Lock()
	old := cc.c
	cc.c = c
	cc.mu.Unlock()
	old.Close()
}

func (cc *currentClient) close() { cc.get().Close() }

// newMessageID is a fresh message id: 16 random bytes in hex.
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
