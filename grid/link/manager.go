package link

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/quic-go/quic-go"
)

// Trust is what the link layer asks the trust store. It is called from the
// TLS handshake and the hello, so it must be quick.
type Trust interface {
	// Circle is the circle peerID is trusted in; ok is false for a peer
	// that is not trusted.
	Circle(peerID string) (circle string, ok bool)
	// InvitesOutstanding reports whether an invite may still be redeemed;
	// only then does an untrusted key get past the TLS handshake (to present
	// its token in the hello).
	InvitesOutstanding() bool
	// Redeem checks a join token that joiner presented in its hello,
	// consumes its nonce and records trust of joiner (at addrs) in the
	// token's circle, which it returns. Its error is a *RefusedError.
	Redeem(token, joiner string, addrs []string) (circle string, err error)
}

// Defaults of Options.
const (
	DefaultHelloTimeout = 5 * time.Second
	// DefaultHandshakeTimeout bounds QUIC's idle time during the TLS
	// handshake (quic-go's own default).
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultKeepAlive        = 5 * time.Second
	DefaultIdleTimeout      = 20 * time.Second
	DefaultBackoffMin       = 250 * time.Millisecond
	DefaultBackoffMax       = 30 * time.Second
	DefaultDialTimeout      = 10 * time.Second
)

// Options configure a Manager.
type Options struct {
	Identity *identity.Identity
	// Listen is the UDP address to accept links on ("127.0.0.1:0" picks a
	// port); "" accepts none (links are only dialled, from an ephemeral
	// port).
	Listen string
	Trust  Trust
	// Epoch is this install's log epoch, sent in the hello.
	Epoch func() uint64
	// Protocols each get one stream per link.
	Protocols []Protocol
	// MaxMessageSize bounds one msgrpc message on a link's streams
	// (default msgrpc.DefaultMaxMessageSize).
	MaxMessageSize int
	// Counters receives the link's counters; nil makes a fresh set.
	Counters *Counters
	Logger   *slog.Logger

	// HelloTimeout bounds the wait for a control stream and its hello
	// after the TLS handshake, and for a protocol stream's preamble.
	HelloTimeout, HandshakeTimeout, KeepAlive, IdleTimeout, DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnect attempts
	// (doubling, with ±25% jitter).
	BackoffMin, BackoffMax time.Duration
}

// State of a peer, as grid/peers shows it.
const (
	StateUp         = "up"         // a link is established
	StateConnecting = "connecting" // no link; dialling it with backoff
	StateDown       = "down"       // no link, no addresses to dial: waits for the peer to dial
)

// PeerState is one peer's link, for grid/peers.
type PeerState struct {
	State      string
	RTT        time.Duration // smoothed round trip, when up
	LastSeenMs int64         // when a link to it was last up (now, if up); 0 never
	LastError  string        // why the last attempt failed, when not up
}

// Manager keeps the links. It is safe for concurrent use.
type Manager struct {
	opts     Options
	log      *slog.Logger
	me       string
	cert     tls.Certificate
	instance string
	qconf    *quic.Config
	counters *Counters

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	trMu sync.Mutex
	tr   *quic.Transport
	ln   *quic.Listener

	mu       sync.Mutex
	closed   bool
	links    map[string]*link
	keepers  map[string]*keeper
	lastSeen map[string]time.Time
	lastErr  map[string]string
}

// New starts a Manager: it listens when opts.Listen is set, and dials no one
// until Connect.
func New(opts Options) (*Manager, error) {
	if opts.Identity == nil || opts.Trust == nil {
		return nil, errors.New("link: Options need Identity and Trust")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Epoch == nil {
		opts.Epoch = func() uint64 { return 0 }
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = msgrpc.DefaultMaxMessageSize
	}
	if opts.Counters == nil {
		opts.Counters = NewCounters()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.HelloTimeout, DefaultHelloTimeout)
	def(&opts.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&opts.KeepAlive, DefaultKeepAlive)
	def(&opts.IdleTimeout, DefaultIdleTimeout)
	def(&opts.DialTimeout, DefaultDialTimeout)
	def(&opts.BackoffMin, DefaultBackoffMin)
	def(&opts.BackoffMax, DefaultBackoffMax)
	seen := map[string]bool{}
	for _, p := range opts.Protocols {
		if n := p.Name(); n == "" || len(n) > 64 || seen[n] {
			return nil, fmt.Errorf("link: protocol name %q is empty, too long or given twice", n)
		}
		seen[p.Name()] = true
	}
	cert, err := certificate(opts.Identity)
	if err != nil {
		return nil, err
	}
	var inst [12]byte
	_, _ = crand.Read(inst[:])
	m := &Manager{
		opts:     opts,
		log:      opts.Logger,
		me:       opts.Identity.PeerID(),
		cert:     cert,
		instance: hex.EncodeToString(inst[:]),
		counters: opts.Counters,
		qconf: &quic.Config{
			HandshakeIdleTimeout:  opts.HandshakeTimeout,
			MaxIdleTimeout:        opts.IdleTimeout,
			KeepAlivePeriod:       opts.KeepAlive,
			MaxIncomingStreams:    int64(len(opts.Protocols) + 2),
			MaxIncomingUniStreams: -1,
		},
		links:    map[string]*link{},
		keepers:  map[string]*keeper{},
		lastSeen: map[string]time.Time{},
		lastErr:  map[string]string{},
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if opts.Listen != "" {
		if err := m.listen(opts.Listen); err != nil {
			m.cancel()
			return nil, err
		}
	}
	return m, nil
}

// PeerID is this install's peer id.
func (m *Manager) PeerID() string { return m.me }

// Counters are the link's counters (refusals and closes by reason).
func (m *Manager) Counters() *Counters { return m.counters }

func (m *Manager) listen(addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("link: listen address %q: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("link: listen on %s: %w", addr, err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(serverTLS(m.cert, m.admit), m.qconf)
	if err != nil {
		tr.Close()
		return fmt.Errorf("link: listen on %s: %w", addr, err)
	}
	m.tr, m.ln = tr, ln
	m.wg.Add(1)
	go m.acceptLoop()
	m.log.Info("grid links listening", "addr", ln.Addr().String(), "peer_id", m.me)
	return nil
}

// transport is the QUIC transport dials go out on: the listener's (so a
// peer sees links come from the port it can dial back), or an ephemeral
// one made at the first dial.
func (m *Manager) transport() (*quic.Transport, error) {
	m.trMu.Lock()
	defer m.trMu.Unlock()
	if m.tr != nil {
		return m.tr, nil
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("link: dial socket: %w", err)
	}
	m.tr = &quic.Transport{Conn: udp}
	return m.tr, nil
}

// Addrs are the addresses peers can dial this install on; nil when not
// listening. An unspecified listen IP (0.0.0.0, ::) lists every interface
// address.
func (m *Manager) Addrs() []string {
	if m.ln == nil {
		return nil
	}
	ua, ok := m.ln.Addr().(*net.UDPAddr)
	if !ok {
		return []string{m.ln.Addr().String()}
	}
	if !ua.IP.IsUnspecified() {
		return []string{ua.String()}
	}
	var out []string
	ifAddrs, _ := net.InterfaceAddrs()
	for _, a := range ifAddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if ua.IP.To4() != nil && ipn.IP.To4() == nil {
			continue
		}
		out = append(out, net.JoinHostPort(ipn.IP.String(), fmt.Sprint(ua.Port)))
	}
	sort.Strings(out)
	return out
}

// admit is the listener's certificate check: a trusted key, or any key
// while an invite is outstanding (it must then present the token in its
// hello).
func (m *Manager) admit(peerID string) error {
	if peerID == m.me {
		m.counters.Add("link.refused."+string(ReasonWrongPeer), 1)
		return errors.New("link: a peer with this install's own key")
	}
	if _, ok := m.opts.Trust.Circle(peerID); ok || m.opts.Trust.InvitesOutstanding() {
		return nil
	}
	m.counters.Add("link.refused."+string(ReasonUntrusted), 1)
	m.log.Info("refused a link at the TLS handshake", "peer", peerID, "reason", ReasonUntrusted)
	return fmt.Errorf("link: peer %s is not trusted here", peerID)
}

func (m *Manager) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept(m.ctx)
		if err != nil {
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.serveIncoming(c)
		}()
	}
}

// refuse closes c for r, counting and logging it.
func (m *Manager) refuse(c *quic.Conn, peerID string, re *RefusedError) {
	m.counters.Add("link.refused."+string(re.Reason), 1)
	m.log.Info("refused a link", "peer", peerID, "reason", re.Reason, "detail", re.Message)
	_ = c.CloseWithError(re.Reason.Code(), re.Message)
}

func (m *Manager) connOpts() msgrpc.Options {
	return msgrpc.Options{MaxMessageSize: m.opts.MaxMessageSize, Logger: m.log}
}

// serveIncoming runs the listener's side of the hello on a new connection.
func (m *Manager) serveIncoming(c *quic.Conn) {
	peerID, err := peerIDOfState(c.ConnectionState().TLS)
	if err != nil {
		m.refuse(c, "?", refused(ReasonBadHello, "%v", err))
		return
	}
	ctx, cancel := waitCtx(m.ctx, m.opts.HelloTimeout)
	defer cancel()
	st, err := c.AcceptStream(ctx)
	if err != nil {
		if c.Context().Err() == nil {
			m.refuse(c, peerID, refused(ReasonHelloTimeout, "no control stream within %s", m.opts.HelloTimeout))
		}
		return
	}
	ctrl := msgrpc.NewConn(msgrpc.NewStreamTransport(stream{st}, 64<<10), m.connOpts())
	type outcome struct {
		l  *link
		re *RefusedError
	}
	result := make(chan outcome, 1)
	var once sync.Once
	ctrl.Start(msgrpc.HandlerFuncs{Request: func(_ context.Context, method string, params api.RawParams) (any, error) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return nil, refused(ReasonBadHello, "a second request before the link is up").APIError()
		}
		l, reply, re := m.answerHello(c, ctrl, peerID, method, params)
		result <- outcome{l, re}
		if re != nil {
			return nil, re.APIError()
		}
		return reply, nil
	}})
	var out outcome
	select {
	case out = <-result:
	case <-ctrl.Done():
		select {
		case out = <-result:
		default:
			out.re = refused(ReasonBadHello, "control stream ended before a hello: %v", ctrl.Err())
		}
	case <-ctx.Done():
		out.re = refused(ReasonHelloTimeout, "no hello within %s", m.opts.HelloTimeout)
	}
	if out.re != nil {
		// Let the error reply reach the dialler before the close does.
		go func() {
			select {
			case <-c.Context().Done():
			case <-time.After(200 * time.Millisecond):
			}
			m.refuse(c, peerID, out.re)
			ctrl.Close()
		}()
		return
	}
	l := out.l
	m.acceptProtocols(l)
	m.watch(l)
}

// answerHello checks a dialler's hello and, when it passes, registers the
// link; it returns our answer.
func (m *Manager) answerHello(c *quic.Conn, ctrl *msgrpc.Conn, peerID, method string, params api.RawParams) (*link, *hello, *RefusedError) {
	if method != methodHello {
		return nil, nil, refused(ReasonBadHello, "first request is %q, want %s", method, methodHello)
	}
	var h hello
	if err := params.Decode(&h); err != nil {
		return nil, nil, refused(ReasonBadHello, "hello: %v", err)
	}
	if re := h.check(peerID, m.me); re != nil {
		return nil, nil, re
	}
	circle, ok := m.opts.Trust.Circle(peerID)
	// A token is always redeemed, even by a peer trusted already: it works
	// once, whoever presents it.
	if h.JoinToken != "" || !ok {
		if h.JoinToken == "" {
			return nil, nil, refused(ReasonUntrusted, "peer %s is not trusted here and presented no invite token", peerID)
		}
		var err error
		if circle, err = m.opts.Trust.Redeem(h.JoinToken, peerID, h.Addrs); err != nil {
			return nil, nil, asRefused(err, ReasonInvalidToken)
		}
		m.log.Info("a peer joined by invite", "peer", peerID, "circle", circle)
	}
	l := m.newLink(c, Peer{ID: peerID, Circle: circle, Epoch: h.Epoch}, false, h.Instance)
	l.addrs = h.Addrs
	l.ctrl = ctrl
	if re := m.register(l); re != nil {
		return nil, nil, re
	}
	reply := &hello{PeerID: m.me, YourPeerID: peerID, Protocol: ProtocolVersion, Epoch: m.opts.Epoch(), Instance: m.instance, Addrs: m.Addrs(), Circle: circle}
	return l, reply, nil
}

// acceptProtocols serves the protocol streams the dialler opens on l.
func (m *Manager) acceptProtocols(l *link) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		attached := map[string]bool{}
		for {
			st, err := l.conn.AcceptStream(l.conn.Context())
			if err != nil {
				return
			}
			name, err := readPreamble(st, m.opts.HelloTimeout)
			var p Protocol
			if err == nil {
				p = m.protocol(name)
			}
			if p == nil || attached[name] {
				m.counters.Add("link.stream_refused", 1)
				m.log.Info("refused a protocol stream", "peer", l.peer.ID, "protocol", name, "err", err)
				st.CancelRead(1)
				st.CancelWrite(1)
				continue
			}
			attached[name] = true
			m.attach(l, p, st)
		}
	}()
}

func (m *Manager) protocol(name string) Protocol {
	for _, p := range m.opts.Protocols {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// attach runs p on st for the life of l.
func (m *Manager) attach(l *link, p Protocol, st *quic.Stream) {
	conn := msgrpc.NewConn(msgrpc.NewStreamTransport(stream{st}, m.opts.MaxMessageSize), m.connOpts())
	h, detach := p.Attach(l.peer, conn)
	if h == nil {
		h = msgrpc.HandlerFuncs{}
	}
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		conn.Close()
		if detach != nil {
			detach()
		}
		return
	}
	l.protos = append(l.protos, attachment{conn, detach})
	l.mu.Unlock()
	conn.Start(h)
	// A protocol's stream that ends while the link is up (the peer closed
	// it, or msgrpc ended it over a bad frame) would leave the link up
	// without that protocol until some other reconnect: take the link down
	// instead, and the keeper brings it back with every stream.
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-conn.Done():
			// A stream also ends when its whole connection does (a duplicate
			// closed by the tie-break, the peer going away), and the stream
			// may notice first: only a stream that ends while its connection
			// stays up for streamLostGrace is a lost stream.
			select {
			case <-l.conn.Context().Done():
				return
			case <-time.After(streamLostGrace):
			}
			l.mu.Lock()
			down := l.down
			l.mu.Unlock()
			if !down && l.conn.Context().Err() == nil { // not because the link itself went
				m.counters.Add("link.stream_lost."+p.Name(), 1)
				l.close(ReasonStreamLost, "the "+p.Name()+" stream ended")
			}
		case <-l.conn.Context().Done():
		}
	}()
}

// streamLostGrace is how long a protocol stream that ended waits for its
// connection to end too before it counts as lost (ReasonStreamLost).
const streamLostGrace = 100 * time.Millisecond

// Connect makes the manager keep a link to peerID, dialling addrs with
// backoff whenever there is none. With no addrs it only waits for the peer
// to dial. Calling it again replaces the addresses.
func (m *Manager) Connect(peerID string, addrs []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || peerID == m.me {
		return
	}
	k := m.keepers[peerID]
	if k == nil {
		k = &keeper{id: peerID, stop: make(chan struct{}), kick: make(chan struct{}, 1)}
		m.keepers[peerID] = k
		k.setAddrs(addrs)
		m.wg.Add(1)
		go m.keep(k)
		return
	}
	k.setAddrs(addrs)
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Disconnect stops keeping a link to peerID and closes the live one with
// reason (ReasonTrustRevoked when the operator untrusts it).
func (m *Manager) Disconnect(peerID string, reason Reason) {
	m.mu.Lock()
	k := m.keepers[peerID]
	delete(m.keepers, peerID)
	l := m.links[peerID]
	m.mu.Unlock()
	if k != nil {
		close(k.stop)
	}
	if l != nil {
		l.close(reason, "closed here: "+string(reason))
	}
}

// Join dials the inviter at addrs, pinned to inviter, presenting token in
// the hello. accepted runs once the inviter has accepted, before the link
// is registered (the grid records its trust there); its error drops the
// link. The link is then kept like any other.
func (m *Manager) Join(ctx context.Context, inviter string, addrs []string, token string, accepted func(Peer) error) (Peer, error) {
	l, err := m.dial(ctx, inviter, addrs, token, accepted)
	if err != nil {
		return Peer{}, err
	}
	m.Connect(inviter, addrs)
	return l.peer, nil
}

// dial makes one attempt to bring a link to peerID up.
func (m *Manager) dial(ctx context.Context, peerID string, addrs []string, token string, accepted func(Peer) error) (*link, error) {
	if len(addrs) == 0 {
		return nil, refused(ReasonUnreachable, "no address for %s", peerID)
	}
	tr, err := m.transport()
	if err != nil {
		return nil, err
	}
	ctx, cancel := waitCtx(ctx, m.opts.DialTimeout)
	defer cancel()
	var c *quic.Conn
	var errs []error
	var wrongPeer error // another install answered at one of the addresses
	for _, a := range addrs {
		ua, err := net.ResolveUDPAddr("udp", a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a, err))
			continue
		}
		c, err = tr.Dial(ctx, ua, clientTLS(m.cert, peerID), m.qconf)
		if err == nil {
			break
		}
		if r := ReasonOf(err); r != "" && r != ReasonWrongPeer {
			// The peer answered and refused: no other address will say
			// otherwise. (Another install answering at this address says
			// nothing of the peer: try its other addresses.)
			re := asRefused(err, r)
			m.counters.Add("link.dial_refused."+string(re.Reason), 1)
			return nil, re
		}
		if ReasonOf(err) == ReasonWrongPeer && wrongPeer == nil {
			m.counters.Add("link.dial_refused."+string(ReasonWrongPeer), 1)
			wrongPeer = asRefused(err, ReasonWrongPeer)
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
	}
	if c == nil {
		if wrongPeer != nil && len(errs) == 1 {
			return nil, wrongPeer
		}
		return nil, refused(ReasonUnreachable, "%v", errors.Join(errs...))
	}
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		if cause := connCause(c); cause != nil {
			err = cause
		}
		_ = c.CloseWithError(ReasonHelloTimeout.Code(), "no control stream")
		return nil, asRefused(err, ReasonHelloTimeout)
	}
	ctrl := msgrpc.NewConn(msgrpc.NewStreamTransport(stream{st}, 64<<10), m.connOpts())
	ctrl.Start(msgrpc.HandlerFuncs{})
	fail := func(re *RefusedError) (*link, error) {
		m.counters.Add("link.dial_refused."+string(re.Reason), 1)
		_ = c.CloseWithError(re.Reason.Code(), re.Message)
		ctrl.Close()
		return nil, re
	}
	raw, err := ctrl.Call(ctx, methodHello, &hello{PeerID: m.me, YourPeerID: peerID, Protocol: ProtocolVersion, Epoch: m.opts.Epoch(), Instance: m.instance, Addrs: m.Addrs(), JoinToken: token})
	if err != nil {
		// In TLS 1.3 the listener checks our certificate after our side of
		// the handshake is done, so its refusal arrives here, as the
		// connection's close.
		if cause := connCause(c); cause != nil {
			err = cause
		}
		re := asRefused(err, ReasonHelloTimeout)
		if ReasonOf(err) != "" {
			re.Remote = true
		}
		return fail(re)
	}
	var h hello
	if err := raw.Decode(&h); err != nil {
		return fail(refused(ReasonBadHello, "hello answer: %v", err))
	}
	if re := h.check(peerID, m.me); re != nil {
		return fail(re)
	}
	circle, ok := m.opts.Trust.Circle(peerID)
	p := Peer{ID: peerID, Circle: circle, Epoch: h.Epoch}
	if accepted != nil {
		p.Circle = h.Circle
		if err := accepted(p); err != nil {
			return fail(refused(ReasonShutdown, "recording the join: %v", err))
		}
	} else if !ok {
		return fail(refused(ReasonUntrusted, "peer %s is no longer trusted here", peerID))
	}
	l := m.newLink(c, p, true, h.Instance)
	l.addrs = h.Addrs
	l.ctrl = ctrl
	if re := m.register(l); re != nil {
		return fail(re)
	}
	for _, proto := range m.opts.Protocols {
		ps, err := c.OpenStreamSync(ctx)
		if err == nil {
			err = writePreamble(ps, proto.Name())
		}
		if err != nil {
			l.close(ReasonControlLost, "cannot open the "+proto.Name()+" stream")
			return nil, asRefused(err, ReasonControlLost)
		}
		m.attach(l, proto, ps)
	}
	m.watch(l)
	return l, nil
}

// register makes l the peer's link. An existing link to the same peer is
// replaced, except when both are live connections of the same two processes
// dialled in opposite directions (simultaneous dials): then the one dialled
// by the lower peer id is kept, on both sides alike.
func (m *Manager) register(l *link) *RefusedError {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return refused(ReasonShutdown, "shutting down")
	}
	// Checked under m.mu, so that an untrust (trust deleted, then
	// Disconnect) either finds this link registered or makes it fail here.
	// (An incoming joiner was recorded by Redeem before this.)
	if _, trusted := m.opts.Trust.Circle(l.peer.ID); !trusted {
		m.mu.Unlock()
		return refused(ReasonUntrusted, "peer %s is not trusted here", l.peer.ID)
	}
	old := m.links[l.peer.ID]
	if old != nil && old.peerInstance == l.peerInstance && old.outgoing != l.outgoing {
		lowerDials := m.me < l.peer.ID // our outgoing wins when we are lower
		if l.outgoing != lowerDials {
			m.mu.Unlock()
			return refused(ReasonDuplicate, "a link to %s in the other direction wins", l.peer.ID)
		}
	}
	m.links[l.peer.ID] = l
	m.lastSeen[l.peer.ID] = time.Now()
	delete(m.lastErr, l.peer.ID)
	m.mu.Unlock()
	if old != nil {
		reason := ReasonReplaced
		if old.peerInstance == l.peerInstance && old.outgoing != l.outgoing {
			reason = ReasonDuplicate
		}
		old.close(reason, "another connection to the same peer took over")
	}
	m.learnAddrs(l)
	m.counters.Add("link.up", 1)
	m.log.Info("link up", "peer", l.peer.ID, "circle", l.peer.Circle, "outgoing", l.outgoing, "remote", l.conn.RemoteAddr().String())
	return nil
}

// AddrUpdater is an optional extra of Trust: a trust store that implements
// it is told where a trusted peer now says it listens (from the hello of an
// established, pinned link), so a peer that restarts on another port is
// still redialled. It changes addresses only, never trust.
type AddrUpdater interface {
	UpdateAddrs(peerID string, addrs []string)
}

// learnAddrs records where l's peer can be dialled (dialAddrs) and dials
// those from now on.
func (m *Manager) learnAddrs(l *link) {
	addrs := dialAddrs(l.addrs, l.conn.RemoteAddr(), l.outgoing)
	if len(addrs) == 0 {
		return
	}
	if u, ok := m.opts.Trust.(AddrUpdater); ok {
		u.UpdateAddrs(l.peer.ID, addrs)
	}
	m.mu.Lock()
	k := m.keepers[l.peer.ID]
	m.mu.Unlock()
	if k != nil {
		k.setAddrs(addrs)
	} else {
		m.Connect(l.peer.ID, addrs)
	}
}

// maxLearnedAddrs bounds what a peer's hello can make this install dial.
const maxLearnedAddrs = 8

// dialAddrs is where a peer can be dialled, from what its hello advertised
// and the address its link came over: first the address this install
// dialled (when the link is outgoing: it is known to work), then the
// advertised ones. A peer listening on a wildcard advertises every address
// of its host, loopback included, and a loopback address names this host,
// not the peer's: loopback addresses are kept only when the link itself
// runs over loopback. Unspecified addresses are dropped; duplicates too.
func dialAddrs(advertised []string, remote net.Addr, outgoing bool) []string {
	ru, _ := remote.(*net.UDPAddr)
	overLoopback := ru != nil && ru.IP.IsLoopback()
	var out []string
	add := func(a string) {
		if len(out) < maxLearnedAddrs && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if outgoing && ru != nil {
		add(ru.String())
	}
	for _, a := range advertised {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && (ip.IsUnspecified() || ip.IsLoopback() && !overLoopback) {
			continue
		}
		add(a)
	}
	return out
}

// watch takes l down when its connection or control stream ends.
func (m *Manager) watch(l *link) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-l.conn.Context().Done():
		case <-l.ctrl.Done():
			l.close(ReasonControlLost, "control stream ended")
		}
		<-l.conn.Context().Done()
		reason := ReasonOf(context.Cause(l.conn.Context()))
		if reason == "" {
			reason = "gone"
		}
		l.teardown()
		m.mu.Lock()
		if m.links[l.peer.ID] == l {
			delete(m.links, l.peer.ID)
			m.lastSeen[l.peer.ID] = time.Now()
			m.lastErr[l.peer.ID] = "link closed: " + string(reason)
		}
		m.mu.Unlock()
		m.counters.Add("link.closed."+string(reason), 1)
		m.log.Info("link down", "peer", l.peer.ID, "reason", reason)
		close(l.done)
	}()
}

func (m *Manager) current(peerID string) *link {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.links[peerID]
}

// Up reports whether a link to peerID is established.
func (m *Manager) Up(peerID string) bool { return m.current(peerID) != nil }

// State describes the link to peerID.
func (m *Manager) State(peerID string) PeerState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps PeerState
	if t, ok := m.lastSeen[peerID]; ok {
		ps.LastSeenMs = t.UnixMilli()
	}
	if l := m.links[peerID]; l != nil {
		ps.State = StateUp
		ps.RTT = l.conn.ConnectionStats().SmoothedRTT
		ps.LastSeenMs = time.Now().UnixMilli()
		return ps
	}
	ps.LastError = m.lastErr[peerID]
	if k := m.keepers[peerID]; k != nil && len(k.getAddrs()) > 0 {
		ps.State = StateConnecting
	} else {
		ps.State = StateDown
	}
	return ps
}

// Close takes every link down (reason shutdown) and stops listening.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	links := make([]*link, 0, len(m.links))
	for _, l := range m.links {
		links = append(links, l)
	}
	for id, k := range m.keepers {
		close(k.stop)
		delete(m.keepers, id)
	}
	m.mu.Unlock()
	for _, l := range links {
		l.close(ReasonShutdown, "the peer is shutting down")
	}
	m.cancel()
	if m.ln != nil {
		m.ln.Close()
	}
	m.wg.Wait()
	m.trMu.Lock()
	defer m.trMu.Unlock()
	if m.tr != nil {
		err := m.tr.Close()
		if m.tr.Conn != nil {
			m.tr.Conn.Close()
		}
		return err
	}
	return nil
}

// keeper redials one peer whenever it has no link.
type keeper struct {
	id    string
	stop  chan struct{}
	kick  chan struct{}
	mu    sync.Mutex
	addrs []string
}

func (k *keeper) setAddrs(a []string) {
	k.mu.Lock()
	k.addrs = append([]string(nil), a...)
	k.mu.Unlock()
}

func (k *keeper) getAddrs() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.addrs
}

func (m *Manager) keep(k *keeper) {
	defer m.wg.Done()
	backoff := m.opts.BackoffMin
	for {
		if l := m.current(k.id); l != nil {
			select {
			case <-l.done:
			case <-k.stop:
				return
			}
			// A link that stayed up a while resets the backoff; one that
			// keeps dropping at once (a flapping peer) is redialled ever
			// more slowly. The jittered pause also keeps two sides that
			// both lost the link from redialling in lockstep.
			if time.Since(l.upAt) > m.opts.BackoffMax {
				backoff = m.opts.BackoffMin
			}
			if !m.sleep(k, jitter(backoff/2)) {
				return
			}
			backoff = min(backoff*2, m.opts.BackoffMax)
			continue
		}
		addrs := k.getAddrs()
		if len(addrs) == 0 {
			select {
			case <-k.stop:
				return
			case <-k.kick:
				continue
			}
		}
		_, err := m.dial(m.ctx, k.id, addrs, "", nil)
		if err == nil {
			continue
		}
		if m.current(k.id) != nil {
			continue // lost a tie-break to the peer's own dial
		}
		m.mu.Lock()
		m.lastErr[k.id] = err.Error()
		m.mu.Unlock()
		m.log.Debug("link dial failed", "peer", k.id, "err", err, "retry_in", backoff)
		if !m.sleep(k, jitter(backoff)) {
			return
		}
		backoff = min(backoff*2, m.opts.BackoffMax)
	}
}

// sleep waits d, or less when kicked; false when the keeper stops.
func (m *Manager) sleep(k *keeper, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-k.kick:
	case <-k.stop:
		return false
	}
	return true
}

// jitter spreads d by ±25%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// link is one established connection.
type link struct {
	peer         Peer
	conn         *quic.Conn
	ctrl         *msgrpc.Conn
	outgoing     bool
	peerInstance string
	addrs        []string // where the peer says it listens (its hello)
	upAt         time.Time
	done         chan struct{}

	mu     sync.Mutex
	down   bool
	protos []attachment
}

type attachment struct {
	conn   *msgrpc.Conn
	detach func()
}

func (m *Manager) newLink(c *quic.Conn, p Peer, outgoing bool, inst string) *link {
	return &link{peer: p, conn: c, outgoing: outgoing, peerInstance: inst, upAt: time.Now(), done: make(chan struct{})}
}

// close ends the connection with reason's code; teardown follows in watch.
func (l *link) close(r Reason, msg string) {
	_ = l.conn.CloseWithError(r.Code(), msg)
}

// teardown closes the protocol streams and then detaches them.
func (l *link) teardown() {
	l.mu.Lock()
	l.down = true
	protos := l.protos
	l.protos = nil
	l.mu.Unlock()
	for _, a := range protos {
		a.conn.Close()
		if a.detach != nil {
			a.detach()
		}
	}
	if l.ctrl != nil {
		l.ctrl.Close()
	}
}

// connCause is why c closed, waiting a moment for a close that is on its
// way (a failed call may notice before the connection does); nil while open.
func connCause(c *quic.Conn) error {
	select {
	case <-c.Context().Done():
	case <-time.After(100 * time.Millisecond):
		return nil
	}
	return context.Cause(c.Context())
}
