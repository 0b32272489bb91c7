package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/paths"
	"github.com/continuum-grid/continuum/ipc/internal/testbackend"
	"github.com/continuum-grid/continuum/ipc/server"
	"github.com/continuum-grid/continuum/ipc/unixsock"
)

func privateDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serve runs a socket server for b and returns its path and server.
func serve(t testing.TB, b api.Backend, opts server.Options) (string, *server.Server) {
	t.Helper()
	path := filepath.Join(privateDir(t), unixsock.SocketName)
	l, err := unixsock.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(b, opts)
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return path, srv
}

// transports runs a test once over the socket and once in process, against
// the same kind of backend: the two must behave alike.
func transports(t *testing.T, test func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client)) {
	t.Run("socket", func(t *testing.T) {
		b := testbackend.New()
		path, _ := serve(t, b, server.Options{})
		test(t, b, func(opts ...Option) *Client {
			c, err := Dial(context.Background(), path, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		})
	})
	t.Run("inproc", func(t *testing.T) {
		b := testbackend.New()
		test(t, b, func(opts ...Option) *Client {
			c, err := NewInProcess(b, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		})
	})
}

func ctx5(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCall(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		c := connect()
		ping, err := c.Ping(ctx5(t))
		if err != nil || time.Since(time.UnixMilli(ping.TS)) > time.Minute {
			t.Fatalf("ping: %+v %v", ping, err)
		}
		var got testbackend.SleepParams
		if err := c.Call(ctx5(t), testbackend.MethodSleep, testbackend.SleepParams{Ms: 1}, &got); err != nil || got.Ms != 1 {
			t.Fatalf("sleep: %+v %v", got, err)
		}
		var m map[string]any
		if err := c.Call(ctx5(t), testbackend.MethodEcho, map[string]any{"a": "b"}, &m); err != nil || m["a"] != "b" {
			t.Fatalf("echo: %v %v", m, err)
		}
		if err := c.Call(ctx5(t), testbackend.MethodEcho, nil, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestErrors(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		c := connect()
		cases := []struct {
			method string
			params any
			code   api.Code
		}{
			{"no/such", nil, api.CodeUnknownMethod},
			{testbackend.MethodPanic, nil, api.CodeInternal},
			{testbackend.MethodSleep, map[string]any{"ms": "soon"}, api.CodeInvalidArgument},
			{api.MethodUnsubscribe, api.SubscriptionParams{Subscription: "nope"}, api.CodeNotFound},
		}
		for _, tc := range cases {
			err := c.Call(ctx5(t), tc.method, tc.params, nil)
			var ae *api.Error
			if !errors.As(err, &ae) || !errors.Is(err, &api.Error{Code: tc.code}) {
				t.Errorf("%s: got %T %v, want *api.Error %s", tc.method, err, err, tc.code)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := c.Call(ctx, testbackend.MethodBlock, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ctx: got %v", err)
		}
		c.Close()
		c.Close()
		if _, err := c.Ping(ctx5(t)); !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
			t.Fatalf("after Close: got %v", err)
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed")
		}
	})
}

// Every typed helper sends its method's name.
func TestTypedHelpersNameTheirMethods(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		c := connect()
		ctx := ctx5(t)
		calls := map[string]func() error{
			api.MethodKernelInfo: func() error { _, err := c.Info(ctx); return err },
			api.MethodDeclareClass: func() error {
				_, err := c.DeclareClass(ctx, api.ClassConfig{Name: "a:b", SchemaVersion: "1"})
				return err
			},
			api.MethodGetClass:       func() error { _, err := c.GetClass(ctx, "a:b"); return err },
			api.MethodListClasses:    func() error { _, err := c.ListClasses(ctx); return err },
			api.MethodResolveChannel: func() error { _, err := c.ResolveChannel(ctx, api.ResolveChannelParams{Name: "a:b"}); return err },
			api.MethodAck:            func() error { return c.Ack(ctx, "d", 1) },
			api.MethodReplay:         func() error { _, err := c.Replay(ctx, api.ReplayParams{Channel: "global"}); return err },
			api.MethodListCommands:   func() error { _, err := c.ListCommands(ctx); return err },
		}
		for _, m := range api.Methods {
			if m.Kind != api.KindRequest {
				continue
			}
			call := calls[m.Name]
			if call == nil {
				continue // served by the test backend, covered by other tests
			}
			err := call()
			if !errors.Is(err, &api.Error{Code: api.CodeUnknownMethod}) || !strings.Contains(err.Error(), fmt.Sprintf("%q", m.Name)) {
				t.Errorf("%s: got %v", m.Name, err)
			}
		}
	})
}

func TestSubscribeEmit(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		c := connect()
		other := connect()
		sub, err := c.Subscribe(ctx5(t), api.SubscribeParams{Pattern: "chat:posted"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := other.Emit(ctx5(t), api.EmitParams{Name: "chat:posted", Payload: map[string]any{"text": "hi", "n": i}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			ev, err := sub.Next(ctx5(t))
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Text string `msgpack:"text"`
				N    int    `msgpack:"n"`
			}
			if err := ev.DecodePayload(&p); err != nil || p.Text != "hi" || p.N != i || ev.Class != "chat:posted" {
				t.Fatalf("event %d: %+v %+v %v", i, ev, p, err)
			}
		}
		if err := sub.Close(ctx5(t)); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-sub.Events(); ok {
			t.Fatal("events after Close")
		}
		if _, err := sub.Next(ctx5(t)); !errors.Is(err, &api.Error{Code: api.CodeCancelled}) {
			t.Fatalf("Next after Close: %v", err)
		}
		if err := sub.Close(ctx5(t)); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// Events the daemon sends before its reply to events/subscribe are not lost
// and come before later ones.
func TestEventsBeforeSubscribeReply(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		b.EarlyEvents = 3
		c := connect()
		sub, err := c.Subscribe(ctx5(t), api.SubscribeParams{Pattern: "x:y"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Emit(ctx5(t), api.EmitParams{Name: "x:y", ID: "live"}); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for range 4 {
			ev, err := sub.Next(ctx5(t))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ev.ID)
		}
		if fmt.Sprint(ids) != "[early-0 early-1 early-2 live]" {
			t.Fatalf("got %v", ids)
		}
	})
}

func TestLagged(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		c := connect(WithEventBuffer(2))
		sub, err := c.Subscribe(ctx5(t), api.SubscribeParams{Pattern: "*"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := c.Emit(ctx5(t), api.EmitParams{Name: "a:b", ID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		// The reader was never held up: a call still answers at once.
		if _, err := c.Ping(ctx5(t)); err != nil {
			t.Fatal(err)
		}
		if lag := sub.Lagged(); lag.Client != 3 || lag.Kernel != 0 {
			t.Fatalf("lag %+v, want 3 dropped by the client", lag)
		}
		for _, want := range []string{"0", "1"} {
			if ev := <-sub.Events(); ev.ID != want {
				t.Fatalf("kept %s, want %s", ev.ID, want)
			}
		}
		if _, err := c.Emit(ctx5(t), api.EmitParams{Name: "a:lagged"}); err != nil {
			t.Fatal(err)
		}
		if lag := sub.Lagged(); lag.Kernel != 7 {
			t.Fatalf("lag %+v, want 7 dropped by the daemon", lag)
		}
	})
}

func TestProvide(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		provider := connect()
		caller := connect()
		err := provider.Provide(ctx5(t), api.RegisterParams{Name: "math/double"}, func(ctx context.Context, inv *Invocation) (any, error) {
			var in struct {
				X int `msgpack:"x"`
			}
			if err := inv.Params.Decode(&in); err != nil {
				return nil, err
			}
			if in.X < 0 {
				return nil, api.Errorf(api.CodeInvalidArgument, "x must not be negative")
			}
			if in.X == 13 {
				panic("unlucky")
			}
			return map[string]any{"y": in.X * 2, "caller": inv.Caller, "command": inv.Command}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Y       int    `msgpack:"y"`
			Command string `msgpack:"command"`
			Caller  string `msgpack:"caller"`
		}
		if err := caller.Execute(ctx5(t), api.ExecuteParams{Command: "math/double", Params: map[string]int{"x": 21}}, &out); err != nil {
			t.Fatal(err)
		}
		if out.Y != 42 || out.Command != "math/double" || out.Caller == "" {
			t.Fatalf("got %+v", out)
		}
		err = caller.Execute(ctx5(t), api.ExecuteParams{Command: "math/double", Params: map[string]int{"x": -1}}, nil)
		if !errors.Is(err, &api.Error{Code: api.CodeInvalidArgument}) || !strings.Contains(err.Error(), "negative") {
			t.Fatalf("handler error: got %v", err)
		}
		err = caller.Execute(ctx5(t), api.ExecuteParams{Command: "math/double", Params: map[string]int{"x": 13}}, nil)
		if !errors.Is(err, &api.Error{Code: api.CodeInternal}) {
			t.Fatalf("handler panic: got %v", err)
		}
		if err := provider.Provide(ctx5(t), api.RegisterParams{Name: "math/double"}, nil); !errors.Is(err, &api.Error{Code: api.CodeAlreadyExists}) {
			t.Fatalf("second Provide: got %v", err)
		}
		if err := provider.Unregister(ctx5(t), "math/double"); err != nil {
			t.Fatal(err)
		}
		if err := caller.Execute(ctx5(t), api.ExecuteParams{Command: "math/double"}, nil); !errors.Is(err, &api.Error{Code: api.CodeUnknownMethod}) {
			t.Fatalf("after Unregister: got %v", err)
		}
	})
}

func TestProvideDeadlineAndCancel(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		provider := connect()
		caller := connect()
		type ended struct {
			err      error
			deadline time.Time
		}
		ends := make(chan ended, 2)
		started := make(chan struct{}, 2)
		err := provider.Provide(ctx5(t), api.RegisterParams{Name: "slow/wait"}, func(ctx context.Context, inv *Invocation) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			ends <- ended{ctx.Err(), inv.Deadline}
			return nil, ctx.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		// A deadline travels to the provider.
		err = caller.Execute(ctx5(t), api.ExecuteParams{Command: "slow/wait", TimeoutMs: 50}, nil)
		if !errors.Is(err, &api.Error{Code: api.CodeDeadlineExceeded}) {
			t.Fatalf("caller: got %v", err)
		}
		if e := <-ends; e.deadline.IsZero() || e.err == nil {
			t.Fatalf("provider saw %+v", e)
		}
		<-started
		// A caller that goes away cancels the handler (commands/cancel).
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-started; cancel() }()
		err = caller.Execute(ctx, api.ExecuteParams{Command: "slow/wait"}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("caller: got %v", err)
		}
		select {
		case e := <-ends:
			if !errors.Is(e.err, context.Canceled) {
				t.Fatalf("provider ended with %v", e.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler not cancelled")
		}
	})
}

func TestConnectionLoss(t *testing.T) {
	b := testbackend.New()
	path, srv := serve(t, b, server.Options{})
	c, err := Dial(ctx5(t), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx5(t), api.SubscribeParams{Pattern: "*"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx5(t)); !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
		t.Fatalf("subscription: got %v", err)
	}
	if _, err := c.Ping(ctx5(t)); !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
		t.Fatalf("call: got %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	_, err := Dial(ctx5(t), filepath.Join(privateDir(t), "none.sock"))
	if !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) || !strings.Contains(err.Error(), "none.sock") {
		t.Fatalf("got %v", err)
	}

	// A refused caller learns why.
	path, _ := serve(t, testbackend.New(), server.Options{Authorize: func(api.Caller) error { return errors.New("not you") }})
	c, err := Dial(ctx5(t), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-c.Done()
	if _, err := c.Ping(ctx5(t)); !errors.Is(err, &api.Error{Code: api.CodePermissionDenied}) || !strings.Contains(err.Error(), "not you") {
		t.Fatalf("got %v", err)
	}
}

func TestDialDefaultPath(t *testing.T) {
	dir := privateDir(t)
	t.Setenv("XDG_RUNTIME_DIR", dir)
	l, err := unixsock.Listen(paths.Socket())
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(testbackend.New(), server.Options{})
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	c, err := Dial(ctx5(t), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ping(ctx5(t)); err != nil {
		t.Fatal(err)
	}
}

// In process, results are the backend's Go values, set without encoding.
func TestInProcessSkipsSerialization(t *testing.T) {
	b := testbackend.New()
	c, err := NewInProcess(b)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type notMsgpack struct{ C chan int } // would fail to encode
	in := notMsgpack{C: make(chan int)}
	var out notMsgpack
	if err := c.Call(ctx5(t), testbackend.MethodEcho, in, &out); err != nil {
		t.Fatal(err)
	}
	if out.C != in.C {
		t.Fatal("the value was copied, not passed")
	}
	var who api.Caller
	if err := c.Call(ctx5(t), testbackend.MethodCaller, nil, &who); err != nil || who.Transport != "inproc" {
		t.Fatalf("caller %+v %v", who, err)
	}
}

func TestInProcessOpenError(t *testing.T) {
	b := testbackend.New()
	b.OpenErr = errors.New("closed kernel")
	if _, err := NewInProcess(b); !errors.Is(err, &api.Error{Code: api.CodeInternal}) {
		t.Fatalf("got %v", err)
	}
}

func TestNotificationHandler(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		got := make(chan int, 10)
		c := connect(WithNotificationHandler(func(method string, p api.Params) {
			var n testbackend.N
			if method == "x/tick" && p.Decode(&n) == nil {
				got <- n.N
			}
		}))
		if err := c.Call(ctx5(t), testbackend.MethodNotify, testbackend.NotifyParams{Method: "x/tick", Count: 3}, nil); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if n := <-got; n != i {
				t.Fatalf("got %d, want %d", n, i)
			}
		}
		if err := c.Notify(testbackend.MethodNote, testbackend.N{N: 5}); err != nil {
			t.Fatal(err)
		}
		if note := <-b.Notes; !strings.HasSuffix(note, " 5") {
			t.Fatalf("note %q", note)
		}
	})
}

// Publish sends events/emit as a notification: nothing comes back, and one
// client's events reach a subscriber in the order they were published, over
// the socket and in process.
func TestPublish(t *testing.T) {
	transports(t, func(t *testing.T, b *testbackend.Backend, connect func(...Option) *Client) {
		c := connect()
		pub := connect()
		sub, err := c.Subscribe(ctx5(t), api.SubscribeParams{Pattern: "a:b"})
		if err != nil {
			t.Fatal(err)
		}
		const n = 500
		for i := range n {
			if err := pub.Publish(api.EmitParams{Name: "a:b", ID: fmt.Sprint(i), Payload: map[string]any{"i": i}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			ev, err := sub.Next(ctx5(t))
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID != fmt.Sprint(i) {
				t.Fatalf("event %d has id %q: out of order", i, ev.ID)
			}
		}
		pub.Close()
		if err := pub.Publish(api.EmitParams{Name: "a:b"}); !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
			t.Fatalf("Publish after Close: %v", err)
		}
	})
}

// decodeEvent reads every form an events/event notification takes.
func TestDecodeEventForms(t *testing.T) {
	ev := api.Event{ID: "e1", Class: "a:b", Seq: 7, Payload: map[string]any{"k": "v"}}
	want := func(t *testing.T, sub string, got *api.Event, err error) {
		t.Helper()
		if err != nil || sub != "s1" || got.ID != "e1" || got.Class != "a:b" || got.Seq != 7 {
			t.Fatalf("got %q %+v %v", sub, got, err)
		}
		var p map[string]string
		if err := got.DecodePayload(&p); err != nil || p["k"] != "v" {
			t.Fatalf("payload %v %v", p, err)
		}
	}
	shared := api.ShareEvent(&ev)
	enc, err := shared.Encoded()
	if err != nil {
		t.Fatal(err)
	}
	fromLog, err := api.ShareEncoded(enc)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]api.Params{
		"socket":             api.RawParams(api.AppendEventNotification(nil, "s1", enc)),
		"in process":         api.ValueParams{V: &api.EventDelivery{Subscription: "s1", Event: shared}},
		"in process, by log": api.ValueParams{V: &api.EventDelivery{Subscription: "s1", Event: fromLog}},
		"notification value": api.ValueParams{V: api.EventNotification{Subscription: "s1", Event: ev}},
		"delivery value":     api.ValueParams{V: api.EventDelivery{Subscription: "s1", Event: shared}},
	} {
		t.Run(name, func(t *testing.T) {
			sub, got, err := decodeEvent(p)
			want(t, sub, got, err)
		})
	}
	if _, _, err := decodeEvent(api.RawParams{0x82, 0xa1, 'x'}); err == nil {
		t.Fatal("truncated notification decoded")
	}
}
