package client

import (
	"context"

	"github.com/continuum-grid/continuum/api"
)

// Subscription is a live events/subscribe. Events arrive on Events() in the
// order the daemon sent them; the channel closes when the subscription ends
// (Close, or the connection going). Each *api.Event is the application's
// own: a fresh value per delivery, shared with nothing else (in process too),
// so it may be kept or changed.
type Subscription struct {
	c      *Client
	id     string
	cursor uint64
	ch     chan *api.Event

	// Guarded by c.mu.
	ended         bool
	err           *api.Error
	kernelDropped uint64
	clientDropped uint64
}

// Lag counts the events a subscription lost.
type Lag struct {
	// Kernel is what the daemon dropped because the connection fell behind
	// (events/lagged notifications).
	Kernel uint64
	// Client is what this client dropped because the application did not
	// drain Events() fast enough.
	Client uint64
}

// Subscribe starts a subscription. Events that the daemon sends before its
// reply arrives are kept and come first.
func (c *Client) Subscribe(ctx context.Context, p api.SubscribeParams) (*Subscription, error) {
	var res api.SubscribeResult
	if err := c.t.call(ctx, api.MethodSubscribe, p, &res); err != nil {
		return nil, err
	}
	s := &Subscription{c: c, id: res.Subscription, cursor: res.Cursor, ch: make(chan *api.Event, c.opts.eventBuffer)}
	c.adopt(s)
	return s, nil
}

// ID is the subscription id the daemon gave.
func (s *Subscription) ID() string { return s.id }

// Cursor is the log position delivery started after.
func (s *Subscription) Cursor() uint64 { return s.cursor }

// Events delivers the subscription's events; it is closed when the
// subscription ends. It carries pointers, not values: an event is about 200
// bytes, and a buffer of values cost a copy in and a copy out per delivery
// (the largest single cost of a fan-out burst on the client).
func (s *Subscription) Events() <-chan *api.Event { return s.ch }

// Next waits for the next event. When the subscription has ended it returns
// an *api.Error: cancelled after Close, unavailable when the connection went.
func (s *Subscription) Next(ctx context.Context) (*api.Event, error) {
	select {
	case ev, ok := <-s.ch:
		if ok {
			return ev, nil
		}
		s.c.mu.Lock()
		defer s.c.mu.Unlock()
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Lagged reports how many events were dropped so far.
func (s *Subscription) Lagged() Lag {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return Lag{Kernel: s.kernelDropped, Client: s.clientDropped}
}

// Close ends the subscription: Events() closes at once (events still
// buffered are dropped) and the daemon is told with events/unsubscribe.
// Closing twice, or after the connection went, returns nil.
func (s *Subscription) Close(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	if s.ended {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return c.Unsubscribe(ctx, s.id)
}

// push delivers one event without ever waiting; c.mu is held.
func (s *Subscription) push(ev *api.Event) {
	if s.ended {
		return
	}
	select {
	case s.ch <- ev:
	default:
		s.clientDropped++
	}
}

// end closes the channel once; c.mu is held.
func (s *Subscription) end(err *api.Error) {
	if s.ended {
		return
	}
	s.ended = true
	s.err = err
	close(s.ch)
}
