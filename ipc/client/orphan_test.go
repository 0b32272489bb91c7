package client

import (
	"fmt"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// Events still in flight for a subscription this client closed are
// dropped, not kept as orphans: kept, they filled the orphan bound and the
// next subscription lost the events the daemon sent before its reply (a
// durable resubscribe then looked like it skipped events).
func TestClosedSubscriptionsDoNotCrowdOutNewOnes(t *testing.T) {
	c := newClient(nil)
	old := &Subscription{c: c, id: "s1", ch: make(chan *api.Event, 8)}
	c.adopt(old)
	c.mu.Lock()
	c.forgetLocked("s1")
	c.mu.Unlock()
	for i := range 2 * orphanMax {
		c.route("s1", &api.Event{ID: fmt.Sprint(i)})
	}
	if c.orphanN != 0 {
		t.Fatalf("%d events of a closed subscription kept as orphans", c.orphanN)
	}
	// The next subscription's events arrive before its reply: all kept.
	for i := range 100 {
		c.route("s2", &api.Event{ID: fmt.Sprint(i)})
	}
	s2 := &Subscription{c: c, id: "s2", ch: make(chan *api.Event, 200)}
	c.adopt(s2)
	if n := len(s2.ch); n != 100 {
		t.Fatalf("the new subscription got %d of its 100 early events", n)
	}
}

// A Subscribe in flight keeps more early events than orphanMax: a replay
// from the log puts thousands on the wire before the reply, and the reader
// routes them while the caller is still on its way to adopt. Kept only up to
// orphanMax, a reader that kept reading lost the rest without a word.
func TestEarlyEventsOfASubscribeInFlightAreAllKept(t *testing.T) {
	c := newClient(nil)
	c.mu.Lock()
	c.subscribing++ // as pendingSubscribes does before sending
	c.mu.Unlock()
	n := orphanMax + c.opts.eventBuffer
	for i := range n {
		c.route("s1", &api.Event{ID: fmt.Sprint(i)})
	}
	s1 := &Subscription{c: c, id: "s1", ch: make(chan *api.Event, n)}
	c.adopt(s1)
	if got := len(s1.ch); got != n {
		t.Fatalf("the subscription got %d of its %d early events", got, n)
	}
	if c.subscribing != 0 || c.orphanN != 0 {
		t.Fatalf("after adopt: %d subscribes counted in flight, %d orphans kept", c.subscribing, c.orphanN)
	}
}
