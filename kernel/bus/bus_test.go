package bus

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern, class string
		want           bool
	}{
		{"*", "chat:posted", true},
		{"*", "x", true},
		{"chat:posted", "chat:posted", true},
		{"chat:*", "chat:posted", true},
		{"chat:*", "chat:posted:extra", false},
		{"chat:*", "chat", false},
		{"*:posted", "chat:posted", true},
		{"*:posted", "chat:edited", false},
		{"chat:*:op", "chat:room:op", true},
		{"chat", "chat:posted", false},
		{"chat:posted", "chat:post", false},
		{"contract:*", "contract:accepted", true},
	}
	for _, tc := range cases {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tc.class); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.class, got, tc.want)
		}
	}
	for _, bad := range []string{"", " ", "chat::x", "ch*t", ":x"} {
		if _, err := ParsePattern(bad); api.CodeOf(err) != api.CodeInvalidArgument {
			t.Errorf("pattern %q: want invalid_argument, got %v", bad, err)
		}
	}
}

type recorder struct {
	mu      sync.Mutex
	events  []string
	dropped uint64
	block   chan struct{}
}

func (r *recorder) Deliver(ev *api.SharedEvent) error {
	if r.block != nil {
		<-r.block
	}
	e, err := ev.Event()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.events = append(r.events, e.ID)
	r.mu.Unlock()
	return nil
}

func (r *recorder) Lagged(n uint64) {
	r.mu.Lock()
	r.dropped += n
	r.mu.Unlock()
}

func (r *recorder) snapshot() ([]string, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...), r.dropped
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSlowSubscriberLagsAndNeverBlocks(t *testing.T) {
	b := New()
	defer b.Close()
	all, _ := ParsePattern("*")
	slow := &recorder{block: make(chan struct{})}
	fast := &recorder{}
	b.Subscribe(all, "", 4, slow)
	b.Subscribe(all, "", 1000, fast)
	const n = 100
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			b.Publish(&api.Event{ID: string(rune('a' + i%26)), Class: "x:y"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	waitFor(t, func() bool { ev, _ := fast.snapshot(); return len(ev) == n })
	close(slow.block)
	waitFor(t, func() bool { ev, d := slow.snapshot(); return uint64(len(ev))+d == n })
	ev, dropped := slow.snapshot()
	if dropped == 0 || len(ev) > 5 {
		t.Fatalf("slow subscriber got %d events and %d dropped; want at most queue+1 delivered and the rest reported", len(ev), dropped)
	}
}

func TestChannelFilterAndClose(t *testing.T) {
	b := New()
	defer b.Close()
	p, _ := ParsePattern("chat:*")
	r := &recorder{}
	s := b.Subscribe(p, "general", 0, r)
	b.Publish(&api.Event{ID: "1", Class: "chat:posted", Channel: "general"})
	b.Publish(&api.Event{ID: "2", Class: "chat:posted", Channel: "random"})
	b.Publish(&api.Event{ID: "3", Class: "ui:clicked", Channel: "general"})
	b.Publish(&api.Event{ID: "4", Class: "chat:edited", Channel: "general"})
	waitFor(t, func() bool { ev, _ := r.snapshot(); return len(ev) == 2 })
	ev, _ := r.snapshot()
	if ev[0] != "1" || ev[1] != "4" {
		t.Fatalf("got %v, want [1 4] in order", ev)
	}
	s.Close()
	s.Close()
	if b.Len() != 0 {
		t.Fatalf("%d subscriptions after close", b.Len())
	}
}

// sharer records the shared events it is given.
type sharer struct {
	mu   sync.Mutex
	seen []*api.SharedEvent
}

func (s *sharer) Deliver(ev *api.SharedEvent) error {
	s.mu.Lock()
	s.seen = append(s.seen, ev)
	s.mu.Unlock()
	return nil
}

func (s *sharer) Lagged(uint64) {}

func (s *sharer) got() []*api.SharedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*api.SharedEvent(nil), s.seen...)
}

// Every subscriber of one publish gets the same shared event, so it is
// encoded for the wire once; PublishShared routes on the shared fields.
func TestSubscribersShareOneEvent(t *testing.T) {
	b := New()
	defer b.Close()
	all, _ := ParsePattern("*")
	sinks := []*sharer{{}, {}, {}}
	for _, s := range sinks {
		b.Subscribe(all, "", 0, s)
	}
	other, _ := ParsePattern("other:*")
	none := &sharer{}
	b.Subscribe(other, "", 0, none)
	b.Publish(&api.Event{ID: "1", Class: "x:y"})
	enc, _ := api.ShareEvent(&api.Event{ID: "2", Class: "x:z", Seq: 4}).Encoded()
	stored, err := api.ShareEncoded(enc)
	if err != nil {
		t.Fatal(err)
	}
	b.PublishShared(stored)
	waitFor(t, func() bool {
		for _, s := range sinks {
			if len(s.got()) < 2 {
				return false
			}
		}
		return true
	})
	first := sinks[0].got()
	for _, s := range sinks[1:] {
		got := s.got()
		if got[0] != first[0] || got[1] != first[1] {
			t.Fatal("subscribers got different copies of one publish")
		}
	}
	if first[1] != stored || first[1].Seq != 4 || first[1].Class != "x:z" {
		t.Fatalf("PublishShared delivered %+v", first[1])
	}
	if len(none.got()) != 0 {
		t.Fatal("a subscription that matches nothing got events")
	}
}

// An unlogged-only subscription is never offered logged events, so a flood
// of them cannot fill its queue: the local event after them arrives and no
// lag is reported.
func TestSubscribeUnloggedSkipsLoggedBeforeTheQueue(t *testing.T) {
	b := New()
	defer b.Close()
	p, _ := ParsePattern("*")
	block := make(chan struct{})
	r := &recorder{block: block}
	b.SubscribeUnlogged(p, "", 1, r)
	for i := range 100 {
		b.Publish(&api.Event{ID: "logged", Class: "x:y", Channel: "global", Seq: uint64(i + 1)})
	}
	b.Publish(&api.Event{ID: "local", Class: "x:y"})
	close(block)
	waitFor(t, func() bool { ev, _ := r.snapshot(); return len(ev) == 1 })
	ev, dropped := r.snapshot()
	if ev[0] != "local" || dropped != 0 {
		t.Fatalf("events %v, dropped %d; want [local], 0", ev, dropped)
	}
}

// slowSink takes each event only after a pause: a subscriber that keeps
// reading, more slowly than the publisher publishes.
type slowSink struct {
	recorder
	pause time.Duration
}

func (s *slowSink) Deliver(ev *api.SharedEvent) error {
	time.Sleep(s.pause)
	return s.recorder.Deliver(ev)
}

func TestPublishWaitKeepsEverythingForASlowReader(t *testing.T) {
	b := New()
	defer b.Close()
	all, _ := ParsePattern("*")
	slow := &slowSink{pause: 200 * time.Microsecond}
	b.Subscribe(all, "", 4, slow)
	const n = 500
	for i := range n {
		b.PublishWait(context.Background(), &api.Event{ID: strconv.Itoa(i), Class: "x:y"}, 5*time.Second)
	}
	waitFor(t, func() bool { ev, _ := slow.snapshot(); return len(ev) == n })
	ev, dropped := slow.snapshot()
	if dropped != 0 {
		t.Fatalf("dropped %d", dropped)
	}
	for i, id := range ev {
		if id != strconv.Itoa(i) {
			t.Fatalf("event %d is %s: out of order", i, id)
		}
	}
}

func TestPublishWaitGivesUpOnAStalledReaderOnce(t *testing.T) {
	b := New()
	defer b.Close()
	all, _ := ParsePattern("*")
	stalled := &recorder{block: make(chan struct{})}
	fast := &recorder{}
	b.Subscribe(all, "", 4, stalled)
	b.Subscribe(all, "", 4, fast)
	const n, bound = 200, 100 * time.Millisecond
	var longest time.Duration
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		b.PublishWait(context.Background(), &api.Event{ID: strconv.Itoa(i), Class: "x:y"}, bound)
		longest = max(longest, time.Since(t0))
	}
	took := time.Since(start)
	if longest < bound {
		t.Fatalf("no publish waited for the stalled reader (longest %v)", longest)
	}
	// Once lagging, the stalled reader is not waited for again: the whole
	// run costs about one bound, not one per event.
	if took > bound+3*time.Second {
		t.Fatalf("%d publishes took %v with a %v bound", n, took, bound)
	}
	waitFor(t, func() bool { ev, _ := fast.snapshot(); return len(ev) == n })
	if _, d := fast.snapshot(); d != 0 {
		t.Fatalf("the reading subscriber lost %d", d)
	}
	close(stalled.block)
	waitFor(t, func() bool { ev, d := stalled.snapshot(); return uint64(len(ev))+d == n })
	if _, d := stalled.snapshot(); d == 0 {
		t.Fatal("the stalled reader was not told it lagged")
	}
	// Caught up, it is waited for again: a slow but reading subscriber
	// after a stall loses nothing more.
	stalled.mu.Lock()
	stalled.events, stalled.dropped = nil, 0
	stalled.mu.Unlock()
	for i := range n {
		b.PublishWait(context.Background(), &api.Event{ID: strconv.Itoa(i), Class: "x:y"}, 5*time.Second)
	}
	waitFor(t, func() bool { ev, _ := stalled.snapshot(); return len(ev) == n })
	if _, d := stalled.snapshot(); d != 0 {
		t.Fatalf("after catching up, lost %d", d)
	}
}

func TestPublishWaitEndsWithItsContext(t *testing.T) {
	b := New()
	defer b.Close()
	all, _ := ParsePattern("*")
	stalled := &recorder{block: make(chan struct{})}
	defer close(stalled.block)
	b.Subscribe(all, "", 1, stalled)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		for i := range 10 {
			b.PublishWait(ctx, &api.Event{ID: strconv.Itoa(i), Class: "x:y"}, time.Hour)
		}
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("PublishWait did not end with its context")
	}
}

func TestPublishWaitIsNotHeldUpByClose(t *testing.T) {
	b := New()
	defer b.Close()
	all, _ := ParsePattern("*")
	stalled := &recorder{block: make(chan struct{})}
	defer close(stalled.block)
	sub := b.Subscribe(all, "", 1, stalled)
	done := make(chan struct{})
	go func() {
		for i := range 10 {
			b.PublishWait(context.Background(), &api.Event{ID: strconv.Itoa(i), Class: "x:y"}, time.Hour)
		}
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	sub.Close() // takes the bus lock: must not wait for the publisher
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a publisher waiting on a closed subscription did not go on")
	}
}
