package link

import "sync"

// Counters count what happened on the grid by name ("link.refused.untrusted",
// "link.up", …); grid/status shows them. The replication side adds its own
// to the same set. Safe for concurrent use.
type Counters struct {
	mu sync.Mutex
	m  map[string]uint64
}

// NewCounters makes an empty set.
func NewCounters() *Counters { return &Counters{m: map[string]uint64{}} }

// Add adds n to the counter name.
func (c *Counters) Add(name string, n uint64) {
	c.mu.Lock()
	c.m[name] += n
	c.mu.Unlock()
}

// Get is the counter name's value.
func (c *Counters) Get(name string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name]
}

// Snapshot copies every counter.
func (c *Counters) Snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}
