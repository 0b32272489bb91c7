// Package bus is the kernel's in-process publish/subscribe fan-out for live
// events. Each subscription has its own bounded queue and delivery goroutine.
// What it promises:
//
//   - Publish never blocks: a subscription whose queue is full loses the
//     event (counted, and reported through its Sink).
//   - PublishWait is flow control with a bound: a full queue makes the
//     publisher wait for room, so a subscriber that keeps reading gets every
//     event and the publisher goes at its pace; but one publish waits at most
//     its bound in all, and a subscription that made no room within it is
//     marked lagging: it loses events as with Publish, and no publisher waits
//     for it again until it has emptied its queue. A subscriber that stops
//     reading therefore stops a publisher once, for the bound, and never
//     slows anyone after that.
//   - Every subscriber of one publish gets the same *api.SharedEvent, so the
//     event is encoded for the wire at most once, however many connections
//     receive it.
package bus

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/metrics"
)

// DefaultQueueLen bounds each subscription's queue.
const DefaultQueueLen = 4096

// DefaultStall is the bound the kernel passes to PublishWait by default: how
// long one emit may wait for subscribers whose queues are full before they
// are marked lagging. Long enough that a reader descheduled on a loaded
// machine is not taken for a stalled one, short enough that a stalled one
// holds an emitter up only briefly, and once.
const DefaultStall = 500 * time.Millisecond

// Sink receives a subscription's events, one at a time, from the
// subscription's own goroutine; it may block (a slow socket only stalls that
// subscription). The event is shared with every other subscriber: read it,
// never change it.
type Sink interface {
	Deliver(ev *api.SharedEvent) error
	// Lagged reports that dropped events were discarded since the last call.
	Lagged(dropped uint64)
}

// Pattern is a parsed subscription pattern: segments split on ':'; "*" matches
// one segment; the lone pattern "*" matches every class.
type Pattern struct {
	all  bool
	segs []string
}

// ParsePattern validates a pattern.
func ParsePattern(p string) (Pattern, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return Pattern{}, api.Errorf(api.CodeInvalidArgument, "pattern is blank")
	}
	if err := api.CheckName("pattern", p, api.MaxClassNameLen); err != nil {
		return Pattern{}, err
	}
	if p == "*" {
		return Pattern{all: true}, nil
	}
	segs := strings.Split(p, ":")
	for _, s := range segs {
		if s == "" {
			return Pattern{}, api.Errorf(api.CodeInvalidArgument, "pattern %q has an empty segment", p)
		}
		if s != "*" && strings.Contains(s, "*") {
			return Pattern{}, api.Errorf(api.CodeInvalidArgument, "pattern %q: * must be a whole segment", p)
		}
	}
	return Pattern{segs: segs}, nil
}

// Match reports whether class matches, segment by segment, without allocating.
func (p Pattern) Match(class string) bool {
	if p.all {
		return true
	}
	rest := class
	for i, seg := range p.segs {
		var part string
		if j := strings.IndexByte(rest, ':'); j >= 0 {
			part, rest = rest[:j], rest[j+1:]
		} else {
			part, rest = rest, ""
			if i != len(p.segs)-1 {
				return false
			}
			return seg == "*" || seg == part
		}
		if seg != "*" && seg != part {
			return false
		}
	}
	return false // class has more segments than the pattern
}

// Bus fans events out to subscriptions.
type Bus struct {
	mu      sync.RWMutex
	subs    map[*Subscription]struct{}
	wg      sync.WaitGroup
	metrics *metrics.Registry // nil counts nothing
}

// New returns an empty bus.
func New() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// NewCounted returns an empty bus that counts each class's published and
// dropped events in m.
func NewCounted(m *metrics.Registry) *Bus {
	return &Bus{subs: map[*Subscription]struct{}{}, metrics: m}
}

// Queued returns the live subscriptions and the events waiting in their
// queues now (the subscribers' lag).
func (b *Bus) Queued() (subs int, queued uint64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		queued += uint64(len(s.queue))
	}
	return len(b.subs), queued
}

// Subscription is one live subscription.
type Subscription struct {
	pattern Pattern
	channel string
	sink    Sink
	queue   chan *api.SharedEvent
	dropped atomic.Uint64
	// lagging is set when a PublishWait gave up waiting for room in queue;
	// while it is set publishers do not wait for this subscription. run
	// clears it once it finds the queue empty: the subscriber caught up.
	lagging atomic.Bool
	done    chan struct{}
	once    sync.Once
	bus     *Bus
	// unloggedOnly subscriptions are offered only events with no log
	// position (seq 0); see SubscribeUnlogged.
	unloggedOnly bool
}

// SubscribeUnlogged is Subscribe for events that are not in the log (seq
// 0) only: the live half of a subscription whose logged events come from a
// log tailer. The filter runs before the queue, so a burst of logged events
// can never fill this subscription's queue and make it report a lag.
func (b *Bus) SubscribeUnlogged(p Pattern, channel string, queueLen int, sink Sink) *Subscription {
	return b.subscribe(p, channel, queueLen, sink, true)
}

// Subscribe starts delivering matching events (on channel, when not empty) to
// sink. queueLen <= 0 takes DefaultQueueLen.
func (b *Bus) Subscribe(p Pattern, channel string, queueLen int, sink Sink) *Subscription {
	return b.subscribe(p, channel, queueLen, sink, false)
}

func (b *Bus) subscribe(p Pattern, channel string, queueLen int, sink Sink, unloggedOnly bool) *Subscription {
	if queueLen <= 0 {
		queueLen = DefaultQueueLen
	}
	s := &Subscription{pattern: p, channel: channel, sink: sink, queue: make(chan *api.SharedEvent, queueLen), done: make(chan struct{}), bus: b, unloggedOnly: unloggedOnly}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	b.wg.Add(1)
	go s.run()
	return s
}

// Matches reports whether the subscription wants an event of class on
// channel.
func (s *Subscription) Matches(class, channel string) bool {
	return (s.channel == "" || s.channel == channel) && s.pattern.Match(class)
}

func (s *Subscription) wants(class, channel string, seq uint64) bool {
	return !(s.unloggedOnly && seq != 0) && s.Matches(class, channel)
}

// Publish offers ev to every matching subscription without blocking. ev must
// not be changed afterwards: all subscribers share it.
func (b *Bus) Publish(ev *api.Event) {
	if b.metrics != nil {
		b.metrics.Class(ev.Class).Emitted.Add(1)
	}
	var shared *api.SharedEvent // made on the first match only
	b.mu.RLock()
	for s := range b.subs {
		if s.wants(ev.Class, ev.Channel, ev.Seq) {
			if shared == nil {
				shared = api.ShareEvent(ev)
			}
			s.offer(shared)
		}
	}
	b.mu.RUnlock()
}

// PublishWait is Publish with flow control: for a matching subscription
// whose queue is full (and that is not lagging) it waits for room, at most
// bound in all for this one call, or until ctx ends. Subscriptions still
// full when bound passes are marked lagging and lose the event; when ctx
// ends first they lose it without being marked. bound <= 0 is Publish.
//
// The bus lock is not held while waiting, so subscribing, closing and other
// publishers go on meanwhile.
func (b *Bus) PublishWait(ctx context.Context, ev *api.Event, bound time.Duration) {
	if bound <= 0 {
		b.Publish(ev)
		return
	}
	if b.metrics != nil {
		b.metrics.Class(ev.Class).Emitted.Add(1)
	}
	var shared *api.SharedEvent // made on the first match only
	var buf [8]*Subscription
	full := buf[:0] // matching subscriptions whose queue was full
	b.mu.RLock()
	for s := range b.subs {
		if s.wants(ev.Class, ev.Channel, ev.Seq) {
			if shared == nil {
				shared = api.ShareEvent(ev)
			}
			select {
			case s.queue <- shared:
			default:
				if s.lagging.Load() {
					s.drop(shared)
				} else {
					full = append(full, s)
				}
			}
		}
	}
	b.mu.RUnlock()
	if len(full) > 0 {
		waitRoom(ctx, shared, full, bound)
	}
}

// waitRoom puts ev in each of full's queues, waiting for room until bound
// has passed since the call or ctx ends (see PublishWait).
func waitRoom(ctx context.Context, ev *api.SharedEvent, full []*Subscription, bound time.Duration) {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	expired, cancelled := false, false
	for _, s := range full {
		if !expired && !cancelled && !s.lagging.Load() {
			select {
			case s.queue <- ev:
				continue
			case <-s.done:
				continue
			case <-timer.C:
				expired = true
			case <-ctx.Done():
				cancelled = true
			}
		}
		// Out of time (or another publisher gave up on s): one last try.
		select {
		case s.queue <- ev:
		default:
			if expired {
				s.lagging.Store(true)
			}
			s.drop(ev)
		}
	}
}

// PublishShared is Publish of an event already shared (for example read
// from the log as its stored bytes).
func (b *Bus) PublishShared(ev *api.SharedEvent) {
	if b.metrics != nil {
		b.metrics.Class(ev.Class).Emitted.Add(1)
	}
	b.mu.RLock()
	for s := range b.subs {
		if s.wants(ev.Class, ev.Channel, ev.Seq) {
			s.offer(ev)
		}
	}
	b.mu.RUnlock()
}

func (s *Subscription) offer(ev *api.SharedEvent) {
	select {
	case s.queue <- ev:
	default:
		s.drop(ev)
	}
}

// drop counts ev as lost for s; run reports the count through the sink.
func (s *Subscription) drop(ev *api.SharedEvent) {
	s.dropped.Add(1)
	if m := s.bus.metrics; m != nil {
		m.Class(ev.Class).Dropped.Add(1)
	}
}

func (s *Subscription) run() {
	defer s.bus.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case ev := <-s.queue:
			// Deliver what is queued in one go, checking for Close between
			// events but without parking between them: a burst reaches the
			// connection's writer back to back, so it leaves in few writes.
			for {
				if err := s.sink.Deliver(ev); err != nil {
					// The connection is gone; its session closes the subscription.
					s.Close()
					return
				}
				if n := s.dropped.Swap(0); n > 0 {
					s.sink.Lagged(n)
				}
				select {
				case <-s.done:
					return
				default:
				}
				select {
				case ev = <-s.queue:
					continue
				default:
				}
				// Queue empty: caught up, so publishers may wait again.
				s.lagging.Store(false)
				break
			}
		}
	}
}

// Close stops delivery; queued events are discarded. Safe to call twice.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.done)
	})
}

// Len returns the number of live subscriptions.
func (b *Bus) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Close ends every subscription and waits for their goroutines.
func (b *Bus) Close() {
	b.mu.RLock()
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.RUnlock()
	for _, s := range subs {
		s.Close()
	}
	b.wg.Wait()
}
