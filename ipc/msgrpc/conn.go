package msgrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// Handler serves what the peer sends on a Conn.
type Handler interface {
	// HandleRequest serves one request, in its own goroutine. ctx ends when
	// the connection closes or the peer cancels the request (CancelMethod). The result may be any value msgpack encodes;
	// msgpack.RawMessage and api.RawParams are written verbatim. The error
	// becomes the response's error map through api.AsError.
	HandleRequest(ctx context.Context, method string, params api.RawParams) (any, error)
	// HandleNotification is called on the connection's reader goroutine, in
	// the order notifications arrived, so it must not block: hand slow work
	// to another goroutine.
	HandleNotification(ctx context.Context, method string, params api.RawParams)
}

// InlineHandler is a Handler that names methods cheap enough to serve on the
// connection's reader goroutine. Such a request runs at once where it was
// read, and its response is written by that goroutine too when the socket
// takes it without waiting: no hand-off to a worker and back, which is most of
// a small round trip's cost. While an inline method runs, the connection reads
// nothing else, so a method named here must be quick and must never block: no
// I/O, no call to a peer, no lock that is held across either. Requests for
// other methods still run in goroutines of their own, so a slow one never
// holds up an inline one behind it.
type InlineHandler interface {
	Handler
	// InlineMethod reports whether requests for method may be served inline.
	// It is called once per request, on the reader goroutine, and must not
	// block either.
	InlineMethod(method string) bool
}

// HandlerFuncs adapts two functions to Handler; a nil function answers
// requests with unknown_method and ignores notifications.
type HandlerFuncs struct {
	Request      func(ctx context.Context, method string, params api.RawParams) (any, error)
	Notification func(ctx context.Context, method string, params api.RawParams)
}

// HandleRequest implements Handler.
func (h HandlerFuncs) HandleRequest(ctx context.Context, method string, params api.RawParams) (any, error) {
	if h.Request == nil {
		return nil, api.Errorf(api.CodeUnknownMethod, "%s: no such method", method)
	}
	return h.Request(ctx, method, params)
}

// HandleNotification implements Handler.
func (h HandlerFuncs) HandleNotification(ctx context.Context, method string, params api.RawParams) {
	if h.Notification != nil {
		h.Notification(ctx, method, params)
	}
}

// Options tune a Conn; the zero value is usable.
type Options struct {
	// MaxMessageSize bounds outgoing messages, so that a result too large for
	// the peer to accept becomes a message_too_large error here instead of a
	// closed connection there. Incoming messages are bounded by the Transport.
	// Default DefaultMaxMessageSize.
	MaxMessageSize int
	// MaxInFlight bounds the requests served at once. Above it the reader
	// waits for a handler to finish (backpressure on this connection only);
	// nothing is dropped. Default 1024.
	MaxInFlight int
	// QueueSize bounds the messages waiting to be written while the peer is
	// not reading fast enough; senders wait when it is full. Default 256.
	QueueSize int
	// CloseTimeout bounds how long a graceful close (after a protocol error,
	// or at the end of Shutdown) waits for its last messages to be written
	// to a peer that may not be reading. Default 2s.
	CloseTimeout time.Duration
	// Logger gets protocol errors and handler panics; nil discards.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxInFlight  = 1024
	DefaultQueueSize    = 256
	DefaultCloseTimeout = 2 * time.Second
)

// Conn is one MessagePack-RPC connection, used in both directions: it serves
// the peer's requests with a Handler and makes its own calls. One reader
// goroutine parses incoming messages and never waits on a handler: each
// request runs in its own goroutine (at most MaxInFlight at once) unless the
// Handler names its method inline-safe (InlineHandler), responses go to the
// calls waiting for them, notifications to the Handler in order.
//
// Writes combine. A goroutine that sends a message while nobody is writing
// writes it itself, and before it lets go it also writes whatever other
// goroutines queued meanwhile, all in one syscall per round; those others
// return as soon as their message is queued. The socket is only ever tried
// without waiting: what it will not take at once (a peer that is not reading)
// is left to the connection's writer goroutine, so no sender, and never the
// reader, waits on the peer beyond the bounded queue (QueueSize). Transports
// that cannot be tried without waiting (anything but a socket under
// StreamTransport) are always written by the writer goroutine, and so are
// notifications (see Notify), which come in streams that batch better there.
//
// Every method is safe for concurrent use.
type Conn struct {
	t            Transport
	log          *slog.Logger
	maxSize      int
	closeTimeout time.Duration

	ctx    context.Context // handlers' context, cancelled by close
	cancel context.CancelFunc
	sem    chan struct{}
	work   chan job     // hands a request to an idle worker; unbuffered
	idle   atomic.Int32 // workers waiting on work
	done   chan struct{}

	startOnce sync.Once
	closeOnce sync.Once

	mu       sync.Mutex
	closeErr error
	closed   bool
	closing  bool
	nextID   uint32
	pending  map[uint32]chan response
	running  map[uint32]*running // requests being served, by msgid
	inflight int
	draining bool
	drained  chan struct{}
	timer    *time.Timer

	// The outgoing side; see drain. direct is the transport when senders may
	// write to it themselves, nil when only writeLoop may.
	direct    *StreamTransport
	queueSize int
	wmu       sync.Mutex
	wq        []outMsg      // queued messages, oldest first
	wbusy     bool          // someone holds the right to write (and will drain wq)
	wshut     bool          // the last message was queued, or the conn closed
	wroom     chan struct{} // closed when wq is taken; nil when no sender waits
	wkick     chan struct{} // passes the right to write to writeLoop
	// Owned by whoever holds the right to write, so not under wmu:
	wspare []outMsg // an emptied batch, reused as the next wq
	wrest  []outMsg // messages an inline writer left to writeLoop
	wflush bool     // the transport holds bytes an inline writer could not send
}

// running is a request being served; a pointer, so that a peer that reuses
// a msgid still in flight cannot make one request's end cancel the other.
type running struct{ cancel context.CancelFunc }

type outMsg struct {
	e          *encoder // nil for a bare close marker
	closeAfter bool     // flush, then close with reason
	reason     error
}

type response struct {
	result api.RawParams
	err    error
}

// CancelMethod is the notification a Conn sends when a call's context ends
// before its response: {msgid}. The receiving Conn cancels the context of
// the handler serving that request; the handler's response, if any, is then
// dropped by the caller. It is handled inside the connection and never
// reaches the Handler. (msgpack-rpc has no cancellation of its own; LSP's
// $/cancelRequest is the same idea.)
const CancelMethod = "rpc/cancel"

type cancelParams struct {
	MsgID uint32 `msgpack:"msgid"`
}

// ErrClosed is the reason of a connection closed by Close.
var ErrClosed = errors.New("connection closed")

// NewConn wraps a transport. Writing works at once, so Notify and Call
// work before Start; incoming messages are read only after Start.
func NewConn(t Transport, opts Options) *Conn {
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		t:            t,
		log:          log,
		maxSize:      opts.MaxMessageSize,
		closeTimeout: opts.CloseTimeout,
		ctx:          ctx,
		cancel:       cancel,
		queueSize:    opts.QueueSize,
		wkick:        make(chan struct{}, 1),
		sem:          make(chan struct{}, opts.MaxInFlight),
		work:         make(chan job),
		done:         make(chan struct{}),
		pending:      map[uint32]chan response{},
		running:      map[uint32]*running{},
	}
	if st, ok := t.(*StreamTransport); ok && st.canTry() {
		c.direct = st
	}
	go c.writeLoop()
	return c
}

// Start begins reading and serving incoming messages with h. Calls after the
// first do nothing.
func (c *Conn) Start(h Handler) {
	c.startOnce.Do(func() { go c.readLoop(h) })
}

// Done is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection closed: ErrClosed after Close, a
// *ProtocolError after bad input, io.EOF when the peer hung up, or the
// transport's error. It is nil while the connection is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Call sends a request and waits for its response. It returns the raw result
// (nil when the result is nil), the peer's error as an *api.Error, an
// unavailable *api.Error when the connection is or becomes closed, or ctx's
// error as it is.
func (c *Conn) Call(ctx context.Context, method string, params any) (api.RawParams, error) {
	ch := respChans.Get().(chan response)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		respChans.Put(ch)
		return nil, c.unavailable()
	}
	id := c.nextID
	for {
		id++
		if _, busy := c.pending[id]; !busy {
			break
		}
	}
	c.nextID = id
	c.pending[id] = ch
	c.mu.Unlock()

	e, err := encodeRequest(id, method, params)
	if err == nil {
		err = c.checkSize(e)
	}
	if err == nil {
		err = c.send(ctx, e)
	}
	if err != nil {
		c.forget(id)
		return nil, err
	}
	select {
	case r := <-ch:
		// The one send this channel could get has been received, so nobody
		// holds it any more and it can serve another call.
		respChans.Put(ch)
		return r.result, r.err
	case <-ctx.Done():
		c.forget(id)
		// Tell the peer, so its handler stops too; best effort, and never
		// holding up the caller whose context just ended.
		go func() { _ = c.Notify(CancelMethod, cancelParams{MsgID: id}) }()
		return nil, ctx.Err()
	}
}

// respChans holds response channels between calls: each is made with room
// for the one response it carries, and goes back only once that was received
// (never after a call gave up, when a late response may still be sent to it).
var respChans = sync.Pool{New: func() any { return make(chan response, 1) }}

// Notify sends a notification. It waits while the outgoing queue is full.
//
// Unlike a request or a response, a notification is never written by its
// sender: it is queued for writeLoop. Notifications come in streams (events
// to a subscriber, a fire-and-forget emitter), and a sender writing each one
// itself would make one syscall per message, for the peer to read one at a
// time; queued, a stream leaves in batches, one write per batch.
func (c *Conn) Notify(method string, params any) error {
	e, err := encodeNotification(method, params)
	if err == nil {
		err = c.checkSize(e)
	}
	if err != nil {
		return err
	}
	return c.enqueue(context.Background(), outMsg{e: e}, false)
}

// Close closes the connection at once: pending calls fail with unavailable,
// the contexts of running handlers are cancelled, queued messages are
// dropped. It is idempotent and always returns nil.
func (c *Conn) Close() error {
	c.closeWith(ErrClosed)
	return nil
}

// CloseWithError tells the peer why it is being disconnected, with a
// kernel/protocol-error notification carrying e's code and message, then
// closes the connection once that is written (or after the close timeout).
// It does not wait.
func (c *Conn) CloseWithError(e *api.Error) {
	c.closeAfter(protocolNotice(e), e)
}

// Shutdown drains the connection: requests that arrive from now on are
// answered with unavailable, those running may finish until ctx ends, their
// responses are flushed, and the connection closes. Outgoing calls keep
// working meanwhile, since a running handler may be waiting on one. It
// returns ctx's error when it had to cut running handlers short.
func (c *Conn) Shutdown(ctx context.Context) error {
	drained := c.startDrain()
	select {
	case <-drained:
		c.closeAfter(nil, ErrClosed)
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.closeWith(ErrClosed)
		return ctx.Err()
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.closeWith(ErrClosed)
		return ctx.Err()
	}
}

// startDrain stops dispatching new requests and returns a channel closed
// once none is running.
func (c *Conn) startDrain() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.drained == nil {
		c.drained = make(chan struct{})
		if c.inflight == 0 {
			close(c.drained)
		}
	}
	return c.drained
}

func (c *Conn) unavailable() *api.Error {
	c.mu.Lock()
	reason := c.closeErr
	c.mu.Unlock()
	if reason == nil || reason == ErrClosed {
		return api.Errorf(api.CodeUnavailable, "connection closed")
	}
	return api.Errorf(api.CodeUnavailable, "connection closed: %v", reason)
}

func (c *Conn) forget(id uint32) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Conn) checkSize(e *encoder) error {
	if e.buf.Len() > c.maxSize {
		n := e.buf.Len()
		putEncoder(e)
		return api.Errorf(api.CodeMessageTooLarge, "message of %d bytes exceeds the %d byte limit", n, c.maxSize)
	}
	return nil
}

// send queues an encoded message, owning e from here on, and writes it too
// when nobody else is writing (see enqueue). It waits only while the queue is
// full, which happens only when the peer does not read.
func (c *Conn) send(ctx context.Context, e *encoder) error {
	return c.enqueue(ctx, outMsg{e: e}, true)
}

// maxInlineRounds bounds how many batches a sender writes, for itself and
// for the senders that queued behind it, before it leaves the rest to
// writeLoop: under a steady stream a sender (a handler, the reader) must
// still get back to its own work.
const maxInlineRounds = 8

// enqueue adds m to the queue and sees that it gets written: by the
// goroutine holding the right to write, if there is one, which drains the
// queue before it lets go; else by this goroutine, which takes that right
// (or by writeLoop, for a transport that cannot be tried without waiting).
// A close marker (closeAfter) never waits for room and is the last message
// the queue takes.
//
// inline false leaves the writing to writeLoop even when nobody is writing.
func (c *Conn) enqueue(ctx context.Context, m outMsg, inline bool) error {
	c.wmu.Lock()
	for !m.closeAfter && !c.wshut && len(c.wq) >= c.queueSize {
		if c.wroom == nil {
			c.wroom = make(chan struct{})
		}
		room := c.wroom
		c.wmu.Unlock()
		select {
		case <-room:
		case <-c.done:
			putEncoder(m.e)
			return c.unavailable()
		case <-ctx.Done():
			putEncoder(m.e)
			return ctx.Err()
		}
		c.wmu.Lock()
	}
	if c.wshut {
		c.wmu.Unlock()
		if m.e != nil {
			putEncoder(m.e)
		}
		return c.unavailable()
	}
	if m.closeAfter {
		c.wshut = true
	}
	c.wq = append(c.wq, m)
	if c.wbusy {
		c.wmu.Unlock()
		return nil
	}
	c.wbusy = true
	c.wmu.Unlock()
	if c.direct == nil || !inline {
		c.handOff(nil, false)
		return nil
	}
	c.drain(true)
	return nil
}

// drain writes the queue, a batch at a time with one flush per batch, until
// it finds the queue empty and gives up the right to write, which its caller
// holds. Inline (a sender writing), the socket is only tried: when it takes
// less than everything, or after maxInlineRounds, the rest goes to writeLoop
// with the right to write. writeLoop itself (inline false) waits on the
// socket as long as it takes, or until the connection closes.
func (c *Conn) drain(inline bool) {
	batch := c.wrest
	c.wrest = nil
	for round := 0; ; round++ {
		if batch == nil {
			c.wmu.Lock()
			if len(c.wq) == 0 {
				c.wbusy = false
				c.wmu.Unlock()
				return
			}
			batch, c.wq, c.wspare = c.wq, c.wspare, nil
			if c.wroom != nil {
				close(c.wroom)
				c.wroom = nil
			}
			c.wmu.Unlock()
		}
		if inline && round == maxInlineRounds {
			c.handOff(batch, false)
			return
		}
		for i := range batch {
			m := batch[i]
			batch[i] = outMsg{}
			if m.e != nil {
				err := c.t.WriteMessage(m.e.buf.Bytes())
				putEncoder(m.e)
				if err != nil {
					c.closeWith(err)
					return
				}
			}
			// Flush at the end of the batch, before a close, and whenever
			// a socket's buffer has filled (so it stays bounded); other
			// transports buffer as they see fit until their Flush.
			full := c.direct != nil && c.direct.buffered() >= streamBufSize
			if !m.closeAfter && !full && i < len(batch)-1 {
				continue
			}
			if inline {
				done, err := c.direct.tryFlush()
				if err != nil {
					c.closeWith(err)
					return
				}
				if !done {
					rest := batch[i+1:]
					if m.closeAfter {
						rest = []outMsg{{closeAfter: true, reason: m.reason}}
					}
					c.handOff(rest, true)
					return
				}
			} else if err := c.t.Flush(); err != nil {
				c.closeWith(err)
				return
			}
			if m.closeAfter {
				c.closeWith(m.reason)
				return
			}
		}
		c.wspare = batch[:0]
		batch = nil
	}
}

// queueFull reports whether a sender would wait for room in the queue now,
// as happens only when the peer is not reading. The reader then serves even
// inline methods in worker goroutines, so that it keeps reading (until
// MaxInFlight) instead of waiting to queue a response.
func (c *Conn) queueFull() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.wq) >= c.queueSize
}

// handOff passes the right to write to writeLoop, with the messages left of
// a batch and whether the transport still holds bytes to flush.
func (c *Conn) handOff(rest []outMsg, flush bool) {
	c.wrest, c.wflush = rest, flush
	// At most one hand-off is ever pending: the right to write comes back
	// from writeLoop only after it has taken this one.
	select {
	case c.wkick <- struct{}{}:
	case <-c.done:
	}
}

// writeLoop writes when a sender cannot: for transports that cannot be
// tried without waiting, and whenever the socket was full. Its waits on a
// peer that does not read hold up no sender (beyond the queue's bound) and
// end when the connection closes.
func (c *Conn) writeLoop() {
	for {
		select {
		case <-c.wkick:
		case <-c.done:
			return
		}
		if c.wflush {
			c.wflush = false
			if err := c.t.Flush(); err != nil {
				c.closeWith(err)
				continue
			}
		}
		c.drain(false)
	}
}

// closeAfter queues e (when not nil) as the last message and closes the
// connection once it is written, or after the close timeout at the latest.
// It never waits on the peer.
func (c *Conn) closeAfter(e *encoder, reason error) {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		if e != nil {
			putEncoder(e)
		}
		return
	}
	c.closing = true
	c.timer = time.AfterFunc(c.closeTimeout, func() { c.closeWith(reason) })
	c.mu.Unlock()
	_ = c.enqueue(context.Background(), outMsg{e: e, closeAfter: true, reason: reason}, true)
}

func (c *Conn) closeWith(reason error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.closeErr = reason
		pending := c.pending
		c.pending = nil
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mu.Unlock()
		c.wmu.Lock()
		c.wshut = true
		c.wmu.Unlock()
		close(c.done)
		c.cancel()
		_ = c.t.Close()
		if len(pending) > 0 {
			err := c.unavailable()
			for _, ch := range pending {
				ch <- response{err: err}
			}
		}
	})
}

func (c *Conn) readLoop(h Handler) {
	inl, _ := h.(InlineHandler)
	// A stream's Reader has checked each message's structure already; other
	// transports hand over bytes that only ParseMessage checks.
	parse := ParseMessage
	if _, ok := c.t.(*StreamTransport); ok {
		parse = parseFramed
	}
	for {
		b, err := c.t.ReadMessage()
		if err != nil {
			var pe *ProtocolError
			switch {
			case errors.As(err, &pe):
				c.fail(pe)
			case errors.Is(err, io.EOF):
				c.closeWith(io.EOF)
			default:
				c.closeWith(err)
			}
			return
		}
		m, err := parse(b)
		if err != nil {
			c.fail(err.(*ProtocolError))
			return
		}
		switch m.Type {
		case TypeRequest:
			if inl != nil && inl.InlineMethod(m.Method) && !c.queueFull() {
				c.serveInline(h, m.MsgID, m.Method, clone(m.Params))
				continue
			}
			c.dispatch(h, m.MsgID, m.Method, clone(m.Params))
		case TypeResponse:
			c.deliver(m)
		case TypeNotification:
			if m.Method == CancelMethod {
				c.cancelRequest(m.Params)
				continue
			}
			c.notification(h, m.Method, clone(m.Params))
		}
	}
}

// fail reports bad input to the peer (an error response when the request's
// msgid is known, a kernel/protocol-error notification otherwise) and closes
// the connection.
//
// Requests that came before the bad bytes were well formed, so they are
// answered first: the reader stops, running handlers get up to the close
// timeout to finish, and only then does the error go out.
func (c *Conn) fail(pe *ProtocolError) {
	c.log.Info("closing connection after bad input", "err", pe)
	drained := c.startDrain()
	go func() {
		t := time.NewTimer(c.closeTimeout)
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
		case <-c.done:
			return
		}
		if pe.HasMsgID {
			c.closeAfter(encodeResponse(pe.MsgID, nil, pe.Err), pe)
			return
		}
		c.closeAfter(protocolNotice(pe.Err), pe)
	}()
}

func protocolNotice(e *api.Error) *encoder {
	enc, err := encodeNotification(api.NotifyProtocolError, api.ProtocolErrorNotification{Code: e.Code, Message: e.Message})
	if err != nil { // cannot happen: the params are a plain struct
		return nil
	}
	return enc
}

func clone(b []byte) api.RawParams {
	if len(b) == 0 {
		return nil
	}
	return api.RawParams(bytes.Clone(b))
}

func (c *Conn) dispatch(h Handler, id uint32, method string, params api.RawParams) {
	c.mu.Lock()
	if c.draining || c.closed {
		c.mu.Unlock()
		_ = c.send(context.Background(), encodeResponse(id, nil, api.Errorf(api.CodeUnavailable, "shutting down")))
		return
	}
	c.inflight++
	ctx, cancel := context.WithCancel(c.ctx)
	r := &running{cancel: cancel}
	c.running[id] = r
	c.mu.Unlock()
	select {
	case c.sem <- struct{}{}:
	case <-c.done:
		c.finished(id, r)
		return
	}
	j := job{ctx, r, h, id, method, params}
	select {
	case c.work <- j: // an idle worker took it
	default:
		go c.worker(j)
	}
}

// job is one request for a worker.
type job struct {
	ctx    context.Context
	r      *running
	h      Handler
	id     uint32
	method string
	params api.RawParams
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
		c.serve(j.ctx, j.r, j.h, j.id, j.method, j.params)
		if c.idle.Add(1) > maxIdleWorkers {
			c.idle.Add(-1)
			return
		}
		select {
		case j = <-c.work:
			c.idle.Add(-1)
		case <-c.done:
			c.idle.Add(-1)
			return
		}
	}
}

func (c *Conn) cancelRequest(params api.RawParams) {
	var p cancelParams
	if err := params.Decode(&p); err != nil {
		return
	}
	c.mu.Lock()
	r := c.running[p.MsgID]
	c.mu.Unlock()
	if r != nil {
		r.cancel()
	}
}

func (c *Conn) finished(id uint32, r *running) {
	r.cancel()
	c.mu.Lock()
	if c.running[id] == r {
		delete(c.running, id)
	}
	c.inflight--
	if c.draining && c.inflight == 0 {
		close(c.drained)
	}
	c.mu.Unlock()
}

func (c *Conn) serve(ctx context.Context, r *running, h Handler, id uint32, method string, params api.RawParams) {
	defer c.finished(id, r)
	defer func() { <-c.sem }()
	result, err := c.call(ctx, h, method, params)
	c.respond(id, method, result, err)
}

// serveInline serves a request on the reader goroutine (InlineHandler). It
// counts as in flight, so Shutdown waits for its response as for any other;
// it needs no context of its own and no entry for rpc/cancel, since it ends
// before the reader could read a cancel for it.
func (c *Conn) serveInline(h Handler, id uint32, method string, params api.RawParams) {
	c.mu.Lock()
	if c.draining || c.closed {
		c.mu.Unlock()
		_ = c.send(context.Background(), encodeResponse(id, nil, api.Errorf(api.CodeUnavailable, "shutting down")))
		return
	}
	c.inflight++
	c.mu.Unlock()
	result, err := c.call(c.ctx, h, method, params)
	c.respond(id, method, result, err)
	c.mu.Lock()
	c.inflight--
	if c.draining && c.inflight == 0 {
		close(c.drained)
	}
	c.mu.Unlock()
}

// respond sends a handler's outcome as the response to request id.
func (c *Conn) respond(id uint32, method string, result any, err error) {
	e := encodeResponse(id, result, api.AsError(err))
	if e.buf.Len() > c.maxSize {
		n := e.buf.Len()
		putEncoder(e)
		e = encodeResponse(id, nil, api.Errorf(api.CodeMessageTooLarge, "the result of %s is %d bytes, over the %d byte limit", method, n, c.maxSize))
	}
	_ = c.send(context.Background(), e)
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

func (c *Conn) notification(h Handler, method string, params api.RawParams) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("notification handler panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	h.HandleNotification(c.ctx, method, params)
}

func (c *Conn) deliver(m Message) {
	c.mu.Lock()
	ch, ok := c.pending[m.MsgID]
	if ok {
		delete(c.pending, m.MsgID)
	}
	c.mu.Unlock()
	if !ok {
		// Late: the call gave up on its context. Nothing waits for it.
		c.log.Debug("response to no pending call", "msgid", m.MsgID)
		return
	}
	if m.Error != nil {
		ch <- response{err: DecodeError(m.Error)}
		return
	}
	if len(m.Result) == 1 && m.Result[0] == 0xc0 {
		ch <- response{}
		return
	}
	ch <- response{result: clone(m.Result)}
}

// String names the connection's state, for logs.
func (c *Conn) String() string {
	if err := c.Err(); err != nil {
		return fmt.Sprintf("msgrpc.Conn(closed: %v)", err)
	}
	return "msgrpc.Conn(open)"
}
