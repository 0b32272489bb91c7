// Package server serves continuum's MessagePack-RPC protocol on a listener
// (the Unix socket) and hands each connection to an api.Backend, which the
// daemon wires to the kernel. It knows no kernel.
//
// What it promises:
//
//   - Identity once per connection: the peer's credentials (SO_PEERCRED) are
//     read when it connects and checked by one policy function, Authorize
//     (by default: the daemon's own uid and root). A refused connection gets a
//     kernel/protocol-error notification with code permission_denied and is
//     closed; the reason is logged.
//   - Each accepted connection becomes one api.Session (Backend.Open). Every
//     request runs Session.Handle in its own goroutine, with a context that
//     ends when the connection closes; its result or error goes back as the
//     response; the few methods named in Options.InlineMethods, which never
//     block, run on the connection's reader instead, and a session that is
//     an AsyncSession may take requests on the reader and answer them later
//     (the kernel relaying a call to the client that provides it), with the
//     same in-flight bound, cancellation and drain. Notifications from the
//     client go to Session.Handle too, one at a time in arrival order on a
//     goroutine of their own, results ignored. When the connection ends,
//     Session.Close is called.
//   - One bad connection never affects another: bad bytes, a panicking
//     handler or a peer that stops reading close or stall only that one.
//   - Shutdown drains like net/http: it stops accepting, lets running
//     requests finish (refusing new ones with unavailable) until its context
//     ends, then closes every connection and waits for their sessions to
//     close.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/ipc/unixsock"
)

// Options configure a Server; the zero value is usable.
type Options struct {
	// MaxMessageSize bounds each message in both directions (default
	// msgrpc.DefaultMaxMessageSize, 16 MiB).
	MaxMessageSize int
	// Logger receives connection events; nil discards.
	Logger *slog.Logger
	// Authorize decides whether a caller may use the daemon; a non-nil error
	// refuses the connection and is logged and sent as the reason. Default
	// DefaultAuthorize.
	Authorize func(api.Caller) error
	// MaxInFlight bounds the requests served at once per connection (default
	// msgrpc.DefaultMaxInFlight); above it that connection's reader waits.
	MaxInFlight int
	// InlineMethods names the methods the backend serves quickly and without
	// ever blocking; requests for them run on the connection's reader
	// goroutine instead of a goroutine of their own (msgrpc.InlineHandler),
	// which saves two goroutine hand-offs per round trip. nil means
	// DefaultInlineMethods; an empty, non-nil slice runs every request in its
	// own goroutine.
	InlineMethods []string
}

// DefaultInlineMethods are the kernel's built-in methods that answer from
// memory, take no lock held across I/O and call no peer, so a backend that
// serves them as the kernel does may run them on the reader. events/emit is
// not one: a broadcast event waits for the log's fsync.
var DefaultInlineMethods = []string{
	api.MethodKernelPing,
	api.MethodKernelInfo,
	api.MethodGetClass,
	api.MethodListClasses,
	api.MethodResolveChannel,
	api.MethodUnsubscribe,
}

// DefaultAuthorize admits the daemon's own uid and root, and nobody else,
// including callers whose uid is unknown.
func DefaultAuthorize(c api.Caller) error {
	uid := os.Getuid()
	switch {
	case c.UID < 0:
		return fmt.Errorf("the caller's uid is unknown (transport %s); only uid %d and root may connect", c.Transport, uid)
	case c.UID == uid || c.UID == 0:
		return nil
	}
	return fmt.Errorf("uid %d may not connect; only uid %d (the daemon's user) and root may", c.UID, uid)
}

// Server accepts connections and serves each with a session of its backend.
type Server struct {
	backend api.Backend
	opts    Options
	log     *slog.Logger
	inline  map[string]bool // Options.InlineMethods

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*msgrpc.Conn]struct{}
	shutdown  bool
	active    sync.WaitGroup // one per connection, until its session is closed
}

// New returns a server for backend.
func New(backend api.Backend, opts Options) *Server {
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = msgrpc.DefaultMaxMessageSize
	}
	if opts.Authorize == nil {
		opts.Authorize = DefaultAuthorize
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	names := opts.InlineMethods
	if names == nil {
		names = DefaultInlineMethods
	}
	inline := make(map[string]bool, len(names))
	for _, m := range names {
		inline[m] = true
	}
	return &Server{
		backend:   backend,
		opts:      opts,
		log:       log,
		inline:    inline,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*msgrpc.Conn]struct{}{},
	}
}

// Serve accepts connections on l until Shutdown, then returns nil; on any
// other accept failure it returns the error. l is closed when Serve returns.
// Serve may be called for several listeners at once.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing() {
				return nil
			}
			if !temporary(err) {
				return err
			}
			// Out of file descriptors and the like: wait and retry rather
			// than stop serving everyone (as net/http does).
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.begin() {
			c.Close()
			return nil
		}
		go func() {
			defer s.active.Done()
			s.serveNetConn(c)
		}()
	}
}

func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR)
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// begin counts one more connection unless the server is shutting down.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.active.Add(1)
	return true
}

func (s *Server) serveNetConn(c net.Conn) {
	caller := api.Caller{Transport: "unix", UID: -1, GID: -1, PID: -1}
	if uc, ok := c.(*net.UnixConn); ok {
		who, err := unixsock.PeerCred(uc)
		if err != nil {
			s.log.Warn("cannot read peer credentials", "err", err)
		}
		caller = who
	} else {
		caller.Transport = c.LocalAddr().Network()
	}
	s.serve(msgrpc.NewStreamTransport(c, s.opts.MaxMessageSize), caller)
}

// ServeTransport serves one connection that arrived some other way (a
// WebSocket, say) until it ends. The caller names the transport and whatever
// it knows of the peer; Authorize still decides. It returns at once when the
// server is shutting down.
func (s *Server) ServeTransport(t msgrpc.Transport, caller api.Caller) {
	if !s.begin() {
		t.Close()
		return
	}
	defer s.active.Done()
	s.serve(t, caller)
}

func (s *Server) serve(t msgrpc.Transport, caller api.Caller) {
	log := s.log.With("transport", caller.Transport, "uid", caller.UID, "pid", caller.PID)
	conn := msgrpc.NewConn(t, msgrpc.Options{
		MaxMessageSize: s.opts.MaxMessageSize,
		MaxInFlight:    s.opts.MaxInFlight,
		Logger:         log,
	})
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.conns[conn] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()

	if err := s.opts.Authorize(caller); err != nil {
		log.Warn("connection refused", "reason", err)
		conn.CloseWithError(api.Errorf(api.CodePermissionDenied, "%v", err))
		<-conn.Done()
		return
	}
	sess, err := s.backend.Open(peer{conn}, caller)
	if err != nil {
		log.Error("cannot open a session", "err", err)
		conn.CloseWithError(api.AsError(err))
		<-conn.Done()
		return
	}
	log = log.With("session", sess.ID())
	log.Debug("connection opened")
	h := &handler{sess: sess, conn: conn, log: log, inline: s.inline}
	h.async, _ = sess.(AsyncSession)
	conn.Start(h)
	<-conn.Done()
	log.Debug("connection closed", "reason", conn.Err())
	sess.Close()
}

// Shutdown stops accepting, lets running requests finish until ctx ends,
// closes every connection and waits until their sessions are closed. It
// returns ctx's error when it had to cut requests short.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*msgrpc.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	var drained sync.WaitGroup
	for _, c := range conns {
		drained.Add(1)
		go func() {
			defer drained.Done()
			_ = c.Shutdown(ctx)
		}()
	}
	drained.Wait() // each Shutdown returns by ctx's end at the latest

	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return ctx.Err()
	case <-ctx.Done():
		// Connections accepted while we were draining: cut them too.
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// peer adapts a Conn to api.Peer.
type peer struct{ c *msgrpc.Conn }

var _ api.Peer = peer{}

func (p peer) Notify(method string, params any) error { return p.c.Notify(method, params) }

func (p peer) Call(ctx context.Context, method string, params any) (api.Params, error) {
	raw, err := p.c.Call(ctx, method, params)
	if err != nil {
		return nil, err
	}
	return raw, nil
}

// CallAsync implements the kernel's relay of a call without a goroutine
// waiting on it (msgrpc.Conn.CallAsync).
func (p peer) CallAsync(method string, params any, done func(result api.RawParams, err error, closed bool)) (uint32, bool) {
	return p.c.CallAsync(method, params, done)
}

// Abandon gives up a call CallAsync sent (msgrpc.Conn.Abandon).
func (p peer) Abandon(id uint32) { p.c.Abandon(id) }

// AsyncSession is an api.Session that can take some requests on the
// connection's reader and answer them later, with no goroutine waiting
// meanwhile (msgrpc.AsyncHandler, whose contract its methods keep): the
// kernel's, for a call it relays to the client that provides the command.
type AsyncSession interface {
	api.Session
	AsyncMethod(method string) bool
	StartRequest(method string, params api.RawParams, reply func(result any, err error)) (cancel func(), ok bool)
}

// handler feeds a connection's messages to its session.
type handler struct {
	sess   api.Session
	async  AsyncSession // sess, when it is one
	conn   *msgrpc.Conn
	log    *slog.Logger
	inline map[string]bool // read-only, shared by every connection

	once  sync.Once
	notes chan note

	// Touched only by runNotes.
	noteFailures int
	lastNoteWarn time.Time
}

type note struct {
	method string
	params api.RawParams
}

var (
	_ msgrpc.InlineHandler = (*handler)(nil)
	_ msgrpc.AsyncHandler  = (*handler)(nil)
)

// AsyncMethod implements msgrpc.AsyncHandler with the session's.
func (h *handler) AsyncMethod(method string) bool {
	return h.async != nil && h.async.AsyncMethod(method)
}

// StartRequest implements msgrpc.AsyncHandler with the session's.
func (h *handler) StartRequest(method string, params api.RawParams, reply func(result any, err error)) (func(), bool) {
	return h.async.StartRequest(method, params, reply)
}

// InlineMethod implements msgrpc.InlineHandler with Options.InlineMethods.
func (h *handler) InlineMethod(method string) bool { return h.inline[method] }

func (h *handler) HandleRequest(ctx context.Context, method string, params api.RawParams) (any, error) {
	return h.sess.Handle(ctx, method, params)
}

// HandleNotification queues the notification for a goroutine that passes
// them to the session one at a time: the reader must not wait on a slow
// Handle, and the client's order is kept. A full queue makes the reader
// wait, which slows only this client.
func (h *handler) HandleNotification(ctx context.Context, method string, params api.RawParams) {
	h.once.Do(func() {
		h.notes = make(chan note, 256)
		go h.runNotes(ctx)
	})
	select {
	case h.notes <- note{method, params}:
	case <-ctx.Done():
	}
}

func (h *handler) runNotes(ctx context.Context) {
	for {
		select {
		case n := <-h.notes:
			h.handleNote(ctx, n)
		case <-ctx.Done():
			return
		}
	}
}

func (h *handler) handleNote(ctx context.Context, n note) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("notification handler panicked", "method", n.method, "panic", p)
		}
	}()
	if _, err := h.sess.Handle(ctx, n.method, n.params); err != nil {
		// A notification has no reply to carry its error, so the daemon log
		// is the only place a misconfigured publisher shows up: warn, but at
		// most once per noteWarnEvery per connection, with a count of the rest.
		h.noteFailures++
		if now := time.Now(); now.Sub(h.lastNoteWarn) >= noteWarnEvery {
			h.log.Warn("notification failed", "method", n.method, "err", err, "failures_since_last_warning", h.noteFailures)
			h.lastNoteWarn, h.noteFailures = now, 0
		}
	}
}

// noteWarnEvery bounds how often one connection's failed notifications are
// logged as warnings.
const noteWarnEvery = 10 * time.Second
