package link

import (
	"errors"
	"fmt"

	"github.com/continuum-grid/continuum/api"
	"github.com/quic-go/quic-go"
)

// Reason says why a link was refused or closed. Each has its own QUIC
// application error code (the code a connection is closed with), its catalogue
// code (what a caller of grid/join sees) and a counter in grid/status
// ("link.refused.REASON" or "link.closed.REASON").
type Reason string

// Every reason a link is refused or closed; docs/GRID.md lists them.
const (
	// ReasonUntrusted: the peer's key is not trusted here (at the TLS
	// handshake, or in a hello that carried no valid join token).
	ReasonUntrusted Reason = "untrusted"
	// ReasonWrongPeer: the hello was meant for another peer id
	// (yourPeerId), or the key that answered is not the dialled peer id.
	ReasonWrongPeer Reason = "wrong_peer"
	// ReasonIdentityMismatch: the hello's peerId is not the key the TLS
	// handshake proved.
	ReasonIdentityMismatch Reason = "identity_mismatch"
	// ReasonVersionMismatch: the hello's protocol version is not ours.
	ReasonVersionMismatch Reason = "version_mismatch"
	// ReasonBadHello: the control stream did not carry a well-formed hello
	// (garbage bytes, another method, wrong field types, a second hello).
	ReasonBadHello Reason = "bad_hello"
	// ReasonHelloTimeout: no hello (or no answer to ours) in time.
	ReasonHelloTimeout Reason = "hello_timeout"
	// ReasonDuplicate: a simultaneous connection to the same peer won the
	// tie-break (the lower peer id's outgoing connection is kept).
	ReasonDuplicate Reason = "duplicate"
	// ReasonReplaced: a newer connection from the same peer took over (it
	// restarted, or saw this one die first).
	ReasonReplaced Reason = "replaced"
	// ReasonTrustRevoked: the operator untrusted the peer.
	ReasonTrustRevoked Reason = "trust_revoked"
	// ReasonShutdown: this side is shutting down.
	ReasonShutdown Reason = "shutdown"
	// ReasonInvalidToken: a join token that does not parse or verify, or
	// was issued by another install.
	ReasonInvalidToken Reason = "invalid_token"
	// ReasonTokenExpired: a join token past its expiry.
	ReasonTokenExpired Reason = "token_expired"
	// ReasonTokenUsed: a join token whose nonce is not outstanding (used
	// already, or never issued here).
	ReasonTokenUsed Reason = "token_used"
	// ReasonControlLost: the control stream ended while the link was up.
	ReasonControlLost Reason = "control_lost"
	// ReasonStreamLost: a protocol stream (replication, commands) ended
	// while the link was up; the link is closed so that it comes back whole
	// rather than staying up without it.
	ReasonStreamLost Reason = "stream_lost"
	// ReasonUnreachable: no address of the peer answered.
	ReasonUnreachable Reason = "unreachable"
)

var reasonCodes = map[Reason]quic.ApplicationErrorCode{
	ReasonUntrusted:        0x101,
	ReasonWrongPeer:        0x102,
	ReasonIdentityMismatch: 0x103,
	ReasonVersionMismatch:  0x104,
	ReasonBadHello:         0x105,
	ReasonHelloTimeout:     0x106,
	ReasonDuplicate:        0x107,
	ReasonReplaced:         0x108,
	ReasonTrustRevoked:     0x109,
	ReasonShutdown:         0x10a,
	ReasonInvalidToken:     0x10b,
	ReasonTokenExpired:     0x10c,
	ReasonTokenUsed:        0x10d,
	ReasonControlLost:      0x10e,
	ReasonStreamLost:       0x10f,
}

// Code is the QUIC application error code a connection closed for r carries.
func (r Reason) Code() quic.ApplicationErrorCode {
	if c, ok := reasonCodes[r]; ok {
		return c
	}
	return 0x100
}

func reasonOfCode(c quic.ApplicationErrorCode) (Reason, bool) {
	for r, rc := range reasonCodes {
		if rc == c {
			return r, true
		}
	}
	return "", false
}

// apiCode is the catalogue code of a refusal for r.
func (r Reason) apiCode() api.Code {
	switch r {
	case ReasonUntrusted, ReasonTrustRevoked, ReasonTokenExpired, ReasonTokenUsed:
		return api.CodePermissionDenied
	case ReasonWrongPeer, ReasonIdentityMismatch:
		return api.CodeUnauthenticated
	case ReasonVersionMismatch, ReasonBadHello:
		return api.CodeProtocolError
	case ReasonHelloTimeout:
		return api.CodeDeadlineExceeded
	case ReasonInvalidToken:
		return api.CodeInvalidArgument
	case ReasonUnreachable:
		return api.CodePeerUnreachable
	default:
		return api.CodeUnavailable
	}
}

// RefusedError is a link that did not come up, or went down, for a Reason.
// Remote says the other side decided it.
type RefusedError struct {
	Reason  Reason
	Message string
	Remote  bool
}

func (e *RefusedError) Error() string {
	who := "refused here"
	if e.Remote {
		who = "refused by the peer"
	}
	return fmt.Sprintf("link %s (%s): %s", who, e.Reason, e.Message)
}

// APIError is the refusal as a catalogue error whose data names the reason.
func (e *RefusedError) APIError() *api.Error {
	ae := api.Errorf(e.Reason.apiCode(), "%s", e.Error())
	ae.Data = map[string]any{"reason": string(e.Reason), "detail": e.Message}
	return ae
}

func refused(r Reason, format string, args ...any) *RefusedError {
	return &RefusedError{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// ReasonOf finds the Reason in err: a RefusedError, a QUIC application
// close carrying one of our codes, a refused TLS handshake, an api.Error
// whose data names one. "" when err carries none.
func ReasonOf(err error) Reason {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		if r, ok := reasonOfCode(ae.ErrorCode); ok {
			return r
		}
	}
	if errors.Is(err, errPinned) {
		return ReasonWrongPeer
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() && te.Remote {
		// The listener's certificate check failed us: our key is not trusted there.
		return ReasonUntrusted
	}
	var apiErr *api.Error
	if errors.As(err, &apiErr) {
		if m, ok := apiErr.Data.(map[string]any); ok {
			if s, ok := m["reason"].(string); ok {
				if _, known := reasonCodes[Reason(s)]; known {
					return Reason(s)
				}
			}
		}
	}
	return ""
}

// asRefused turns a dial or hello failure into a RefusedError.
func asRefused(err error, fallback Reason) *RefusedError {
	var re *RefusedError
	if errors.As(err, &re) {
		return re
	}
	r := ReasonOf(err)
	remote := true
	var apiErr *api.Error
	if r != "" && errors.As(err, &apiErr) {
		// The peer's refusal in its hello answer: keep its own words.
		if m, ok := apiErr.Data.(map[string]any); ok {
			if d, ok := m["detail"].(string); ok {
				return &RefusedError{Reason: r, Message: d, Remote: true}
			}
		}
	}
	if errors.Is(err, errPinned) {
		remote = false
	}
	if r == "" {
		r, remote = fallback, false
	}
	return &RefusedError{Reason: r, Message: err.Error(), Remote: remote}
}
