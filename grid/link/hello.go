package link

import (
	"context"
	"io"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/quic-go/quic-go"
)

// ProtocolVersion is the link protocol's version, carried in the hello. A
// peer with another version is refused with version_mismatch.
const ProtocolVersion = 1

// Methods of the control stream.
const (
	methodHello = "link/hello"
)

// hello is what each side says about itself on the control stream: the
// dialler sends it as the params of link/hello, the listener answers with
// its own (Circle set).
type hello struct {
	PeerID     string `msgpack:"peerId" api:"required"`
	YourPeerID string `msgpack:"yourPeerId" api:"required"`
	Protocol   int    `msgpack:"protocol" api:"required"`
	Epoch      uint64 `msgpack:"epoch"`
	// Instance is random per start of the process: a hello from a known
	// peer with another instance means it restarted and its old connection
	// is dead, whatever this side still thinks.
	Instance string `msgpack:"instance" api:"required"`
	// Addrs are where the sender listens, so an inviter can dial a joiner
	// back.
	Addrs []string `msgpack:"addrs,omitempty"`
	// JoinToken is an invite token, presented by a joiner that the listener
	// does not trust yet.
	JoinToken string `msgpack:"joinToken,omitempty"`
	// Circle, in the answer, is the circle the listener trusts the dialler in.
	Circle string `msgpack:"circle,omitempty"`
}

// check applies the rules both sides apply to the other's hello: the sender
// is the key TLS proved, it meant to reach us, it speaks our version.
func (h *hello) check(tlsPeer, me string) *RefusedError {
	switch {
	case h.PeerID != tlsPeer:
		return refused(ReasonIdentityMismatch, "hello says peer %s, the TLS key is %s", h.PeerID, tlsPeer)
	case h.YourPeerID != me:
		return refused(ReasonWrongPeer, "hello is for peer %s, this is %s", h.YourPeerID, me)
	case h.Protocol != ProtocolVersion:
		return refused(ReasonVersionMismatch, "hello speaks link protocol %d, this side %d", h.Protocol, ProtocolVersion)
	case h.Instance == "" || len(h.Instance) > 64:
		return refused(ReasonBadHello, "hello has no valid instance")
	case len(h.Addrs) > 16 || len(h.JoinToken) > 4096:
		return refused(ReasonBadHello, "hello too large")
	}
	return nil
}

// stream adapts a QUIC stream for msgrpc: Close ends both directions, so
// closing the msgrpc.Conn unblocks its reader (a quic.Stream's own Close
// only ends the sending side).
type stream struct{ *quic.Stream }

func (s stream) Close() error {
	s.Stream.CancelRead(0)
	return s.Stream.Close()
}

// protocolPreamble is how a protocol stream names its protocol before the
// msgrpc messages start: one length byte, then the name.
func writePreamble(w io.Writer, name string) error {
	b := append([]byte{byte(len(name))}, name...)
	_, err := w.Write(b)
	return err
}

func readPreamble(s *quic.Stream, timeout time.Duration) (string, error) {
	_ = s.SetReadDeadline(time.Now().Add(timeout))
	defer s.SetReadDeadline(time.Time{})
	var n [1]byte
	if _, err := io.ReadFull(s, n[:]); err != nil {
		return "", err
	}
	if n[0] == 0 || n[0] > 64 {
		return "", api.Errorf(api.CodeProtocolError, "protocol name of %d bytes", n[0])
	}
	name := make([]byte, n[0])
	if _, err := io.ReadFull(s, name); err != nil {
		return "", err
	}
	return string(name), nil
}

// waitCtx is a context bounded by d and by parent.
func waitCtx(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, d)
}
