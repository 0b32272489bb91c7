package kernel

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/metrics"
)

// errProviderGone is the cancel cause of invocations whose provider's
// connection closed.
var errProviderGone = errors.New("provider went away")

// session is one client's conversation with the kernel.
type session struct {
	k      *Kernel
	id     string
	peer   api.Peer
	caller api.Caller

	mu          sync.Mutex
	closed      bool
	subs        map[string]closer
	invocations map[string]context.CancelCauseFunc // calls this client is serving as a provider
}

var _ api.Session = (*session)(nil)

func (s *session) ID() string { return s.id }

// Handle serves one request by name: a built-in or hosted method runs in the
// kernel, a command a client registered is relayed to it.
func (s *session) Handle(ctx context.Context, method string, params api.Params) (res any, err error) {
	k := s.k
	calls, start := k.metrics.Call(method), time.Now()
	defer func() { calls.Done(time.Since(start), err) }()
	if k.draining.Load() {
		return nil, api.Errorf(api.CodeUnavailable, "continuumd is shutting down")
	}
	k.inflight.Add(1)
	defer k.inflight.Done()
	cmd := k.cmds.Get(method)
	if cmd == nil {
		return nil, api.Errorf(api.CodeUnknownMethod, "no method or command named %q (continuum info lists the methods, continuum commands list the commands; methods kernel/info, commands/list)", method)
	}
	if cmd.Handler != nil {
		return cmd.Handler(ctx, s, params)
	}
	return k.invoke(ctx, s, cmd.Owner, method, paramsValue(params))
}

// Close ends the session: subscriptions stop, registered commands go away,
// and calls this client was serving fail at once with unavailable.
func (s *session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	subs := s.subs
	s.subs = nil
	invs := s.invocations
	s.invocations = nil
	s.mu.Unlock()

	s.k.cmds.RemoveOwner(s)
	s.k.offersChanged()
	for _, sub := range subs {
		sub.Close()
	}
	for _, cancel := range invs {
		cancel(errProviderGone)
	}
	s.k.sessMu.Lock()
	delete(s.k.sessions, s)
	s.k.sessMu.Unlock()
	s.k.metrics.ConnectionsClosed.Add(1)
	s.k.log.Debug("session closed", "client", s.id)
}

// addInvocation records a call this session serves, so Close can fail it.
func (s *session) addInvocation(id string, cancel context.CancelCauseFunc) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.invocations[id] = cancel
	return true
}

func (s *session) removeInvocation(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.invocations, id)
}

// subscriptionSink delivers a subscription's events to its session's peer.
type subscriptionSink struct {
	peer    api.Peer
	id      string
	log     *slog.Logger
	metrics *metrics.Registry
}

// Deliver hands the peer the shared event with this subscription's id around
// it: a connection copies the event's bytes, encoded once for all its
// subscribers (or read from the log as they are stored), and an in-process
// client takes the event as a value (api.EventDelivery).
//
// An event this connection cannot carry (a payload an in-process emitter gave
// that msgpack cannot encode, or an envelope over the connection's message
// limit) is skipped and reported as lagged: one bad event must not end the
// subscription. Any other error means the connection is gone.
func (d *subscriptionSink) Deliver(ev *api.SharedEvent) error {
	err := d.peer.Notify(api.NotifyEvent, &api.EventDelivery{Subscription: d.id, Event: ev})
	if err == nil {
		d.metrics.Class(ev.Class).Delivered.Add(1)
		return nil
	}
	if _, encErr := ev.Encoded(); encErr != nil || api.CodeOf(err) == api.CodeMessageTooLarge {
		d.log.Warn("event skipped for a subscriber: it cannot be sent on this connection",
			"subscription", d.id, "class", ev.Class, "err", err)
		d.Lagged(1)
		return nil
	}
	return err
}

func (d *subscriptionSink) Lagged(n uint64) {
	_ = d.peer.Notify(api.NotifyLagged, &api.LaggedNotification{Subscription: d.id, Dropped: n})
}
