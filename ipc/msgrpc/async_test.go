package msgrpc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// asyncHandler takes "later" requests (AsyncHandler): each waits in pending
// until the test answers it; its cancel reports on cancelled.
type asyncHandler struct {
	*testHandler
	pending   chan func(any, error)
	cancelled chan struct{}
	decline   bool
}

func (h *asyncHandler) AsyncMethod(method string) bool { return method == "later" }

func (h *asyncHandler) StartRequest(_ string, _ api.RawParams, reply func(any, error)) (func(), bool) {
	if h.decline {
		return nil, false
	}
	h.pending <- reply
	return func() { h.cancelled <- struct{}{}; reply(nil, api.Errorf(api.CodeCancelled, "cancelled")) }, true
}

func asyncPair(t *testing.T, opts Options) (a, b *Conn, hb *asyncHandler) {
	t.Helper()
	ra, rb := socketPair(t)
	a = NewConn(NewStreamTransport(ra, 0), opts)
	b = NewConn(NewStreamTransport(rb, 0), opts)
	hb = &asyncHandler{testHandler: newTestHandler(), pending: make(chan func(any, error), 16), cancelled: make(chan struct{}, 16)}
	a.Start(newTestHandler())
	b.Start(hb)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, hb
}

func TestAsyncHandlerAnswersLater(t *testing.T) {
	a, _, hb := asyncPair(t, Options{})
	ctx := context.Background()
	got := make(chan error, 1)
	go func() {
		raw, err := a.Call(ctx, "later", nil)
		var e echoParams
		if err == nil {
			err = raw.Decode(&e)
		}
		if err == nil && e.V != "late" {
			err = errors.New("wrong result " + e.V)
		}
		got <- err
	}()
	reply := <-hb.pending
	// Other requests go on meanwhile: the reader does not wait on it.
	if _, err := a.Call(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
	reply(echoParams{V: "late"}, nil)
	reply(nil, errors.New("a second reply is ignored"))
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestAsyncHandlerDeclines(t *testing.T) {
	a, _, hb := asyncPair(t, Options{})
	hb.decline = true
	// Declined, it is served by HandleRequest, which knows no "later".
	if _, err := a.Call(context.Background(), "later", nil); api.CodeOf(err) != api.CodeUnknownMethod {
		t.Fatalf("got %v", err)
	}
}

func TestAsyncHandlerCancel(t *testing.T) {
	a, _, hb := asyncPair(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := a.Call(ctx, "later", nil); done <- err }()
	<-hb.pending
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	select {
	case <-hb.cancelled: // the peer's rpc/cancel reached the taken request
	case <-time.After(5 * time.Second):
		t.Fatal("a taken request was not cancelled by rpc/cancel")
	}
}

func TestAsyncHandlerShutdownWaitsAndCloseCancels(t *testing.T) {
	a, b, hb := asyncPair(t, Options{})
	go func() { _, _ = a.Call(context.Background(), "later", nil) }()
	reply := <-hb.pending
	shut := make(chan error, 1)
	go func() { shut <- b.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a taken request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	reply(nil, nil)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}

	a, b, hb = asyncPair(t, Options{})
	go func() { _, _ = a.Call(context.Background(), "later", nil) }()
	<-hb.pending
	b.Close()
	select {
	case <-hb.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("closing the connection did not cancel a taken request")
	}
}

func TestAsyncHandlerInFlightBound(t *testing.T) {
	a, _, hb := asyncPair(t, Options{MaxInFlight: 2})
	for range 3 {
		go func() { _, _ = a.Call(context.Background(), "later", nil) }()
	}
	r1, r2 := <-hb.pending, <-hb.pending
	select {
	case <-hb.pending:
		t.Fatal("a third request was taken past MaxInFlight 2")
	case <-time.After(50 * time.Millisecond):
	}
	r1(nil, nil)
	r3 := <-hb.pending
	r2(nil, nil)
	r3(nil, nil)
}

func TestCallAsync(t *testing.T) {
	a, b, _ := asyncPair(t, Options{})
	type result struct {
		raw    api.RawParams
		err    error
		closed bool
	}
	got := make(chan result, 4)
	done := func(raw api.RawParams, err error, closed bool) { got <- result{raw, err, closed} }
	if _, ok := a.CallAsync("echo", echoParams{V: "x"}, done); !ok {
		t.Fatal("not sent")
	}
	r := <-got
	var e echoParams
	if r.err != nil || r.closed || r.raw.Decode(&e) != nil || e.V != "x" {
		t.Fatalf("%+v %+v", r, e)
	}
	if _, ok := a.CallAsync("fail", nil, done); !ok {
		t.Fatal("not sent")
	}
	if r := <-got; r.err == nil || r.closed {
		t.Fatalf("%+v", r)
	}
	// Abandoned, its done is never called.
	id, _ := a.CallAsync("block", nil, done)
	a.Abandon(id)
	// Pending when the connection closes: unavailable, closed.
	if _, ok := a.CallAsync("block", nil, done); !ok {
		t.Fatal("not sent")
	}
	b.Close()
	r = <-got
	if api.CodeOf(r.err) != api.CodeUnavailable || !r.closed {
		t.Fatalf("%+v", r)
	}
	select {
	case r := <-got:
		t.Fatalf("abandoned call answered: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	// On a closed connection, at once.
	<-a.Done()
	if _, ok := a.CallAsync("echo", nil, done); !ok {
		t.Fatal("not sent")
	}
	if r := <-got; !r.closed {
		t.Fatalf("%+v", r)
	}
}
