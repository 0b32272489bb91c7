// Package client is the Go client of continuumd, for the CLI, the tests and
// programs that embed the daemon.
//
// One *Client type, two transports with the same behaviour:
//
//   - Dial connects to the daemon's Unix socket and speaks MessagePack-RPC.
//   - NewInProcess opens a session on an api.Backend (the kernel) in this
//     process: no socket and no serialization. Params go to Session.Handle as
//     api.ValueParams and results come back as Go values, set straight into
//     the caller's result when the types match (api.Assign).
//
// What it promises:
//
//   - Every error a method returns is an *api.Error, so
//     errors.Is(err, &api.Error{Code: api.CodeNotFound}) works; a lost
//     connection is unavailable. The one exception is the caller's own
//     context: when ctx ends first, ctx's error comes back as it is.
//   - Subscriptions never stall the connection: each has a bounded buffer
//     (WithEventBuffer), and when the application falls behind, events are
//     dropped and counted (Subscription.Lagged) rather than making the reader
//     wait. Events the daemon sends before the reply to events/subscribe
//     reaches the caller are kept and delivered first.
//   - Commands a client provides (Provide) are served each in its own
//     goroutine; the invocation's deadline and a commands/cancel from the
//     daemon both end the handler's context.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/paths"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	maxMessageSize int
	log            *slog.Logger
	eventBuffer    int
	onNotify       func(method string, params api.Params)
}

// WithMaxMessageSize bounds each message in both directions (default 16 MiB;
// it should match the daemon's).
func WithMaxMessageSize(n int) Option { return func(o *options) { o.maxMessageSize = n } }

// WithLogger receives the client's diagnostics (dropped events, protocol
// errors); nil discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithEventBuffer sets how many events each subscription holds for the
// application before it drops (default 1024).
func WithEventBuffer(n int) Option { return func(o *options) { o.eventBuffer = n } }

// WithNotificationHandler receives notifications the client does not handle
// itself (anything but events/event, events/lagged, commands/cancel and
// kernel/protocol-error). It is called on the connection's reader, in order,
// and must not block.
func WithNotificationHandler(h func(method string, params api.Params)) Option {
	return func(o *options) { o.onNotify = h }
}

// DefaultEventBuffer is a subscription's buffer unless WithEventBuffer says.
const DefaultEventBuffer = 1024

// Orphan events (for a subscription id the client does not know yet) are
// kept this long and this many, for the reply to events/subscribe to catch up;
// while a Subscribe is waiting for its reply, or has it and not yet
// registered the subscription, one subscription buffer's worth more per such
// call (see route).
const (
	orphanTTL = 10 * time.Second
	orphanMax = 4096
)

// transport is what differs between the socket and in-process clients.
type transport interface {
	call(ctx context.Context, method string, params, result any) error
	notify(method string, params any) error
	close()
	done() <-chan struct{}
}

// Client talks to continuumd. It is safe for concurrent use.
type Client struct {
	t    transport
	opts options
	log  *slog.Logger

	mu      sync.Mutex
	closed  bool
	subs    map[string]*Subscription
	orphans map[string]*orphan
	orphanN int
	// subscribing counts the Subscribe calls sent and not yet adopted. A
	// replay from the log can put thousands of events on the wire before
	// the reply, and the reader goes on routing them while the caller
	// wakes up to adopt: with only orphanMax kept, a reader that kept
	// reading lost events silently.
	subscribing int
	// ended holds the subscriptions this client closed, for orphanTTL: the
	// daemon may still be sending their events, which are dropped rather
	// than kept as orphans (they would crowd out the early events of the
	// subscriptions that come next).
	ended       map[string]time.Time
	providers   map[string]CommandHandler
	invocations map[string]context.CancelFunc
	cancelled   []string // cancels that came before their invocation started
}

type orphan struct {
	since  time.Time
	events []*api.Event
}

func newClient(opts []Option) *Client {
	o := options{eventBuffer: DefaultEventBuffer}
	for _, f := range opts {
		f(&o)
	}
	if o.eventBuffer <= 0 {
		o.eventBuffer = DefaultEventBuffer
	}
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{
		opts:        o,
		log:         log,
		subs:        map[string]*Subscription{},
		orphans:     map[string]*orphan{},
		ended:       map[string]time.Time{},
		providers:   map[string]CommandHandler{},
		invocations: map[string]context.CancelFunc{},
	}
}

// Dial connects to the daemon's socket at path (paths.Socket
// when empty). A daemon that cannot be reached is an unavailable error.
func Dial(ctx context.Context, path string, opts ...Option) (*Client, error) {
	if path == "" {
		path = paths.Socket()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "cannot reach continuumd at %s: %v", path, err)
	}
	c := newClient(opts)
	conn := msgrpc.NewConn(msgrpc.NewStreamTransport(nc, c.opts.maxMessageSize), msgrpc.Options{
		MaxMessageSize: c.opts.maxMessageSize,
		Logger:         c.log,
	})
	st := &socketTransport{conn: conn}
	c.t = pendingSubscribes{st, c}
	conn.Start(msgrpc.HandlerFuncs{
		Request: func(ctx context.Context, method string, params api.RawParams) (any, error) {
			return c.handleRequest(ctx, method, params)
		},
		Notification: func(_ context.Context, method string, params api.RawParams) {
			switch method {
			case api.NotifyEvent:
				// Straight to the decoder: through handleNotification the
				// bytes would be boxed in an api.Params, one allocation per
				// delivery. They are lent (Lend below): the decoder copies
				// what the event keeps.
				c.handleRawEvent(params)
			case api.NotifyProtocolError:
				st.refused(params, c.log)
			default:
				c.handleNotification(method, params)
			}
		},
		Lend: func(method string) bool { return method == api.NotifyEvent },
	})
	go c.watch()
	return c, nil
}

// NewInProcess opens a session on backend in this process. The client's
// caller is {Transport: "inproc"} with this process's credentials unknown
// (-1); the backend decides what that may do.
func NewInProcess(backend api.Backend, opts ...Option) (*Client, error) {
	c := newClient(opts)
	t := &inprocTransport{c: c, doneCh: make(chan struct{})}
	sess, err := backend.Open(&inprocPeer{t: t}, api.Caller{Transport: "inproc", UID: -1, GID: -1, PID: -1})
	if err != nil {
		return nil, api.AsError(err)
	}
	t.sess = sess
	c.t = pendingSubscribes{t, c}
	go c.watch()
	return c, nil
}

// watch ends the client's subscriptions and invocations when its transport
// goes, whoever closed it.
func (c *Client) watch() {
	<-c.t.done()
	c.shutdown()
}

// Close ends the connection (or the in-process session). Subscriptions end,
// pending calls fail with unavailable, provided commands go away.
func (c *Client) Close() error {
	c.t.close()
	c.shutdown()
	return nil
}

// Done is closed when the client's connection has ended.
func (c *Client) Done() <-chan struct{} { return c.t.done() }

func (c *Client) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for id, s := range c.subs {
		s.end(api.Errorf(api.CodeUnavailable, "connection closed"))
		delete(c.subs, id)
	}
	for _, cancel := range c.invocations {
		cancel()
	}
	c.orphans = map[string]*orphan{}
}

// Call runs any method: params is a struct or map (nil for none) and result a
// pointer to decode the result into (nil to ignore it).
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.t.call(ctx, method, params, result)
}

// Notify sends a notification: fire and forget, no reply, errors of the
// handler are not reported.
func (c *Client) Notify(method string, params any) error {
	return c.t.notify(method, params)
}

// handleNotification routes what the daemon sends unasked. It runs on the
// reader (or the kernel's goroutine in process) and never blocks.
func (c *Client) handleNotification(method string, p api.Params) {
	switch method {
	case api.NotifyEvent:
		sub, ev, err := decodeEvent(p)
		if err != nil {
			c.log.Warn("undecodable event notification", "err", err)
			return
		}
		c.route(sub, ev)
	case api.NotifyLagged:
		var n api.LaggedNotification
		if err := p.Decode(&n); err != nil {
			c.log.Warn("undecodable lagged notification", "err", err)
			return
		}
		c.mu.Lock()
		if s := c.subs[n.Subscription]; s != nil {
			s.kernelDropped += n.Dropped
		}
		c.mu.Unlock()
	case api.MethodCancel:
		var n api.CancelNotification
		if err := p.Decode(&n); err != nil {
			return
		}
		c.cancelInvocation(n.Invocation)
	default:
		if c.opts.onNotify != nil {
			c.opts.onNotify(method, p)
		}
	}
}

// handleRawEvent is handleNotification of an events/event from the socket,
// whose bytes are lent: only for the call.
func (c *Client) handleRawEvent(raw api.RawParams) {
	ev := new(api.Event)
	sub, err := api.UnmarshalEventNotificationLent(raw, ev)
	if err != nil {
		c.log.Warn("undecodable event notification", "err", err)
		return
	}
	// The common case without making a string of sub: a map lookup of
	// string(sub) does not allocate.
	c.mu.Lock()
	if s := c.subs[string(sub)]; s != nil && !c.closed {
		s.push(ev)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.route(string(sub), ev) // an orphan (or an ended one): the id's own copy
}

// decodeEvent reads an events/event notification into an event of the
// subscriber's own. Raw bytes (the socket's) are read in one pass
// (api.UnmarshalEventNotificationLent): the strings and the payload, raw
// msgpack decoded once, by the application, into its own type, are copied
// into one buffer. In process the kernel's api.EventDelivery carries the
// event as a value, copied here.
func decodeEvent(p api.Params) (string, *api.Event, error) {
	if raw, ok := p.(api.RawParams); ok {
		ev := new(api.Event)
		sub, err := api.UnmarshalEventNotificationLent(raw, ev)
		return string(sub), ev, err
	}
	var n api.EventNotification
	var err error
	switch v := p.(type) {
	case api.ValueParams:
		switch d := v.V.(type) {
		case *api.EventDelivery:
			n, err = d.Notification()
		case api.EventDelivery:
			n, err = d.Notification()
		default:
			n, err = decodeNotification(p)
		}
	default:
		n, err = decodeNotification(p)
	}
	return n.Subscription, &n.Event, err
}

// decodeNotification is the general path, apart so that decodeEvent's own
// notification stays on the stack.
func decodeNotification(p api.Params) (api.EventNotification, error) {
	var n api.EventNotification
	err := p.Decode(&n)
	return n, err
}

func (c *Client) route(sub string, ev *api.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if s := c.subs[sub]; s != nil {
		s.push(ev)
		return
	}
	if _, gone := c.ended[sub]; gone {
		return // still in flight when this client closed it
	}
	// The reply to events/subscribe may not have reached its caller yet:
	// keep the event, briefly and boundedly, for Subscribe to adopt.
	now := time.Now()
	for id, o := range c.orphans {
		if now.Sub(o.since) > orphanTTL {
			c.orphanN -= len(o.events)
			delete(c.orphans, id)
		}
	}
	if c.orphanN >= orphanMax+c.subscribing*c.opts.eventBuffer {
		c.log.Warn("dropping an event for an unknown subscription", "subscription", sub)
		return
	}
	o := c.orphans[sub]
	if o == nil {
		o = &orphan{since: now}
		c.orphans[sub] = o
	}
	o.events = append(o.events, ev)
	c.orphanN++
}

// adopt registers s and hands it the events that arrived before it existed,
// in order, in one step under the lock so none slips between.
// forgetLocked ends the subscription id on this client's side: it is no
// longer routed to, and what the daemon still sends for it is dropped. c.mu
// is held.
func (c *Client) forgetLocked(id string) {
	if s := c.subs[id]; s != nil {
		delete(c.subs, id)
		s.end(api.Errorf(api.CodeCancelled, "subscription closed"))
	}
	now := time.Now()
	for old, at := range c.ended {
		if now.Sub(at) > orphanTTL {
			delete(c.ended, old)
		}
	}
	c.ended[id] = now
	if o := c.orphans[id]; o != nil {
		c.orphanN -= len(o.events)
		delete(c.orphans, id)
	}
}

func (c *Client) adopt(s *Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		s.end(api.Errorf(api.CodeUnavailable, "connection closed"))
		return
	}
	c.subs[s.id] = s
	if c.subscribing > 0 {
		c.subscribing--
	}
	if o := c.orphans[s.id]; o != nil {
		for _, ev := range o.events {
			s.push(ev)
		}
		c.orphanN -= len(o.events)
		delete(c.orphans, s.id)
	}
}

// pendingSubscribes counts the events/subscribe calls in flight
// (Client.subscribing): one is counted from before it is sent until adopt
// registers its subscription, or until it fails.
type pendingSubscribes struct {
	transport
	c *Client
}

func (p pendingSubscribes) call(ctx context.Context, method string, params, result any) error {
	if method != api.MethodSubscribe {
		return p.transport.call(ctx, method, params, result)
	}
	p.c.mu.Lock()
	p.c.subscribing++
	p.c.mu.Unlock()
	err := p.transport.call(ctx, method, params, result)
	if err != nil {
		p.c.mu.Lock()
		p.c.subscribing--
		p.c.mu.Unlock()
	}
	return err
}

// socketTransport carries calls over a msgrpc.Conn.
type socketTransport struct {
	conn *msgrpc.Conn

	mu      sync.Mutex
	refusal *api.Error // the daemon's reason, when it said why it closed
}

func (t *socketTransport) call(ctx context.Context, method string, params, result any) error {
	raw, err := t.conn.Call(ctx, method, params)
	if err != nil {
		return t.explain(err)
	}
	if result == nil {
		return nil
	}
	return api.Assign(result, raw)
}

func (t *socketTransport) notify(method string, params any) error {
	return t.explain(t.conn.Notify(method, params))
}

// explain replaces a bare "connection closed" with the reason the daemon gave
// (permission_denied, protocol_error...) when it gave one.
func (t *socketTransport) explain(err error) error {
	// nil first: errors.Is's target escapes, so testing even a nil error
	// allocates, and every Notify of a fan-out burst comes through here.
	if err == nil || !errors.Is(err, &api.Error{Code: api.CodeUnavailable}) {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refusal != nil {
		return t.refusal
	}
	return err
}

func (t *socketTransport) refused(params api.RawParams, log *slog.Logger) {
	var n api.ProtocolErrorNotification
	_ = params.Decode(&n)
	if n.Code == "" {
		n.Code = api.CodeProtocolError
	}
	log.Warn("continuumd is closing the connection", "code", n.Code, "message", n.Message)
	t.mu.Lock()
	t.refusal = &api.Error{Code: n.Code, Message: "continuumd closed the connection: " + n.Message}
	t.mu.Unlock()
}

func (t *socketTransport) close()                { t.conn.Close() }
func (t *socketTransport) done() <-chan struct{} { return t.conn.Done() }

// inprocTransport calls a session directly.
type inprocTransport struct {
	c      *Client
	sess   api.Session
	doneCh chan struct{}
	once   sync.Once

	notesOnce sync.Once
	notes     chan inprocNote
}

func closedErr() *api.Error { return api.Errorf(api.CodeUnavailable, "connection closed") }

func (t *inprocTransport) call(ctx context.Context, method string, params, result any) (err error) {
	select {
	case <-t.doneCh:
		return closedErr()
	default:
	}
	defer func() {
		if p := recover(); p != nil {
			t.c.log.Error("handler panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
			err = api.Errorf(api.CodeInternal, "%s: handler panicked: %v", method, p)
		}
	}()
	res, err := t.sess.Handle(ctx, method, api.ValueParams{V: params})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return api.AsError(err)
	}
	if result == nil {
		return nil
	}
	return api.Assign(result, res)
}

func (t *inprocTransport) notify(method string, params any) error {
	select {
	case <-t.doneCh:
		return closedErr()
	default:
	}
	// A notification has no reply and must not hold the caller, as on the
	// socket: one goroutine serves them aside, in the order they were sent
	// (as the daemon serves a connection's), and a full queue makes the
	// sender wait, which is the socket's flow control too.
	t.notesOnce.Do(func() {
		t.notes = make(chan inprocNote, inprocNoteQueue)
		go t.runNotes()
	})
	select {
	case t.notes <- inprocNote{method, params}:
		return nil
	case <-t.doneCh:
		return closedErr()
	}
}

// inprocNoteQueue bounds the notifications waiting to be served in process.
const inprocNoteQueue = 256

type inprocNote struct {
	method string
	params any
}

func (t *inprocTransport) runNotes() {
	for {
		select {
		case n := <-t.notes:
			t.serveNote(n)
		case <-t.doneCh:
			return
		}
	}
}

func (t *inprocTransport) serveNote(n inprocNote) {
	defer func() {
		if p := recover(); p != nil {
			t.c.log.Error("notification handler panicked", "method", n.method, "panic", p)
		}
	}()
	if _, err := t.sess.Handle(context.Background(), n.method, api.ValueParams{V: n.params}); err != nil {
		t.c.log.Debug("notification failed", "method", n.method, "err", err)
	}
}

func (t *inprocTransport) close() {
	t.once.Do(func() {
		close(t.doneCh)
		if t.sess != nil {
			t.sess.Close()
		}
	})
}

func (t *inprocTransport) done() <-chan struct{} { return t.doneCh }

// inprocPeer is the kernel's handle on an in-process client.
type inprocPeer struct{ t *inprocTransport }

var _ api.Peer = (*inprocPeer)(nil)

func (p *inprocPeer) Notify(method string, params any) error {
	select {
	case <-p.t.doneCh:
		return closedErr()
	default:
	}
	p.t.c.handleNotification(method, api.ValueParams{V: params})
	return nil
}

func (p *inprocPeer) Call(ctx context.Context, method string, params any) (api.Params, error) {
	type reply struct {
		v   any
		err error
	}
	ch := make(chan reply, 1)
	// Its own goroutine, as on the socket, so a handler that ignores ctx
	// cannot hold the kernel past ctx.
	go func() {
		v, err := p.t.c.handleRequest(ctx, method, api.ValueParams{V: params})
		ch <- reply{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, api.AsError(r.err)
		}
		return api.ValueParams{V: r.v}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.t.doneCh:
		return nil, closedErr()
	}
}

// String describes the client for logs.
func (c *Client) String() string {
	p, _ := c.t.(pendingSubscribes)
	if t, ok := p.transport.(*socketTransport); ok {
		return fmt.Sprintf("continuum client (%v)", t.conn)
	}
	return "continuum client (in-process)"
}
