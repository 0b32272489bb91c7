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
	// QueueSize bounds the messages waiting for the writer; senders wait when
	// it is full. Default 256.
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
// request runs in its own goroutine (at most MaxInFlight at once), responses
// go to the calls waiting for them, notifications to the Handler in order.
// One writer goroutine drains a queue of encoded messages and flushes only
// when the queue is empty, so replies to pipelined requests share syscalls.
//
// Every method is safe for concurrent use.
type Conn struct {
	t            Transport
	log          *slog.Logger
	maxSize      int
	closeTimeout time.Duration

	ctx    context.Context // handlers' context, cancelled by close
	cancel context.CancelFunc
	out    chan outMsg
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

// NewConn wraps a transport. The writer starts at once, so Notify and Call
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
		out:          make(chan outMsg, opts.QueueSize),
		sem:          make(chan struct{}, opts.MaxInFlight),
		work:         make(chan job),
		done:         make(chan struct{}),
		pending:      map[uint32]chan response{},
		running:      map[uint32]*running{},
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
	ch := make(chan response, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
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
		return r.result, r.err
	case <-ctx.Done():
		c.forget(id)
		// Tell the peer, so its handler stops too; best effort, and never
		// holding up the caller whose context just ended.
		go func() { _ = c.Notify(CancelMethod, cancelParams{MsgID: id}) }()
		return nil, ctx.Err()
	}
}

// Notify sends a notification. It waits while the outgoing queue is full.
func (c *Conn) Notify(method string, params any) error {
	e, err := encodeNotification(method, params)
	if err == nil {
		err = c.checkSize(e)
	}
	if err != nil {
		return err
	}
	return c.send(context.Background(), e)
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

// send queues an encoded message for the writer, owning e from here on.
func (c *Conn) send(ctx context.Context, e *encoder) error {
	select {
	case <-c.done:
		putEncoder(e)
		return c.unavailable()
	default:
	}
	select {
	case c.out <- outMsg{e: e}:
		return nil
	case <-c.done:
		putEncoder(e)
		return c.unavailable()
	case <-ctx.Done():
		putEncoder(e)
		return ctx.Err()
	}
}

func (c *Conn) writeLoop() {
	for {
		var m outMsg
		select {
		case m = <-c.out:
		case <-c.done:
			return
		}
		// Write everything queued, then flush once: under load, replies to
		// pipelined requests leave in a few large writes instead of one
		// syscall each; when idle, a lone message is flushed at once.
		// (Senders writing in turn under a lock, the last of a burst
		// flushing, measured the same on round trips; the queue keeps
		// syscalls off the senders, so a kernel goroutine that notifies
		// returns once the message is queued.)
		for {
			if m.e != nil {
				err := c.t.WriteMessage(m.e.buf.Bytes())
				putEncoder(m.e)
				if err != nil {
					c.closeWith(err)
					return
				}
			}
			if m.closeAfter {
				_ = c.t.Flush()
				c.closeWith(m.reason)
				return
			}
			select {
			case m = <-c.out:
				continue
			default:
			}
			break
		}
		if err := c.t.Flush(); err != nil {
			c.closeWith(err)
			return
		}
	}
}

// closeAfter queues e (when not nil) as the last message and closes the
// connection once it is written, or after the close timeout at the latest.
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
	// Queue from another goroutine: the queue may be full behind a peer that
	// does not read, and the caller (often the reader) must not wait on it.
	go func() {
		select {
		case c.out <- outMsg{e: e, closeAfter: true, reason: reason}:
		case <-c.done:
		}
	}()
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
		m, err := ParseMessage(b)
		if err != nil {
			c.fail(err.(*ProtocolError))
			return
		}
		switch m.Type {
		case TypeRequest:
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
