package dispatch

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// index is the capability index: the latest manifest of each peer.
type index struct {
	mu    sync.Mutex
	peers map[string]*entry
}

type entry struct {
	m    api.Manifest
	seen time.Time // when it was advertised (clamped to when it arrived)
}

func newIndex() *index { return &index{peers: map[string]*entry{}} }

// put keeps m if it is newer than what the index holds for its peer.
func (ix *index) put(m api.Manifest, now time.Time) {
	seen := time.UnixMilli(m.AdvertisedAtMs)
	if seen.After(now) {
		seen = now // a peer's clock ahead of ours must not make it live longer
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.peers[m.PeerID]; ok && old.m.AdvertisedAtMs > m.AdvertisedAtMs {
		return
	}
	ix.peers[m.PeerID] = &entry{m: m, seen: seen}
}

// withdraw drops one offer of a peer at once (its next manifest agrees).
func (ix *index) withdraw(w api.CapabilityWithdrawn) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e, ok := ix.peers[w.PeerID]
	if !ok || e.m.AdvertisedAtMs > w.AtMs {
		return
	}
	e.m.Offers = slices.DeleteFunc(slices.Clone(e.m.Offers), func(o api.Offer) bool {
		return o.Capability == w.Capability && o.Command == w.Command
	})
}

// offer is one peer's offer with how fresh its manifest is.
type offer struct {
	peer  string
	o     api.Offer
	load  float64
	seen  time.Time
	stale bool
}

// offers lists the offers matching command and capability ("" matches
// any), dropping peers gone and marking those stale.
func (ix *index) offers(command, capability string, now time.Time, stale, gone time.Duration) []offer {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var out []offer
	for id, e := range ix.peers {
		age := now.Sub(e.seen)
		if age >= gone {
			delete(ix.peers, id)
			continue
		}
		for _, o := range e.m.Offers {
			if (command == "" || o.Command == command) && (capability == "" || o.Capability == capability) {
				out = append(out, offer{peer: id, o: o, load: e.m.Load, seen: e.seen, stale: age >= stale})
			}
		}
	}
	slices.SortFunc(out, func(a, b offer) int {
		if c := strings.Compare(a.o.Capability, b.o.Capability); c != 0 {
			return c
		}
		return strings.Compare(a.peer, b.peer)
	})
	return out
}

// known reports whether the index has a live manifest of peer.
func (ix *index) has(peer string) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	_, ok := ix.peers[peer]
	return ok
}
