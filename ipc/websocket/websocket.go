// Package websocket serves continuum's MessagePack-RPC protocol over
// WebSocket, for a browser page on the same machine. It carries the very same
// messages as the Unix socket, one per binary frame, into the same
// api.Backend, with the same size limit and bad-input rules (it reuses
// ipc/msgrpc and ipc/server).
//
// What it promises:
//
//   - Loopback only: ListenLoopback refuses any address that is not a
//     loopback IP (or "localhost"), and every request's Host header must name
//     a loopback host too, so a DNS-rebinding page cannot reach it by name.
//   - Origin checked: a request that carries an Origin header (every browser
//     request does) is refused with 403 unless the origin is one of
//     Options.AllowOrigins, compared exactly. A request without Origin (a
//     non-browser program) is let through to the token check.
//   - A token before anything: the client presents it as a second WebSocket
//     subprotocol "continuum.token.<token>" (what a browser can send) or as
//     "Authorization: Bearer <token>". Without the right token no session is
//     opened: the connection gets one kernel/protocol-error notification with
//     code unauthenticated and is closed (status 1008), so a client can tell
//     this failure from any other. Tokens compare in constant time.
//   - Pages, when given: a request that is not a WebSocket upgrade (after the
//     Host check) is served by Options.Pages, and a page the listener served
//     itself may open the WebSocket: the origin http://<Host> of the request
//     is allowed besides Options.AllowOrigins. The token is still required;
//     such a page learns it from its URL (docs/SERVICE.md "Dashboard").
//   - Everything after the handshake is msgrpc's: a message over the size
//     limit, a text frame, or bytes that are not one MessagePack-RPC message
//     are answered with an error (or a kernel/protocol-error when the msgid is
//     unknown) and close only that connection.
package websocket

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ws "github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/ipc/server"
)

// Subprotocol is the WebSocket subprotocol continuumd speaks; TokenPrefix
// starts the second subprotocol that carries the token.
const (
	Subprotocol = "continuum.v1"
	TokenPrefix = "continuum.token."
)

// Options configure a Server.
type Options struct {
	// Token is what a client must present; required.
	Token string
	// AllowOrigins lists the origins ("http://127.0.0.1:8080") whose pages
	// may connect. Empty means no browser page may (only programs that send
	// no Origin).
	AllowOrigins []string
	// MaxMessageSize bounds each message (default msgrpc.DefaultMaxMessageSize).
	MaxMessageSize int
	// MaxInFlight bounds the requests served at once per connection.
	MaxInFlight int
	// Logger receives connection events; nil discards.
	Logger *slog.Logger
	// Pages, when set, serves the requests that are not WebSocket upgrades
	// (the dashboard), and the listener's own origin may then connect.
	Pages http.Handler
}

// Server is a WebSocket listener in front of an api.Backend.
type Server struct {
	opts    Options
	log     *slog.Logger
	origins map[string]bool
	rpc     *server.Server
	http    *http.Server

	mu       sync.Mutex
	shutdown bool
}

// NewServer returns a server for backend. It fails when there is no token or
// an allowed origin is not of the form scheme://host[:port].
func NewServer(backend api.Backend, opts Options) (*Server, error) {
	if opts.Token == "" {
		return nil, errors.New("websocket: a token is required")
	}
	if !validToken(opts.Token) {
		return nil, errors.New("websocket: the token may hold only letters, digits and - . _ ~ (it travels as a WebSocket subprotocol)")
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = msgrpc.DefaultMaxMessageSize
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	origins := map[string]bool{}
	for _, o := range opts.AllowOrigins {
		n, err := normalOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("websocket: allowed origin %q: %w", o, err)
		}
		origins[n] = true
	}
	s := &Server{opts: opts, log: log.With("transport", "ws"), origins: origins}
	s.rpc = server.New(backend, server.Options{
		MaxMessageSize: opts.MaxMessageSize,
		MaxInFlight:    opts.MaxInFlight,
		Logger:         log,
		// Only connections that passed the Host, Origin and token checks
		// reach the RPC server; the token is their authorization.
		Authorize: func(c api.Caller) error {
			if c.Transport == "ws" {
				return nil
			}
			return server.DefaultAuthorize(c)
		},
	})
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown, then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets running requests finish until ctx ends, then
// closes every connection (as ipc/server's Shutdown does).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- s.http.Shutdown(ctx) }()
	err := s.rpc.Shutdown(ctx)
	return errors.Join(err, <-errc)
}

// ServeHTTP checks Host, Origin and token, upgrades, and serves the
// connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := s.log.With("remote", r.RemoteAddr)
	if !loopbackHost(r.Host) {
		log.Warn("websocket request refused: Host is not a loopback name", "host", r.Host)
		http.Error(w, "continuumd: the Host header must name a loopback address", http.StatusForbidden)
		return
	}
	if s.opts.Pages != nil && !isUpgrade(r) {
		s.opts.Pages.ServeHTTP(w, r)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		n, err := normalOrigin(origin)
		if err != nil || !(s.origins[n] || s.ownOrigin(r, n)) {
			log.Warn("websocket request refused: origin not allowed (see --ws-allow-origin)", "origin", origin)
			http.Error(w, "continuumd: this origin may not connect (continuumd --ws-allow-origin)", http.StatusForbidden)
			return
		}
	}
	s.mu.Lock()
	down := s.shutdown
	s.mu.Unlock()
	if down {
		http.Error(w, "continuumd is shutting down", http.StatusServiceUnavailable)
		return
	}
	authed := s.checkToken(r)
	c, err := ws.Accept(w, r, &ws.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		InsecureSkipVerify: true, // Origin was checked above, exactly
		CompressionMode:    ws.CompressionDisabled,
	})
	if err != nil {
		log.Debug("websocket upgrade failed", "err", err)
		return
	}
	if !authed {
		log.Warn("websocket connection refused: missing or wrong token")
		refuse(c)
		return
	}
	c.SetReadLimit(-1) // the transport applies the limit itself, so it can answer
	t := newTransport(c, s.opts.MaxMessageSize)
	s.rpc.ServeTransport(t, api.Caller{Transport: "ws", UID: -1, GID: -1, PID: -1})
}

// isUpgrade reports whether r asks for a WebSocket (Connection: upgrade,
// Upgrade: websocket); anything else is a page request.
func isUpgrade(r *http.Request) bool {
	if !strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket") {
		return false
	}
	for _, h := range r.Header.Values("Connection") {
		for _, t := range strings.Split(h, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}

// ownOrigin reports whether origin (normalised) is this listener's own, the
// origin of the pages it serves: http://<Host>, where Host has already been
// checked to be loopback. It holds only when the server serves Pages.
func (s *Server) ownOrigin(r *http.Request, origin string) bool {
	if s.opts.Pages == nil {
		return false
	}
	own, err := normalOrigin("http://" + r.Host)
	return err == nil && own == origin
}

// checkToken reports whether r presents the server's token.
func (s *Server) checkToken(r *http.Request) bool {
	var got []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, TokenPrefix) {
				got = append(got, strings.TrimPrefix(p, TokenPrefix))
			}
		}
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		got = append(got, strings.TrimSpace(a[7:]))
	}
	ok := false
	for _, g := range got {
		if subtle.ConstantTimeCompare([]byte(g), []byte(s.opts.Token)) == 1 {
			ok = true
		}
	}
	return ok
}

// refuse tells an unauthenticated client why, in the protocol's own terms,
// and closes.
func refuse(c *ws.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msg, err := msgpack.Marshal([]any{msgrpc.TypeNotification, api.NotifyProtocolError, []any{api.ProtocolErrorNotification{
		Code:    api.CodeUnauthenticated,
		Message: "the WebSocket token is missing or wrong: send it as subprotocol " + TokenPrefix + "<token> (continuumd --ws-token-file names the file)",
	}}})
	if err == nil {
		_ = c.Write(ctx, ws.MessageBinary, msg)
	}
	_ = c.Close(ws.StatusPolicyViolation, "unauthenticated")
}

// ListenLoopback listens on addr ("127.0.0.1:7777", "[::1]:0",
// "localhost:7777"), refusing any host that is not loopback: the WebSocket
// listener must never be reachable from another machine.
func ListenLoopback(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--listen-ws %q: %w (want 127.0.0.1:PORT)", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--listen-ws %q: the WebSocket listener is loopback only; use 127.0.0.1:%s or [::1]:%s", addr, port, port)
	}
	return net.Listen("tcp", net.JoinHostPort(ip.String(), port))
}

// LoadOrCreateToken reads the token in path, or, when the file does not
// exist, makes a random one (32 bytes, hex) and writes it there with mode
// 0600. An existing file readable by group or others is refused.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		st, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("websocket token file %s has mode %v; it must be private to its owner (chmod 600 %s)", path, st.Mode().Perm(), path)
		}
		tok := string(bytes.TrimSpace(b))
		if tok == "" {
			return "", fmt.Errorf("websocket token file %s is empty", path)
		}
		if !validToken(tok) {
			return "", fmt.Errorf("websocket token file %s: the token may hold only letters, digits and - . _ ~", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // someone made it meanwhile: use theirs
			return LoadOrCreateToken(path)
		}
		return "", err
	}
	_, err = f.WriteString(tok + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return tok, nil
}

func validToken(t string) bool {
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_', r == '~':
		default:
			return false
		}
	}
	return t != ""
}

// normalOrigin lower-cases scheme and host and drops a default port, so
// "HTTP://LocalHost:80" and "http://localhost" compare equal.
func normalOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", errors.New("want scheme://host[:port]")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// loopbackHost reports whether a Host header names a loopback address.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// transport carries one message per binary frame (msgrpc.Transport).
type transport struct {
	c      *ws.Conn
	max    int
	buf    []byte
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

var _ msgrpc.Transport = (*transport)(nil)

func newTransport(c *ws.Conn, max int) *transport {
	ctx, cancel := context.WithCancel(context.Background())
	return &transport{c: c, max: max, ctx: ctx, cancel: cancel}
}

// ReadMessage returns the next binary frame. A text frame, or a frame over
// the limit, is a *msgrpc.ProtocolError (with the msgid when the frame's first
// bytes are a request's); msgrpc.Conn then checks the message's shape.
func (t *transport) ReadMessage() ([]byte, error) {
	if cap(t.buf) > 1<<20 {
		t.buf = nil // one huge message must not pin its memory
	}
	typ, r, err := t.c.Reader(t.ctx)
	if err != nil {
		switch ws.CloseStatus(err) {
		case ws.StatusNormalClosure, ws.StatusGoingAway:
			return nil, io.EOF
		}
		if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
			return nil, io.EOF
		}
		return nil, err
	}
	if typ != ws.MessageBinary {
		return nil, &msgrpc.ProtocolError{Err: api.Errorf(api.CodeProtocolError, "messages travel in binary frames, one per frame; got a text frame")}
	}
	t.buf = t.buf[:0]
	for {
		if len(t.buf) == cap(t.buf) {
			t.buf = append(t.buf, 0)[:len(t.buf)]
		}
		n, err := r.Read(t.buf[len(t.buf):min(cap(t.buf), t.max+1)])
		t.buf = t.buf[:len(t.buf)+n]
		if len(t.buf) > t.max {
			pe := &msgrpc.ProtocolError{Err: api.Errorf(api.CodeMessageTooLarge, "message exceeds the %d byte limit", t.max)}
			if _, err := msgrpc.ParseMessage(t.buf[:min(len(t.buf), 16)]); err != nil {
				var head *msgrpc.ProtocolError
				if errors.As(err, &head) && head.HasMsgID {
					pe.MsgID, pe.HasMsgID = head.MsgID, true
				}
			}
			return nil, pe
		}
		if err == io.EOF {
			return t.buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// WriteMessage sends msg as one binary frame.
func (t *transport) WriteMessage(msg []byte) error {
	return t.c.Write(t.ctx, ws.MessageBinary, msg)
}

// Flush does nothing: every frame is sent as it is written.
func (t *transport) Flush() error { return nil }

// Close starts the closing handshake and gives it a moment, then drops the
// connection; it returns at once.
func (t *transport) Close() error {
	t.once.Do(func() {
		go func() {
			done := make(chan struct{})
			go func() {
				_ = t.c.Close(ws.StatusNormalClosure, "")
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
			}
			t.cancel()
			_ = t.c.CloseNow()
		}()
	})
	return nil
}
