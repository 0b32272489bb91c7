package daemon_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
)

// reader is a subscriber that keeps reading: it counts its events and the
// longest gap between two of them.
type reader struct {
	sub    *client.Subscription
	got    atomic.Int64
	maxGap atomic.Int64 // nanoseconds
	done   chan struct{}
}

func startReader(t *testing.T, d *testDaemon, pattern string) *reader {
	t.Helper()
	// The client library's own buffer is deep enough that only the daemon
	// can lose events here: this is about the daemon's queues.
	c, err := client.Dial(context.Background(), d.SocketPath(), client.WithEventBuffer(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sub, err := c.Subscribe(ctxT(t), api.SubscribeParams{Pattern: pattern})
	if err != nil {
		t.Fatal(err)
	}
	r := &reader{sub: sub, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		var last time.Time
		for range sub.Events() {
			now := time.Now()
			if !last.IsZero() {
				if gap := int64(now.Sub(last)); gap > r.maxGap.Load() {
					r.maxGap.Store(gap)
				}
			}
			last = now
			r.got.Add(1)
		}
	}()
	return r
}

// ctxLong is for calls that wait behind a whole burst (slow under -race).
func ctxLong(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// waitAll waits until every reader has n events, or fails after limit.
func waitAll(t *testing.T, readers []*reader, n int64, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for _, r := range readers {
		for r.got.Load() < n {
			if lag := r.sub.Lagged(); lag.Kernel+lag.Client != 0 || time.Now().After(deadline) {
				for i, r := range readers {
					t.Logf("reader %d: %d events, lag %+v", i, r.got.Load(), r.sub.Lagged())
				}
				t.Fatalf("readers did not get all %d events (lagged, or not within %v)", n, limit)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// A burst of fire-and-forget emits (notifications, no reply to wait for) far
// faster than four subscribers can take it reaches every one of them whole:
// the daemon slows the emitter (it stops reading its socket while the
// subscribers' queues are full) instead of dropping.
func TestNotificationBurstReachesEveryReaderWhole(t *testing.T) {
	d := start(t)
	const n = 100_000
	var readers []*reader
	for range 4 {
		readers = append(readers, startReader(t, d, "burst:*"))
	}
	emitter := dial(t, d)
	for i := range n {
		if err := emitter.Notify(api.MethodEmit, api.EmitParams{Name: "burst:tick", Payload: map[string]any{"n": i}}); err != nil {
			t.Fatal(err)
		}
	}
	// A request behind the notifications answers once the daemon has
	// served them all.
	if _, err := emitter.Ping(ctxLong(t)); err != nil {
		t.Fatal(err)
	}
	waitAll(t, readers, n, 2*time.Minute)
	for i, r := range readers {
		if lag := r.sub.Lagged(); lag.Kernel+lag.Client != 0 {
			t.Fatalf("reader %d lagged: %+v", i, lag)
		}
		if got := r.got.Load(); got != n {
			t.Fatalf("reader %d got %d events, want %d", i, got, n)
		}
	}
}

// One subscriber stops reading its socket during a burst: after the stall
// bound it is marked lagged (and told so, with the count, once it reads
// again), while the three that keep reading get every event, and the
// emitter was held up about the bound once, not for as long as the stall.
func TestStalledReaderLagsWhileOthersGetEverything(t *testing.T) {
	const stall = 300 * time.Millisecond
	d := start(t, func(c *daemon.Config) {
		c.Kernel.SubscriberQueue = 64
		c.Kernel.SubscriberStall = stall
	})
	stalled := rawDial(t, d)
	stalled.send(0, 1, "events/subscribe", []any{map[string]any{"pattern": "stall:*"}})
	if msg := stalled.next(); msg == nil || msg[2] != nil {
		t.Fatalf("subscribe: %v", msg)
	}
	var readers []*reader
	for range 3 {
		readers = append(readers, startReader(t, d, "stall:*"))
	}
	emitter := dial(t, d)
	const n = 20_000
	pad := string(make([]byte, 512)) // ~10 MB in all: far more than the stalled socket holds
	start := time.Now()
	for range n {
		if err := emitter.Notify(api.MethodEmit, emitParams("stall:tick", pad)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := emitter.Ping(ctxLong(t)); err != nil {
		t.Fatal(err)
	}
	waitAll(t, readers, n, 2*time.Minute)
	took := time.Since(start)
	for i, r := range readers {
		if lag := r.sub.Lagged(); lag.Kernel+lag.Client != 0 {
			t.Fatalf("reader %d lagged: %+v", i, lag)
		}
		// The longest pause a reading subscriber saw is the emitter's
		// longest stop: the bound, plus scheduling on a loaded machine.
		if gap := time.Duration(r.maxGap.Load()); gap > stall+2*time.Second {
			t.Fatalf("reader %d waited %v between two events: the emitter was stopped past the %v bound", i, gap, stall)
		}
	}
	t.Logf("%d events to 3 readers in %v; longest gap %v", n, took, time.Duration(readers[0].maxGap.Load()))
	events, dropped := stalled.countEvents(n)
	if dropped == 0 || events+int(dropped) != n {
		t.Fatalf("stalled reader: events %d + dropped %d, want %d with some dropped", events, dropped, n)
	}
}

// Many emitters on a stalled subscriber: each of their emits waits at most
// the bound, all of them together do not add up, and the subscriber is told
// what it lost.
func TestStalledReaderHoldsConcurrentEmittersOnlyOnce(t *testing.T) {
	const stall = 200 * time.Millisecond
	d := start(t, func(c *daemon.Config) {
		c.Kernel.SubscriberQueue = 8
		c.Kernel.SubscriberStall = stall
	})
	stalled := rawDial(t, d)
	stalled.send(0, 1, "events/subscribe", []any{map[string]any{"pattern": "many:*"}})
	if msg := stalled.next(); msg == nil || msg[2] != nil {
		t.Fatalf("subscribe: %v", msg)
	}
	pad := string(make([]byte, 4096))
	const emitters, each = 8, 300 // ~10 MB in all
	var wg sync.WaitGroup
	var slowest atomic.Int64
	for range emitters {
		c := dial(t, d)
		wg.Add(1)
		ctx := ctxLong(t)
		go func() {
			defer wg.Done()
			for range each {
				t0 := time.Now()
				if _, err := c.Emit(ctx, emitParams("many:x", pad)); err != nil {
					t.Error(err)
					return
				}
				if el := int64(time.Since(t0)); el > slowest.Load() {
					slowest.Store(el)
				}
			}
		}()
	}
	wg.Wait()
	if el := time.Duration(slowest.Load()); el > stall+2*time.Second {
		t.Fatalf("one emit took %v, past the %v bound", el, stall)
	}
	events, dropped := stalled.countEvents(emitters * each)
	if dropped == 0 || events+int(dropped) != emitters*each {
		t.Fatalf("events %d + dropped %d, want %d with some dropped", events, dropped, emitters*each)
	}
}
