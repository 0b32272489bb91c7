package trust

import (
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/kernel/identity"
)

// FuzzParseToken feeds the token parser real tokens and mutations of them:
// it must never panic, and whatever it accepts must verify against the key
// of the inviter it names (so a mutation it accepts is a token that key
// signed, byte for byte).
func FuzzParseToken(f *testing.F) {
	id, _ := identity.FromSeed(make([]byte, 32))
	for _, c := range Circles {
		tok, _ := newToken(id, c, []string{"127.0.0.1:7946", "[::1]:7946"}, time.Now().Add(time.Hour).UnixMilli())
		f.Add(tok.String())
	}
	f.Add("cinv1.e30.")
	f.Add("cinv1..")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		if !identity.Verify(tok.Inviter, append([]byte(signContext), tok.payload...), tok.sig) {
			t.Fatalf("accepted a token whose signature does not verify: %q", s)
		}
		if got := tok.String(); got != strings.TrimSpace(s) {
			// Strict base64: the trailing bits must be zero, so there is
			// one spelling per token.
			t.Fatalf("accepted %q, which re-encodes as %q", s, got)
		}
	})
}
