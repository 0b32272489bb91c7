// Package trust holds whom this install trusts on the grid, and the invite
// tokens that add trust (docs/GRID.md, "Trust").
//
// What it promises:
//   - Trust is only what the operator recorded (Put, or an invite this
//     install issued and a joiner redeemed): nothing is learned from peers,
//     nothing is transitive.
//   - Records live in the bbolt bucket "grid/trust" and outstanding invite
//     nonces in "grid/invites", so both survive restarts; lookups are served
//     from memory (they run inside TLS handshakes).
//   - An invite token is signed by the inviter's identity key, names the
//     inviter, its addresses, the circle, a random nonce and an expiry, and
//     works once: Redeem deletes the nonce and records the joiner in one
//     bbolt transaction.
package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/kernel/identity"
	bolt "go.etcd.io/bbolt"
)

// Circles, from the closest to the widest.
const (
	CircleHousehold   = "household"
	CircleTrustedOrgs = "trusted-orgs"
	CircleExtended    = "extended"
	CirclePublicMesh  = "public-mesh"
)

// Circles lists every circle a peer can be trusted in.
var Circles = []string{CircleHousehold, CircleTrustedOrgs, CircleExtended, CirclePublicMesh}

// ValidCircle reports whether c names a circle.
func ValidCircle(c string) bool { return slices.Contains(Circles, c) }

// Limits on what a record holds.
const (
	MaxAddrs   = 16
	MaxAddrLen = 256
)

var (
	bucketTrust   = []byte("grid/trust")
	bucketInvites = []byte("grid/invites")
)

// Record is one trusted peer.
type Record struct {
	PeerID    string   `json:"peerId"`
	Circle    string   `json:"circle"`
	Addrs     []string `json:"addrs"`
	AddedAtMs int64    `json:"addedAtMs"`
}

// invite is an outstanding nonce.
type invite struct {
	Circle string `json:"circle"`
	ExpMs  int64  `json:"expMs"`
}

// Store is the trust records and outstanding invites of one install. It is
// safe for concurrent use.
type Store struct {
	db  *bolt.DB
	id  *identity.Identity
	now func() time.Time

	// wmu serializes writes, so a check-then-write (UpdateAddrs, Redeem)
	// cannot interleave with a Delete and bring trust back.
	wmu sync.Mutex

	mu      sync.Mutex
	records map[string]Record
	invites map[string]invite // nonce -> invite
}

// Open loads the store from db (creating its buckets).
func Open(db *bolt.DB, id *identity.Identity) (*Store, error) {
	s := &Store{db: db, id: id, now: time.Now, records: map[string]Record{}, invites: map[string]invite{}}
	err := db.Update(func(tx *bolt.Tx) error {
		bt, err := tx.CreateBucketIfNotExists(bucketTrust)
		if err != nil {
			return err
		}
		bi, err := tx.CreateBucketIfNotExists(bucketInvites)
		if err != nil {
			return err
		}
		if err := bt.ForEach(func(k, v []byte) error {
			var r Record
			if json.Unmarshal(v, &r) == nil && r.PeerID == string(k) {
				s.records[r.PeerID] = r
			}
			return nil
		}); err != nil {
			return err
		}
		now := s.now().UnixMilli()
		var expired [][]byte
		if err := bi.ForEach(func(k, v []byte) error {
			var in invite
			if json.Unmarshal(v, &in) != nil || in.ExpMs <= now {
				expired = append(expired, slices.Clone(k))
				return nil
			}
			s.invites[string(k)] = in
			return nil
		}); err != nil {
			return err
		}
		for _, k := range expired {
			if err := bi.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trust: open: %w", err)
	}
	return s, nil
}

// CheckRecord validates a record's fields before it is stored.
func CheckRecord(r Record) error {
	if !identity.ValidPeerID(r.PeerID) {
		return api.Errorf(api.CodeInvalidArgument, "peerId %q is not a peer id", r.PeerID)
	}
	if !ValidCircle(r.Circle) {
		return api.Errorf(api.CodeInvalidArgument, "circle %q is not one of %v", r.Circle, Circles)
	}
	return CheckAddrs(r.Addrs)
}

// CheckAddrs validates a peer's QUIC addresses (host:port each).
func CheckAddrs(addrs []string) error {
	if len(addrs) > MaxAddrs {
		return api.Errorf(api.CodeInvalidArgument, "%d addrs, at most %d", len(addrs), MaxAddrs)
	}
	for _, a := range addrs {
		if len(a) == 0 || len(a) > MaxAddrLen {
			return api.Errorf(api.CodeInvalidArgument, "addr %q: want host:port of at most %d bytes", a, MaxAddrLen)
		}
		if _, _, err := splitHostPort(a); err != nil {
			return api.Errorf(api.CodeInvalidArgument, "addr %q: %v", a, err)
		}
	}
	return nil
}

// Put records (or replaces) trust of r.PeerID. AddedAtMs is set when zero.
func (s *Store) Put(r Record) (Record, error) {
	if err := CheckRecord(r); err != nil {
		return Record{}, err
	}
	if r.PeerID == s.id.PeerID() {
		return Record{}, api.Errorf(api.CodeInvalidArgument, "peerId %s is this install", r.PeerID)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.put(r)
}

func (s *Store) put(r Record) (Record, error) {
	if r.AddedAtMs == 0 {
		r.AddedAtMs = s.now().UnixMilli()
	}
	if r.Addrs == nil {
		r.Addrs = []string{}
	}
	b, _ := json.Marshal(r)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrust).Put([]byte(r.PeerID), b)
	}); err != nil {
		return Record{}, api.Errorf(api.CodeUnavailable, "trust: store: %v", err)
	}
	s.mu.Lock()
	s.records[r.PeerID] = r
	s.mu.Unlock()
	return r, nil
}

// Delete removes trust of peerID; false when it was not trusted.
func (s *Store) Delete(peerID string) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	_, had := s.records[peerID]
	s.mu.Unlock()
	if !had {
		return false, nil
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrust).Delete([]byte(peerID))
	}); err != nil {
		return false, api.Errorf(api.CodeUnavailable, "trust: store: %v", err)
	}
	s.mu.Lock()
	delete(s.records, peerID)
	s.mu.Unlock()
	return true, nil
}

// UpdateAddrs replaces the addresses of a peer trusted already (what its
// hello says, once TLS pinned its key); it never adds trust. Invalid or
// unchanged addresses are ignored. It implements link.AddrUpdater.
func (s *Store) UpdateAddrs(peerID string, addrs []string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	r, ok := s.Get(peerID)
	if !ok || CheckAddrs(addrs) != nil || len(addrs) == 0 || slices.Equal(r.Addrs, addrs) {
		return
	}
	r.Addrs = append([]string(nil), addrs...)
	_, _ = s.put(r)
}

// Get returns the record of peerID.
func (s *Store) Get(peerID string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[peerID]
	return r, ok
}

// List returns every record, sorted by peer id.
func (s *Store) List() []Record {
	s.mu.Lock()
	out := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, r)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].PeerID < out[j].PeerID })
	return out
}

// Circle implements link.Trust.
func (s *Store) Circle(peerID string) (string, bool) {
	r, ok := s.Get(peerID)
	return r.Circle, ok
}

// InvitesOutstanding implements link.Trust.
func (s *Store) InvitesOutstanding() bool {
	now := s.now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.invites {
		if in.ExpMs > now {
			return true
		}
	}
	return false
}

// Invite issues a one-off token for circle, valid for ttl, naming addrs as
// where to reach this install, and records its nonce.
func (s *Store) Invite(circle string, ttl time.Duration, addrs []string) (string, error) {
	if !ValidCircle(circle) {
		return "", api.Errorf(api.CodeInvalidArgument, "circle %q is not one of %v", circle, Circles)
	}
	if ttl <= 0 || ttl > MaxInviteTTL {
		return "", api.Errorf(api.CodeInvalidArgument, "ttl %s: want more than 0 and at most %s", ttl, MaxInviteTTL)
	}
	exp := s.now().Add(ttl).UnixMilli()
	tok, err := newToken(s.id, circle, addrs, exp)
	if err != nil {
		return "", err
	}
	in, _ := json.Marshal(invite{Circle: circle, ExpMs: exp})
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketInvites)
		// Drop expired nonces while here, so the bucket never grows without bound.
		s.mu.Lock()
		now := s.now().UnixMilli()
		for n, v := range s.invites {
			if v.ExpMs <= now {
				_ = b.Delete([]byte(n))
			}
		}
		s.mu.Unlock()
		return b.Put([]byte(tok.Nonce), in)
	}); err != nil {
		return "", api.Errorf(api.CodeUnavailable, "trust: store invite: %v", err)
	}
	s.mu.Lock()
	now := s.now().UnixMilli()
	for n, v := range s.invites {
		if v.ExpMs <= now {
			delete(s.invites, n)
		}
	}
	s.invites[tok.Nonce] = invite{Circle: circle, ExpMs: exp}
	s.mu.Unlock()
	return tok.String(), nil
}

// Redeem implements link.Trust: it checks a token a joiner presented to this
// install (the inviter), consumes its nonce and records trust of the joiner.
func (s *Store) Redeem(token, joiner string, addrs []string) (string, error) {
	t, err := ParseToken(token)
	if err != nil {
		return "", &link.RefusedError{Reason: link.ReasonInvalidToken, Message: err.Error()}
	}
	if t.Inviter != s.id.PeerID() {
		return "", &link.RefusedError{Reason: link.ReasonInvalidToken, Message: "the token was issued by another install (" + t.Inviter + ")"}
	}
	now := s.now().UnixMilli()
	if t.ExpMs <= now {
		return "", &link.RefusedError{Reason: link.ReasonTokenExpired, Message: fmt.Sprintf("the token expired at %s", time.UnixMilli(t.ExpMs).UTC().Format(time.RFC3339))}
	}
	if len(addrs) > MaxAddrs {
		addrs = addrs[:MaxAddrs]
	}
	if CheckAddrs(addrs) != nil {
		addrs = nil
	}
	rec := Record{PeerID: joiner, Circle: t.Circle, Addrs: addrs, AddedAtMs: now}
	if rec.Addrs == nil {
		rec.Addrs = []string{}
	}
	b, _ := json.Marshal(rec)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var used bool
	err = s.db.Update(func(tx *bolt.Tx) error {
		bi := tx.Bucket(bucketInvites)
		v := bi.Get([]byte(t.Nonce))
		var in invite
		if v == nil || json.Unmarshal(v, &in) != nil || in.Circle != t.Circle {
			used = true
			return nil
		}
		if err := bi.Delete([]byte(t.Nonce)); err != nil {
			return err
		}
		return tx.Bucket(bucketTrust).Put([]byte(joiner), b)
	})
	if err != nil {
		return "", &link.RefusedError{Reason: link.ReasonShutdown, Message: "trust: store: " + err.Error()}
	}
	if used {
		return "", &link.RefusedError{Reason: link.ReasonTokenUsed, Message: "the token was used already (or never issued here)"}
	}
	s.mu.Lock()
	delete(s.invites, t.Nonce)
	s.records[joiner] = rec
	s.mu.Unlock()
	return t.Circle, nil
}

var errNoPort = errors.New("missing host")
