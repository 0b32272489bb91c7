package kernel

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/commands"
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

// AsyncMethod reports whether method may be a call of a command a client
// provides over a connection that can relay it without a goroutine waiting
// (StartRequest): the command's own name, or commands/execute (which
// StartRequest decodes to know). The transport asks it on its reader for
// every request it does not serve inline, so it is one lookup.
func (s *session) AsyncMethod(method string) bool {
	if method == api.MethodExecute {
		return true
	}
	_, ok := s.relayable(method)
	return ok
}

// relayable returns the provided command named name when its provider's
// connection can relay without waiting.
func (s *session) relayable(name string) (*commands.Command[*session], bool) {
	cmd := s.k.cmds.Get(name)
	if cmd == nil || cmd.Handler != nil || cmd.Owner == nil {
		return nil, false
	}
	_, ok := cmd.Owner.peer.(asyncPeer)
	return cmd, ok
}

// StartRequest relays a call of a provided command (by its name, or through
// commands/execute when its scope keeps it here) to its provider and returns
// at once: the provider's answer goes to reply from the provider
// connection's reader, with no goroutine parked here per call and no
// hand-off to one and back. It means what Handle's relay (invoke) means: the
// provider's result or error, unavailable with the reason when the provider
// has gone or goes during the call, deadline_exceeded after timeoutMs, and
// the provider told with commands/cancel when the caller gives up (its
// rpc/cancel, its connection closing: cancel) or the deadline passes.
//
// It takes nothing (ok false) when Handle should serve the request instead:
// the kernel draining, any other command or route, params Handle would
// refuse (it reports them), or a provider's connection that is not reading
// now (Handle waits for it in a goroutine, as the relay always did).
func (s *session) StartRequest(method string, params api.RawParams, reply func(result any, err error)) (cancel func(), ok bool) {
	k := s.k
	if k.draining.Load() {
		return nil, false
	}
	var (
		cmd       *commands.Command[*session]
		command   = method
		args      = paramsValue(params)
		timeoutMs int64
	)
	if method == api.MethodExecute {
		var p api.ExecuteParams
		if params.Decode(&p) != nil || api.CheckName("command", p.Command, api.MaxCommandNameLen) != nil || p.TimeoutMs < 0 {
			return nil, false
		}
		if cmd, ok = s.relayable(p.Command); !ok {
			return nil, false
		}
		if route, err := commands.Decide(cmd.Info.NaturalScope, p.Scope); err != nil || route != commands.RouteHere {
			return nil, false
		}
		command, args, timeoutMs = p.Command, p.Params, p.TimeoutMs
	} else if cmd, ok = s.relayable(method); !ok {
		return nil, false
	}
	peer := cmd.Owner.peer.(asyncPeer)
	k.inflight.Add(1)
	r := &relay{
		k: k, owner: cmd.Owner, peer: peer, command: command, timeoutMs: timeoutMs,
		inv:   "i" + strconv.FormatUint(k.nextID.Add(1), 36),
		reply: reply, calls: k.metrics.Call(method), start: time.Now(),
	}
	if !r.owner.addInvocation(r.inv, r.providerGone) {
		r.finish(nil, api.Errorf(api.CodeUnavailable, "the provider of %q has disconnected", command), false, false)
		return nil, true
	}
	hp := &api.HandleParams{Invocation: r.inv, Command: command, Params: args, Caller: s.id}
	if timeoutMs > 0 {
		timeout := time.Duration(timeoutMs) * time.Millisecond
		hp.DeadlineMs = r.start.Add(timeout).UnixMilli()
		r.mu.Lock()
		r.timer = time.AfterFunc(timeout, r.timedOut)
		r.mu.Unlock()
	}
	id, sent := peer.CallAsync(api.MethodHandle, hp, r.answered)
	if !sent {
		// The provider is not reading: undo, and let Handle wait for it
		// in a goroutine, as the relay always did; unless the provider
		// went meanwhile, which has answered already.
		r.mu.Lock()
		answered := r.finished
		r.finished = true
		if r.timer != nil {
			r.timer.Stop()
		}
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
		// Cancelled, gone or past the deadline while the call was sent.
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
	// timeoutMs is commands/execute's, 0 for none.
	timeoutMs int64
	reply     func(any, error)
	calls     *metrics.Call
	start     time.Time

	mu       sync.Mutex
	timer    *time.Timer // ends it at the deadline; nil without one
	id       uint32      // the call's msgid on the provider's connection, once sent
	sent     bool
	finished bool
	abandon  bool // finished by the caller or the provider going: give up the call
	tell     bool // finished by the caller: tell the provider too
}

// answered takes the provider's answer (on its connection's reader).
func (r *relay) answered(res api.RawParams, err error, closed bool) {
	if closed {
		// Its commands go now rather than when its session closes, a
		// moment later: a caller told that the provider went must not
		// reach it again with its next call.
		r.k.cmds.RemoveOwner(r.owner)
		r.k.offersChanged()
		r.finish(nil, r.goneError(), false, false)
		return
	}
	if err != nil {
		if r.timeoutMs > 0 && api.CodeOf(err) == api.CodeDeadlineExceeded {
			// The provider's handler ran out of the same deadline (it
			// gets it, rounded down to the millisecond), before the
			// timer here: say so as the timer would.
			r.finish(nil, r.deadlineError(), false, false)
			return
		}
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

// timedOut is the deadline passing.
func (r *relay) timedOut() {
	r.finish(nil, r.deadlineError(), true, true)
}

func (r *relay) deadlineError() error {
	return api.Errorf(api.CodeDeadlineExceeded, "command %q did not finish within %d ms", r.command, r.timeoutMs)
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
	if r.timer != nil {
		r.timer.Stop()
	}
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
