package kernel

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/metrics"
)

// asyncPeer is a peer that can carry a call with nobody waiting on it: the
// answer comes to done on the peer connection's reader (ipc/server's peer
// over msgrpc.Conn.CallAsync). CallAsync reports ok false, having sent
// nothing and with done never called, when the call would have to wait for
// the peer to read; otherwise done is called exactly once, closed true when
// the connection went before the answer. Abandon gives the call up.
type asyncPeer interface {
	CallAsync(method string, params any, done func(result api.RawParams, err error, closed bool)) (id uint32, ok bool)
	Abandon(id uint32)
}

// AsyncMethod reports whether method is a command a client provides over a
// connection that can relay it without a goroutine waiting (StartRequest).
// The transport asks it on its reader for every request it does not serve
// inline, so it is one lookup.
func (s *session) AsyncMethod(method string) bool {
	cmd := s.k.cmds.Get(method)
	if cmd == nil || cmd.Handler != nil || cmd.Owner == nil {
		return false
	}
	_, ok := cmd.Owner.peer.(asyncPeer)
	return ok
}

// StartRequest relays a call of a provided command (method) to its provider
// and returns at once: the provider's answer goes to reply from the
// provider connection's reader, with no goroutine parked here per call and
// no hand-off to one and back. It means what Handle's invoke means: the
// provider's result or error, unavailable with the reason when the provider
// has gone or goes during the call, and cancel (the caller's rpc/cancel or
// its connection closing) tells the provider with commands/cancel.
//
// It takes nothing (ok false) when the kernel is draining or the provider's
// connection is not reading now: Handle then serves the request, answering
// or waiting as it always does.
func (s *session) StartRequest(method string, params api.RawParams, reply func(result any, err error)) (cancel func(), ok bool) {
	k := s.k
	if k.draining.Load() {
		return nil, false
	}
	cmd := k.cmds.Get(method)
	if cmd == nil || cmd.Handler != nil || cmd.Owner == nil {
		return nil, false
	}
	peer, isAsync := cmd.Owner.peer.(asyncPeer)
	if !isAsync {
		return nil, false
	}
	k.inflight.Add(1)
	r := &relay{
		k: k, owner: cmd.Owner, peer: peer, command: method,
		inv:   "i" + strconv.FormatUint(k.nextID.Add(1), 36),
		reply: reply, calls: k.metrics.Call(method), start: time.Now(),
	}
	if !r.owner.addInvocation(r.inv, r.providerGone) {
		r.finish(nil, api.Errorf(api.CodeUnavailable, "the provider of %q has disconnected", method), false, false)
		return nil, true
	}
	hp := &api.HandleParams{Invocation: r.inv, Command: method, Params: paramsValue(params), Caller: s.id}
	id, sent := peer.CallAsync(api.MethodHandle, hp, r.answered)
	if !sent {
		// The provider is not reading: undo, and let Handle wait for it
		// in a goroutine, as the relay always did; unless the provider
		// went meanwhile, which has answered already.
		r.mu.Lock()
		answered := r.finished
		r.finished = true
		r.mu.Unlock()
		if answered {
			return nil, true
		}
		r.owner.removeInvocation(r.inv)
		k.inflight.Done()
		return nil, false
	}
	r.mu.Lock()
	r.id, r.sent = id, true
	abandon, tell := r.finished && r.abandon, r.tell
	r.mu.Unlock()
	if abandon {
		// Cancelled or gone while the call was being sent.
		r.giveUp(id, tell)
	}
	return r.cancel, true
}

// relay is one call StartRequest relayed: it ends once, by the provider's
// answer, the provider going, or the caller cancelling.
type relay struct {
	k       *Kernel
	owner   *session
	peer    asyncPeer
	command string
	inv     string
	reply   func(any, error)
	calls   *metrics.Call
	start   time.Time

	mu       sync.Mutex
	id       uint32 // the call's msgid on the provider's connection, once sent
	sent     bool
	finished bool
	abandon  bool // finished by the caller or the provider going: give up the call
	tell     bool // finished by the caller: tell the provider too
}

// answered takes the provider's answer (on its connection's reader).
func (r *relay) answered(res api.RawParams, err error, closed bool) {
	if closed {
		r.finish(nil, r.goneError(), false, false)
		return
	}
	if err != nil {
		r.finish(nil, err, false, false)
		return
	}
	r.finish(paramsValue(res), nil, false, false)
}

// providerGone is the invocation's cancel (session.Close of the provider).
func (r *relay) providerGone(error) {
	r.finish(nil, r.goneError(), true, false)
}

// cancel is the caller giving up: its rpc/cancel, or its connection closing.
func (r *relay) cancel() {
	r.finish(nil, api.AsError(context.Canceled), true, true)
}

func (r *relay) goneError() error {
	return api.Errorf(api.CodeUnavailable, "the provider of %q (%s) disconnected during the call", r.command, r.owner.id)
}

// finish ends the relay with v or err, once; abandon gives up the call on
// the provider's connection, tell sends the provider commands/cancel.
func (r *relay) finish(v any, err error, abandon, tell bool) {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	r.finished, r.abandon, r.tell = true, abandon, tell
	id, sent := r.id, r.sent
	r.mu.Unlock()
	r.owner.removeInvocation(r.inv)
	if abandon && sent {
		r.giveUp(id, tell)
	}
	r.calls.Done(time.Since(r.start), err)
	r.k.inflight.Done()
	r.reply(v, err)
}

// giveUp drops the call on the provider's connection and, when the caller
// cancelled, tells the provider so it can stop working.
func (r *relay) giveUp(id uint32, tell bool) {
	r.peer.Abandon(id)
	if tell {
		go r.owner.peer.Notify(api.MethodCancel, &api.CancelNotification{Invocation: r.inv})
	}
}
