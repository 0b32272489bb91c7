// Package metrics counts what the kernel does, cheaply enough for its hot
// paths, and writes the counts in the Prometheus text format.
//
// What it promises:
//
//   - Counting is lock-free: a call, an event or a commit costs a few atomic
//     adds and, for labelled counters, one sync.Map load; a lock is taken
//     only the first time a label value is seen.
//   - Label sets are bounded: at most MaxLabels distinct values per family
//     (methods, classes); later ones are counted under the value "_other", so
//     a client inventing names cannot grow the daemon's memory.
//   - Snapshot copies every counter into api.Metrics (kernel/metrics), and
//     WritePrometheus renders an api.Metrics as text exposition format 0.0.4,
//     so /metrics and the method report the same numbers.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// MaxLabels bounds the distinct values of one label (methods, classes).
const MaxLabels = 512

// OtherLabel is the label value counts go under once MaxLabels is reached.
const OtherLabel = "_other"

// LatencyBounds are the upper bounds, in seconds, of the call latency
// histogram's buckets: 25µs (an inline ping) to 10s (a long generation).
var LatencyBounds = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 10}

// BatchBounds are the bucket bounds of the events-per-commit histogram.
var BatchBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// Histogram counts observations into fixed buckets with atomics only.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // one per bound, plus +Inf
	count  atomic.Uint64
	sum    atomic.Uint64 // of observations scaled by 1e9 (nanoseconds for latencies)
}

// NewHistogram returns a histogram with the given (ascending) upper bounds.
func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sum.Add(uint64(v * 1e9))
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Snapshot copies the histogram; Counts are per bucket (not cumulative),
// the last being +Inf.
func (h *Histogram) Snapshot() api.Histogram {
	out := api.Histogram{Bounds: h.bounds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
		out.Count += out.Counts[i]
	}
	out.Sum = float64(h.sum.Load()) / 1e9
	return out
}

// labelled is a bounded map from a label value to its counters.
type labelled[T any] struct {
	m    sync.Map // string → *T
	mu   sync.Mutex
	n    int
	make func() *T
}

func (l *labelled[T]) get(name string) *T {
	if v, ok := l.m.Load(name); ok {
		return v.(*T)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.m.Load(name); ok {
		return v.(*T)
	}
	if l.n >= MaxLabels {
		name = OtherLabel
		if v, ok := l.m.Load(name); ok {
			return v.(*T)
		}
	}
	v := l.make()
	l.m.Store(name, v)
	l.n++
	return v
}

func (l *labelled[T]) each(fn func(string, *T)) {
	l.m.Range(func(k, v any) bool { fn(k.(string), v.(*T)); return true })
}

// Call counts one method's calls.
type Call struct {
	ok      atomic.Uint64 // successes, counted apart: the common case, with no map lookup
	codes   sync.Map      // api.Code of a failure → *atomic.Uint64
	latency *Histogram
}

// Done records a call that took d and ended with err (nil: ok).
func (c *Call) Done(d time.Duration, err error) {
	if err == nil {
		c.ok.Add(1)
		c.latency.ObserveDuration(d)
		return
	}
	code := api.CodeOf(err)
	v, ok := c.codes.Load(code)
	if !ok {
		// Codes come from a fixed catalogue, so this set stays small.
		v, _ = c.codes.LoadOrStore(code, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
	c.latency.ObserveDuration(d)
}

// Class counts one event class's traffic.
type Class struct {
	Emitted, Delivered, Dropped atomic.Uint64
}

// Registry holds the kernel's counters. The zero value is not usable; call
// New.
type Registry struct {
	start   time.Time
	calls   labelled[Call]
	classes labelled[Class]

	ConnectionsOpened atomic.Uint64
	ConnectionsClosed atomic.Uint64

	Commits       atomic.Uint64
	LoggedEvents  atomic.Uint64
	LoggedBytes   atomic.Uint64
	CommitLatency *Histogram // one bbolt transaction, fsync included
	CommitBatch   *Histogram // events per commit
}

// New returns an empty registry.
func New() *Registry {
	r := &Registry{start: time.Now(), CommitLatency: NewHistogram(LatencyBounds), CommitBatch: NewHistogram(BatchBounds)}
	r.calls.make = func() *Call { return &Call{latency: NewHistogram(LatencyBounds)} }
	r.classes.make = func() *Class { return new(Class) }
	return r
}

// Call returns the counters of method.
func (r *Registry) Call(method string) *Call { return r.calls.get(method) }

// Class returns the counters of an event class.
func (r *Registry) Class(name string) *Class { return r.classes.get(name) }

// Commit records one log commit of events events, bytes bytes, taking d.
func (r *Registry) Commit(events, bytes int, d time.Duration) {
	r.Commits.Add(1)
	r.LoggedEvents.Add(uint64(events))
	r.LoggedBytes.Add(uint64(bytes))
	r.CommitLatency.ObserveDuration(d)
	if events > 0 {
		r.CommitBatch.Observe(float64(events))
	}
}

// Snapshot copies every counter of the registry into m (the parts other
// components fill, such as grid and inference, are left as they are).
func (r *Registry) Snapshot(m *api.Metrics) {
	m.UptimeSeconds = time.Since(r.start).Seconds()
	opened, closed := r.ConnectionsOpened.Load(), r.ConnectionsClosed.Load()
	m.Connections = api.ConnectionMetrics{Total: opened, Open: opened - min(closed, opened)}
	r.calls.each(func(name string, c *Call) {
		mm := api.MethodMetrics{Method: name, Codes: map[string]uint64{}, Latency: c.latency.Snapshot()}
		c.codes.Range(func(k, v any) bool {
			mm.Codes[string(k.(api.Code))] = v.(*atomic.Uint64).Load()
			return true
		})
		if n := c.ok.Load(); n > 0 {
			mm.Codes["ok"] = n
		}
		m.Calls = append(m.Calls, mm)
	})
	r.classes.each(func(name string, c *Class) {
		m.Events = append(m.Events, api.ClassMetrics{Class: name, Emitted: c.Emitted.Load(), Delivered: c.Delivered.Load(), Dropped: c.Dropped.Load()})
	})
	m.Log.Commits = r.Commits.Load()
	m.Log.Events = r.LoggedEvents.Load()
	m.Log.Bytes = r.LoggedBytes.Load()
	m.Log.CommitLatency = r.CommitLatency.Snapshot()
	m.Log.EventsPerCommit = r.CommitBatch.Snapshot()
	sortMetrics(m)
}
