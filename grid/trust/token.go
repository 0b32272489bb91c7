package trust

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/kernel/identity"
)

// Invite lifetimes.
const (
	DefaultInviteTTL = 10 * time.Minute
	MaxInviteTTL     = 7 * 24 * time.Hour
	// MaxTokenLen bounds a token's text (a hello refuses longer ones).
	MaxTokenLen = 4096
)

// tokenPrefix starts every token; it names the format's version.
const tokenPrefix = "cinv1."

// signContext is prepended to the payload before signing, so an invite
// signature can never be taken for a signature over anything else.
const signContext = "continuum-invite/1\n"

// Token is a parsed invite token.
type Token struct {
	Inviter string   `json:"inviter"`
	Addrs   []string `json:"addrs"`
	Circle  string   `json:"circle"`
	Nonce   string   `json:"nonce"` // 32 lowercase hex digits
	ExpMs   int64    `json:"exp"`   // unix milliseconds

	payload, sig []byte
}

func newToken(id *identity.Identity, circle string, addrs []string, expMs int64) (*Token, error) {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, err
	}
	if addrs == nil {
		addrs = []string{}
	}
	t := &Token{Inviter: id.PeerID(), Addrs: addrs, Circle: circle, Nonce: hex.EncodeToString(n[:]), ExpMs: expMs}
	t.payload, _ = json.Marshal(t)
	t.sig = id.Sign(append([]byte(signContext), t.payload...))
	return t, nil
}

// String is the token's text: "cinv1." + base64url(payload JSON) + "." +
// base64url(Ed25519 signature of signContext+payload).
func (t *Token) String() string {
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString(t.payload) + "." + enc.EncodeToString(t.sig)
}

// Expired reports whether the token is past its expiry at now.
func (t *Token) Expired(now time.Time) bool { return t.ExpMs <= now.UnixMilli() }

// ParseToken decodes a token and verifies its signature against the key of
// the inviter it names. It does not check expiry or the nonce.
func ParseToken(s string) (*Token, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxTokenLen {
		return nil, fmt.Errorf("token of %d bytes, at most %d", len(s), MaxTokenLen)
	}
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return nil, fmt.Errorf("not an invite token (want %q…)", tokenPrefix)
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, fmt.Errorf("token has no signature")
	}
	// Strict: one spelling per token (no stray bits after the last byte).
	enc := base64.RawURLEncoding.Strict()
	payload, err := enc.DecodeString(p64)
	if err != nil {
		return nil, fmt.Errorf("token payload: %v", err)
	}
	sig, err := enc.DecodeString(s64)
	if err != nil {
		return nil, fmt.Errorf("token signature: %v", err)
	}
	var t Token
	if err := json.Unmarshal(payload, &t); err != nil {
		return nil, fmt.Errorf("token payload: %v", err)
	}
	if !identity.ValidPeerID(t.Inviter) {
		return nil, fmt.Errorf("token names inviter %q, not a peer id", t.Inviter)
	}
	if !identity.Verify(t.Inviter, append([]byte(signContext), payload...), sig) {
		return nil, fmt.Errorf("token signature does not verify against inviter %s (tampered?)", t.Inviter)
	}
	if !ValidCircle(t.Circle) {
		return nil, fmt.Errorf("token circle %q is not one of %v", t.Circle, Circles)
	}
	if b, err := hex.DecodeString(t.Nonce); err != nil || len(b) != 16 {
		return nil, fmt.Errorf("token nonce %q is not 32 hex digits", t.Nonce)
	}
	if err := CheckAddrs(t.Addrs); err != nil {
		return nil, fmt.Errorf("token addrs: %v", err)
	}
	t.payload, t.sig = payload, sig
	return &t, nil
}

func splitHostPort(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q", p)
	}
	if h == "" {
		return "", 0, errNoPort
	}
	return h, n, nil
}
