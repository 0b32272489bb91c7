package msgrpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// socketPair returns both ends of a connected Unix stream socket: the real
// kind of byte stream the daemon serves, without a listener.
func socketPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := conn(fds[0]), conn(fds[1])
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

type echoParams struct {
	V string `msgpack:"v"`
	N int    `msgpack:"n"`
}

// testHandler serves "echo" (returns its params), "block" (waits for the
// release channel or ctx), "panic", "fail" and "big"; notifications are
// recorded in order.
type testHandler struct {
	release chan struct{}
	started chan string
	mu      sync.Mutex
	notes   []string
	noted   chan struct{}
}

func newTestHandler() *testHandler {
	return &testHandler{release: make(chan struct{}), started: make(chan string, 100), noted: make(chan struct{}, 1000)}
}

func (h *testHandler) HandleRequest(ctx context.Context, method string, params api.RawParams) (any, error) {
	switch method {
	case "echo":
		return msgpack.RawMessage(params), nil
	case "block":
		h.started <- method
		select {
		case <-h.release:
			return "released", nil
		case <-ctx.Done():
			h.started <- "cancelled"
			return nil, ctx.Err()
		}
	case "panic":
		panic("boom")
	case "fail":
		return nil, api.Errorf(api.CodeNotFound, "nothing here").WithData(map[string]int{"n": 1})
	case "big":
		return make([]byte, 2048), nil
	}
	return nil, api.Errorf(api.CodeUnknownMethod, "%s", method)
}

func (h *testHandler) HandleNotification(ctx context.Context, method string, params api.RawParams) {
	var p struct {
		N int `msgpack:"n"`
	}
	_ = params.Decode(&p)
	h.mu.Lock()
	h.notes = append(h.notes, fmt.Sprintf("%s %d", method, p.N))
	h.mu.Unlock()
	h.noted <- struct{}{}
}

// connPair returns two started Conns talking to each other.
func connPair(t testing.TB, opts Options) (a, b *Conn, ha, hb *testHandler) {
	t.Helper()
	ra, rb := socketPair(t)
	a = NewConn(NewStreamTransport(ra, opts.MaxMessageSize), opts)
	b = NewConn(NewStreamTransport(rb, opts.MaxMessageSize), opts)
	ha, hb = newTestHandler(), newTestHandler()
	a.Start(ha)
	b.Start(hb)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, ha, hb
}

func TestConnCallBothWays(t *testing.T) {
	a, b, _, _ := connPair(t, Options{})
	ctx := context.Background()
	for _, c := range []*Conn{a, b} {
		raw, err := c.Call(ctx, "echo", map[string]any{"v": "hi"})
		if err != nil {
			t.Fatal(err)
		}
		var got echoParams
		if err := raw.Decode(&got); err != nil || got.V != "hi" {
			t.Fatalf("got %+v, %v", got, err)
		}
	}
	// nil params go out as an empty array and come back as an empty map.
	raw, err := a.Call(ctx, "echo", nil)
	if err != nil || raw != nil {
		t.Fatalf("got % x, %v", raw, err)
	}
}

func TestConnErrors(t *testing.T) {
	a, _, _, _ := connPair(t, Options{MaxMessageSize: 1024})
	ctx := context.Background()
	_, err := a.Call(ctx, "fail", nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeNotFound || ae.Message != "nothing here" || ae.Data == nil {
		t.Fatalf("got %#v", err)
	}
	if !errors.Is(err, &api.Error{Code: api.CodeNotFound}) {
		t.Fatal("errors.Is does not match the code")
	}
	if _, err := a.Call(ctx, "panic", nil); !errors.Is(err, &api.Error{Code: api.CodeInternal}) {
		t.Fatalf("panic: got %v", err)
	}
	if _, err := a.Call(ctx, "big", nil); !errors.Is(err, &api.Error{Code: api.CodeMessageTooLarge}) {
		t.Fatalf("big result: got %v", err)
	}
	if _, err := a.Call(ctx, "echo", map[string]any{"v": make([]byte, 2048)}); !errors.Is(err, &api.Error{Code: api.CodeMessageTooLarge}) {
		t.Fatalf("big params: got %v", err)
	}
	if _, err := a.Call(ctx, "echo", "not a map"); !errors.Is(err, &api.Error{Code: api.CodeInvalidArgument}) {
		t.Fatalf("bad params: got %v", err)
	}
	// The connection survived all of it.
	if _, err := a.Call(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
}

func TestConnPipelined(t *testing.T) {
	a, _, _, _ := connPair(t, Options{})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, err := a.Call(context.Background(), "echo", map[string]any{"n": i})
			if err != nil {
				errs <- err
				return
			}
			var p echoParams
			if err := raw.Decode(&p); err != nil {
				errs <- err
				return
			}
			if p.N != i {
				errs <- fmt.Errorf("call %d got %v", i, p.N)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestConnSlowHandlerDoesNotBlock(t *testing.T) {
	a, _, _, hb := connPair(t, Options{})
	done := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "block", nil)
		done <- err
	}()
	<-hb.started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Call(ctx, "echo", nil); err != nil {
		t.Fatalf("echo behind a blocked handler: %v", err)
	}
	close(hb.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestConnMaxInFlightWaits(t *testing.T) {
	a, _, _, hb := connPair(t, Options{MaxInFlight: 2})
	results := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := a.Call(context.Background(), "block", nil)
			results <- err
		}()
	}
	<-hb.started
	<-hb.started
	select {
	case m := <-hb.started:
		t.Fatalf("a third handler (%s) ran above MaxInFlight 2", m)
	case <-time.After(50 * time.Millisecond):
	}
	close(hb.release) // all three complete: the third waited, it was not dropped
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}

func TestConnNotificationsInOrder(t *testing.T) {
	a, _, _, hb := connPair(t, Options{})
	const n = 300
	for i := range n {
		if err := a.Notify("note", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		<-hb.noted
	}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	for i, s := range hb.notes {
		if want := fmt.Sprintf("note %d", i); s != want {
			t.Fatalf("notification %d is %q", i, s)
		}
	}
}

func TestConnCloseFailsPendingAndCancelsHandlers(t *testing.T) {
	a, b, _, hb := connPair(t, Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "block", nil)
		errc <- err
	}()
	<-hb.started
	a.Close()
	a.Close() // idempotent
	if err := <-errc; !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
		t.Fatalf("pending call: got %v, want unavailable", err)
	}
	if got := <-hb.started; got != "cancelled" {
		t.Fatalf("peer's handler: got %q, want cancelled", got)
	}
	<-b.Done()
	if _, err := a.Call(context.Background(), "echo", nil); !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
		t.Fatalf("call after close: got %v", err)
	}
	if err := a.Notify("n", nil); !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
		t.Fatalf("notify after close: got %v", err)
	}
	if !errors.Is(a.Err(), ErrClosed) || !errors.Is(b.Err(), io.EOF) {
		t.Fatalf("reasons: %v, %v", a.Err(), b.Err())
	}
}

func TestConnCallContext(t *testing.T) {
	a, _, _, hb := connPair(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-hb.started; cancel() }()
	if _, err := a.Call(ctx, "block", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	// The peer's handler is cancelled too (CancelMethod), and its late
	// response finds no pending call and is dropped.
	if got := <-hb.started; got != "cancelled" {
		t.Fatalf("peer handler: %q", got)
	}
	if _, err := a.Call(context.Background(), "echo", nil); err != nil {
		t.Fatal(err)
	}
}

func TestConnShutdownDrains(t *testing.T) {
	a, b, _, hb := connPair(t, Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "block", nil)
		errc <- err
	}()
	<-hb.started
	shut := make(chan error, 1)
	go func() { shut <- b.Shutdown(context.Background()) }()
	// New requests are refused while the running one finishes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := a.Call(context.Background(), "echo", nil)
		if errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo during drain: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	close(hb.release)
	if err := <-errc; err != nil {
		t.Fatalf("in-flight call during drain: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	<-a.Done()
}

func TestConnShutdownDeadline(t *testing.T) {
	a, b, _, hb := connPair(t, Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), "block", nil)
		errc <- err
	}()
	<-hb.started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	if got := <-hb.started; got != "cancelled" {
		t.Fatalf("the running handler was %q, not cancelled", got)
	}
	if err := <-errc; !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
		t.Fatalf("the cut-off call got %v, want unavailable", err)
	}
}

// rawPeer drives one end of a socket by hand, to send bytes no Conn would.
type rawPeer struct {
	c net.Conn
	r *bufio.Reader
}

func (p rawPeer) next(t *testing.T) []any {
	t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var v []any
	if err := msgpack.NewDecoder(p.r).Decode(&v); err != nil {
		t.Fatalf("reading from the conn: %v", err)
	}
	return v
}

func (p rawPeer) eof(t *testing.T) {
	t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := p.r.ReadByte(); err != io.EOF {
		t.Fatalf("want EOF after the error, got %x %v", b, err)
	}
}

func TestConnBadInput(t *testing.T) {
	cases := []struct {
		name   string
		in     []byte
		msgid  bool // answered as a response to request 7
		code   api.Code
		before bool // a valid request before the bad bytes is answered first
	}{
		{"reserved code", []byte{0xc1}, false, api.CodeProtocolError, false},
		{"not an array", []byte{0x80}, false, api.CodeProtocolError, false},
		{"unknown type tag", []byte{0x94, 0x05, 0x07, 0xa1, 'm', 0x90}, false, api.CodeProtocolError, false},
		{"params not a map", cat(reqHead, []byte{0x91, 0x05}), true, api.CodeInvalidArgument, false},
		{"method not a string", []byte{0x94, 0x00, 0x07, 0x05, 0x90}, true, api.CodeProtocolError, false},
		{"lying bin32", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff}), true, api.CodeMessageTooLarge, false},
		{"lying array32 outer", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, false, api.CodeMessageTooLarge, false},
		{"too deep", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'd'}, nested(100)), true, api.CodeProtocolError, false},
		{"after a good request", cat(mustMarshal(t, []any{0, 1, "echo", []any{map[string]any{}}}), []byte{0xc1}), false, api.CodeProtocolError, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, y := socketPair(t)
			c := NewConn(NewStreamTransport(x, 1024), Options{})
			c.Start(newTestHandler())
			defer c.Close()
			p := rawPeer{c: y, r: bufio.NewReader(y)}
			if _, err := y.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			if tc.before {
				if v := p.next(t); fmt.Sprint(v) != "[1 1 <nil> map[]]" {
					t.Fatalf("reply to the good request: %v", v)
				}
			}
			v := p.next(t)
			var code any
			if tc.msgid {
				if len(v) != 4 || fmt.Sprint(v[0], " ", v[1]) != "1 7" || v[3] != nil {
					t.Fatalf("want an error response to request 7, got %v", v)
				}
				code = v[2].(map[string]any)["code"]
			} else {
				if len(v) != 3 || fmt.Sprint(v[0], " ", v[1]) != "2 "+api.NotifyProtocolError {
					t.Fatalf("want a protocol-error notification, got %v", v)
				}
				code = v[2].([]any)[0].(map[string]any)["code"]
			}
			if code != string(tc.code) {
				t.Fatalf("code %v, want %s", code, tc.code)
			}
			p.eof(t)
			<-c.Done()
			var pe *ProtocolError
			if !errors.As(c.Err(), &pe) {
				t.Fatalf("close reason %v", c.Err())
			}
		})
	}
}

func TestConnCloseWithError(t *testing.T) {
	x, y := socketPair(t)
	c := NewConn(NewStreamTransport(x, 0), Options{})
	c.CloseWithError(api.Errorf(api.CodePermissionDenied, "uid 1234 may not connect"))
	p := rawPeer{c: y, r: bufio.NewReader(y)}
	v := p.next(t)
	if fmt.Sprint(v) != "[2 kernel/protocol-error [map[code:permission_denied message:uid 1234 may not connect]]]" {
		t.Fatalf("got %v", v)
	}
	p.eof(t)
}

// A peer that never reads must not keep a graceful close waiting forever.
func TestConnCloseTimeout(t *testing.T) {
	x, _ := socketPair(t)
	c := NewConn(NewStreamTransport(x, 0), Options{CloseTimeout: 50 * time.Millisecond, QueueSize: 1})
	var sent atomic.Int64
	go func() {
		for c.Notify("flood", map[string]any{"b": make([]byte, 64<<10)}) == nil {
			sent.Add(1)
		}
	}()
	for last := int64(-1); sent.Load() != last; { // wait until the socket buffer is full
		last = sent.Load()
		time.Sleep(30 * time.Millisecond)
	}
	c.CloseWithError(api.Errorf(api.CodeProtocolError, "bye"))
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("close waited on a peer that does not read")
	}
}
