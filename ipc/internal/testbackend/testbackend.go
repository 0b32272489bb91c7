// Package testbackend is a small api.Backend for the transport tests: enough
// of the protocol's shape (ping, echo, slow and panicking handlers,
// notifications, subscriptions, client-provided commands) to exercise
// ipc/server and ipc/client without the kernel, whose own end-to-end tests
// run against the real thing.
package testbackend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Test-only methods.
const (
	MethodEcho   = "test/echo"   // returns its params
	MethodSleep  = "test/sleep"  // {ms}: sleeps, or returns ctx's error
	MethodBlock  = "test/block"  // waits for ctx; reports on Backend.Blocked
	MethodPanic  = "test/panic"  // panics
	MethodNotify = "test/notify" // {method, count}: sends count notifications {n}, then returns
	MethodCaller = "test/caller" // returns the session's api.Caller
	MethodNote   = "test/note"   // as a notification: recorded on Backend.Notes
)

// SleepParams are the params of test/sleep.
type SleepParams struct {
	Ms int `msgpack:"ms"`
}

// NotifyParams are the params of test/notify.
type NotifyParams struct {
	Method string `msgpack:"method"`
	Count  int    `msgpack:"count"`
}

// N is the params of each notification test/notify sends.
type N struct {
	N int `msgpack:"n"`
}

// Backend is the test backend. Its channels report what happened; read them
// or leave them, they never block the backend (bounded, dropping).
type Backend struct {
	Blocked chan string // session id, when a test/block handler starts
	Notes   chan string // "session method n" for each client notification
	Closed  chan string // session id, when a session closes
	// OpenErr, when set, makes Open fail.
	OpenErr error
	// EarlyEvents makes events/subscribe send its first events before the
	// reply, to test clients that must not lose them.
	EarlyEvents int

	nextID atomic.Int64
	mu     sync.Mutex
	subs   map[string]*sub     // by subscription id
	cmds   map[string]*Session // provider of each command
	sess   map[string]*Session // open sessions
}

type sub struct {
	id      string
	pattern string
	s       *Session
}

// New returns an empty backend.
func New() *Backend {
	return &Backend{
		Blocked: make(chan string, 1024),
		Notes:   make(chan string, 1024),
		Closed:  make(chan string, 1024),
		subs:    map[string]*sub{},
		cmds:    map[string]*Session{},
		sess:    map[string]*Session{},
	}
}

func report(ch chan string, s string) {
	select {
	case ch <- s:
	default:
	}
}

// Open implements api.Backend.
func (b *Backend) Open(peer api.Peer, caller api.Caller) (api.Session, error) {
	if b.OpenErr != nil {
		return nil, b.OpenErr
	}
	s := &Session{b: b, peer: peer, caller: caller, id: fmt.Sprintf("c%d", b.nextID.Add(1))}
	b.mu.Lock()
	b.sess[s.id] = s
	b.mu.Unlock()
	return s, nil
}

// Sessions reports how many sessions are open.
func (b *Backend) Sessions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sess)
}

// Session is one connection's session.
type Session struct {
	b      *Backend
	peer   api.Peer
	caller api.Caller
	id     string
}

// ID implements api.Session.
func (s *Session) ID() string { return s.id }

// Close implements api.Session: the session's subscriptions and commands go.
func (s *Session) Close() {
	b := s.b
	b.mu.Lock()
	delete(b.sess, s.id)
	for id, x := range b.subs {
		if x.s == s {
			delete(b.subs, id)
		}
	}
	for name, p := range b.cmds {
		if p == s {
			delete(b.cmds, name)
		}
	}
	b.mu.Unlock()
	report(b.Closed, s.id)
}

// raw returns params in the form a result can carry them back.
func raw(p api.Params) any {
	switch v := p.(type) {
	case api.RawParams:
		return msgpack.RawMessage(v)
	case api.ValueParams:
		return v.V
	}
	return nil
}

// Handle implements api.Session.
func (s *Session) Handle(ctx context.Context, method string, p api.Params) (any, error) {
	b := s.b
	switch method {
	case api.MethodKernelPing:
		return api.PingResult{TS: time.Now().UnixMilli()}, nil
	case MethodEcho:
		return raw(p), nil
	case MethodCaller:
		return s.caller, nil
	case MethodSleep:
		var sp SleepParams
		if err := p.Decode(&sp); err != nil {
			return nil, err
		}
		select {
		case <-time.After(time.Duration(sp.Ms) * time.Millisecond):
			return sp, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case MethodBlock:
		report(b.Blocked, s.id)
		<-ctx.Done()
		return nil, ctx.Err()
	case MethodPanic:
		panic("test/panic")
	case MethodNotify:
		var np NotifyParams
		if err := p.Decode(&np); err != nil {
			return nil, err
		}
		for i := range np.Count {
			if err := s.peer.Notify(np.Method, N{N: i}); err != nil {
				return nil, err
			}
		}
		return api.Empty{}, nil
	case MethodNote:
		var n N
		_ = p.Decode(&n)
		report(b.Notes, fmt.Sprintf("%s %s %d", s.id, method, n.N))
		return nil, nil
	case api.MethodSubscribe:
		var sp api.SubscribeParams
		if err := p.Decode(&sp); err != nil {
			return nil, err
		}
		id := fmt.Sprintf("s%d", b.nextID.Add(1))
		for i := range b.EarlyEvents {
			ev := api.Event{ID: fmt.Sprintf("early-%d", i), Class: sp.Pattern, Payload: map[string]any{"early": i}}
			if err := s.peer.Notify(api.NotifyEvent, api.EventNotification{Subscription: id, Event: ev}); err != nil {
				return nil, err
			}
		}
		b.mu.Lock()
		b.subs[id] = &sub{id: id, pattern: sp.Pattern, s: s}
		b.mu.Unlock()
		return api.SubscribeResult{Subscription: id}, nil
	case api.MethodUnsubscribe:
		var sp api.SubscriptionParams
		if err := p.Decode(&sp); err != nil {
			return nil, err
		}
		b.mu.Lock()
		x, ok := b.subs[sp.Subscription]
		if ok && x.s == s {
			delete(b.subs, sp.Subscription)
		}
		b.mu.Unlock()
		if !ok || x.s != s {
			return nil, api.Errorf(api.CodeNotFound, "no subscription %q", sp.Subscription)
		}
		return api.Empty{}, nil
	case api.MethodEmit:
		return s.emit(p)
	case api.MethodRegister:
		var rp api.RegisterParams
		if err := p.Decode(&rp); err != nil {
			return nil, err
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, taken := b.cmds[rp.Name]; taken {
			return nil, api.Errorf(api.CodeAlreadyExists, "command %q is provided already", rp.Name)
		}
		b.cmds[rp.Name] = s
		return api.Empty{}, nil
	case api.MethodUnregister:
		var np api.NameParams
		if err := p.Decode(&np); err != nil {
			return nil, err
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.cmds[np.Name] != s {
			return nil, api.Errorf(api.CodeNotFound, "command %q is not yours", np.Name)
		}
		delete(b.cmds, np.Name)
		return api.Empty{}, nil
	case api.MethodExecute:
		return s.execute(ctx, p)
	}
	return nil, api.Errorf(api.CodeUnknownMethod, "no method %q", method)
}

// emit delivers to every subscription whose pattern equals the class or is
// "*", then sends a lagged notice when the payload asks for one.
func (s *Session) emit(p api.Params) (any, error) {
	b := s.b
	var ep api.EmitParams
	if err := p.Decode(&ep); err != nil {
		return nil, err
	}
	id := ep.ID
	if id == "" {
		id = fmt.Sprintf("e%d", b.nextID.Add(1))
	}
	ev := api.Event{ID: id, Class: ep.Name, Sender: s.id, Headers: ep.Headers, Payload: ep.Payload, TS: time.Now().UnixMilli()}
	b.mu.Lock()
	var targets []*sub
	for _, x := range b.subs {
		if x.pattern == "*" || x.pattern == ep.Name {
			targets = append(targets, x)
		}
	}
	b.mu.Unlock()
	for _, x := range targets {
		_ = x.s.peer.Notify(api.NotifyEvent, api.EventNotification{Subscription: x.id, Event: ev})
		if strings.HasSuffix(ep.Name, ":lagged") {
			_ = x.s.peer.Notify(api.NotifyLagged, api.LaggedNotification{Subscription: x.id, Dropped: 7})
		}
	}
	return api.EmitResult{ID: id}, nil
}

// execute relays to the client that registered the command, as the kernel
// does: commands/handle with a deadline, commands/cancel when the caller
// goes away first.
func (s *Session) execute(ctx context.Context, p api.Params) (any, error) {
	b := s.b
	var xp api.ExecuteParams
	if err := p.Decode(&xp); err != nil {
		return nil, err
	}
	b.mu.Lock()
	prov := b.cmds[xp.Command]
	b.mu.Unlock()
	if prov == nil {
		return nil, api.Errorf(api.CodeUnknownMethod, "no command %q", xp.Command)
	}
	if xp.TimeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(xp.TimeoutMs)*time.Millisecond)
		defer cancel()
	}
	hp := api.HandleParams{
		Invocation: fmt.Sprintf("i%d", b.nextID.Add(1)),
		Command:    xp.Command,
		Params:     xp.Params,
		Caller:     s.id,
	}
	if d, ok := ctx.Deadline(); ok {
		hp.DeadlineMs = d.UnixMilli()
	}
	res, err := prov.peer.Call(ctx, api.MethodHandle, hp)
	if ctx.Err() != nil {
		_ = prov.peer.Notify(api.MethodCancel, api.CancelNotification{Invocation: hp.Invocation})
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return raw(res), nil
}
