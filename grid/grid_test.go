package grid_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/quic-go/quic-go"
)

// node is one real daemon on a temp dir, with its socket client.
type node struct {
	t      *testing.T
	dir    string
	listen string
	d      *daemon.Daemon
	c      *client.Client
	id     string
	tweak  func(*grid.Options) // set before start: options beyond the defaults
	infer  inference.Options   // the inference service's (zero: no libraries, gpu_unavailable)
}

// fastLinks keeps reconnects quick in tests.
var fastLinks = link.Options{BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, HelloTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second, KeepAlive: time.Second}

func startNode(t *testing.T) *node { return startInferenceNode(t, inference.Options{}) }

// startInferenceNode starts a node whose inference service has infer.
func startInferenceNode(t *testing.T, infer inference.Options) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "cgrid")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &node{t: t, dir: dir, listen: "127.0.0.1:0", infer: infer}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) start() {
	n.t.Helper()
	g := grid.Options{ListenQUIC: n.listen, Link: fastLinks, Dispatch: fastDispatch}
	if n.tweak != nil {
		n.tweak(&g)
	}
	d, err := daemon.Start(daemon.Config{
		Kernel:    kernel.Config{StateDir: filepath.Join(n.dir, "state")},
		Socket:    filepath.Join(n.dir, "d.sock"),
		Grid:      g,
		Inference: n.infer,
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.d = d
	// Restarts come back on the same port, as a daemon with a fixed
	// --listen-quic would.
	n.listen = d.Grid().QUICAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, d.SocketPath())
	if err != nil {
		n.t.Fatal(err)
	}
	n.c = c
	n.id = d.Kernel().PeerID()
}

func (n *node) stop() {
	if n.d == nil {
		return
	}
	n.c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.d.Shutdown(ctx); err != nil {
		n.t.Errorf("shutdown: %v", err)
	}
	n.d = nil
}

func (n *node) call(method string, params, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.c.Call(ctx, method, params, result)
}

func (n *node) must(method string, params, result any) {
	n.t.Helper()
	if err := n.call(method, params, result); err != nil {
		n.t.Fatalf("%s: %v", method, err)
	}
}

func (n *node) invite(circle string) string {
	n.t.Helper()
	var r api.InviteResult
	n.must(api.MethodGridInvite, api.InviteParams{Circle: circle}, &r)
	return r.Token
}

func (n *node) peer(id string) (api.GridPeer, bool) {
	n.t.Helper()
	var r api.PeersResult
	n.must(api.MethodGridPeers, api.Empty{}, &r)
	for _, p := range r.Peers {
		if p.PeerID == id {
			return p, true
		}
	}
	return api.GridPeer{}, false
}

func (n *node) status() api.GridStatus {
	n.t.Helper()
	var s api.GridStatus
	n.must(api.MethodGridStatus, api.Empty{}, &s)
	return s
}

// eventually waits up to d for cond, failing with what when it never holds.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *node) waitState(other *node, state string) {
	n.t.Helper()
	eventually(n.t, 10*time.Second, n.id[:8]+" sees "+other.id[:8]+" "+state, func() bool {
		p, ok := n.peer(other.id)
		return ok && p.State == state
	})
}

func codeOf(err error) api.Code { return api.CodeOf(err) }

func reasonOf(err error) string {
	if ae, ok := err.(*api.Error); ok {
		if m, ok := ae.Data.(map[string]any); ok {
			s, _ := m["reason"].(string)
			return s
		}
	}
	return ""
}

// join links b to a by invite.
func join(t *testing.T, a, b *node, circle string) {
	t.Helper()
	var jr api.JoinResult
	b.must(api.MethodGridJoin, api.JoinParams{Token: a.invite(circle)}, &jr)
	if jr.PeerID != a.id || jr.Circle != circle {
		t.Fatalf("join = %+v, want %s in %s", jr, a.id, circle)
	}
	a.waitState(b, link.StateUp)
	b.waitState(a, link.StateUp)
}

func TestInviteJoinLinksBothSides(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "household")

	pa, _ := b.peer(a.id)
	if pa.Circle != "household" || len(pa.Addrs) != 1 || pa.Addrs[0] != a.listen {
		t.Errorf("b's record of a = %+v, want household at %s", pa, a.listen)
	}
	pb, _ := a.peer(b.id)
	if pb.Circle != "household" || len(pb.Addrs) != 1 || pb.Addrs[0] != b.listen {
		t.Errorf("a's record of b = %+v, want household at %s (from b's hello)", pb, b.listen)
	}
	if pb.RTTMs <= 0 || pb.LastSeenMs == 0 {
		t.Errorf("a's view of the link to b has rttMs %v, lastSeenMs %d", pb.RTTMs, pb.LastSeenMs)
	}
	st := a.status()
	if st.PeerID != a.id || len(st.QUICAddrs) != 1 || st.Links != 1 || st.Counters["link.up"] == 0 {
		t.Errorf("a's grid/status = %+v", st)
	}
	// kernel/info shows the QUIC address too.
	var info api.InfoResult
	a.must(api.MethodKernelInfo, api.Empty{}, &info)
	if len(info.QUICAddrs) != 1 || info.QUICAddrs[0] != a.listen {
		t.Errorf("kernel/info quicAddrs = %v, want [%s]", info.QUICAddrs, a.listen)
	}
}

func TestThreeDaemonsNoTransitiveTrust(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	join(t, a, b, "household")
	join(t, a, c, "extended")
	if _, ok := b.peer(c.id); ok {
		t.Error("b trusts c because both trust a")
	}
	if _, ok := c.peer(b.id); ok {
		t.Error("c trusts b because both trust a")
	}
	if p, _ := a.peer(c.id); p.Circle != "extended" {
		t.Errorf("a trusts c in %q, want extended", p.Circle)
	}
	if st := a.status(); st.Links != 2 {
		t.Errorf("a has %d links, want 2", st.Links)
	}
}

func TestTokenRefusals(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)

	// Reused: b redeems it, then c tries the same token. With no invite
	// outstanding, a refuses c's unknown key at the TLS handshake.
	tok := a.invite("household")
	b.must(api.MethodGridJoin, api.JoinParams{Token: tok}, nil)
	err := c.call(api.MethodGridJoin, api.JoinParams{Token: tok}, nil)
	if codeOf(err) != api.CodePermissionDenied || reasonOf(err) != string(link.ReasonUntrusted) {
		t.Errorf("reused token, no invite outstanding: %v (reason %q), want permission_denied untrusted", err, reasonOf(err))
	}
	// With another invite outstanding, c gets as far as the hello, where
	// the used nonce is refused.
	other := a.invite("household")
	err = c.call(api.MethodGridJoin, api.JoinParams{Token: tok}, nil)
	if codeOf(err) != api.CodePermissionDenied || reasonOf(err) != string(link.ReasonTokenUsed) {
		t.Errorf("reused token: %v (reason %q), want permission_denied token_used", err, reasonOf(err))
	}
	_ = other
	if _, ok := a.peer(c.id); ok {
		t.Error("a trusts c after a reused token")
	}
	if _, ok := c.peer(a.id); ok {
		t.Error("c kept trust of a after a refused join")
	}

	// Tampered: change the circle inside the payload, keep the signature.
	tok = a.invite("public-mesh")
	parts := strings.Split(tok, ".")
	parts[1] = parts[1][:len(parts[1])-2] + flip(parts[1][len(parts[1])-2:])
	err = c.call(api.MethodGridJoin, api.JoinParams{Token: strings.Join(parts, ".")}, nil)
	if codeOf(err) != api.CodeInvalidArgument {
		t.Errorf("tampered token: %v, want invalid_argument", err)
	}
	for _, bad := range []string{"", "hello", "cinv1.", "cinv1.e30.AAAA", strings.Repeat("x", 5000)} {
		if err := c.call(api.MethodGridJoin, api.JoinParams{Token: bad}, nil); codeOf(err) != api.CodeInvalidArgument {
			t.Errorf("token %.20q: %v, want invalid_argument", bad, err)
		}
	}
	// Issued by the joiner itself.
	if err := a.call(api.MethodGridJoin, api.JoinParams{Token: a.invite("household")}, nil); codeOf(err) != api.CodeInvalidArgument {
		t.Errorf("own token: %v, want invalid_argument", err)
	}

	// Expired.
	var r api.InviteResult
	a.must(api.MethodGridInvite, api.InviteParams{Circle: "household", TTLSeconds: 1}, &r)
	time.Sleep(time.Until(time.UnixMilli(r.ExpiresAtMs)) + 50*time.Millisecond)
	err = c.call(api.MethodGridJoin, api.JoinParams{Token: r.Token}, nil)
	if codeOf(err) != api.CodePermissionDenied || reasonOf(err) != string(link.ReasonTokenExpired) {
		t.Errorf("expired token: %v (reason %q), want permission_denied token_expired", err, reasonOf(err))
	}
	// a still serves: c can still join with a fresh token.
	join(t, a, c, "trusted-orgs")
}

// flip changes a base64url fragment to another valid one.
func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestUntrustClosesTheLinkAndRefusesReconnect(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "household")

	var ur api.UntrustResult
	start := time.Now()
	a.must(api.MethodGridUntrust, api.UntrustParams{PeerID: b.id}, &ur)
	if !ur.Removed {
		t.Fatal("untrust says b was not trusted")
	}
	b.waitState(a, link.StateConnecting)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("b saw the link close %s after untrust", d)
	}
	if _, ok := a.peer(b.id); ok {
		t.Error("a still lists b")
	}
	// b keeps dialling (it still trusts a); a refuses it at the handshake.
	eventually(t, 5*time.Second, "a refuses b's redials", func() bool {
		return a.status().Counters["link.refused.untrusted"] >= 2
	})
	if p, _ := b.peer(a.id); p.State == link.StateUp || !strings.Contains(p.LastError, "untrusted") {
		t.Errorf("b's view of a after untrust: %+v", p)
	}
	if c := b.status().Counters["link.closed.trust_revoked"]; c != 1 {
		t.Errorf("b counted %d link.closed.trust_revoked, want 1", c)
	}
	// Untrusting again is not an error.
	a.must(api.MethodGridUntrust, api.UntrustParams{PeerID: b.id}, &ur)
	if ur.Removed {
		t.Error("second untrust removed something")
	}
}

func TestRestartedDaemonLinksAgainByItself(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "household")

	b.stop()
	a.waitState(b, link.StateConnecting)
	b.start()
	a.waitState(b, link.StateUp)
	b.waitState(a, link.StateUp)

	a.stop()
	b.waitState(a, link.StateConnecting)
	a.start()
	a.waitState(b, link.StateUp)
	b.waitState(a, link.StateUp)
	if st := a.status(); st.Links != 1 {
		t.Errorf("a has %d links after the restarts, want 1", st.Links)
	}
}

func TestUnknownKeyIsRefusedAtTheHandshake(t *testing.T) {
	a, c := startNode(t), startNode(t)
	// c trusts a, a never heard of c.
	c.must(api.MethodGridTrust, api.TrustParams{PeerID: a.id, Circle: "household", Addrs: []string{a.listen}}, nil)
	eventually(t, 5*time.Second, "a refuses c at the TLS handshake twice (first dial and a reconnect)", func() bool {
		return a.status().Counters["link.refused.untrusted"] >= 2
	})
	p, _ := c.peer(a.id)
	if p.State != link.StateConnecting || !strings.Contains(p.LastError, "untrusted") {
		t.Errorf("c's view of a: %+v, want connecting with an untrusted error", p)
	}
	if st := a.status(); st.Links != 0 {
		t.Errorf("a has %d links", st.Links)
	}
}

func TestDialledPeerIDIsPinned(t *testing.T) {
	a, b, c := startNode(t), startNode(t), startNode(t)
	// b answers at the address c was given for a: c must refuse b's key,
	// even though b trusts c.
	b.must(api.MethodGridTrust, api.TrustParams{PeerID: c.id, Circle: "household"}, nil)
	c.must(api.MethodGridTrust, api.TrustParams{PeerID: a.id, Circle: "household", Addrs: []string{b.listen}}, nil)
	eventually(t, 5*time.Second, "c refuses b's key when dialling a", func() bool {
		return c.status().Counters["link.dial_refused.wrong_peer"] >= 1
	})
	if p, _ := c.peer(a.id); p.State == link.StateUp {
		t.Error("c is linked to 'a' at b's address")
	}
	if p, _ := b.peer(c.id); p.State == link.StateUp {
		t.Error("b is linked to c")
	}
}

func TestGridMethodsRefuseBadParams(t *testing.T) {
	a := startNode(t)
	valid := a.id
	cases := []struct {
		method string
		params any
	}{
		{api.MethodGridInvite, map[string]any{}},
		{api.MethodGridInvite, map[string]any{"circle": 7}},
		{api.MethodGridInvite, map[string]any{"circle": "friends"}},
		{api.MethodGridInvite, map[string]any{"circle": "household", "ttlSeconds": "soon"}},
		{api.MethodGridInvite, map[string]any{"circle": "household", "ttlSeconds": -1}},
		{api.MethodGridInvite, map[string]any{"circle": "household", "ttlSeconds": 100000000}},
		{api.MethodGridJoin, map[string]any{}},
		{api.MethodGridJoin, map[string]any{"token": []int{1}}},
		{api.MethodGridTrust, map[string]any{}},
		{api.MethodGridTrust, map[string]any{"peerId": valid}},
		{api.MethodGridTrust, map[string]any{"circle": "household"}},
		{api.MethodGridTrust, map[string]any{"peerId": "cnotapeer", "circle": "household"}},
		{api.MethodGridTrust, map[string]any{"peerId": 12, "circle": "household"}},
		{api.MethodGridTrust, map[string]any{"peerId": valid, "circle": "household"}}, // itself
		{api.MethodGridTrust, map[string]any{"peerId": startNode(t).id, "circle": "household", "addrs": "127.0.0.1:1"}},
		{api.MethodGridTrust, map[string]any{"peerId": startNode(t).id, "circle": "household", "addrs": []string{"no-port"}}},
		{api.MethodGridTrust, map[string]any{"peerId": startNode(t).id, "circle": "household", "addrs": make([]string, 17)}},
		{api.MethodGridUntrust, map[string]any{}},
		{api.MethodGridUntrust, map[string]any{"peerId": true}},
		{api.MethodGridUntrust, map[string]any{"peerId": "x"}},
		{api.MethodGridPeers, []int{1}},
		{api.MethodGridStatus, "x"},
	}
	for _, tc := range cases {
		err := a.call(tc.method, tc.params, nil)
		if codeOf(err) != api.CodeInvalidArgument {
			t.Errorf("%s %v: %v, want invalid_argument", tc.method, tc.params, err)
		}
	}
	// The daemon still answers.
	a.status()
}

func TestInviteWithoutListenerIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	d, err := daemon.Start(daemon.Config{Kernel: kernel.Config{StateDir: dir}, NoSocket: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	c, err := client.NewInProcess(d.Kernel())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Call(context.Background(), api.MethodGridInvite, api.InviteParams{Circle: "household"}, nil)
	if codeOf(err) != api.CodeUnavailable || !strings.Contains(err.Error(), "--listen-quic") {
		t.Errorf("invite without a listener: %v", err)
	}
	var st api.GridStatus
	if err := c.Call(context.Background(), api.MethodGridStatus, api.Empty{}, &st); err != nil || len(st.QUICAddrs) != 0 {
		t.Errorf("status without a listener: %+v, %v", st, err)
	}
}

func TestTrustSurvivesRestart(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "trusted-orgs")
	a.stop()
	b.stop()
	a.start()
	if p, ok := a.peer(b.id); !ok || p.Circle != "trusted-orgs" {
		t.Fatalf("after restart a's record of b: %+v, %v", p, ok)
	}
	b.start()
	a.waitState(b, link.StateUp)
}

// hostileConn dials n's QUIC listener with key id, the way a link does
// (TLS 1.3, ALPN continuum/1, pinned to n), and then misbehaves.
func hostileConn(t *testing.T, n *node, id *identity.Identity) *quic.Conn {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.PublicKey(), id.Signer())
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS13, NextProtos: []string{link.ALPN}, InsecureSkipVerify: true, ServerName: "continuum",
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: id.Signer()}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, n.listen, conf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

func TestDaemonRefusesBadHellosAndKeepsServing(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "household")
	hostile, _ := identity.Generate()
	a.must(api.MethodGridTrust, api.TrustParams{PeerID: hostile.PeerID(), Circle: "public-mesh"}, nil)

	closedWith := func(c *quic.Conn) link.Reason {
		select {
		case <-c.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the daemon did not close the hostile connection")
		}
		return link.ReasonOf(context.Cause(c.Context()))
	}
	// Garbage on the control stream.
	c := hostileConn(t, a, hostile)
	st, _ := c.OpenStreamSync(context.Background())
	st.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	if r := closedWith(c); r != link.ReasonBadHello {
		t.Errorf("garbage: closed for %q, want bad_hello", r)
	}
	// Half a hello, then the peer vanishes.
	c = hostileConn(t, a, hostile)
	st, _ = c.OpenStreamSync(context.Background())
	st.Write([]byte{0x94, 0x00, 0x01})
	c.CloseWithError(0, "vanished")
	// A stream opened and nothing sent: hello_timeout (2s in these tests).
	c = hostileConn(t, a, hostile)
	c.OpenStreamSync(context.Background())
	if r := closedWith(c); r != link.ReasonHelloTimeout {
		t.Errorf("silent: closed for %q, want hello_timeout", r)
	}
	// Everyone else is still served: the link to b is up and a new peer joins.
	if p, _ := a.peer(b.id); p.State != link.StateUp {
		t.Errorf("a's link to b is %s after the hostile peer", p.State)
	}
	c3 := startNode(t)
	join(t, a, c3, "extended")
	if st := a.status(); st.Counters["link.refused.bad_hello"] == 0 || st.Counters["link.refused.hello_timeout"] == 0 {
		t.Errorf("counters: %v", st.Counters)
	}
}

func TestTrustWithoutAddressWaitsForThePeer(t *testing.T) {
	a, b := startNode(t), startNode(t)
	var p api.GridPeer
	a.must(api.MethodGridTrust, api.TrustParams{PeerID: b.id, Circle: "household"}, &p)
	if p.State != link.StateDown || p.LastSeenMs != 0 || len(p.Addrs) != 0 {
		t.Errorf("trusted without addrs: %+v, want down, never seen", p)
	}
	// b dials a: the link comes up, and a (with no address for b) keeps it.
	b.must(api.MethodGridTrust, api.TrustParams{PeerID: a.id, Circle: "household", Addrs: []string{a.listen}}, nil)
	a.waitState(b, link.StateUp)
	b.waitState(a, link.StateUp)
}

func TestPeerRestartedOnAnotherPortIsStillRedialled(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "household")
	old := b.listen

	b.stop()
	b.listen = "127.0.0.1:0" // comes back on another port
	b.start()
	if b.listen == old {
		t.Skip("the kernel handed out the same port again")
	}
	// b still knows where a is and dials it; its hello tells a where b is now.
	a.waitState(b, link.StateUp)
	eventually(t, 5*time.Second, "a records b's new address", func() bool {
		p, _ := a.peer(b.id)
		return len(p.Addrs) == 1 && p.Addrs[0] == b.listen
	})
	// Now b waits for a (b forgets a's address): a must dial b's new port.
	b.must(api.MethodGridTrust, api.TrustParams{PeerID: a.id, Circle: "household"}, nil)
	b.stop()
	b.start() // the same new port: n.listen was updated by start
	a.waitState(b, link.StateUp)
	if p, _ := a.peer(b.id); p.Circle != "household" {
		t.Errorf("a's record of b: %+v", p)
	}
}
