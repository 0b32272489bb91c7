package daemon_test

// Issue 18's hostile-input defects, end to end: a name the store cannot hold
// is refused at the door (and never stops anyone else's emits), and a
// durable cursor is readable between an ack and its commit.

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// One client acking under a 40,000-byte durable name (bbolt refuses keys
// over 32 KiB) used to fail every later group commit for every client.
func TestHugeDurableNameIsRefusedAndOthersKeepEmitting(t *testing.T) {
	d := start(t)
	bad, good := dial(t, d), dial(t, d)
	declare(t, good, api.ClassConfig{Name: "chat:posted", Broadcast: true, Channel: api.ChannelByRoomID})
	first := mustEmit(t, good, api.EmitParams{Name: "chat:posted", Payload: map[string]any{"roomId": "general"}})

	huge := strings.Repeat("d", 40000)
	err := bad.Ack(ctxT(t), huge, first.Seq)
	wantCode(t, err, api.CodeInvalidArgument)
	if !strings.Contains(err.Error(), "over the limit of 256 bytes") {
		t.Fatalf("the error does not name the limit: %v", err)
	}
	if len(err.Error()) > 1000 {
		t.Fatalf("the error quotes the name back (%d bytes)", len(err.Error()))
	}
	_, err = bad.Subscribe(ctxT(t), api.SubscribeParams{Pattern: "chat:*", Durable: huge})
	wantCode(t, err, api.CodeInvalidArgument)

	for i := 0; i < 20; i++ {
		mustEmit(t, good, api.EmitParams{Name: "chat:posted", Payload: map[string]any{"roomId": "general", "n": i}})
	}
	// The refused client is still served too.
	if err := bad.Ack(ctxT(t), "fine", first.Seq); err != nil {
		t.Fatal(err)
	}
	mustEmit(t, bad, api.EmitParams{Name: "chat:posted", Payload: map[string]any{"roomId": "general"}})
}

// Resubscribing under a durable name right after an ack must resume after
// the acked seq, never at the head: 200 rounds with emits going on.
func TestAckThenResubscribeNeverSkips(t *testing.T) {
	d := start(t)
	c := dialBig(t, d)
	declare(t, c, api.ClassConfig{Name: "job:queued", Broadcast: true, Channel: api.ChannelGlobal})
	for i := 0; i < 5; i++ {
		mustEmit(t, c, api.EmitParams{Name: "job:queued"})
	}

	// Background broadcast load keeps the commit goroutine busy, so acks
	// wait for, and ride in, commits of other events.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var emitted atomic.Int64
	for w := 0; w < 2; w++ {
		e := dial(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := e.Emit(ctx, api.EmitParams{Name: "job:queued"})
				cancel()
				if err != nil {
					t.Errorf("background emit: %v", err)
					return
				}
				emitted.Add(1)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	w := dialBig(t, d)
	ctx := ctxT(t)
	sub, err := w.Subscribe(ctx, api.SubscribeParams{Pattern: "job:*", Durable: "worker", From: api.FromStart})
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 200; round++ {
		ev := collect(t, sub, 1)[0]
		if round > 0 && ev.Seq != sub.Cursor()+1 {
			t.Fatalf("round %d: resumed after %d but the first event delivered is seq %d", round, sub.Cursor(), ev.Seq)
		}
		if err := w.Ack(ctx, "worker", ev.Seq); err != nil {
			t.Fatal(err)
		}
		if err := sub.Close(ctx); err != nil {
			t.Fatal(err)
		}
		sub, err = w.Subscribe(ctx, api.SubscribeParams{Pattern: "job:*", Durable: "worker"})
		if err != nil {
			t.Fatal(err)
		}
		if sub.Cursor() != ev.Seq {
			t.Fatalf("round %d: acked seq %d, resubscribed after %d (head moved on: %d background emits)", round, ev.Seq, sub.Cursor(), emitted.Load())
		}
	}
	if emitted.Load() == 0 {
		t.Fatal("no background emits ran: the test did not test the race")
	}
}

// The one set of name limits (api/names.go), on every method that takes a
// name: one byte over the limit and a control character are invalid_argument
// (never unavailable, never accepted and failing later); at the limit works.
func TestNameLimitsOnEveryMethod(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	over := func(n int) string { return strings.Repeat("a", n+1) }
	class := func(n int) string { return "x:" + strings.Repeat("c", n-2) } // n bytes, a valid class name
	declare(t, c, api.ClassConfig{Name: "room:said", Broadcast: true, Channel: api.ChannelByRoomID})
	declare(t, c, api.ClassConfig{Name: "room:custom", Broadcast: true, Channel: api.ChannelCustom})

	type call struct {
		name   string
		method string
		params any
	}
	emit := func(p api.EmitParams) any { return p }
	bad := []call{
		{"declare 40 KB name", api.MethodDeclareClass, api.ClassConfig{Name: over(40000), SchemaVersion: "v1"}},
		{"declare broadcast 308-byte name", api.MethodDeclareClass, api.ClassConfig{Name: class(308), SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelGlobal}},
		{"declare control char", api.MethodDeclareClass, api.ClassConfig{Name: "a:b\x01", SchemaVersion: "v1"}},
		{"declare long schemaVersion", api.MethodDeclareClass, api.ClassConfig{Name: "a:b", SchemaVersion: over(api.MaxSchemaVersionLen)}},
		{"get-class", api.MethodGetClass, api.NameParams{Name: over(api.MaxClassNameLen)}},
		{"resolve-channel name", api.MethodResolveChannel, api.ResolveChannelParams{Name: over(api.MaxClassNameLen)}},
		{"resolve-channel channel", api.MethodResolveChannel, api.ResolveChannelParams{Name: "room:custom", Channel: over(api.MaxChannelLen)}},
		{"emit name", api.MethodEmit, emit(api.EmitParams{Name: over(api.MaxClassNameLen)})},
		{"emit id", api.MethodEmit, emit(api.EmitParams{Name: "room:said", ID: over(api.MaxEventIDLen), Payload: map[string]any{"roomId": "r"}})},
		{"emit id on a local class", api.MethodEmit, emit(api.EmitParams{Name: "local:thing", ID: over(api.MaxEventIDLen)})},
		{"emit custom channel", api.MethodEmit, emit(api.EmitParams{Name: "room:custom", Channel: over(api.MaxChannelLen)})},
		{"emit roomId channel", api.MethodEmit, emit(api.EmitParams{Name: "room:said", Payload: map[string]any{"roomId": over(api.MaxChannelLen)}})},
		{"emit schemaVersion", api.MethodEmit, emit(api.EmitParams{Name: "room:said", SchemaVersion: over(api.MaxSchemaVersionLen), Payload: map[string]any{"roomId": "r"}})},
		{"subscribe pattern", api.MethodSubscribe, api.SubscribeParams{Pattern: over(api.MaxClassNameLen)}},
		{"subscribe channel", api.MethodSubscribe, api.SubscribeParams{Pattern: "*", Channel: over(api.MaxChannelLen)}},
		{"subscribe durable", api.MethodSubscribe, api.SubscribeParams{Pattern: "*", Durable: over(api.MaxDurableLen)}},
		{"subscribe durable control char", api.MethodSubscribe, api.SubscribeParams{Pattern: "*", Durable: "a\nb"}},
		{"ack durable", api.MethodAck, api.AckParams{Durable: over(api.MaxDurableLen)}},
		{"replay channel", api.MethodReplay, api.ReplayParams{Channel: over(api.MaxChannelLen)}},
		{"register", api.MethodRegister, api.RegisterParams{Name: "demo/" + over(api.MaxCommandNameLen)}},
		{"execute", api.MethodExecute, api.ExecuteParams{Command: "demo/" + over(api.MaxCommandNameLen)}},
		{"inference/load name", api.MethodInferenceLoad, api.LoadModelParams{Path: "/nonexistent.gguf", Name: over(api.MaxModelNameLen)}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctxT(t), tc.method, tc.params, nil)
			wantCode(t, err, api.CodeInvalidArgument)
			if len(err.Error()) > 2000 {
				t.Fatalf("the error quotes the oversized name back (%d bytes)", len(err.Error()))
			}
		})
	}
	// At the limits everything works, and a broadcast class at the longest
	// name can be emitted (the log's limits are the same set).
	longClass := class(api.MaxClassNameLen)
	declare(t, c, api.ClassConfig{Name: longClass, Broadcast: true, Channel: api.ChannelCustom})
	res := mustEmit(t, c, api.EmitParams{Name: longClass, ID: strings.Repeat("i", api.MaxEventIDLen), Channel: strings.Repeat("h", api.MaxChannelLen)})
	if err := c.Ack(ctxT(t), strings.Repeat("d", api.MaxDurableLen), res.Seq); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctxT(t), api.SubscribeParams{Pattern: longClass, Durable: strings.Repeat("d", api.MaxDurableLen)})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Cursor() != res.Seq {
		t.Fatalf("cursor %d, want %d", sub.Cursor(), res.Seq)
	}
	var page api.ReplayResult
	if err := c.Call(ctxT(t), api.MethodReplay, api.ReplayParams{Channel: strings.Repeat("h", api.MaxChannelLen)}, &page); err != nil || len(page.Events) != 1 {
		t.Fatalf("replay at the channel limit: %v, %d events", err, len(page.Events))
	}
}
