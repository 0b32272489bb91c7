package contract

import (
	"slices"
	"sync"

	"github.com/continuum-grid/continuum/api"
)

// Tracker holds every contract event seen and the fold of each contract.
// Safe for concurrent use.
type Tracker struct {
	mu      sync.Mutex
	events  map[string][]Event // by contractId
	seen    map[[2]string]bool // (origin, id)
	folded  map[string]api.Contract
	order   []string // contract ids, first seen first
	changed chan struct{}
}

// NewTracker makes an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{events: map[string][]Event{}, seen: map[[2]string]bool{}, folded: map[string]api.Contract{}, changed: make(chan struct{})}
}

// Add folds ev into its contract and returns the contract id ("" when the
// payload names none: nothing to fold it into) and whether it was new.
func (t *Tracker) Add(ev Event) (string, bool) {
	id, _ := api.AsMap(ev.Payload)["contractId"].(string)
	if id == "" || len(id) > maxContractID {
		return "", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := [2]string{ev.Origin, ev.ID}
	if t.seen[k] {
		return id, false
	}
	t.seen[k] = true
	if _, ok := t.events[id]; !ok {
		t.order = append(t.order, id)
	}
	t.events[id] = append(t.events[id], ev)
	t.folded[id] = Fold(id, t.events[id])
	close(t.changed)
	t.changed = make(chan struct{})
	return id, true
}

// Changed is closed at the next Add that takes an event.
func (t *Tracker) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// Get returns a contract's fold.
func (t *Tracker) Get(id string) (api.Contract, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.folded[id]
	return c, ok
}

// List returns every contract (in state, when state is not ""), ordered by
// their first event in transcript order, then id.
func (t *Tracker) List(state string) []api.Contract {
	t.mu.Lock()
	out := make([]api.Contract, 0, len(t.folded))
	for _, id := range t.order {
		if c := t.folded[id]; state == "" || c.State == state {
			out = append(out, c)
		}
	}
	t.mu.Unlock()
	slices.SortStableFunc(out, func(a, b api.Contract) int {
		ea, eb := first(a), first(b)
		if ea.Lamport != eb.Lamport {
			if ea.Lamport < eb.Lamport {
				return -1
			}
			return 1
		}
		if a.ContractID < b.ContractID {
			return -1
		} else if a.ContractID > b.ContractID {
			return 1
		}
		return 0
	})
	return out
}

func first(c api.Contract) api.ContractEntry {
	if len(c.Chain) > 0 {
		return c.Chain[0]
	}
	if len(c.Refused) > 0 {
		return c.Refused[0].Event
	}
	return api.ContractEntry{}
}

// maxContractID bounds a contract id (a refused or forged event cannot make
// the tracker keep a huge key).
const maxContractID = 128
