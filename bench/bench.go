// Package bench measures continuumd against NATS on the shapes a local bus is
// used for: a round trip the server answers itself, a round trip answered by
// another client, live fan-out to subscribers, and (once the kernel logs
// broadcast events) durable emit and replay against JetStream and raw bbolt.
//
// It is its own Go module (bench/go.mod) so that NATS never enters the main
// module's dependencies. cmd/busbench runs every shape, alternating
// continuum and NATS so a noisy machine affects both, and prints one table.
//
// Every server runs in the bench's own process, started fresh for each
// measurement: continuumd with daemon.Start on a Unix socket in a temp
// folder, nats-server with server.NewServer on 127.0.0.1 and a random port
// (NATS cannot listen on a Unix socket). Clients each use their own
// connection unless a shape says otherwise.
package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Sample is what one or more timed runs of a shape measured.
type Sample struct {
	Ops     int64           // operations (calls, deliveries, events) completed in the window
	Elapsed time.Duration   // length of the window(s)
	Lat     []time.Duration // latency of each operation (or a sample of them)
	Lost    int64           // deliveries that never arrived (fan-out), or 0
	Sent    int64           // events emitted (fan-out), or 0
	Note    string          // anything a reader of the figure must know
}

// Rate is operations per second.
func (s Sample) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Elapsed.Seconds()
}

// Pct returns the p-th percentile latency (0 when none was recorded). Lat must
// be sorted (Merge and the runners sort it).
func (s Sample) Pct(p float64) time.Duration {
	if len(s.Lat) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(s.Lat)-1))
	return s.Lat[i]
}

// Merge adds another run of the same shape.
func (s Sample) Merge(o Sample) Sample {
	s.Ops += o.Ops
	s.Elapsed += o.Elapsed
	s.Lost += o.Lost
	s.Sent += o.Sent
	s.Lat = append(s.Lat, o.Lat...)
	slices.Sort(s.Lat)
	if s.Note == "" {
		s.Note = o.Note
	}
	return s
}

// maxLat bounds the latencies kept per worker; past it every other one is
// kept, which keeps the percentiles honest and the memory bounded.
const maxLat = 1 << 20

// closedLoop runs n workers, each calling op in a loop until d has passed,
// and records every call's latency. Each worker gets its index. The first
// error any op returns ends the loop early and is returned.
func closedLoop(d time.Duration, n int, op func(w int) error) (Sample, error) {
	runtime.GC()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		lats  = make([][]time.Duration, n)
		ops   = make([]int64, n)
		errMu sync.Mutex
		first error
		stop  atomic.Bool
		fail  = make(chan struct{}) // closed with the first error
	)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			<-start
			for !stop.Load() {
				t0 := time.Now()
				if err := op(w); err != nil {
					errMu.Lock()
					if first == nil {
						first = fmt.Errorf("worker %d: %w", w, err)
						close(fail)
					}
					errMu.Unlock()
					stop.Store(true)
					break
				}
				if len(lat) < maxLat {
					lat = append(lat, time.Since(t0))
				}
				ops[w]++
			}
			lats[w] = lat
		}()
	}
	t0 := time.Now()
	close(start)
	select {
	case <-time.After(d):
	case <-fail:
	}
	stop.Store(true)
	elapsed := time.Since(t0)
	wg.Wait()
	// The calls in flight when the window closed finish after it; counting
	// them against the window overstates the rate by at most n calls.
	var s Sample
	s.Elapsed = elapsed
	for w := range n {
		s.Ops += ops[w]
		s.Lat = append(s.Lat, lats[w]...)
	}
	slices.Sort(s.Lat)
	return s, first
}

// fanCounter counts deliveries across subscribers inside a window and records
// each delivery's latency (now minus the timestamp the emitter put in it).
type fanCounter struct {
	open     atomic.Bool  // the window is open
	inWindow atomic.Int64 // deliveries while open
	total    atomic.Int64 // every delivery
	lats     [][]time.Duration
}

func newFanCounter(subs int) *fanCounter {
	return &fanCounter{lats: make([][]time.Duration, subs)}
}

// deliver counts one delivery to subscriber sub; each subscriber calls it
// from one goroutine at a time.
func (f *fanCounter) deliver(sub int, sentNanos int64) {
	f.total.Add(1)
	if !f.open.Load() {
		return
	}
	f.inWindow.Add(1)
	if l := f.lats[sub]; len(l) < maxLat {
		f.lats[sub] = append(l, time.Duration(time.Now().UnixNano()-sentNanos))
	}
}

// fanWindow opens the window, runs emit (which must return once stop is
// closed) for d, then waits up to drain for the deliveries still in flight,
// and reports deliveries per second within the window plus what never arrived.
func fanWindow(d, drain time.Duration, subs int, f *fanCounter, emit func(stop <-chan struct{}, sent *atomic.Int64)) Sample {
	runtime.GC()
	stop := make(chan struct{})
	var sent atomic.Int64
	done := make(chan struct{})
	f.open.Store(true)
	t0 := time.Now()
	go func() { emit(stop, &sent); close(done) }()
	time.Sleep(d)
	f.open.Store(false)
	elapsed := time.Since(t0)
	inWindow := f.inWindow.Load()
	close(stop)
	<-done
	want := sent.Load() * int64(subs)
	deadline := time.Now().Add(drain)
	for f.total.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// The window is closed, so no subscriber appends any more.
	var lat []time.Duration
	for _, l := range f.lats {
		lat = append(lat, l...)
	}
	slices.Sort(lat)
	return Sample{Ops: inWindow, Elapsed: elapsed, Lat: lat, Sent: sent.Load() * int64(subs), Lost: max(0, want-f.total.Load())}
}

// withTimeout is a context for setup steps.
func withTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}
