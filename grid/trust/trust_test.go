package trust

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/kernel/identity"
	bolt "go.etcd.io/bbolt"
)

func openStore(t *testing.T, path string, id *identity.Identity) (*Store, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, id)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func newID(t *testing.T) *identity.Identity {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRecordsAndNoncesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	me, peer, joiner := newID(t), newID(t), newID(t)
	s, db := openStore(t, path, me)
	if _, err := s.Put(Record{PeerID: peer.PeerID(), Circle: CircleExtended, Addrs: []string{"127.0.0.1:9"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Invite(CircleHousehold, time.Minute, []string{"127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, db = openStore(t, path, me)
	defer db.Close()
	if c, ok := s.Circle(peer.PeerID()); !ok || c != CircleExtended {
		t.Fatalf("after reopen: circle %q %v", c, ok)
	}
	if !s.InvitesOutstanding() {
		t.Fatal("the outstanding invite was lost at reopen")
	}
	circle, err := s.Redeem(tok, joiner.PeerID(), []string{"127.0.0.1:2"})
	if err != nil || circle != CircleHousehold {
		t.Fatalf("redeem after reopen: %q, %v", circle, err)
	}
	if r, ok := s.Get(joiner.PeerID()); !ok || r.Circle != CircleHousehold || r.Addrs[0] != "127.0.0.1:2" {
		t.Fatalf("joiner record %+v %v", r, ok)
	}
	if _, err := s.Redeem(tok, newID(t).PeerID(), nil); link.ReasonOf(err) != link.ReasonTokenUsed {
		t.Fatalf("second redeem: %v, want token_used", err)
	}
	if s.InvitesOutstanding() {
		t.Error("an invite is still outstanding after its redemption")
	}
	if ok, _ := s.Delete(peer.PeerID()); !ok {
		t.Error("delete said the peer was not there")
	}
	if _, ok := s.Circle(peer.PeerID()); ok {
		t.Error("deleted peer still trusted")
	}
}

func TestTokensRefused(t *testing.T) {
	me, other := newID(t), newID(t)
	s, db := openStore(t, filepath.Join(t.TempDir(), "s.db"), me)
	defer db.Close()
	tok, err := s.Invite(CircleHousehold, time.Minute, []string{"127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := ParseToken(tok)
	if err != nil || pt.Inviter != me.PeerID() || pt.Circle != CircleHousehold || len(pt.Nonce) != 32 {
		t.Fatalf("parse: %+v %v", pt, err)
	}

	// Tampered: the circle widened, the signature kept.
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	json.Unmarshal(payload, &m)
	m["circle"] = CirclePublicMesh
	payload, _ = json.Marshal(m)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	if _, err := ParseToken(forged); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("forged token parsed: %v", err)
	}
	if _, err := s.Redeem(forged, other.PeerID(), nil); link.ReasonOf(err) != link.ReasonInvalidToken {
		t.Errorf("forged redeem: %v", err)
	}

	// Issued by another install, presented here.
	s2, db2 := openStore(t, filepath.Join(t.TempDir(), "s2.db"), other)
	defer db2.Close()
	tok2, _ := s2.Invite(CircleHousehold, time.Minute, []string{"127.0.0.1:1"})
	if _, err := s.Redeem(tok2, newID(t).PeerID(), nil); link.ReasonOf(err) != link.ReasonInvalidToken {
		t.Errorf("foreign token redeemed: %v", err)
	}

	// Expired: the clock moves past the expiry.
	s.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := s.Redeem(tok, other.PeerID(), nil); link.ReasonOf(err) != link.ReasonTokenExpired {
		t.Errorf("expired token: %v", err)
	}
	if s.InvitesOutstanding() {
		t.Error("an expired invite counts as outstanding")
	}
	s.now = time.Now

	for _, bad := range []string{"", "cinv1.", "cinv1.x.y", "cinv2." + strings.TrimPrefix(tok, "cinv1."), strings.Repeat("a", MaxTokenLen+1)} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%.20q) accepted", bad)
		}
	}
}

func TestInputChecks(t *testing.T) {
	me := newID(t)
	s, db := openStore(t, filepath.Join(t.TempDir(), "s.db"), me)
	defer db.Close()
	p := newID(t).PeerID()
	for _, r := range []Record{
		{PeerID: "x", Circle: CircleHousehold},
		{PeerID: p, Circle: "friends"},
		{PeerID: p, Circle: CircleHousehold, Addrs: []string{"nohost"}},
		{PeerID: p, Circle: CircleHousehold, Addrs: []string{":80"}},
		{PeerID: p, Circle: CircleHousehold, Addrs: []string{"h:0"}},
		{PeerID: me.PeerID(), Circle: CircleHousehold},
	} {
		if _, err := s.Put(r); api.CodeOf(err) != api.CodeInvalidArgument {
			t.Errorf("Put(%+v): %v", r, err)
		}
	}
	if _, err := s.Invite("friends", time.Minute, nil); api.CodeOf(err) != api.CodeInvalidArgument {
		t.Errorf("invite to a bad circle: %v", err)
	}
	if _, err := s.Invite(CircleHousehold, MaxInviteTTL+time.Second, nil); api.CodeOf(err) != api.CodeInvalidArgument {
		t.Errorf("invite ttl too long: %v", err)
	}
}
