package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// An emit says whether its class is declared, and a strict emit refuses an
// undeclared class: a typo'd class name must not vanish silently.
func TestEmitDeclaredAndStrict(t *testing.T) {
	for _, transport := range []string{"socket", "inproc"} {
		t.Run(transport, func(t *testing.T) {
			d := start(t)
			connect := dial
			if transport == "inproc" {
				connect = inproc
			}
			ctx := ctxT(t)
			c, watcher := connect(t, d), connect(t, d)
			for _, cfg := range []api.ClassConfig{
				{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID},
				{Name: "ui:clicked", SchemaVersion: "v1"},
			} {
				if _, err := c.DeclareClass(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			sub, err := watcher.Subscribe(ctx, api.SubscribeParams{Pattern: "*"})
			if err != nil {
				t.Fatal(err)
			}

			for _, p := range []api.EmitParams{
				{Name: "chat:posted", Payload: map[string]any{"roomId": "general"}},
				{Name: "chat:posted", Payload: map[string]any{"roomId": "general"}, Strict: true},
				{Name: "ui:clicked", Strict: true},
			} {
				res, err := c.Emit(ctx, p)
				if err != nil || !res.Declared {
					t.Fatalf("declared class %+v: %+v, %v", p, res, err)
				}
			}
			res, err := c.Emit(ctx, api.EmitParams{Name: "chat:postd", Payload: map[string]any{"roomId": "general"}})
			if err != nil || res.Declared || res.Channel != "" || res.Seq != 0 {
				t.Fatalf("undeclared class: %+v, %v", res, err)
			}
			_, err = c.Emit(ctx, api.EmitParams{Name: "chat:postd", ID: "strict-1", Payload: map[string]any{"roomId": "general"}, Strict: true})
			wantCode(t, err, api.CodeUndeclaredClass)

			// What reached the watcher: the three declared emits and the
			// lax undeclared one, never the refused strict one.
			var got []string
			for range 4 {
				ev, err := sub.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.Class)
				if ev.ID == "strict-1" {
					t.Fatalf("the refused strict emit was delivered: %+v", ev)
				}
			}
			if got[3] != "chat:postd" {
				t.Fatalf("delivered %v", got)
			}
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if ev, err := sub.Next(short); err == nil {
				t.Fatalf("an extra event was delivered: %+v", ev)
			}
		})
	}
}

// A wrong type for strict is invalid_argument, and the daemon keeps serving.
func TestEmitStrictWrongType(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	ctx := ctxT(t)
	err := c.Call(ctx, api.MethodEmit, map[string]any{"name": "a:b", "strict": "yes"}, nil)
	wantCode(t, err, api.CodeInvalidArgument)
	var res api.EmitResult
	if err := c.Call(ctx, api.MethodEmit, map[string]any{"name": "a:b", "strict": nil}, &res); err != nil || res.Declared {
		t.Fatalf("strict nil: %+v %v", res, err)
	}
}
