package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/internal/testbackend"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/ipc/unixsock"
	"github.com/vmihailenco/msgpack/v5"
)

func privateDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

type fixture struct {
	srv    *Server
	b      *testbackend.Backend
	path   string
	served chan error
}

// start runs a server for a fresh test backend on a socket in a private
// temp folder, and shuts it down when the test ends.
func start(t testing.TB, opts Options) *fixture {
	t.Helper()
	return startWith(t, testbackend.New(), opts)
}

func startWith(t testing.TB, b api.Backend, opts Options) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(privateDir(t), unixsock.SocketName), served: make(chan error, 1)}
	f.b, _ = b.(*testbackend.Backend)
	l, err := unixsock.Listen(f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = New(b, opts)
	go func() { f.served <- f.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.srv.Shutdown(ctx)
	})
	return f
}

// dial connects a msgrpc.Conn as a client; h serves the daemon's requests
// and notifications to it (nil for none).
func (f *fixture) dial(t testing.TB, h msgrpc.Handler) *msgrpc.Conn {
	t.Helper()
	nc, err := net.Dial("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	c := msgrpc.NewConn(msgrpc.NewStreamTransport(nc, 0), msgrpc.Options{})
	if h == nil {
		h = msgrpc.HandlerFuncs{}
	}
	c.Start(h)
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *fixture) raw(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, bufio.NewReader(nc)
}

func readMsg(t *testing.T, r *bufio.Reader) []any {
	t.Helper()
	var v []any
	if err := msgpack.NewDecoder(r).Decode(&v); err != nil {
		t.Fatalf("reading from the daemon: %v", err)
	}
	return v
}

func wantEOF(t *testing.T, r *bufio.Reader) {
	t.Helper()
	if b, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("want the daemon to close, got %x %v", b, err)
	}
}

func ctx5(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPipelinedRequests(t *testing.T) {
	f := start(t, Options{})
	c := f.dial(t, nil)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Varying sleeps make the responses come back out of order.
			raw, err := c.Call(ctx5(t), testbackend.MethodSleep, testbackend.SleepParams{Ms: (n - i) % 7})
			if err != nil {
				errs <- err
				return
			}
			var got testbackend.SleepParams
			if err := raw.Decode(&got); err != nil || got.Ms != (n-i)%7 {
				errs <- fmt.Errorf("call %d: got %+v, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSlowHandlerDoesNotBlockOthers(t *testing.T) {
	f := start(t, Options{})
	c := f.dial(t, nil)
	blocked := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := c.Call(ctx, testbackend.MethodBlock, nil)
		blocked <- err
	}()
	<-f.b.Blocked
	for range 10 {
		if _, err := c.Call(ctx5(t), testbackend.MethodEcho, map[string]int{"a": 1}); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-blocked; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestResultsAndErrors(t *testing.T) {
	f := start(t, Options{MaxMessageSize: 4096})
	c := f.dial(t, nil)
	raw, err := c.Call(ctx5(t), testbackend.MethodEcho, map[string]any{"k": []int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string][]int
	if err := raw.Decode(&got); err != nil || fmt.Sprint(got) != "map[k:[1 2]]" {
		t.Fatalf("echo: %v %v", got, err)
	}
	cases := []struct {
		method string
		params any
		code   api.Code
	}{
		{"no/such", nil, api.CodeUnknownMethod},
		{testbackend.MethodPanic, nil, api.CodeInternal},
		{testbackend.MethodSleep, map[string]any{"ms": "soon"}, api.CodeInvalidArgument},
		{testbackend.MethodEcho, map[string]any{"b": make([]byte, 3000)}, ""},
	}
	for _, tc := range cases {
		_, err := c.Call(ctx5(t), tc.method, tc.params)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.method, err)
			}
			continue
		}
		if !errors.Is(err, &api.Error{Code: tc.code}) {
			t.Errorf("%s: got %v, want %s", tc.method, err, tc.code)
		}
	}
	// Still alive after a panic.
	if _, err := c.Call(ctx5(t), api.MethodKernelPing, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCallerCredentials(t *testing.T) {
	f := start(t, Options{})
	c := f.dial(t, nil)
	raw, err := c.Call(ctx5(t), testbackend.MethodCaller, nil)
	if err != nil {
		t.Fatal(err)
	}
	var who struct{ Transport, UID, GID, PID any }
	if err := msgpack.Unmarshal(raw, &who); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(who.Transport, " ", who.UID, " ", who.PID) != fmt.Sprint("unix ", os.Getuid(), " ", os.Getpid()) {
		t.Fatalf("got %+v", who)
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	f := start(t, Options{MaxMessageSize: 1024})
	good := f.dial(t, nil)
	if _, err := good.Call(ctx5(t), api.MethodKernelPing, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   []byte
		resp bool // an error response to request 9 rather than a notification
		code api.Code
	}{
		{"reserved byte", []byte{0xc1}, false, api.CodeProtocolError},
		{"wrong shape", []byte{0x92, 0x00, 0x09}, false, api.CodeProtocolError},
		{"unknown type", []byte{0x93, 0x07, 0xa1, 'm', 0x90}, false, api.CodeProtocolError},
		{"params not a map", []byte{0x94, 0x00, 0x09, 0xa1, 'm', 0x91, 0x01}, true, api.CodeInvalidArgument},
		{"lying bin32", []byte{0x94, 0x00, 0x09, 0xa1, 'm', 0x91, 0x81, 0xa1, 'b', 0xc6, 0xff, 0xff, 0xff, 0xff}, true, api.CodeMessageTooLarge},
		{"too big", append([]byte{0x94, 0x00, 0x09, 0xa1, 'm', 0x91, 0x81, 0xa1, 'b', 0xc5, 0x08, 0x00}, make([]byte, 2048)...), true, api.CodeMessageTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, r := f.raw(t)
			if _, err := nc.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			v := readMsg(t, r)
			var code any
			if tc.resp {
				if fmt.Sprint(v[0], " ", v[1]) != "1 9" {
					t.Fatalf("want a response to request 9, got %v", v)
				}
				code = v[2].(map[string]any)["code"]
			} else {
				if fmt.Sprint(v[0], " ", v[1]) != "2 "+api.NotifyProtocolError {
					t.Fatalf("want a protocol-error notification, got %v", v)
				}
				code = v[2].([]any)[0].(map[string]any)["code"]
			}
			if code != string(tc.code) {
				t.Fatalf("code %v, want %s", code, tc.code)
			}
			wantEOF(t, r)
			if _, err := good.Call(ctx5(t), api.MethodKernelPing, nil); err != nil {
				t.Fatalf("the other connection suffered: %v", err)
			}
		})
	}
}

func TestPermissionDenied(t *testing.T) {
	f := start(t, Options{Authorize: func(c api.Caller) error {
		return fmt.Errorf("uid %d is not on the list", c.UID)
	}})
	_, r := f.raw(t)
	v := readMsg(t, r)
	want := fmt.Sprintf("[2 %s [map[code:permission_denied message:uid %d is not on the list]]]", api.NotifyProtocolError, os.Getuid())
	if fmt.Sprint(v) != want {
		t.Fatalf("got %v, want %s", v, want)
	}
	wantEOF(t, r)
	if n := f.b.Sessions(); n != 0 {
		t.Fatalf("%d sessions opened for a refused caller", n)
	}
}

func TestDefaultAuthorize(t *testing.T) {
	for _, tc := range []struct {
		uid int
		ok  bool
	}{{os.Getuid(), true}, {0, true}, {-1, false}, {os.Getuid() + 4242, false}} {
		err := DefaultAuthorize(api.Caller{Transport: "unix", UID: tc.uid})
		if (err == nil) != tc.ok {
			t.Errorf("uid %d: got %v", tc.uid, err)
		}
	}
}

func TestOpenFailure(t *testing.T) {
	b := testbackend.New()
	b.OpenErr = api.Errorf(api.CodeUnavailable, "kernel is closing")
	f := startWith(t, b, Options{})
	_, r := f.raw(t)
	v := readMsg(t, r)
	if fmt.Sprint(v) != fmt.Sprintf("[2 %s [map[code:unavailable message:kernel is closing]]]", api.NotifyProtocolError) {
		t.Fatalf("got %v", v)
	}
	wantEOF(t, r)
}

func TestNotificationsReachSessionInOrder(t *testing.T) {
	f := start(t, Options{})
	c := f.dial(t, nil)
	for i := range 50 {
		if err := c.Notify(testbackend.MethodNote, testbackend.N{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		select {
		case got := <-f.b.Notes:
			if want := fmt.Sprintf("c1 %s %d", testbackend.MethodNote, i); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("notification lost")
		}
	}
}

// The session's peer calls back into the client (commands/handle) on the
// same connection the client is calling on.
func TestPeerCallAndNotify(t *testing.T) {
	f := start(t, Options{})
	var notes []int
	var mu sync.Mutex
	gotNotes := make(chan struct{}, 100)
	provider := f.dial(t, msgrpc.HandlerFuncs{
		Request: func(ctx context.Context, method string, p api.RawParams) (any, error) {
			var hp api.HandleParams
			if err := p.Decode(&hp); err != nil {
				return nil, err
			}
			var in map[string]int
			if err := api.Assign(&in, hp.Params); err != nil {
				return nil, err
			}
			return map[string]any{"doubled": in["x"] * 2, "command": hp.Command}, nil
		},
		Notification: func(ctx context.Context, method string, p api.RawParams) {
			var n testbackend.N
			_ = p.Decode(&n)
			mu.Lock()
			notes = append(notes, n.N)
			mu.Unlock()
			gotNotes <- struct{}{}
		},
	})
	if _, err := provider.Call(ctx5(t), api.MethodRegister, api.RegisterParams{Name: "math/double"}); err != nil {
		t.Fatal(err)
	}
	caller := f.dial(t, nil)
	raw, err := caller.Call(ctx5(t), api.MethodExecute, api.ExecuteParams{Command: "math/double", Params: map[string]int{"x": 21}})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Doubled int    `msgpack:"doubled"`
		Command string `msgpack:"command"`
	}
	if err := raw.Decode(&out); err != nil || out.Doubled != 42 || out.Command != "math/double" {
		t.Fatalf("got %+v, %v", out, err)
	}
	if _, err := provider.Call(ctx5(t), testbackend.MethodNotify, testbackend.NotifyParams{Method: "x/n", Count: 3}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-gotNotes
	}
	if fmt.Sprint(notes) != "[0 1 2]" {
		t.Fatalf("notifications %v", notes)
	}
}

func TestSessionClosedWithConnection(t *testing.T) {
	f := start(t, Options{})
	c := f.dial(t, nil)
	if _, err := c.Call(ctx5(t), api.MethodKernelPing, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case id := <-f.b.Closed:
		if id != "c1" {
			t.Fatalf("closed %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session not closed")
	}
}

func TestShutdownDrains(t *testing.T) {
	f := start(t, Options{})
	c := f.dial(t, nil)
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), testbackend.MethodSleep, testbackend.SleepParams{Ms: 200})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the sleep is running
	if err := f.srv.Shutdown(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the running request was cut short: %v", err)
	}
	if err := <-f.served; err != nil {
		t.Fatalf("Serve returned %v after Shutdown", err)
	}
	if _, err := net.Dial("unix", f.path); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
	if f.b.Sessions() != 0 {
		t.Fatal("sessions left open")
	}
}

func TestShutdownDeadline(t *testing.T) {
	f := start(t, Options{})
	c := f.dial(t, nil)
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), testbackend.MethodBlock, nil)
		done <- err
	}()
	<-f.b.Blocked
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if err := <-done; !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
		t.Fatalf("the cut request got %v, want unavailable", err)
	}
	if f.b.Sessions() != 0 {
		t.Fatal("sessions left open")
	}
}

func TestListenerRules(t *testing.T) {
	f := start(t, Options{})
	if _, err := unixsock.Listen(f.path); !errors.Is(err, unixsock.ErrAlreadyListening) {
		t.Fatalf("second daemon: got %v", err)
	}
	fi, err := os.Stat(f.path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v", fi.Mode(), err)
	}
	di, err := os.Stat(filepath.Dir(f.path))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("folder mode %v %v", di.Mode(), err)
	}

	// A crashed daemon's socket is replaced by the next one.
	path := filepath.Join(privateDir(t), unixsock.SocketName)
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	l, err := unixsock.Listen(path)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	srv := New(testbackend.New(), Options{})
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c := msgrpc.NewConn(msgrpc.NewStreamTransport(nc, 0), msgrpc.Options{})
	c.Start(msgrpc.HandlerFuncs{})
	defer c.Close()
	if _, err := c.Call(ctx5(t), api.MethodKernelPing, nil); err != nil {
		t.Fatal(err)
	}
}

// The methods in Options.InlineMethods run on the reader: with the one
// in-flight slot held by a slow request, kernel/ping is still answered;
// with InlineMethods empty it waits like any other request.
func TestInlineMethods(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inline []string
		served bool
	}{{"default", nil, true}, {"none", []string{}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, Options{MaxInFlight: 1, InlineMethods: tc.inline})
			c := f.dial(t, nil)
			// A request that holds the slot for a while and then ends by
			// itself (a blocked one could not be cancelled: the reader waits
			// for the slot and reads no rpc/cancel).
			go func() {
				_, _ = c.Call(context.Background(), testbackend.MethodSleep, testbackend.SleepParams{Ms: 1000})
			}()
			time.Sleep(200 * time.Millisecond)
			pctx, pcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer pcancel()
			_, err := c.Call(pctx, api.MethodKernelPing, nil)
			if tc.served && err != nil {
				t.Fatalf("kernel/ping behind a blocked request: %v", err)
			}
			if !tc.served && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("kernel/ping with nothing inline: %v, want it to wait", err)
			}
		})
	}
}
