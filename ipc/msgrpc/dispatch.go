package msgrpc

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/continuum-grid/continuum/api"
)

// dispatcher is a Conn's serving side: it admits the peer's requests (or
// refuses them once the connection drains or closes), counts each one in
// flight from admission until its response is queued, keeps the cancel
// function of each one running in a goroutine or taken by an AsyncHandler
// (for rpc/cancel), and bounds those (MaxInFlight), reusing a few idle
// workers.
//
// Shutdown's wait for running requests is the in-flight count reaching zero
// after refusing began; admit and release are the only places that count.
type dispatcher struct {
	ctx    context.Context // handlers' context, cancelled when the connection closes
	cancel context.CancelFunc
	sem    chan struct{} // one token per request served by a goroutine
	work   chan job      // hands a request to an idle worker; unbuffered
	idle   atomic.Int32  // workers waiting on work

	mu       sync.Mutex
	refusing bool                // draining or closed: admit says no
	closed   bool                // cancelAll ran: a request taken from now on is cancelled at once
	running  map[uint32]*running // requests served by goroutines or taken, by msgid
	inflight int
	drained  chan struct{} // made by startDrain, closed once inflight is zero
}

// running is a request being served; a pointer, so that a peer that reuses
// a msgid still in flight cannot make one request's end cancel the other.
type running struct {
	// cancel ends the request: the cancel of its own context (ownCtx), which
	// release calls too, or the cancel an AsyncHandler gave, which only
	// rpc/cancel and the connection's close call. Set before the request is
	// in the running map, and not changed after.
	cancel   func()
	ownCtx   bool
	released bool // under mu: its response is queued
}

// job is one admitted request. r is nil for a request served inline, which
// runs under the connection's context and cannot be cancelled on its own.
type job struct {
	ctx    context.Context
	r      *running
	h      Handler
	id     uint32
	method string
	params api.RawParams
}

func (d *dispatcher) init(maxInFlight int) {
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.sem = make(chan struct{}, maxInFlight)
	d.work = make(chan job)
	d.running = map[uint32]*running{}
}

// admit counts request id in flight and returns its context, or reports false
// when the connection drains or has closed. cancellable gives the request a
// context of its own, which rpc/cancel and release end.
func (d *dispatcher) admit(id uint32, cancellable bool) (ctx context.Context, r *running, ok bool) {
	d.mu.Lock()
	if d.refusing {
		d.mu.Unlock()
		return nil, nil, false
	}
	d.inflight++
	if !cancellable {
		d.mu.Unlock()
		return d.ctx, nil, true
	}
	ctx, cancel := context.WithCancel(d.ctx)
	r = &running{cancel: cancel, ownCtx: true}
	d.running[id] = r
	d.mu.Unlock()
	return ctx, r, true
}

// admitTaken counts request id in flight, for an AsyncHandler to take, or
// reports false when the connection drains or has closed. The returned
// running is in no map until track puts it there.
func (d *dispatcher) admitTaken() (*running, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refusing {
		return nil, false
	}
	d.inflight++
	return &running{}, true
}

// track makes the cancel of a taken request reachable by rpc/cancel and the
// connection's close, unless it was answered already; after cancelAll it
// calls cancel at once instead.
func (d *dispatcher) track(id uint32, r *running, cancel func()) {
	d.mu.Lock()
	if r.released {
		d.mu.Unlock()
		return
	}
	r.cancel = cancel
	if d.closed {
		d.mu.Unlock()
		cancel()
		return
	}
	d.running[id] = r
	d.mu.Unlock()
}

// release ends what admit or admitTaken began.
func (d *dispatcher) release(id uint32, r *running) {
	if r != nil && r.ownCtx {
		r.cancel()
	}
	d.mu.Lock()
	if r != nil {
		r.released = true
		if d.running[id] == r {
			delete(d.running, id)
		}
	}
	d.inflight--
	if d.drained != nil && d.inflight == 0 {
		close(d.drained)
	}
	d.mu.Unlock()
}

// cancelAll ends every request still being served: the connection has
// closed. Handlers' contexts end with the connection's; taken requests get
// their cancel called.
func (d *dispatcher) cancelAll() {
	d.mu.Lock()
	d.refusing, d.closed = true, true
	var taken []func()
	for _, r := range d.running {
		if !r.ownCtx {
			taken = append(taken, r.cancel)
		}
	}
	d.mu.Unlock()
	d.cancel()
	for _, cancel := range taken {
		cancel()
	}
}

// startDrain refuses new requests from now on and returns a channel closed
// once none is in flight.
func (d *dispatcher) startDrain() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refusing = true
	if d.drained == nil {
		d.drained = make(chan struct{})
		if d.inflight == 0 {
			close(d.drained)
		}
	}
	return d.drained
}

// stop refuses new requests: the connection is closing. (Its close then
// cancels the running ones with cancel.)
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.refusing = true
	d.mu.Unlock()
}

// cancelRequest ends the context of the request the peer's rpc/cancel names.
func (d *dispatcher) cancelRequest(params api.RawParams) {
	var p cancelParams
	if err := params.Decode(&p); err != nil {
		return
	}
	var cancel func()
	d.mu.Lock()
	if r := d.running[p.MsgID]; r != nil {
		cancel = r.cancel
	}
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// dispatch serves a request in a goroutine of its own, waiting (on the reader)
// while MaxInFlight of them run.
func (c *Conn) dispatch(h Handler, id uint32, method string, params api.RawParams) {
	ctx, r, ok := c.d.admit(id, true)
	if !ok {
		c.refuse(id)
		return
	}
	select {
	case c.d.sem <- struct{}{}:
	case <-c.done:
		c.d.release(id, r)
		return
	}
	j := job{ctx, r, h, id, method, params}
	select {
	case c.d.work <- j: // an idle worker took it
	default:
		go c.worker(j)
	}
}

// startAsync offers a request to an AsyncHandler, waiting (on the reader)
// while MaxInFlight requests are served, as dispatch does. It reports false
// when the handler did not take it, which leaves it to dispatch.
func (c *Conn) startAsync(h AsyncHandler, id uint32, method string, params api.RawParams) bool {
	r, ok := c.d.admitTaken()
	if !ok {
		c.refuse(id)
		return true
	}
	select {
	case c.d.sem <- struct{}{}:
	case <-c.done:
		c.d.release(id, r)
		return true
	}
	t := &taken{c: c, r: r, id: id, method: method}
	cancel, ok := h.StartRequest(method, params, t.reply)
	if !ok {
		<-c.d.sem
		c.d.release(id, r)
		return false
	}
	if cancel != nil {
		c.d.track(id, r, cancel)
	}
	return true
}

// taken is a request an AsyncHandler took.
type taken struct {
	c       *Conn
	r       *running
	id      uint32
	method  string
	replied atomic.Bool
}

// reply queues the response of a taken request without waiting: it may run
// on another connection's reader, which must not wait on this peer. What it
// queues past the bound is bounded by the requests in flight.
func (t *taken) reply(result any, err error) {
	if t.replied.Swap(true) {
		return
	}
	c := t.c
	c.respond(t.id, t.method, result, err, true)
	c.d.release(t.id, t.r)
	<-c.d.sem
}

// serveInline serves a request on the reader goroutine (InlineHandler). It
// counts as in flight, so Shutdown waits for its response as for any other;
// it needs no context of its own and no entry for rpc/cancel, since it ends
// before the reader could read a cancel for it.
func (c *Conn) serveInline(h Handler, id uint32, method string, params api.RawParams) {
	ctx, _, ok := c.d.admit(id, false)
	if !ok {
		c.refuse(id)
		return
	}
	j := job{ctx, nil, h, id, method, params}
	c.serve(&j)
}

// refuse answers a request that came after draining began.
func (c *Conn) refuse(id uint32) {
	_ = c.send(context.Background(), encodeResponse(id, nil, api.Errorf(api.CodeUnavailable, "shutting down")))
}

// maxIdleWorkers bounds the goroutines a connection keeps waiting for work.
const maxIdleWorkers = 8

// worker serves j, then waits for more work while few others wait. Every
// request still runs in a goroutine of its own for as long as it runs;
// reusing finished ones saves creating a goroutine and growing its stack
// through the msgpack encoder for every request, which profiled at about a
// sixth of a small round trip's CPU time.
func (c *Conn) worker(j job) {
	for {
		c.serve(&j)
		<-c.d.sem
		if c.d.idle.Add(1) > maxIdleWorkers {
			c.d.idle.Add(-1)
			return
		}
		select {
		case j = <-c.d.work:
			c.d.idle.Add(-1)
		case <-c.done:
			c.d.idle.Add(-1)
			return
		}
	}
}

// serve runs an admitted request, queues its response and releases it.
func (c *Conn) serve(j *job) {
	result, err := c.call(j.ctx, j.h, j.method, j.params)
	c.respond(j.id, j.method, result, err, false)
	c.d.release(j.id, j.r)
}

// respond sends a handler's outcome as the response to request id; noWait
// queues it past the queue's bound rather than wait for room.
func (c *Conn) respond(id uint32, method string, result any, err error, noWait bool) {
	e := encodeResponse(id, result, api.AsError(err))
	if e.buf.Len() > c.maxSize {
		n := e.buf.Len()
		putEncoder(e)
		e = encodeResponse(id, nil, api.Errorf(api.CodeMessageTooLarge, "the result of %s is %d bytes, over the %d byte limit", method, n, c.maxSize))
	}
	_ = c.enqueue(context.Background(), outMsg{e: e, noWait: noWait}, true)
}

// call runs one handler and turns a panic into an internal error, so no input
// can take the daemon down.
func (c *Conn) call(ctx context.Context, h Handler, method string, params api.RawParams) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("request handler panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, api.Errorf(api.CodeInternal, "%s: handler panicked: %v", method, p)
		}
	}()
	return h.HandleRequest(ctx, method, params)
}

// notification passes a notification to the handler, on the reader.
func (c *Conn) notification(h Handler, method string, params api.RawParams) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("notification handler panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	h.HandleNotification(c.d.ctx, method, params)
}
