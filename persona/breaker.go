package persona

import (
	"time"

	"github.com/continuum-grid/continuum/api"
)

// breaker is a persona's circuit breaker, a state machine fed by the loop
// with the time (no clock of its own, so tests drive it): threshold
// consecutive failures open it for openFor; after that one attempt goes
// through (half open), and its outcome closes or reopens it.
type breaker struct {
	threshold int
	openFor   time.Duration

	state     string
	errors    int
	opened    int
	openUntil time.Time
}

func newBreaker(threshold int, openFor time.Duration) *breaker {
	return &breaker{threshold: threshold, openFor: openFor, state: api.BreakerClosed}
}

// allow says whether an attempt may run at now, and if not, how long until
// one may. An open breaker whose time is up turns half open.
func (b *breaker) allow(now time.Time) (bool, time.Duration) {
	if b.state != api.BreakerOpen {
		return true, 0
	}
	if wait := b.openUntil.Sub(now); wait > 0 {
		return false, wait
	}
	b.state = api.BreakerHalfOpen
	return true, 0
}

func (b *breaker) success() {
	b.state, b.errors = api.BreakerClosed, 0
}

func (b *breaker) failure(now time.Time) {
	b.errors++
	if b.state == api.BreakerHalfOpen || b.errors >= b.threshold {
		b.state = api.BreakerOpen
		b.openUntil = now.Add(b.openFor)
		b.opened++
	}
}

// configure takes new params; the state is kept.
func (b *breaker) configure(threshold int, openFor time.Duration) {
	b.threshold, b.openFor = threshold, openFor
}

func (b *breaker) view() api.PersonaBreaker {
	v := api.PersonaBreaker{State: b.state, Errors: b.errors, Opened: b.opened}
	if b.state == api.BreakerOpen {
		v.OpenUntilMs = b.openUntil.UnixMilli()
	}
	return v
}
