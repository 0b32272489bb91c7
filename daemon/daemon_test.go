package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
)

// shortDir returns a temp dir with a path short enough for a Unix socket.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type testDaemon struct {
	*daemon.Daemon
	dir string
}

func start(t *testing.T, mutate ...func(*daemon.Config)) *testDaemon {
	t.Helper()
	dir := shortDir(t)
	return startIn(t, dir, mutate...)
}

func startIn(t *testing.T, dir string, mutate ...func(*daemon.Config)) *testDaemon {
	t.Helper()
	cfg := daemon.Config{Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")}, Socket: filepath.Join(dir, "d.sock")}
	for _, m := range mutate {
		m(&cfg)
	}
	d, err := daemon.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	td := &testDaemon{Daemon: d, dir: dir}
	t.Cleanup(func() { td.stop(t) })
	return td
}

func (d *testDaemon) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func dial(t *testing.T, d *testDaemon) *client.Client {
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

func inproc(t *testing.T, d *testDaemon) *client.Client {
	t.Helper()
	c, err := client.NewInProcess(d.Kernel())
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

func wantCode(t *testing.T, err error, code api.Code) {
	t.Helper()
	if got := api.CodeOf(err); got != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	if !errors.Is(err, &api.Error{Code: code}) {
		t.Fatalf("errors.Is does not match %s for %v", code, err)
	}
}

// Both transports must behave the same: the same scenario runs over the
// socket and in process.
func TestClassesAndEventsOnEveryTransport(t *testing.T) {
	for _, transport := range []string{"socket", "inproc"} {
		t.Run(transport, func(t *testing.T) {
			d := start(t)
			connect := dial
			if transport == "inproc" {
				connect = inproc
			}
			ctx := ctxT(t)
			emitter, watcher := connect(t, d), connect(t, d)

			cfg, err := emitter.DeclareClass(ctx, api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true, Channel: api.ChannelByRoomID, Description: "first"})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OnUnknownSchema != api.SchemaFail {
				t.Fatalf("resolved config %+v", cfg)
			}
			if _, err := emitter.DeclareClass(ctx, api.ClassConfig{Name: "chat:posted", SchemaVersion: "v2", Broadcast: true, Channel: api.ChannelByRoomID}); api.CodeOf(err) != api.CodeConflictingRedeclaration {
				t.Fatalf("redeclare with another schema: %v", err)
			}
			_, err = emitter.DeclareClass(ctx, api.ClassConfig{Name: "chat:posted", SchemaVersion: "v1", Broadcast: true})
			wantCode(t, err, api.CodeInvalidArgument)
			if _, err := emitter.DeclareClass(ctx, api.ClassConfig{Name: "ui:clicked", SchemaVersion: "v1", OnUnknownSchema: api.SchemaWarn}); err != nil {
				t.Fatal(err)
			}
			list, err := watcher.ListClasses(ctx)
			// The daemon declares its own inference:* and persona:* classes;
			// they sort between these two.
			list = slices.DeleteFunc(list, func(c api.ClassConfig) bool {
				return strings.HasPrefix(c.Name, "inference:") || strings.HasPrefix(c.Name, "persona:")
			})
			if err != nil || len(list) != 2 || list[0].Name != "chat:posted" || list[1].Name != "ui:clicked" {
				t.Fatalf("list = %+v, %v", list, err)
			}
			got, err := watcher.GetClass(ctx, "nope:nope")
			if err != nil || got != nil {
				t.Fatalf("get undeclared = %+v, %v", got, err)
			}
			ch, err := watcher.ResolveChannel(ctx, api.ResolveChannelParams{Name: "chat:posted", Payload: map[string]any{"roomId": "general"}})
			if err != nil || ch != "general" {
				t.Fatalf("resolve = %q, %v", ch, err)
			}
			_, err = watcher.ResolveChannel(ctx, api.ResolveChannelParams{Name: "ui:clicked"})
			wantCode(t, err, api.CodeNotBroadcast)
			_, err = watcher.ResolveChannel(ctx, api.ResolveChannelParams{Name: "x:y"})
			wantCode(t, err, api.CodeUndeclaredClass)

			sub, err := watcher.Subscribe(ctx, api.SubscribeParams{Pattern: "chat:*"})
			if err != nil {
				t.Fatal(err)
			}
			room, err := watcher.Subscribe(ctx, api.SubscribeParams{Pattern: "*", Channel: "random"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = emitter.Emit(ctx, api.EmitParams{Name: "chat:posted", Payload: map[string]any{"text": "no room"}})
			wantCode(t, err, api.CodeMissingPayloadField)
			_, err = emitter.Emit(ctx, api.EmitParams{Name: "chat:posted", SchemaVersion: "v9", Payload: map[string]any{"roomId": "general"}})
			wantCode(t, err, api.CodeSchemaMismatch)
			_, err = emitter.Emit(ctx, api.EmitParams{Name: "chat:posted", Channel: "elsewhere", Payload: map[string]any{"roomId": "general"}})
			wantCode(t, err, api.CodeInvalidArgument)
			res, err := emitter.Emit(ctx, api.EmitParams{Name: "chat:posted", ID: "m1", Headers: map[string]string{"k": "v"}, Payload: map[string]any{"roomId": "general", "text": "hello", "n": uint64(1) << 60}})
			if err != nil || res.ID != "m1" || res.Channel != "general" {
				t.Fatalf("emit = %+v, %v", res, err)
			}
			if _, err := emitter.Emit(ctx, api.EmitParams{Name: "chat:posted", Payload: map[string]any{"roomId": "random"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := emitter.Emit(ctx, api.EmitParams{Name: "ui:clicked", SchemaVersion: "v2"}); err != nil {
				t.Fatalf("warn class must deliver: %v", err)
			}

			ev, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var payload struct {
				RoomID string `msgpack:"roomId"`
				Text   string `msgpack:"text"`
				N      uint64 `msgpack:"n"`
			}
			if err := ev.DecodePayload(&payload); err != nil {
				t.Fatal(err)
			}
			if ev.ID != "m1" || ev.Class != "chat:posted" || ev.Channel != "general" || ev.SchemaVersion != "v1" ||
				ev.Headers["k"] != "v" || payload.Text != "hello" || payload.N != 1<<60 || ev.Sender == "" || ev.TS == 0 {
				t.Fatalf("event %+v payload %+v", ev, payload)
			}
			if ev2, err := sub.Next(ctx); err != nil || ev2.Channel != "random" {
				t.Fatalf("second event %+v %v", ev2, err)
			}
			if ev3, err := room.Next(ctx); err != nil || ev3.Channel != "random" {
				t.Fatalf("channel-filtered event %+v %v", ev3, err)
			}
			// The warn class's event reached nobody here: neither pattern matches it.
			if err := watcher.Unsubscribe(ctx, sub.ID()); err != nil {
				t.Fatal(err)
			}
			wantCode(t, watcher.Unsubscribe(ctx, sub.ID()), api.CodeNotFound)

			warned, err := watcher.Subscribe(ctx, api.SubscribeParams{Pattern: "ui:clicked"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := emitter.Emit(ctx, api.EmitParams{Name: "ui:clicked", SchemaVersion: "v2"}); err != nil {
				t.Fatal(err)
			}
			wev, err := warned.Next(ctx)
			if err != nil || wev.Headers[api.HeaderSchemaWarning] != "v1" || wev.SchemaVersion != "v2" {
				t.Fatalf("warn event %+v %v", wev, err)
			}
		})
	}
}

func TestDeclarationsSurviveRestart(t *testing.T) {
	dir := shortDir(t)
	d := startIn(t, dir)
	ctx := ctxT(t)
	c := dial(t, d)
	if _, err := c.DeclareClass(ctx, api.ClassConfig{Name: "a:b", SchemaVersion: "v1", Description: "kept"}); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	d.stop(t)

	d2 := startIn(t, dir)
	c2 := dial(t, d2)
	got, err := c2.GetClass(ctx, "a:b")
	if err != nil || got == nil || got.Description != "kept" {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	info2, err := c2.Info(ctx)
	if err != nil || info2.PeerID != info.PeerID || info.PeerID == "" {
		t.Fatalf("peer id changed across restart: %q → %q", info.PeerID, info2.PeerID)
	}
}

func TestInfoDescribesEveryMethod(t *testing.T) {
	d := start(t)
	info, err := dial(t, d).Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Protocol != api.Protocol || info.Version == "" {
		t.Fatalf("info %+v", info)
	}
	byName := map[string]api.MethodInfo{}
	for _, m := range info.Methods {
		byName[m.Name] = m
	}
	for _, m := range api.Methods {
		got, ok := byName[m.Name]
		if !ok {
			t.Errorf("kernel/info lacks %s", m.Name)
			continue
		}
		if got.Params == nil || got.Description == "" || got.Kind != m.Kind {
			t.Errorf("%s described as %+v", m.Name, got)
		}
	}
	emit := byName[api.MethodEmit]
	if emit.Params.Fields[0].Name != "name" || !emit.Params.Fields[0].Required {
		t.Fatalf("events/emit params: %+v", emit.Params.Fields)
	}
}

func TestProvidedCommands(t *testing.T) {
	d := start(t)
	ctx := ctxT(t)
	provider, caller := dial(t, d), dial(t, d)
	type echoParams struct {
		Text  string `msgpack:"text"`
		Sleep int    `msgpack:"sleep"`
	}
	cancelled := make(chan string, 4)
	err := provider.Provide(ctx, api.RegisterParams{Name: "demo/echo", Description: "echo", Idempotent: true}, func(ctx context.Context, inv *client.Invocation) (any, error) {
		var p echoParams
		if err := inv.Params.Decode(&p); err != nil {
			return nil, err
		}
		if p.Text == "fail" {
			return nil, api.Errorf(api.CodeNotFound, "no such thing")
		}
		if p.Sleep > 0 {
			select {
			case <-time.After(time.Duration(p.Sleep) * time.Millisecond):
			case <-ctx.Done():
				cancelled <- inv.ID
				return nil, ctx.Err()
			}
		}
		return map[string]any{"text": p.Text, "caller": inv.Caller}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = caller.Provide(ctx, api.RegisterParams{Name: "demo/echo"}, func(context.Context, *client.Invocation) (any, error) { return nil, nil })
	wantCode(t, err, api.CodeAlreadyExists)

	var out map[string]any
	if err := caller.Execute(ctx, api.ExecuteParams{Command: "demo/echo", Params: map[string]any{"text": "hi"}}, &out); err != nil {
		t.Fatal(err)
	}
	if out["text"] != "hi" || out["caller"] == "" {
		t.Fatalf("result %v", out)
	}
	// A provided command is also callable by its own name.
	out = nil
	if err := caller.Call(ctx, "demo/echo", map[string]any{"text": "direct"}, &out); err != nil || out["text"] != "direct" {
		t.Fatalf("direct call: %v %v", out, err)
	}
	// The provider's typed error reaches the caller unchanged.
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: "demo/echo", Params: map[string]any{"text": "fail"}}, nil), api.CodeNotFound)
	// Built-in methods are commands too.
	var classes []api.ClassConfig
	if err := caller.Execute(ctx, api.ExecuteParams{Command: api.MethodListClasses}, &classes); err != nil {
		t.Fatal(err)
	}
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: "nope/nope"}, nil), api.CodeUnknownMethod)
	// An environment command never leaves the machine; a command nobody
	// here has goes to the grid, where no peer offers it.
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: "demo/echo", Scope: &api.ScopeParams{Target: api.ScopeGrid}}, nil), api.CodePermissionDenied)
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: "demo/elsewhere", Scope: &api.ScopeParams{Target: api.ScopeGrid}}, nil), api.CodeNoMatchingPeer)
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: api.MethodListClasses, Scope: &api.ScopeParams{Target: api.ScopeGrid}}, nil), api.CodePermissionDenied)
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: "demo/echo", Scope: &api.ScopeParams{Target: "moon"}}, nil), api.CodeInvalidArgument)

	// A deadline: the caller gets deadline_exceeded and the provider is cancelled.
	start := time.Now()
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: "demo/echo", Params: map[string]any{"sleep": 5000}, TimeoutMs: 100}, nil), api.CodeDeadlineExceeded)
	if time.Since(start) > 3*time.Second {
		t.Fatalf("deadline took %v", time.Since(start))
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider was not cancelled")
	}

	list, err := caller.ListCommands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range list {
		if c.Name == "demo/echo" {
			found = c.Provider != "kernel" && c.NaturalScope == api.ScopeEnvironment && c.Idempotent
		}
	}
	if !found {
		t.Fatalf("commands/list: %+v", list)
	}
	wantCode(t, caller.Unregister(ctx, "demo/echo"), api.CodeNotFound)
	if err := provider.Unregister(ctx, "demo/echo"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: "demo/echo"}, nil), api.CodeUnknownMethod)
}

func TestProviderVanishesMidCall(t *testing.T) {
	d := start(t)
	ctx := ctxT(t)
	provider, caller := dial(t, d), dial(t, d)
	entered := make(chan struct{})
	err := provider.Provide(ctx, api.RegisterParams{Name: "slow/op"}, func(ctx context.Context, inv *client.Invocation) (any, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() { result <- caller.Execute(ctx, api.ExecuteParams{Command: "slow/op"}, nil) }()
	<-entered
	start := time.Now()
	provider.Close()
	select {
	case err := <-result:
		wantCode(t, err, api.CodeUnavailable)
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the pending call failed only after %v", time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pending call did not fail when its provider vanished")
	}
	// Its commands went away with it.
	wantCode(t, caller.Execute(ctx, api.ExecuteParams{Command: "slow/op"}, nil), api.CodeUnknownMethod)
	if _, err := caller.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBadParamsNameTheField(t *testing.T) {
	d := start(t)
	ctx := ctxT(t)
	c := dial(t, d)
	cases := []struct {
		method string
		params any
		code   api.Code
	}{
		{api.MethodDeclareClass, map[string]any{"name": 5, "schemaVersion": "v1"}, api.CodeInvalidArgument},
		{api.MethodDeclareClass, map[string]any{"schemaVersion": "v1"}, api.CodeInvalidArgument},
		{api.MethodDeclareClass, map[string]any{"name": "a:b", "schemaVersion": "v1", "broadcast": "yes"}, api.CodeInvalidArgument},
		{api.MethodEmit, map[string]any{}, api.CodeInvalidArgument},
		{api.MethodEmit, map[string]any{"name": "a:b", "headers": []int{1}}, api.CodeInvalidArgument},
		{api.MethodSubscribe, map[string]any{"pattern": ""}, api.CodeInvalidArgument},
		{api.MethodSubscribe, map[string]any{"pattern": "a::b"}, api.CodeInvalidArgument},
		{api.MethodExecute, map[string]any{"command": "kernel/ping", "timeoutMs": "soon"}, api.CodeInvalidArgument},
		{api.MethodRegister, map[string]any{"name": "noslash"}, api.CodeInvalidArgument},
		{api.MethodRegister, map[string]any{"name": "a/b", "naturalScope": "local"}, api.CodeInvalidArgument},
		{"no/such-method", map[string]any{}, api.CodeUnknownMethod},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %v", tc.method, tc.params), func(t *testing.T) {
			err := c.Call(ctx, tc.method, tc.params, nil)
			wantCode(t, err, tc.code)
		})
	}
	err := c.Call(ctx, api.MethodDeclareClass, map[string]any{"name": 5, "schemaVersion": "v1"}, nil)
	if e := api.AsError(err); e == nil || !strings.Contains(e.Message, `"name"`) {
		t.Fatalf("message does not name the field: %v", err)
	}
}

// A subscriber that does not read is told it lagged, and neither the emitter
// nor another subscriber waits for it.
func TestSlowSubscriberLags(t *testing.T) {
	d := start(t, func(c *daemon.Config) { c.Kernel.SubscriberQueue = 8 })
	ctx := ctxT(t)
	emitter := dial(t, d)
	fast := dial(t, d)
	slow := dial(t, d)
	// The slow client buffers little and its application never reads.
	slowSub, err := slow.Subscribe(ctx, api.SubscribeParams{Pattern: "load:*"})
	if err != nil {
		t.Fatal(err)
	}
	fastSub, err := fast.Subscribe(ctx, api.SubscribeParams{Pattern: "load:*"})
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	go func() {
		for range fastSub.Events() {
			got.Add(1)
		}
	}()
	const n = 3000
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				if _, err := emitter.Emit(ctx, api.EmitParams{Name: "load:tick", Payload: map[string]any{"pad": string(make([]byte, 256))}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < n/2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got.Load() < n/2 {
		t.Fatalf("the reading subscriber got only %d of %d", got.Load(), n)
	}
	// Now drain the slow one: what it missed is reported as lag somewhere
	// (by the kernel, or by the client's own buffer).
	deadline = time.Now().Add(10 * time.Second)
	var seen int
	for time.Now().Before(deadline) {
		select {
		case <-slowSub.Events():
			seen++
			continue
		case <-time.After(200 * time.Millisecond):
		}
		lag := slowSub.Lagged()
		if uint64(seen)+lag.Kernel+lag.Client >= n && lag.Kernel+lag.Client > 0 {
			return
		}
	}
	lag := slowSub.Lagged()
	t.Fatalf("slow subscriber saw %d events, lag %+v; want every event delivered or reported", seen, lag)
}

func emitParams(name, pad string) api.EmitParams {
	return api.EmitParams{Name: name, Payload: map[string]any{"pad": pad}}
}
