package chat_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
)

func startDaemon(t *testing.T, dir string) *daemon.Daemon {
	t.Helper()
	d, err := daemon.Start(daemon.Config{Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")}, Socket: filepath.Join(dir, "d.sock")})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := d.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return d
}

func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func dial(t *testing.T, d *daemon.Daemon) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, d.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, c *client.Client, p api.ChatSendParams) api.EmitResult {
	t.Helper()
	var r api.EmitResult
	if err := c.Call(ctxT(t), api.MethodChatSend, p, &r); err != nil {
		t.Fatalf("chat/send %+v: %v", p, err)
	}
	return r
}

func history(t *testing.T, c *client.Client, p api.ChatHistoryParams) api.ChatHistoryResult {
	t.Helper()
	var r api.ChatHistoryResult
	if err := c.Call(ctxT(t), api.MethodChatHistory, p, &r); err != nil {
		t.Fatalf("chat/history %+v: %v", p, err)
	}
	return r
}

func texts(ms []api.ChatEntry) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Text)
	}
	return strings.Join(s, ",")
}

// The daemon declares chat:posted with the contract the README tour
// declares by hand, so the tour's declaration is a no-op.
func TestClassDeclaredAtStartMatchesTheTour(t *testing.T) {
	d := startDaemon(t, shortDir(t))
	c := dial(t, d)
	ctx := ctxT(t)
	got, err := c.GetClass(ctx, api.EventChatPosted)
	if err != nil || got == nil {
		t.Fatalf("chat:posted not declared at start: %v %v", got, err)
	}
	if !got.Broadcast || got.Channel != api.ChannelByRoomID || got.SchemaVersion != "v1" || got.OnUnknownSchema != api.SchemaFail {
		t.Errorf("chat:posted is %+v", got)
	}
	// What `continuum events declare chat:posted --schema-version v1
	// --broadcast --channel byRoomId` sends.
	if _, err := c.DeclareClass(ctx, api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID}); err != nil {
		t.Errorf("the tour's declaration conflicts: %v", err)
	}
	if _, err := c.DeclareClass(ctx, api.ClassConfig{Name: "chat:posted", SchemaVersion: "v2", Broadcast: true, Channel: api.ChannelByRoomID}); api.CodeOf(err) != api.CodeConflictingRedeclaration {
		t.Errorf("another contract: want conflicting_redeclaration, got %v", err)
	}
}

func TestSendAndHistory(t *testing.T) {
	d := startDaemon(t, shortDir(t))
	alice, bob := dial(t, d), dial(t, d)
	ctx := ctxT(t)

	first := send(t, alice, api.ChatSendParams{RoomID: "general", Text: "hello"})
	if first.ID == "" || first.Seq == 0 || first.Lamport == 0 || first.Channel != "general" || !first.Declared {
		t.Fatalf("send result: %+v", first)
	}
	send(t, bob, api.ChatSendParams{RoomID: "general", Text: "hi alice", ReplyTo: first.ID, Mentions: []string{"alice"}})
	send(t, alice, api.ChatSendParams{RoomID: "random", Text: "elsewhere"})
	// Another class on the room's channel is not a message.
	if _, err := alice.DeclareClass(ctx, api.ClassConfig{Name: "chat:typing", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Emit(ctx, api.EmitParams{Name: "chat:typing", Payload: map[string]any{"roomId": "general"}}); err != nil {
		t.Fatal(err)
	}
	// A chat:posted emitted by hand with a wrongly typed text still reads.
	if _, err := alice.Emit(ctx, api.EmitParams{Name: "chat:posted", Payload: map[string]any{"roomId": "general", "text": 7}}); err != nil {
		t.Fatal(err)
	}
	send(t, bob, api.ChatSendParams{RoomID: "general", Text: "third"})

	h := history(t, bob, api.ChatHistoryParams{RoomID: "general"})
	if got := texts(h.Messages); got != "hello,hi alice,,third" {
		t.Fatalf("history: %q (%+v)", got, h.Messages)
	}
	if h.Next != nil {
		t.Errorf("one page holds the room, yet next = %q", *h.Next)
	}
	var info api.InfoResult
	if err := alice.Call(ctx, api.MethodKernelInfo, nil, &info); err != nil {
		t.Fatal(err)
	}
	m0, m1 := h.Messages[0], h.Messages[1]
	if m0.ID != first.ID || m0.Seq != first.Seq || m0.Lamport != first.Lamport || m0.TS == 0 || m0.Origin != info.PeerID || !strings.Contains(m0.Sender, "/c") {
		t.Errorf("first message: %+v (sent %+v)", m0, first)
	}
	if m1.Sender == m0.Sender || m1.ReplyTo != first.ID || len(m1.Mentions) != 1 || m1.Mentions[0] != "alice" {
		t.Errorf("bob's reply: %+v", m1)
	}
	if h.Cursor < first.Seq+4 {
		t.Errorf("cursor %d is below the room's last seq", h.Cursor)
	}

	// Paging back: two pages of two, then the start.
	p1 := history(t, bob, api.ChatHistoryParams{RoomID: "general", Limit: 2})
	if p1.Next == nil {
		t.Fatalf("a page of 2 out of 5 events has no next: %+v", p1)
	}
	var all []api.ChatEntry
	all = append(all, p1.Messages...)
	for cur := p1.Next; cur != nil; {
		p := history(t, bob, api.ChatHistoryParams{RoomID: "general", Limit: 2, Before: cur})
		all = append(p.Messages, all...)
		cur = p.Next
	}
	if got := texts(all); got != "hello,hi alice,,third" {
		t.Errorf("paged history: %q", got)
	}
	if h := history(t, bob, api.ChatHistoryParams{RoomID: "nobody-here"}); len(h.Messages) != 0 || h.Next != nil {
		t.Errorf("an empty room: %+v", h)
	}
}

// A client that opens with the history and subscribes from its cursor sees
// every later message once, even one posted between the two calls.
func TestHistoryCursorLeavesNoGap(t *testing.T) {
	d := startDaemon(t, shortDir(t))
	reader, writer := dial(t, d), dial(t, d)
	ctx := ctxT(t)
	send(t, writer, api.ChatSendParams{RoomID: "general", Text: "before"})
	h := history(t, reader, api.ChatHistoryParams{RoomID: "general"})
	send(t, writer, api.ChatSendParams{RoomID: "general", Text: "between"})
	from := api.FromSeq(h.Cursor)
	sub, err := reader.Subscribe(ctx, api.SubscribeParams{Pattern: api.EventChatPosted, Channel: "general", From: from})
	if err != nil {
		t.Fatal(err)
	}
	send(t, writer, api.ChatSendParams{RoomID: "general", Text: "after"})
	for _, want := range []string{"between", "after"} {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e := api.ChatEntryOf(ev); e.Text != want {
			t.Fatalf("live message: %q, want %q", e.Text, want)
		}
	}
}

func TestBadInput(t *testing.T) {
	d := startDaemon(t, shortDir(t))
	c := dial(t, d)
	ctx := ctxT(t)
	send(t, c, api.ChatSendParams{RoomID: "general", Text: "ok"})
	var st api.LogStats
	if err := c.Call(ctx, api.MethodLogStats, nil, &st); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", api.MaxChatTextLen+1)
	many := make([]string, api.MaxChatMentions+1)
	for i := range many {
		many[i] = "p"
	}
	cases := []struct {
		name   string
		method string
		params any
		want   string // in the message
	}{
		{"send: no params", api.MethodChatSend, nil, "roomId"},
		{"send: missing text", api.MethodChatSend, map[string]any{"roomId": "general"}, "text"},
		{"send: missing room", api.MethodChatSend, map[string]any{"text": "hi"}, "roomId"},
		{"send: numeric room", api.MethodChatSend, map[string]any{"roomId": 5, "text": "hi"}, "roomId"},
		{"send: text a list", api.MethodChatSend, map[string]any{"roomId": "general", "text": []int{1}}, "text"},
		{"send: mentions a string", api.MethodChatSend, map[string]any{"roomId": "general", "text": "hi", "mentions": "bob"}, "mentions"},
		{"send: blank room", api.MethodChatSend, map[string]any{"roomId": "  ", "text": "hi"}, "roomId"},
		{"send: room with a newline", api.MethodChatSend, map[string]any{"roomId": "gen\neral", "text": "hi"}, "roomId"},
		{"send: oversized room", api.MethodChatSend, map[string]any{"roomId": strings.Repeat("r", api.MaxChannelLen+1), "text": "hi"}, "roomId"},
		{"send: blank text", api.MethodChatSend, map[string]any{"roomId": "general", "text": " \n\t"}, "text"},
		{"send: oversized text", api.MethodChatSend, map[string]any{"roomId": "general", "text": big}, "16384"},
		{"send: too many mentions", api.MethodChatSend, map[string]any{"roomId": "general", "text": "hi", "mentions": many}, "mentions"},
		{"send: an empty mention", api.MethodChatSend, map[string]any{"roomId": "general", "text": "hi", "mentions": []string{""}}, "mentions[0]"},
		{"send: oversized replyTo", api.MethodChatSend, map[string]any{"roomId": "general", "text": "hi", "replyTo": strings.Repeat("i", api.MaxEventIDLen+1)}, "replyTo"},
		{"history: no params", api.MethodChatHistory, nil, "roomId"},
		{"history: numeric room", api.MethodChatHistory, map[string]any{"roomId": 5}, "roomId"},
		{"history: blank room", api.MethodChatHistory, map[string]any{"roomId": ""}, "roomId"},
		{"history: limit a string", api.MethodChatHistory, map[string]any{"roomId": "general", "limit": "ten"}, "limit"},
		{"history: negative limit", api.MethodChatHistory, map[string]any{"roomId": "general", "limit": -1}, "limit"},
		{"history: limit too big", api.MethodChatHistory, map[string]any{"roomId": "general", "limit": api.MaxChatHistory + 1}, "limit"},
		{"history: blank cursor", api.MethodChatHistory, map[string]any{"roomId": "general", "before": ""}, "before"},
		{"history: cursor a number", api.MethodChatHistory, map[string]any{"roomId": "general", "before": 3}, "before"},
		{"history: oversized cursor", api.MethodChatHistory, map[string]any{"roomId": "general", "before": strings.Repeat("c", 2000)}, "before"},
		{"history: made-up cursor", api.MethodChatHistory, map[string]any{"roomId": "general", "before": "not-a-cursor"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctx, tc.method, tc.params, nil)
			if api.CodeOf(err) != api.CodeInvalidArgument || !errors.Is(err, &api.Error{Code: api.CodeInvalidArgument}) {
				t.Fatalf("want invalid_argument, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error does not name %q: %v", tc.want, err)
			}
		})
	}
	var after api.LogStats
	if err := c.Call(ctx, api.MethodLogStats, nil, &after); err != nil {
		t.Fatal(err)
	}
	if after.Head != st.Head {
		t.Errorf("refused sends wrote to the log: head %d → %d", st.Head, after.Head)
	}
	// The daemon still serves the same connection.
	if h := history(t, c, api.ChatHistoryParams{RoomID: "general"}); texts(h.Messages) != "ok" {
		t.Errorf("history after bad input: %+v", h)
	}
}

// Clients that vanish with calls in flight leave the daemon serving the
// others, and every message acknowledged to anyone is in the transcript.
func TestClientVanishesMidCall(t *testing.T) {
	d := startDaemon(t, shortDir(t))
	steady := dial(t, d)
	for round := 0; round < 5; round++ {
		gone := dial(t, d)
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_ = gone.Call(context.Background(), api.MethodChatSend, api.ChatSendParams{RoomID: "general", Text: "from a ghost"}, nil)
			}()
			go func() {
				defer wg.Done()
				_ = gone.Call(context.Background(), api.MethodChatHistory, api.ChatHistoryParams{RoomID: "general", Limit: 500}, nil)
			}()
		}
		time.Sleep(time.Millisecond)
		gone.Close()
		wg.Wait()
	}
	r := send(t, steady, api.ChatSendParams{RoomID: "general", Text: "still here"})
	var all []api.ChatEntry
	for cur := (*string)(nil); ; {
		h := history(t, steady, api.ChatHistoryParams{RoomID: "general", Limit: 500, Before: cur})
		all = append(h.Messages, all...)
		if cur = h.Next; cur == nil {
			break
		}
	}
	// A ghost's send that the daemon had read before the close may still
	// commit after the steady one: the steady message need not be last,
	// only there, once, among ghosts.
	found := 0
	for _, m := range all {
		switch {
		case m.ID == r.ID:
			found++
		case m.Text != "from a ghost":
			t.Errorf("unexpected message %+v", m)
		}
	}
	if found != 1 {
		t.Fatalf("the steady client's message is in the transcript %d times among %d messages", found, len(all))
	}
}

// The transcript is the log's: it outlives the daemon.
func TestHistorySurvivesRestart(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, dir)
	c := dial(t, d)
	send(t, c, api.ChatSendParams{RoomID: "general", Text: "remember me"})
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, dir)
	if h := history(t, dial(t, d2), api.ChatHistoryParams{RoomID: "general"}); texts(h.Messages) != "remember me" {
		t.Errorf("after restart: %+v", h.Messages)
	}
}

// A state dir that already holds chat:posted under another contract (from
// before the daemon declared it) still starts: the old class is kept, and
// chat/send posts under it instead of failing the daemon.
func TestOlderConflictingClassKeepsTheDaemonUp(t *testing.T) {
	dir := shortDir(t)
	k, err := kernel.Open(kernel.Config{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	c0, err := client.NewInProcess(k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c0.DeclareClass(ctxT(t), api.ClassConfig{Name: "chat:posted", SchemaVersion: "v0", Broadcast: true, Channel: api.ChannelByRoomID}); err != nil {
		t.Fatal(err)
	}
	c0.Close()
	if err := k.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, dir)
	c := dial(t, d)
	r := send(t, c, api.ChatSendParams{RoomID: "general", Text: "still works"})
	h := history(t, c, api.ChatHistoryParams{RoomID: "general"})
	if texts(h.Messages) != "still works" || h.Messages[0].ID != r.ID {
		t.Errorf("history under the older class: %+v", h.Messages)
	}
	if cl, err := c.GetClass(ctxT(t), api.EventChatPosted); err != nil || cl == nil || cl.SchemaVersion != "v0" {
		t.Errorf("the older class was not kept: %+v %v", cl, err)
	}
}
