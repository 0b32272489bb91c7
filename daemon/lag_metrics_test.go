package daemon_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
)

// TestMetricsSubscriberLagPerClient: raw clients that subscribe and stop
// reading their sockets fall behind a flood of 4 KiB events. The scrape
// (parsed by the Prometheus text parser) has one continuum_client_lag_events
// sample per lagging client, at most api.MaxLagClients and the rest under
// _other, the same as kernel/metrics, most behind first; a log-backed
// subscription that does not read is behind too; once the stalled clients
// vanish, nobody is listed (the one that reads has caught up).
func TestMetricsSubscriberLagPerClient(t *testing.T) {
	d := start(t, func(c *daemon.Config) { c.MetricsListen = "127.0.0.1:0" })
	emitter := dial(t, d)
	declare(t, emitter, api.ClassConfig{Name: "lagb:x", Broadcast: true, Channel: api.ChannelGlobal})

	const stalled = api.MaxLagClients + 3
	var raws []*raw
	for i := 0; i < stalled; i++ {
		r := rawDial(t, d)
		r.send(0, 1, "events/subscribe", []any{map[string]any{"pattern": "lag:*"}})
		if msg := r.next(); msg == nil || msg[2] != nil {
			t.Fatalf("subscribe: %v", msg)
		}
		raws = append(raws, r)
	}
	logged := rawDial(t, d)
	logged.send(0, 1, "events/subscribe", []any{map[string]any{"pattern": "lagb:*", "from": "start"}})
	if msg := logged.next(); msg == nil || msg[2] != nil {
		t.Fatalf("log subscribe: %v", msg)
	}
	reader := dial(t, d)
	sub, err := reader.Subscribe(ctxT(t), api.SubscribeParams{Pattern: "lag:*"})
	if err != nil {
		t.Fatal(err)
	}
	var got sync.WaitGroup
	got.Add(1)
	go func() { // the reader keeps up
		defer got.Done()
		for range sub.Events() {
		}
	}()

	pad := string(make([]byte, 4096))
	const n = 600 // 2.4 MiB per subscriber: far past what a socket buffers
	for i := 0; i < n; i++ {
		if _, err := emitter.Emit(ctxT(t), api.EmitParams{Name: "lag:x", Payload: pad}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 400; i += 4 {
				if _, err := emitter.Emit(context.Background(), api.EmitParams{Name: "lagb:x", ID: fmt.Sprint(i), Payload: pad}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	var m api.Metrics
	if err := emitter.Call(ctxT(t), api.MethodKernelMetrics, nil, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Subscribers) != api.MaxLagClients+1 || m.Subscribers[api.MaxLagClients].Client != "_other" {
		t.Fatalf("kernel/metrics subscribers: %d entries, want %d and _other last: %+v", len(m.Subscribers), api.MaxLagClients+1, m.Subscribers)
	}
	if o := m.Subscribers[api.MaxLagClients]; o.Subscriptions < 4 || o.LagEvents == 0 {
		t.Errorf("_other sums %d subscriptions, %d events; want the 4 clients past the bound", o.Subscriptions, o.LagEvents)
	}
	for i, l := range m.Subscribers[:api.MaxLagClients] {
		if l.LagEvents == 0 || l.Subscriptions != 1 || (i > 0 && l.LagEvents > m.Subscribers[i-1].LagEvents) {
			t.Errorf("subscriber %d: %+v (after %+v): want behind, one subscription, most behind first", i, l, m.Subscribers[max(i-1, 0)])
		}
	}
	total := 0
	for _, l := range m.Subscribers {
		total += l.Subscriptions
	}
	if total < stalled+1 { // the log-backed one is behind too
		t.Errorf("%d subscriptions behind, want at least %d (every stalled live one and the log-backed one)", total, stalled+1)
	}

	fams := scrape(t, d)
	f := fams["continuum_client_lag_events"]
	if f == nil || f.GetType().String() != "GAUGE" {
		t.Fatalf("no gauge continuum_client_lag_events: %v", f)
	}
	if len(f.GetMetric()) != api.MaxLagClients+1 {
		t.Errorf("continuum_client_lag_events has %d samples, want at most %d and _other", len(f.GetMetric()), api.MaxLagClients+1)
	}
	if v := value(fams, "continuum_client_lag_events", "client", "_other"); v <= 0 {
		t.Errorf("_other = %v", v)
	}
	if v := value(fams, "continuum_client_lag_events", "client", m.Subscribers[0].Client); v <= 0 {
		t.Errorf("most behind client %s = %v in the scrape", m.Subscribers[0].Client, v)
	}

	// The stalled clients vanish: within a while nobody is behind (the
	// reader drained what it was sent).
	for _, r := range raws {
		r.conn.Close()
	}
	logged.conn.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := emitter.Call(ctxT(t), api.MethodKernelMetrics, nil, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Subscribers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still behind after the stalled clients left: %+v", m.Subscribers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := value(scrape(t, d), "continuum_client_lag_events"); v != -1 {
		t.Errorf("a client lag sample with nobody behind: %v", v)
	}
	reader.Close()
	got.Wait()
}
