package link

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/quic-go/quic-go"
)

// memTrust is a Trust in memory (the real store is tested in grid/trust and
// through daemons in grid).
type memTrust struct {
	mu      sync.Mutex
	circles map[string]string
}

func newMemTrust() *memTrust { return &memTrust{circles: map[string]string{}} }

func (t *memTrust) set(id, circle string) {
	t.mu.Lock()
	t.circles[id] = circle
	t.mu.Unlock()
}

func (t *memTrust) del(id string) {
	t.mu.Lock()
	delete(t.circles, id)
	t.mu.Unlock()
}

func (t *memTrust) Circle(id string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.circles[id]
	return c, ok
}
func (t *memTrust) InvitesOutstanding() bool { return false }
func (t *memTrust) Redeem(string, string, []string) (string, error) {
	return "", refused(ReasonTokenUsed, "no invites here")
}

type testNode struct {
	id    *identity.Identity
	trust *memTrust
	m     *Manager
}

func newNode(t *testing.T, protos ...Protocol) *testNode {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tr := newMemTrust()
	m, err := New(Options{Identity: id, Listen: "127.0.0.1:0", Trust: tr, Protocols: protos,
		HelloTimeout: 500 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, IdleTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &testNode{id: id, trust: tr, m: m}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawDial connects to n as a hostile peer with key id, passing TLS (n
// trusts id) but then doing whatever the test says.
func rawDial(t *testing.T, n *testNode, id *identity.Identity) *quic.Conn {
	t.Helper()
	cert, err := certificate(id)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, n.m.Addrs()[0], clientTLS(cert, n.id.PeerID()), &quic.Config{MaxIdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

// closedFor waits for c to be closed by the peer and returns the reason.
func closedFor(t *testing.T, c *quic.Conn) Reason {
	t.Helper()
	select {
	case <-c.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the listener did not close the connection")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(c.Context()); !errors.As(err, &ae) || !ae.Remote {
		t.Fatalf("closed with %v, want an application close from the listener", err)
	}
	return ReasonOf(context.Cause(c.Context()))
}

func TestHostileHellosAreRefusedWithATypedReason(t *testing.T) {
	a := newNode(t)
	hostile, _ := identity.Generate()
	a.trust.set(hostile.PeerID(), "household")
	good := func(h *hello) {
		h.PeerID, h.YourPeerID, h.Protocol, h.Instance = hostile.PeerID(), a.id.PeerID(), ProtocolVersion, "x"
	}
	helloCase := func(mutate func(h *hello)) func(c *quic.Conn) {
		return func(c *quic.Conn) {
			st, err := c.OpenStreamSync(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			conn := msgrpc.NewConn(msgrpc.NewStreamTransport(stream{st}, 0), msgrpc.Options{})
			conn.Start(msgrpc.HandlerFuncs{})
			h := &hello{}
			good(h)
			mutate(h)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = conn.Call(ctx, methodHello, h)
			if err == nil {
				t.Error("a bad hello was answered")
			}
		}
	}
	cases := []struct {
		name string
		do   func(c *quic.Conn)
		want Reason
	}{
		{"garbage bytes", func(c *quic.Conn) {
			st, _ := c.OpenStreamSync(context.Background())
			st.Write([]byte{0xc1, 0xc1, 0xc1, 0xc1})
		}, ReasonBadHello},
		{"no control stream", func(c *quic.Conn) {}, ReasonHelloTimeout},
		{"half a hello, then silence", func(c *quic.Conn) {
			st, _ := c.OpenStreamSync(context.Background())
			st.Write([]byte{0x94, 0x00, 0x01, 0xaa, 'l', 'i'})
		}, ReasonHelloTimeout},
		{"stream closed before the hello", func(c *quic.Conn) {
			st, _ := c.OpenStreamSync(context.Background())
			st.Write([]byte{0x94})
			st.Close()
		}, ReasonBadHello},
		{"another method", func(c *quic.Conn) {
			st, _ := c.OpenStreamSync(context.Background())
			conn := msgrpc.NewConn(msgrpc.NewStreamTransport(stream{st}, 0), msgrpc.Options{})
			conn.Start(msgrpc.HandlerFuncs{})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			conn.Call(ctx, "repl/pull", map[string]any{})
		}, ReasonBadHello},
		{"wrong field types", func(c *quic.Conn) {
			st, _ := c.OpenStreamSync(context.Background())
			conn := msgrpc.NewConn(msgrpc.NewStreamTransport(stream{st}, 0), msgrpc.Options{})
			conn.Start(msgrpc.HandlerFuncs{})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			conn.Call(ctx, methodHello, map[string]any{"peerId": 5, "yourPeerId": true, "protocol": "one"})
		}, ReasonBadHello},
		{"missing fields", helloCase(func(h *hello) { h.Instance = "" }), ReasonBadHello},
		{"for another peer", helloCase(func(h *hello) { h.YourPeerID = hostile.PeerID() }), ReasonWrongPeer},
		{"claims another identity", helloCase(func(h *hello) { h.PeerID = a.id.PeerID() }), ReasonIdentityMismatch},
		{"another protocol version", helloCase(func(h *hello) { h.Protocol = 99 }), ReasonVersionMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, a, hostile)
			tc.do(c)
			if got := closedFor(t, c); got != tc.want {
				t.Errorf("closed for %q, want %q", got, tc.want)
			}
		})
	}
	// A peer that vanishes mid-hello: the listener notices, and keeps
	// serving everyone else.
	c := rawDial(t, a, hostile)
	st, _ := c.OpenStreamSync(context.Background())
	st.Write([]byte{0x94, 0x00})
	c.CloseWithError(0, "gone")

	b := newNode(t)
	a.trust.set(b.id.PeerID(), "household")
	b.trust.set(a.id.PeerID(), "household")
	b.m.Connect(a.id.PeerID(), a.m.Addrs())
	waitFor(t, "b links to a after the hostile peers", func() bool { return a.m.Up(b.id.PeerID()) && b.m.Up(a.id.PeerID()) })
	if a.m.Up(hostile.PeerID()) {
		t.Error("the hostile peer has a link")
	}
	for _, r := range []Reason{ReasonBadHello, ReasonHelloTimeout, ReasonWrongPeer, ReasonIdentityMismatch, ReasonVersionMismatch} {
		if a.m.Counters().Get("link.refused."+string(r)) == 0 {
			t.Errorf("counter link.refused.%s is 0", r)
		}
	}
}

// echo is a Protocol that answers "echo" requests and records attach and
// detach.
type echo struct {
	attached, detached atomic.Int32
	mu                 sync.Mutex
	conns              map[string]*msgrpc.Conn
}

func (e *echo) Name() string { return "echo" }

func (e *echo) Attach(p Peer, conn *msgrpc.Conn) (msgrpc.Handler, func()) {
	e.attached.Add(1)
	e.mu.Lock()
	if e.conns == nil {
		e.conns = map[string]*msgrpc.Conn{}
	}
	e.conns[p.ID] = conn
	e.mu.Unlock()
	return msgrpc.HandlerFuncs{Request: func(_ context.Context, method string, params api.RawParams) (any, error) {
		var v struct {
			N int `msgpack:"n"`
		}
		err := params.Decode(&v)
		return v, err
	}}, func() { e.detached.Add(1) }
}

func (e *echo) conn(id string) *msgrpc.Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conns[id]
}

func link2(t *testing.T, pa, pb Protocol) (*testNode, *testNode) {
	t.Helper()
	var a, b *testNode
	if pa != nil {
		a, b = newNode(t, pa), newNode(t, pb)
	} else {
		a, b = newNode(t), newNode(t)
	}
	a.trust.set(b.id.PeerID(), "household")
	b.trust.set(a.id.PeerID(), "household")
	return a, b
}

func TestProtocolStreamPerLinkAttachedAndDetached(t *testing.T) {
	ea, eb := &echo{}, &echo{}
	a, b := link2(t, ea, eb)
	b.m.Connect(a.id.PeerID(), a.m.Addrs())
	waitFor(t, "both sides attached", func() bool { return ea.attached.Load() == 1 && eb.attached.Load() == 1 })
	for _, side := range []struct {
		e    *echo
		peer string
	}{{ea, b.id.PeerID()}, {eb, a.id.PeerID()}} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		raw, err := side.e.conn(side.peer).Call(ctx, "echo", map[string]any{"n": 7})
		cancel()
		if err != nil {
			t.Fatalf("echo over the link: %v", err)
		}
		var v struct {
			N int `msgpack:"n"`
		}
		if err := raw.Decode(&v); err != nil || v.N != 7 {
			t.Fatalf("echo = %v, %v", v, err)
		}
	}
	// Revoking trust closes the link at once: both sides detach, and b's
	// redials are refused.
	a.trust.del(b.id.PeerID())
	a.m.Disconnect(b.id.PeerID(), ReasonTrustRevoked)
	waitFor(t, "both sides detached", func() bool { return ea.detached.Load() == 1 && eb.detached.Load() == 1 })
	waitFor(t, "b's redials refused", func() bool { return b.m.Counters().Get("link.dial_refused.untrusted") >= 2 })
	if b.m.Up(a.id.PeerID()) || b.m.Counters().Get("link.closed.trust_revoked") != 1 {
		t.Errorf("b: up %v, closed.trust_revoked %d", b.m.Up(a.id.PeerID()), b.m.Counters().Get("link.closed.trust_revoked"))
	}
	st := b.m.State(a.id.PeerID())
	if st.State != StateConnecting || st.LastSeenMs == 0 {
		t.Errorf("b's state of a: %+v", st)
	}
}

func TestSimultaneousDialsLeaveOneLink(t *testing.T) {
	for i := 0; i < 5; i++ {
		ea, eb := &echo{}, &echo{}
		a, b := link2(t, ea, eb)
		go a.m.Connect(b.id.PeerID(), b.m.Addrs())
		go b.m.Connect(a.id.PeerID(), a.m.Addrs())
		waitFor(t, "linked", func() bool { return a.m.Up(b.id.PeerID()) && b.m.Up(a.id.PeerID()) })
		time.Sleep(300 * time.Millisecond) // let any losing connection be closed
		if !a.m.Up(b.id.PeerID()) || !b.m.Up(a.id.PeerID()) {
			t.Fatal("the link went down after the tie-break")
		}
		la, lb := a.m.current(b.id.PeerID()), b.m.current(a.id.PeerID())
		if la.outgoing == lb.outgoing {
			t.Fatalf("the two sides kept different connections (both outgoing=%v)", la.outgoing)
		}
		// The echo protocol keeps the newest attachment per peer, which may
		// be the loser's for a moment: the winner must answer soon.
		waitFor(t, "echo after the tie-break", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := ea.conn(b.id.PeerID()).Call(ctx, "echo", map[string]any{"n": 1})
			return err == nil
		})
		a.m.Close()
		b.m.Close()
	}
}

func TestKnownKeyAtAnotherAddressIsRefusedByTheDialler(t *testing.T) {
	a, b := link2(t, nil, nil)
	c := newNode(t)
	// c answers at the address b was given for a; c trusts b.
	c.trust.set(b.id.PeerID(), "household")
	_, err := b.m.dial(context.Background(), a.id.PeerID(), c.m.Addrs(), "", nil)
	if ReasonOf(err) != ReasonWrongPeer {
		t.Fatalf("dial a at c's address: %v, want wrong_peer", err)
	}
	var re *RefusedError
	if !errors.As(err, &re) || re.APIError().Code != api.CodeUnauthenticated {
		t.Errorf("refusal %v, want unauthenticated", err)
	}
}

func TestLinkTLSIsPinnedTLS13WithoutResumption(t *testing.T) {
	a, b := link2(t, nil, nil)
	for i := 0; i < 2; i++ { // the second link must not resume the first's session
		b.trust.set(a.id.PeerID(), "household")
		b.m.Connect(a.id.PeerID(), a.m.Addrs())
		waitFor(t, "link", func() bool { return b.m.Up(a.id.PeerID()) })
		cs := b.m.current(a.id.PeerID()).conn.ConnectionState()
		if cs.TLS.Version != tls.VersionTLS13 || cs.TLS.NegotiatedProtocol != ALPN || cs.TLS.DidResume || cs.Used0RTT {
			t.Fatalf("link %d TLS: version %#x alpn %q resumed %v 0rtt %v", i, cs.TLS.Version, cs.TLS.NegotiatedProtocol, cs.TLS.DidResume, cs.Used0RTT)
		}
		// (a learnt b's address from the hello and would redial it: b
		// stops trusting a so that the link stays down.)
		b.trust.del(a.id.PeerID())
		b.m.Disconnect(a.id.PeerID(), ReasonTrustRevoked)
		waitFor(t, "down", func() bool { return !a.m.Up(b.id.PeerID()) })
	}
	// Another ALPN fails the handshake.
	cert, _ := certificate(b.id)
	conf := clientTLS(cert, a.id.PeerID())
	conf.NextProtos = []string{"h3"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := quic.DialAddr(ctx, a.m.Addrs()[0], conf, nil); err == nil {
		c.CloseWithError(0, "")
		t.Fatal("a dial with ALPN h3 was accepted")
	}
	// A key the listener does not trust fails at the handshake.
	stranger, _ := identity.Generate()
	_, err := newNodeFrom(t, stranger).m.dial(context.Background(), a.id.PeerID(), a.m.Addrs(), "", nil)
	if ReasonOf(err) != ReasonUntrusted {
		t.Fatalf("untrusted key: %v, want untrusted", err)
	}
	if a.m.Counters().Get("link.refused.untrusted") != 1 {
		t.Errorf("refused.untrusted = %d", a.m.Counters().Get("link.refused.untrusted"))
	}
}

// newNodeFrom is newNode with a given identity and no listener; it trusts
// everyone it dials.
func newNodeFrom(t *testing.T, id *identity.Identity) *testNode {
	t.Helper()
	tr := &trustAll{}
	m, err := New(Options{Identity: id, Trust: tr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &testNode{id: id, m: m}
}

type trustAll struct{ memTrust }

func (*trustAll) Circle(string) (string, bool) { return "public-mesh", true }

// fakeListener accepts links with key id and answers every hello with
// answer(h) (nil: never answers).
func fakeListener(t *testing.T, id *identity.Identity, answer func(h hello) (any, error)) string {
	t.Helper()
	cert, _ := certificate(id)
	ln, err := quic.ListenAddr("127.0.0.1:0", serverTLS(cert, func(string) error { return nil }), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				st, err := c.AcceptStream(context.Background())
				if err != nil {
					return
				}
				conn := msgrpc.NewConn(msgrpc.NewStreamTransport(stream{st}, 0), msgrpc.Options{})
				conn.Start(msgrpc.HandlerFuncs{Request: func(ctx context.Context, _ string, p api.RawParams) (any, error) {
					var h hello
					p.Decode(&h)
					if answer == nil {
						<-ctx.Done()
						return nil, ctx.Err()
					}
					return answer(h)
				}})
			}()
		}
	}()
	return ln.Addr().String()
}

func TestBadHelloAnswersAreRefusedByTheDialler(t *testing.T) {
	fake, _ := identity.Generate()
	d := newNode(t)
	d.m.opts.DialTimeout = time.Second
	d.trust.set(fake.PeerID(), "household")
	answerFrom := func(mutate func(*hello)) func(h hello) (any, error) {
		return func(h hello) (any, error) {
			r := &hello{PeerID: fake.PeerID(), YourPeerID: h.PeerID, Protocol: ProtocolVersion, Instance: "f", Circle: "household"}
			mutate(r)
			return r, nil
		}
	}
	cases := []struct {
		name   string
		answer func(h hello) (any, error)
		want   Reason
	}{
		{"for another peer", answerFrom(func(r *hello) { r.YourPeerID = fake.PeerID() }), ReasonWrongPeer},
		{"claims another identity", answerFrom(func(r *hello) { r.PeerID = d.id.PeerID() }), ReasonIdentityMismatch},
		{"another version", answerFrom(func(r *hello) { r.Protocol = 2 }), ReasonVersionMismatch},
		{"not a hello", func(hello) (any, error) { return []int{1, 2}, nil }, ReasonBadHello},
		{"never answers", nil, ReasonHelloTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeListener(t, fake, tc.answer)
			_, err := d.m.dial(context.Background(), fake.PeerID(), []string{addr}, "", nil)
			if ReasonOf(err) != tc.want {
				t.Fatalf("dial: %v, want %s", err, tc.want)
			}
			if d.m.Up(fake.PeerID()) {
				t.Fatal("link up after a bad answer")
			}
		})
	}
}

// A protocol stream that ends while its link is up takes the link down
// (stream_lost), and the keeper brings the link back with the stream: a
// link never stays up without one of its protocols.
func TestLostProtocolStreamBringsTheLinkBackWhole(t *testing.T) {
	ea, eb := &echo{}, &echo{}
	a, b := link2(t, ea, eb)
	b.m.Connect(a.id.PeerID(), a.m.Addrs())
	waitFor(t, "both sides attached", func() bool { return ea.attached.Load() == 1 && eb.attached.Load() == 1 })
	ea.conn(b.id.PeerID()).Close() // as msgrpc does over a bad frame
	waitFor(t, "the link back with a new stream", func() bool {
		// A redial from each side may race (one link wins): at least one new
		// attachment on each side.
		return ea.attached.Load() >= 2 && eb.attached.Load() >= 2 && a.m.Up(b.id.PeerID()) && b.m.Up(a.id.PeerID())
	})
	// The side that closed its stream and the side that saw it end may both
	// count it (each waits streamLostGrace for the connection to go, and
	// whichever closes the link first spares the other); the duplicate
	// link that a racing redial closes must not count at all.
	lost := func() uint64 {
		return a.m.Counters().Get("link.stream_lost.echo") + b.m.Counters().Get("link.stream_lost.echo")
	}
	if n := lost(); n < 1 || n > 2 {
		t.Fatalf("stream_lost counted %d times on the two sides, want 1 or 2", n)
	}
	before := lost()
	time.Sleep(3 * streamLostGrace)
	if n := lost(); n != before {
		t.Fatalf("stream_lost went on counting after the link came back: %d, then %d", before, n)
	}
	// The echo protocol keeps the newest attachment per peer, which may be
	// the losing duplicate's for a moment: ask until the winner answers.
	waitFor(t, "echo over the new stream", func() bool {
		c := eb.conn(a.id.PeerID())
		if c == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Call(ctx, "echo", map[string]any{"n": 1})
		return err == nil
	})
}
