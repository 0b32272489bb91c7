package msgrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
)

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
	// Three parts, each under its own lock: calls and close (mu, here), the
	// write combiner (w, writer.go) and the serving of the peer's requests
	// (d, dispatch.go). They meet only at done and closeWith.
	t            Transport
	log          *slog.Logger
	maxSize      int
	closeTimeout time.Duration
	done         chan struct{}

	startOnce sync.Once
	closeOnce sync.Once

	w writer
	d dispatcher

	mu       sync.Mutex // guards the fields below
	closeErr error
	closed   bool
	closing  bool
	nextID   uint32
	pending  map[uint32]pendingCall
	timer    *time.Timer
}

// pendingCall is a call waiting for its response: Call waits on ch,
// CallAsync's done is called instead.
type pendingCall struct {
	ch   chan response
	done func(result api.RawParams, err error, closed bool)
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
	c := &Conn{
		t:            t,
		log:          log,
		maxSize:      opts.MaxMessageSize,
		closeTimeout: opts.CloseTimeout,
		done:         make(chan struct{}),
		pending:      map[uint32]pendingCall{},
	}
	c.d.init(opts.MaxInFlight)
	c.w.init(t, opts.QueueSize, c.done, c.closeWith)
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
	id := c.newIDLocked()
	c.pending[id] = pendingCall{ch: ch}
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

// newIDLocked picks the msgid of a new call; c.mu is held. Ids count up, so
// one is used again only after 2³² calls: an id a caller kept after its call
// ended (CallAsync, Abandon) names no other call meanwhile.
func (c *Conn) newIDLocked() uint32 {
	id := c.nextID
	for {
		id++
		if _, busy := c.pending[id]; !busy {
			break
		}
	}
	c.nextID = id
	return id
}

// CallAsync sends a request without waiting for its response: done gets it
// later, on the connection's reader, so done must not block. When the
// connection is or becomes closed before the response, done gets an
// unavailable error with closed true; done is called exactly once in every
// case, possibly before CallAsync returns. There is no context: the caller
// gives up with Abandon.
//
// CallAsync never waits on the peer. When the outgoing queue is full (the
// peer is not reading) it sends nothing, never calls done, and reports ok
// false; the caller can then wait with Call instead.
func (c *Conn) CallAsync(method string, params any, done func(result api.RawParams, err error, closed bool)) (id uint32, ok bool) {
	if c.queueFull() {
		return 0, false
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		done(nil, c.unavailable(), true)
		return 0, true
	}
	id = c.newIDLocked()
	c.pending[id] = pendingCall{done: done}
	c.mu.Unlock()

	e, err := encodeRequest(id, method, params)
	if err == nil {
		err = c.checkSize(e)
	}
	closed := false
	if err == nil {
		// Past the queue's bound if others filled it since the check above:
		// each caller adds at most one message, and a goroutine that must
		// not wait (a connection's reader) sends it.
		err = c.enqueue(context.Background(), outMsg{e: e, noWait: true}, true)
		closed = err != nil
	}
	if err != nil && c.take(id) {
		done(nil, api.AsError(err), closed)
	}
	return id, true
}

// Abandon gives up the call CallAsync sent as id: its done is not called once
// Abandon returns (unless it already was), and the peer is told with
// CancelMethod, as when a Call's context ends.
func (c *Conn) Abandon(id uint32) {
	if !c.take(id) {
		return
	}
	go func() { _ = c.Notify(CancelMethod, cancelParams{MsgID: id}) }()
}

// take removes call id from the pending calls and reports whether it was
// there; whoever takes it answers it.
func (c *Conn) take(id uint32) bool {
	c.mu.Lock()
	_, ok := c.pending[id]
	if ok {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	return ok
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
	drained := c.d.startDrain()
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
// when nobody else is writing (see writer.enqueue). It waits only while the
// queue is full, which happens only when the peer does not read.
func (c *Conn) send(ctx context.Context, e *encoder) error {
	return c.enqueue(ctx, outMsg{e: e}, true)
}

// enqueue hands m to the write combiner.
func (c *Conn) enqueue(ctx context.Context, m outMsg, inline bool) error {
	err := c.w.enqueue(ctx, m, inline)
	if err == errShut {
		return c.unavailable()
	}
	return err
}

// queueFull reports whether a sender would wait for room in the queue now,
// as happens only when the peer is not reading. The reader then serves even
// inline methods in worker goroutines, so that it keeps reading (until
// MaxInFlight) instead of waiting to queue a response.
func (c *Conn) queueFull() bool { return c.w.full() }

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
		c.w.shutdown()
		c.d.stop() // refuses requests read from now on, as they would find done closed
		close(c.done)
		c.d.cancelAll()
		_ = c.t.Close()
		if len(pending) > 0 {
			err := c.unavailable()
			for _, p := range pending {
				if p.done != nil {
					p.done(nil, err, true)
					continue
				}
				p.ch <- response{err: err}
			}
		}
	})
}

func (c *Conn) readLoop(h Handler) {
	inl, _ := h.(InlineHandler)
	async, _ := h.(AsyncHandler)
	lend, _ := h.(LendingHandler)
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
			params := clone(m.Params)
			if async != nil && async.AsyncMethod(m.Method) && !c.queueFull() && c.startAsync(async, m.MsgID, m.Method, params) {
				continue
			}
			c.dispatch(h, m.MsgID, m.Method, params)
		case TypeResponse:
			c.deliver(m)
		case TypeNotification:
			if m.Method == CancelMethod {
				c.d.cancelRequest(m.Params)
				continue
			}
			if lend != nil && lend.LendParams(m.Method) {
				c.notification(h, m.Method, api.RawParams(m.Params))
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
	drained := c.d.startDrain()
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

func (c *Conn) deliver(m Message) {
	c.mu.Lock()
	p, ok := c.pending[m.MsgID]
	if ok {
		delete(c.pending, m.MsgID)
	}
	c.mu.Unlock()
	if !ok {
		// Late: the call gave up on its context. Nothing waits for it.
		c.log.Debug("response to no pending call", "msgid", m.MsgID)
		return
	}
	var r response
	switch {
	case m.Error != nil:
		r.err = DecodeError(m.Error)
	case len(m.Result) == 1 && m.Result[0] == 0xc0:
	default:
		r.result = clone(m.Result)
	}
	if p.done != nil {
		p.done(r.result, r.err, false)
		return
	}
	p.ch <- r
}

// String names the connection's state, for logs.
func (c *Conn) String() string {
	if err := c.Err(); err != nil {
		return fmt.Sprintf("msgrpc.Conn(closed: %v)", err)
	}
	return "msgrpc.Conn(open)"
}
