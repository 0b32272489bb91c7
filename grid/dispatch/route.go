package dispatch

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/policy"
	"github.com/continuum-grid/continuum/grid/trust"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

var _ kernel.GridRouter = (*Dispatcher)(nil)

// Considered reasons: why a peer was not a candidate.
const (
	whyStale       = "stale"     // its manifest is older than the stale interval
	whyUntrusted   = "untrusted" // not in the trust store
	whyCircle      = "circle_outbound_denied"
	whyMinCircle   = "below_min_trust_circle"
	whyPrice       = "over_max_price"
	whyNoLink      = "no_link"         // no link up to it now
	whyForwarded   = "in_forwarded_by" // the request already passed it (loop)
	whyNotPeer     = "not_the_peer"    // scope.peerId names another
	whyUnreachable = "unreachable"
)

type candidate struct {
	peer       string
	circle     string
	o          api.Offer
	load       float64
	rtt        time.Duration
	idempotent bool
	r          *remote
}

// Dispatch implements kernel.GridRouter.
func (d *Dispatcher) Dispatch(ctx context.Context, req kernel.GridRequest) (any, error) {
	pol := d.policy.Load()
	strategy := req.Scope.Policy
	if strategy == "" {
		strategy = pol.Outbound.Strategy
	}
	if !slices.Contains(policy.Strategies, strategy) {
		return nil, api.Errorf(api.CodeInvalidArgument, "scope.policy %q is not one of %s", strategy, strings.Join(policy.Strategies, ", "))
	}
	minRank := len(d.circles())
	if c := req.Scope.MinTrustCircle; c != "" {
		if minRank = circleRank(c); minRank == len(d.circles()) {
			return nil, api.Errorf(api.CodeInvalidArgument, "scope.minTrustCircle %q is not one of %s", c, strings.Join(d.circles(), ", "))
		}
	}
	if req.Scope.PeerID == d.me {
		return nil, api.Errorf(api.CodeInvalidArgument, "scope.peerId %s is this install; drop scope.target grid to run it here", d.me)
	}
	if err := d.takeRate(pol); err != nil {
		return nil, err
	}
	cands, considered := d.candidates(req, pol, minRank)
	if len(cands) == 0 {
		d.count("dispatch.no_matching_peer")
		what := req.Command
		if req.Scope.Capability != "" {
			what += " (capability " + req.Scope.Capability + ")"
		}
		return nil, api.Errorf(api.CodeNoMatchingPeer, "no peer can take %s: %d considered", what, len(considered)).
			WithData(map[string]any{"considered": considered})
	}
	sortCandidates(cands, strategy, d.inflightSnapshot())
	var tried []map[string]any
	for i, c := range cands {
		res, err := d.call(ctx, c, req)
		if err == nil {
			d.count("dispatch.ok")
			return res, nil
		}
		var ae *api.Error
		switch {
		case errors.As(err, &ae) && ae.Code == api.CodeNoAcceptingPeer:
			// Refused before anything ran: the next peer may take it.
			reason := "refused"
			if m := api.AsMap(ae.Data); m != nil {
				if r, ok := m["reason"].(string); ok {
					reason = r
				}
			}
			tried = append(tried, map[string]any{"peerId": c.peer, "reason": reason, "message": ae.Message})
			d.count("dispatch.refused." + reason)
			continue
		case errors.Is(err, errUnreachable):
			alternates := []string{}
			for _, a := range cands[i+1:] {
				alternates = append(alternates, a.peer)
			}
			if c.idempotent && len(alternates) > 0 && ctx.Err() == nil {
				d.log.Info("peer lost mid-call; retrying an idempotent command elsewhere", "peer", c.peer, "command", req.Command)
				tried = append(tried, map[string]any{"peerId": c.peer, "reason": whyUnreachable})
				d.count("dispatch.retried")
				continue
			}
			d.count("dispatch.peer_unreachable")
			return nil, api.Errorf(api.CodePeerUnreachable, "peer %s was lost during %s%s", c.peer, req.Command, retryNote(c.idempotent, alternates)).
				WithData(map[string]any{"peerId": c.peer, "alternates": alternates})
		default:
			d.count("dispatch.failed")
			return nil, err
		}
	}
	d.count("dispatch.no_accepting_peer")
	return nil, api.Errorf(api.CodeNoAcceptingPeer, "every peer that offers %s refused it (%d tried)", req.Command, len(tried)).
		WithData(map[string]any{"tried": tried})
}

func retryNote(idempotent bool, alternates []string) string {
	switch {
	case len(alternates) == 0:
		return "; no other peer offers it"
	case !idempotent:
		return "; not retried elsewhere: the command is not idempotent"
	}
	return ""
}

func (d *Dispatcher) circles() []string { return trustCircles }

// candidates filters the index by the request, the trust store and the
// outbound policy; considered says why each other peer was left out.
func (d *Dispatcher) candidates(req kernel.GridRequest, pol *policy.Policy, minRank int) ([]candidate, []map[string]any) {
	var cands []candidate
	considered := []map[string]any{}
	seen := map[string]bool{}
	offers := d.ix.offers(req.Command, req.Scope.Capability, time.Now(), d.opts.Stale, d.opts.Gone)
	// A peer named by scope.peerId is asked even when its manifest lists no
	// such offer: the operator chose it, and it answers for itself.
	if id := req.Scope.PeerID; id != "" && !slices.ContainsFunc(offers, func(o offer) bool { return o.peer == id }) {
		offers = append(offers, offer{peer: id, o: api.Offer{Capability: req.Scope.Capability, Command: req.Command}})
	}
	for _, o := range offers {
		if seen[o.peer] {
			continue
		}
		why := ""
		circle, trusted := d.trust.Circle(o.peer)
		r := d.remote(o.peer)
		switch {
		case req.Scope.PeerID != "" && o.peer != req.Scope.PeerID:
			why = whyNotPeer
		case slices.Contains(req.ForwardedBy, o.peer):
			why = whyForwarded
		case !trusted:
			why = whyUntrusted
		case !pol.AllowsOutbound(circle):
			why = whyCircle
		case circleRank(circle) > minRank:
			why = whyMinCircle
		case o.stale:
			why = whyStale
		case pol.Outbound.MaxPrice != nil && o.o.Terms.Price > *pol.Outbound.MaxPrice:
			why = whyPrice
		case r == nil:
			why = whyNoLink
		}
		if why != "" {
			considered = append(considered, map[string]any{"peerId": o.peer, "capability": o.o.Capability, "reason": why})
			continue
		}
		seen[o.peer] = true
		idem := o.o.Idempotent
		if req.Known {
			idem = req.Idempotent
		}
		cands = append(cands, candidate{peer: o.peer, circle: circle, o: o.o, load: o.load, rtt: d.links.State(o.peer).RTT, idempotent: idem, r: r})
	}
	return cands, considered
}

// sortCandidates orders by strategy; ties go to the lower peer id, so the
// same index gives the same choice.
func sortCandidates(cs []candidate, strategy string, inflight map[string]int) {
	cmpF := func(a, b float64) int {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	rttMs := func(c candidate) float64 { return float64(c.rtt.Milliseconds()) } // ms: jitter below it is no difference
	slices.SortStableFunc(cs, func(a, b candidate) int {
		var keys [][2]float64
		switch strategy {
		case policy.Cheapest:
			keys = [][2]float64{{a.o.Terms.Price, b.o.Terms.Price}, {a.o.Terms.EstLatencyMs, b.o.Terms.EstLatencyMs}}
		case policy.Fastest:
			keys = [][2]float64{{a.o.Terms.EstLatencyMs, b.o.Terms.EstLatencyMs}, {rttMs(a), rttMs(b)}}
		case policy.Closest:
			keys = [][2]float64{{float64(circleRank(a.circle)), float64(circleRank(b.circle))}, {rttMs(a), rttMs(b)}}
		case policy.LoadBalance:
			la := a.load + float64(inflight[a.peer])/float64(max(a.o.Terms.MaxConcurrent, 1))
			lb := b.load + float64(inflight[b.peer])/float64(max(b.o.Terms.MaxConcurrent, 1))
			keys = [][2]float64{{la, lb}}
		}
		for _, k := range keys {
			if c := cmpF(k[0], k[1]); c != 0 {
				return c
			}
		}
		return strings.Compare(a.peer, b.peer)
	})
}

func (d *Dispatcher) inflightSnapshot() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]int, len(d.inflight))
	for k, v := range d.inflight {
		m[k] = v
	}
	return m
}

// takeRate counts a dispatch against outbound.maxCallsPerMinute.
func (d *Dispatcher) takeRate(pol *policy.Policy) error {
	limit := pol.Outbound.MaxCallsPerMinute
	if limit <= 0 {
		return nil
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rate = slices.DeleteFunc(d.rate, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	if len(d.rate) >= limit {
		return api.Errorf(api.CodeResourceExhausted, "the policy allows %d grid calls a minute (outbound.maxCallsPerMinute) and they are used", limit)
	}
	d.rate = append(d.rate, now)
	return nil
}

var errUnreachable = errors.New("peer unreachable")

// outCall is one of our calls running on a peer: the events it sends back
// are re-emitted here, in order, as the caller's.
type outCall struct {
	caller  string
	ch      chan eventNote
	emitted chan struct{} // one token per event re-emitted
}

// call runs req on c's peer over the cmd stream.
func (d *Dispatcher) call(ctx context.Context, c candidate, req kernel.GridRequest) (any, error) {
	job := strconv.FormatUint(d.nextJob.Add(1), 36)
	key := c.peer + "/" + job
	// Only commands whose events come back get a re-emitter.
	_, forwards := forwardEvents[req.Command]
	var oc *outCall
	var done chan struct{}
	d.mu.Lock()
	if forwards {
		oc = &outCall{caller: req.CallerID, ch: make(chan eventNote, 1024), emitted: make(chan struct{}, 1<<16)}
		d.calls[key] = oc
	}
	d.inflight[c.peer]++
	d.mu.Unlock()
	if forwards {
		done = make(chan struct{})
		go d.reemit(oc, done)
	}
	defer func() {
		d.mu.Lock()
		delete(d.calls, key)
		if d.inflight[c.peer]--; d.inflight[c.peer] <= 0 {
			delete(d.inflight, c.peer)
		}
		d.mu.Unlock()
		if forwards {
			close(oc.ch)
			<-done
		}
	}()
	rr := runRequest{Job: job, Command: req.Command, Params: req.Params, Capability: req.Scope.Capability, ForwardedBy: append(slices.Clone(req.ForwardedBy), d.me)}
	if rr.Capability == "" {
		rr.Capability = c.o.Capability
	}
	if dl, ok := ctx.Deadline(); ok {
		rr.DeadlineMs = dl.UnixMilli()
	}
	raw, err := c.r.conn.Call(ctx, methodRun, rr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, api.AsError(ctx.Err())
		}
		select {
		case <-c.r.conn.Done():
			return nil, errUnreachable
		default:
		}
		if api.CodeOf(err) == api.CodeUnavailable && d.remote(c.peer) != c.r {
			return nil, errUnreachable
		}
		return nil, err
	}
	var res runResult
	if err := raw.Decode(&res); err != nil {
		return nil, api.Errorf(api.CodeProtocolError, "peer %s answered cmd/run with %v", c.peer, err)
	}
	if !forwards {
		res.Events = 0
	}
	// The stream is complete when the result arrives: wait for the events
	// the job says it sent (bounded: a lost one must not hold the result).
	wait := time.NewTimer(2 * time.Second)
	defer wait.Stop()
	for i := 0; i < res.Events; i++ {
		select {
		case <-oc.emitted:
		case <-wait.C:
			d.log.Warn("events of a remote call missing at its result", "peer", c.peer, "job", job, "want", res.Events, "got", i)
			i = res.Events
		case <-ctx.Done():
			return nil, api.AsError(ctx.Err())
		}
	}
	if res.Result == nil {
		return nil, nil
	}
	return res.Result, nil
}

func (d *Dispatcher) reemit(oc *outCall, done chan struct{}) {
	defer close(done)
	for n := range oc.ch {
		var payload any
		if len(n.Payload) > 0 {
			payload = msgpack.RawMessage(n.Payload)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := d.k.Emit(ctx, oc.caller, api.EmitParams{Name: n.Name, SchemaVersion: n.SchemaVersion, Payload: payload}); err != nil {
			d.log.Debug("cannot re-emit a remote job's event", "class", n.Name, "err", err)
		}
		cancel()
		select {
		case oc.emitted <- struct{}{}:
		default:
		}
	}
}

// onEvent takes a peer's cmd/event for one of our calls (on the stream's
// reader: it only queues).
func (d *Dispatcher) onEvent(peer string, params api.RawParams) {
	var n eventNote
	if err := params.Decode(&n); err != nil {
		d.log.Debug("bad cmd/event", "peer", peer, "err", err)
		return
	}
	if fwd, ok := forwardEventClass(n.Name); !ok || !fwd {
		d.log.Debug("cmd/event of a class that is not forwarded", "peer", peer, "class", n.Name)
		return
	}
	// Under d.mu: call removes its outCall under it before closing ch.
	d.mu.Lock()
	defer d.mu.Unlock()
	oc := d.calls[peer+"/"+n.Job]
	if oc == nil {
		return
	}
	select {
	case oc.ch <- n:
	default:
		d.log.Warn("a remote job's events overflow; dropped one", "peer", peer, "job", n.Job)
	}
}

// forwardEventClass says whether class is one jobs forward to callers: a
// peer cannot make this install emit anything else.
func forwardEventClass(class string) (fwd bool, ok bool) {
	for _, f := range forwardEvents {
		if f.class == class {
			return true, true
		}
	}
	return false, true
}

var trustCircles = trust.Circles
