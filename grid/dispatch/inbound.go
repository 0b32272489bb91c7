package dispatch

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/policy"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

// Inbound refusal reasons, in no_accepting_peer's data.reason (beside
// policy.ReasonCircle and policy.ReasonCommand).
const (
	ReasonLoop       = "loop"          // this install is in forwardedBy already
	ReasonHops       = "too_many_hops" // forwardedBy is longer than MaxHops
	ReasonBusy       = "busy"          // inbound.maxConcurrentJobs are running
	ReasonOverloaded = "overloaded"    // the machine's load is at inbound.loadCeiling
	ReasonNotOffered = "not_offered"   // the command is here but not a grid command
	ReasonDraining   = "shutting_down" // the dispatcher is closing
)

// loadNow reads the machine's load (a variable so tests can set it).
var loadNow = machineLoad

// inJob is one inbound job running here.
type inJob struct {
	circle, command string
	cancel          context.CancelCauseFunc
}

func (d *Dispatcher) refuse(reason, format string, args ...any) error {
	d.count("inbound.refused." + reason)
	return api.Errorf(api.CodeNoAcceptingPeer, "peer "+d.me+" refuses: "+format, args...).
		WithData(map[string]any{"reason": reason, "peerId": d.me})
}

// serveRun admits and runs a peer's request (cmd/run).
func (d *Dispatcher) serveRun(ctx context.Context, r *remote, params api.RawParams) (any, error) {
	var req runRequest
	if err := params.Decode(&req); err != nil {
		return nil, err
	}
	if err := api.CheckName("command", req.Command, api.MaxCommandNameLen); err != nil {
		return nil, err
	}
	pol := d.policy.Load()
	circle := r.peer.Circle
	if c, ok := d.trust.Circle(r.peer.ID); ok {
		circle = c // the trust store now, not the circle at link-up
	} else {
		return nil, d.refuse(policy.ReasonCircle, "%s is not trusted here", r.peer.ID)
	}
	switch {
	case slices.Contains(req.ForwardedBy, d.me):
		return nil, d.refuse(ReasonLoop, "the request for %s already passed this install (forwardedBy %s)", req.Command, joinIDs(req.ForwardedBy))
	case len(req.ForwardedBy) > MaxHops:
		return nil, d.refuse(ReasonHops, "the request passed %d installs, over the limit of %d", len(req.ForwardedBy), MaxHops)
	}
	if why := pol.AcceptsInbound(circle, req.Command); why != "" {
		return nil, d.refuse(why, "its inbound policy does not take %s from a peer in %s", req.Command, circle)
	}
	local := d.k.Provides(req.Command)
	if local && !d.offered(req.Command) {
		return nil, d.refuse(ReasonNotOffered, "%s is not a grid command here (environment and local commands never leave their machine)", req.Command)
	}
	if ceil := pol.Inbound.LoadCeiling; ceil > 0 {
		if l := loadNow(); l >= ceil {
			return nil, d.refuse(ReasonOverloaded, "its load %.2f per core is at its ceiling %.2f", l, ceil)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	job := &inJob{circle: circle, command: req.Command, cancel: cancel}
	d.mu.Lock()
	select {
	case <-d.closing:
		d.mu.Unlock()
		return nil, d.refuse(ReasonDraining, "it is shutting down")
	default:
	}
	if n := len(d.jobs); n >= pol.Inbound.MaxConcurrentJobs {
		d.mu.Unlock()
		return nil, d.refuse(ReasonBusy, "%d jobs are running, its limit (inbound.maxConcurrentJobs)", n)
	}
	d.jobs[job] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.jobs, job)
		d.mu.Unlock()
	}()
	if req.DeadlineMs > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, time.UnixMilli(req.DeadlineMs))
		defer c2()
	}
	ctx = kernel.WithForwardedBy(ctx, req.ForwardedBy)

	// A job whose events go back to its caller gets a session of its own
	// (its subscription sees the job's events by their sender); the others
	// share the link's.
	var sess api.Session
	var err error
	jp := &jobPeer{d: d, r: r, job: req.Job}
	fwd, forwards := forwardEvents[req.Command]
	if forwards {
		s, oerr := d.k.Open(jp, api.Caller{Transport: "grid", UID: -1, GID: -1, PID: -1})
		if oerr != nil {
			return nil, oerr
		}
		defer s.Close()
		jp.sessID = s.ID()
		if _, err := s.Handle(ctx, api.MethodSubscribe, api.ValueParams{V: api.SubscribeParams{Pattern: fwd.class}}); err != nil {
			return nil, err
		}
		sess = s
	} else if sess, err = r.session(d); err != nil {
		return nil, err
	}
	ep := api.ExecuteParams{Command: req.Command, Params: req.Params}
	if !local {
		// Not here: pass it on to a peer that offers it, the path so far in
		// forwardedBy so it never comes back.
		ep.Scope = &api.ScopeParams{Target: api.ScopeGrid, Capability: req.Capability}
	}
	d.count("inbound.accepted")
	res, err := sess.Handle(ctx, api.MethodExecute, api.ValueParams{V: ep})
	if cause := context.Cause(ctx); err != nil && cause != nil && cause != context.Canceled && cause != context.DeadlineExceeded {
		return nil, api.Errorf(api.CodeCancelled, "peer %s stopped the job: %v", d.me, cause)
	}
	if err != nil {
		return nil, err
	}
	events := 0
	if forwards {
		want, known := fwd.count(req.Params, res)
		events = jp.flush(want, known)
	}
	return runResult{Result: res, Events: events}, nil
}

// offered reports whether command is one this install offers the grid: a
// client's grid command, or inference/generate.
func (d *Dispatcher) offered(command string) bool {
	if command == api.MethodInferenceGenerate {
		return true
	}
	c, ok := d.k.Command(command)
	return ok && c.NaturalScope == api.ScopeGrid && c.Provider != "kernel"
}

// jobPeer is an inbound job's in-process client: the events its
// subscription delivers that the job itself emitted go to the caller as
// cmd/event notifications.
type jobPeer struct {
	d      *Dispatcher
	r      *remote
	job    string
	sessID string

	mu   sync.Mutex
	sent atomic.Int64
	last atomic.Int64 // unix nanos of the last event sent
}

func (p *jobPeer) Notify(method string, params any) error {
	if method != api.NotifyEvent {
		return nil
	}
	del, ok := params.(*api.EventDelivery)
	if !ok || del.Event == nil {
		return nil
	}
	ev, err := del.Event.Event()
	if err != nil || ev.Sender != p.sessID {
		return nil
	}
	raw, err := encodePayload(ev.Payload)
	if err != nil {
		p.d.log.Debug("a job's event payload cannot be encoded; not forwarded", "class", ev.Class, "err", err)
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.r.conn.Notify(methodEvent, eventNote{Job: p.job, Name: ev.Class, SchemaVersion: ev.SchemaVersion, Payload: raw}); err != nil {
		return err
	}
	p.sent.Add(1)
	p.last.Store(time.Now().UnixNano())
	return nil
}

func (p *jobPeer) Call(context.Context, string, any) (api.Params, error) {
	return nil, api.Errorf(api.CodeUnavailable, "a grid job serves no commands")
}

// flush waits until the subscription has delivered what the job emitted
// (the bus delivers on its own goroutine): want events when the result
// says how many (known), else until quiet for 10 ms; at most 1 s. It
// returns how many events went to the caller.
func (p *jobPeer) flush(want int, known bool) int {
	start := time.Now()
	deadline := start.Add(time.Second)
	if known {
		for int(p.sent.Load()) < want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Microsecond)
		}
		return int(p.sent.Load())
	}
	for time.Now().Before(deadline) {
		quiet := time.Unix(0, p.last.Load())
		if quiet.Before(start) {
			quiet = start
		}
		if time.Since(quiet) >= 10*time.Millisecond {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return int(p.sent.Load())
}

func encodePayload(v any) (msgpack.RawMessage, error) {
	if raw, ok := v.(msgpack.RawMessage); ok {
		return raw, nil
	}
	return msgpack.Marshal(v)
}

// session is the link's shared in-process client, opened on first use and
// closed at detach.
func (r *remote) session(d *Dispatcher) (api.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, api.Errorf(api.CodeUnavailable, "the link to %s closed", r.peer.ID)
	}
	if r.sess == nil {
		s, err := d.k.Open(nopPeer{}, api.Caller{Transport: "grid", UID: -1, GID: -1, PID: -1})
		if err != nil {
			return nil, err
		}
		r.sess = s
	}
	return r.sess, nil
}

func (r *remote) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.sess != nil {
		r.sess.Close()
		r.sess = nil
	}
}
