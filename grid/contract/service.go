package contract

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/alloy"
	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/dispatch"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/grid/trust"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolName is the link protocol that carries a contract's job from the
// proposer to the accepted bidder.
const ProtocolName = "contract"

// Sender is the sender of the contract service's events.
const Sender = "contract"

// Limits and defaults of contract/propose.
const (
	DefaultExpiryMs      = 1000
	MinExpiryMs          = 50
	MaxExpiryMs          = 600_000
	DefaultDeliverWithin = 60_000
	MaxDeliverWithin     = 3_600_000
	MaxParamsBytes       = 1 << 20
	MaxCurrencyLen       = 64
	// acceptGrace is how long after the bid window the proposer waits for
	// bids stamped inside it to reach it.
	acceptGrace = 150 * time.Millisecond
	// waitAccepted bounds how long an executor waits for the accepted event
	// to replicate to it before refusing the proposer's job.
	waitAccepted = 5 * time.Second
)

const methodRun = "contract/run"

// Options tune the service.
type Options struct {
	Logger *slog.Logger
	// ExecuteWithin is how long after acceptance the accepted bidder has to
	// emit contract:executing (default 10s; the delivery deadline is the
	// proposal's deliverWithinMs).
	ExecuteWithin time.Duration
	// Tamper, for tests only, changes a result after its receipt is signed:
	// the delivery then does not verify.
	Tamper func(result []byte) []byte
}

// Service is one install's contract service. Safe for concurrent use.
type Service struct {
	k     *kernel.Kernel
	me    string
	trust *trust.Store
	disp  *dispatch.Dispatcher
	log   *slog.Logger
	opts  Options
	self  api.Session
	track *Tracker

	mu       sync.Mutex
	conns    map[string]*msgrpc.Conn // attached contract streams, by peer
	jobs     map[string]*job         // contracts this install proposed, by id
	reserved map[string]string       // contract id → command, capacity held by a bid or job here
	bidding  map[string]bool         // bids being emitted
	declared bool                    // the contract classes are declared

	kick    chan struct{}
	closing chan struct{}
	closed  sync.Once
	wg      sync.WaitGroup
}

// job is a contract this install proposed: the params (which only the
// accepted bidder gets) and its outcome.
type job struct {
	params  []byte
	started bool // handed to the accepted bidder
	done    chan struct{}
	result  []byte
}

var _ link.Protocol = (*Service)(nil)

// New makes the service. Pass it to the link manager as a Protocol, then
// call Host.
func New(k *kernel.Kernel, ts *trust.Store, disp *dispatch.Dispatcher, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ExecuteWithin <= 0 {
		opts.ExecuteWithin = 10 * time.Second
	}
	sess, err := k.Open(nopPeer{}, api.Caller{Transport: "grid", UID: -1, GID: -1, PID: -1})
	if err != nil {
		return nil, err
	}
	return &Service{
		k: k, me: k.PeerID(), trust: ts, disp: disp, log: opts.Logger, opts: opts, self: sess, track: NewTracker(),
		conns: map[string]*msgrpc.Conn{}, jobs: map[string]*job{}, reserved: map[string]string{}, bidding: map[string]bool{},
		kick: make(chan struct{}, 1), closing: make(chan struct{}),
	}, nil
}

// Classes are the contract classes: broadcast on global, v1.
func Classes() []api.ClassConfig {
	var out []api.ClassConfig
	for _, c := range []string{api.EventContractProposed, api.EventContractBid, api.EventContractAccepted, api.EventContractExecuting,
		api.EventContractDelivered, api.EventContractVerified, api.EventContractPaid, api.EventContractDisputed} {
		out = append(out, api.ClassConfig{Name: c, Broadcast: true, Channel: api.ChannelGlobal, SchemaVersion: api.ContractSchema,
			OnUnknownSchema: api.SchemaFail, Description: "a step of a contract's signed chain (docs/CONTRACTS.md); sender: contract"})
	}
	return out
}

// Host registers contract/propose|get|list and starts following the log.
func (s *Service) Host() error {
	for _, m := range []struct {
		name string
		fn   kernel.Service
	}{
		{api.MethodContractPropose, kernel.Typed(s.propose)},
		{api.MethodContractGet, kernel.Typed(s.get)},
		{api.MethodContractList, kernel.Typed(s.list)},
	} {
		spec, ok := api.Lookup(m.name)
		if !ok {
			return fmt.Errorf("contract: %s is missing from api.Methods", m.name)
		}
		if err := s.k.Host(spec, m.fn); err != nil {
			return err
		}
	}
	s.wg.Add(2)
	go s.followLoop()
	go s.timerLoop()
	return nil
}

// Close stops following and the timers; running jobs end with their links.
func (s *Service) Close() {
	s.closed.Do(func() {
		close(s.closing)
		s.wg.Wait()
		s.self.Close()
	})
}

// Tracker is the service's tracker (tests compare it across peers).
func (s *Service) Tracker() *Tracker { return s.track }

// Name implements link.Protocol.
func (s *Service) Name() string { return ProtocolName }

// Attach implements link.Protocol: the proposer sends its accepted bidder
// the job on this stream.
func (s *Service) Attach(p link.Peer, conn *msgrpc.Conn) (msgrpc.Handler, func()) {
	s.mu.Lock()
	s.conns[p.ID] = conn
	s.mu.Unlock()
	h := msgrpc.HandlerFuncs{
		Request: func(ctx context.Context, method string, params api.RawParams) (any, error) {
			if method != methodRun {
				return nil, api.Errorf(api.CodeUnknownMethod, "contract protocol: no method %q", method)
			}
			return s.serveRun(ctx, p.ID, params)
		},
	}
	return h, func() {
		s.mu.Lock()
		if s.conns[p.ID] == conn {
			delete(s.conns, p.ID)
		}
		s.mu.Unlock()
	}
}

// declare declares the contract classes before this install's first
// contract event (as the presence classes are declared once there is a
// peer): a standalone install's class list stays free of them.
func (s *Service) declare(ctx context.Context) error {
	s.mu.Lock()
	done := s.declared
	s.mu.Unlock()
	if done {
		return nil
	}
	for _, c := range Classes() {
		if _, err := s.self.Handle(ctx, api.MethodDeclareClass, api.ValueParams{V: c}); err != nil {
			return fmt.Errorf("contract: declare %s: %w", c.Name, err)
		}
	}
	s.mu.Lock()
	s.declared = true
	s.mu.Unlock()
	return nil
}

func (s *Service) emit(ctx context.Context, class string, payload any) error {
	if err := s.declare(ctx); err != nil {
		return err
	}
	_, err := s.k.Emit(ctx, Sender, api.EmitParams{Name: class, Payload: payload})
	if err != nil {
		s.log.Warn("cannot emit a contract event", "class", class, "err", err)
	}
	return err
}

// followLoop folds every committed contract event into the tracker, from
// the start of the log and then as it grows, and reacts to each contract
// it changed.
func (s *Service) followLoop() {
	defer s.wg.Done()
	const batch = 512
	var pos uint64
	for {
		changed := s.k.Committed()
		var found []Event
		read := 0
		last, err := s.k.Log().ReadEncoded(pos, batch, func(_ uint64, env []byte) error {
			read++
			keys, err := api.PeekEvent(env)
			if err != nil || !bytes.HasPrefix(keys.Class, []byte("contract:")) {
				return nil
			}
			ev, err := api.ShareEncodedKeys(bytes.Clone(env), keys).Event()
			if err != nil {
				return nil
			}
			h, err := airc.HashOf(ev)
			if err != nil {
				return nil
			}
			found = append(found, Event{Class: ev.Class, ID: ev.ID, Origin: ev.Origin, Lamport: ev.Lamport, TS: ev.TS, Hash: hex.EncodeToString(h[:]), Payload: ev.Payload})
			return nil
		})
		if err != nil {
			s.log.Warn("cannot read the log for contracts", "err", err)
		} else {
			pos = last
		}
		if len(found) > 0 {
			// Contracts run on this install's grid: declare the classes
			// (before the tracker shows any), so its own events can follow.
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.declare(dctx); err != nil {
				s.log.Warn("cannot declare the contract classes", "err", err)
			}
			dcancel()
		}
		touched := map[string]bool{}
		for _, ev := range found {
			if id, ok := s.track.Add(ev); ok {
				touched[id] = true
			}
		}
		for id := range touched {
			s.react(id)
		}
		if len(touched) > 0 {
			s.poke()
		}
		if err == nil && read == batch {
			continue
		}
		select {
		case <-s.closing:
			return
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

func (s *Service) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// react is what this install does when a contract changed: bid on a
// proposal it can serve, release a reservation whose contract went
// elsewhere or ended.
func (s *Service) react(id string) {
	c, ok := s.track.Get(id)
	if !ok {
		return
	}
	s.mu.Lock()
	_, held := s.reserved[id]
	if held && (Ended(c.State) || (c.AcceptedBidderID != "" && c.AcceptedBidderID != s.me)) {
		delete(s.reserved, id)
		held = false
	}
	bidding := s.bidding[id]
	s.mu.Unlock()
	if c.State != StateProposed || c.ProposerID == s.me || held || bidding || time.Now().UnixMilli() >= c.ExpiryUnixMs {
		return
	}
	if slices.ContainsFunc(c.Bids, func(b api.ContractBid) bool { return b.BidderID == s.me }) {
		return
	}
	s.maybeBid(c)
}

// maybeBid bids on a proposal when this install offers its capability and
// command, takes it from the proposer's circle, asks no more than maxBid in
// its currency, and has capacity to hold for it.
func (s *Service) maybeBid(c api.Contract) {
	circle, ok := s.trust.Circle(c.ProposerID)
	if !ok || s.disp.Policy().AcceptsInbound(circle, c.Command) != "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	i := slices.IndexFunc(s.disp.Offers(ctx), func(o api.Offer) bool {
		return o.Capability == c.RequiredCapability && o.Command == c.Command
	})
	if i < 0 {
		return
	}
	o := s.disp.Offers(ctx)[i]
	if o.Terms.Price > c.MaxBid || (o.Terms.Currency != "" && o.Terms.Currency != c.BidCurrency) {
		return
	}
	s.mu.Lock()
	n := 0
	for _, cmd := range s.reserved {
		if cmd == c.Command {
			n++
		}
	}
	if (o.Terms.MaxConcurrent > 0 && n >= o.Terms.MaxConcurrent) || s.bidding[c.ContractID] {
		s.mu.Unlock()
		return
	}
	s.reserved[c.ContractID] = c.Command
	s.bidding[c.ContractID] = true
	s.mu.Unlock()
	err := s.emit(ctx, api.EventContractBid, api.ContractBid{
		ContractID: c.ContractID, BidderID: s.me, BidAmount: o.Terms.Price, MaxLatencyMs: o.Terms.EstLatencyMs,
		BidExpiryUnixMs: c.ExpiryUnixMs + c.DeliverWithinMs,
	})
	s.mu.Lock()
	delete(s.bidding, c.ContractID)
	if err != nil {
		delete(s.reserved, c.ContractID)
	}
	s.mu.Unlock()
}

// timerLoop acts on the deadlines of the contracts this install proposed
// (and releases expired reservations), sleeping until the nearest one or
// until the tracker changes.
func (s *Service) timerLoop() {
	defer s.wg.Done()
	for {
		next := s.due(time.Now())
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-s.closing:
			t.Stop()
			return
		case <-s.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// due acts on every deadline passed at now and returns the next one.
func (s *Service) due(now time.Time) time.Time {
	var next time.Time
	at := func(ms int64, grace time.Duration) bool {
		t := time.UnixMilli(ms).Add(grace)
		if !now.Before(t) {
			return true
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
		return false
	}
	for _, c := range s.track.List("") {
		if Ended(c.State) {
			continue
		}
		if c.ProposerID != s.me {
			// A bid not taken by its expiry frees its capacity.
			s.mu.Lock()
			_, held := s.reserved[c.ContractID]
			s.mu.Unlock()
			if held && c.State == StateProposed && at(c.ExpiryUnixMs+c.DeliverWithinMs, 0) {
				s.mu.Lock()
				delete(s.reserved, c.ContractID)
				s.mu.Unlock()
			}
			continue
		}
		switch c.State {
		case StateProposed:
			if at(c.ExpiryUnixMs, acceptGrace) {
				s.accept(c)
			}
		case StateAccepted:
			if at(acceptedTS(c)+s.opts.ExecuteWithin.Milliseconds(), 0) {
				s.end(c, CodeNotExecuted+": the accepted bidder did not start within "+s.opts.ExecuteWithin.String(), "")
			} else if at(c.DeadlineUnixMs, 0) {
				s.end(c, CodeNotDelivered+": no delivery within the deadline", "")
			}
		case StateExecuting:
			if at(c.DeadlineUnixMs, 0) {
				s.end(c, CodeNotDelivered+": no delivery within the deadline", "")
			}
		case StateDelivered, StateVerified:
			s.mu.Lock()
			j := s.jobs[c.ContractID]
			s.mu.Unlock()
			if (j == nil || !j.started) && at(c.DeadlineUnixMs, 0) {
				s.end(c, CodeVerificationFailed+": this install holds no delivery to verify (it restarted)", "")
			}
		}
	}
	return next
}

func acceptedTS(c api.Contract) int64 {
	for _, e := range c.Chain {
		if e.Class == api.EventContractAccepted {
			return e.TS
		}
	}
	return 0
}

// end closes a contract this install proposed with contract:disputed.
func (s *Service) end(c api.Contract, reason, eventHash string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.emit(ctx, api.EventContractDisputed, api.ContractDisputed{ContractID: c.ContractID, DisputerID: s.me, Reason: reason, DisputedEventHash: eventHash})
	s.finish(c.ContractID, nil)
}

func (s *Service) finish(id string, result []byte) {
	s.mu.Lock()
	j := s.jobs[id]
	if j != nil {
		select {
		case <-j.done:
		default:
			j.result = result
			close(j.done)
		}
	}
	s.mu.Unlock()
}

// accept picks the best bid by the contract's strategy among bidders this
// install may send work to (ties to the lower peer id), or ends the
// contract expired when there is none.
func (s *Service) accept(c api.Contract) {
	s.mu.Lock()
	j := s.jobs[c.ContractID]
	s.mu.Unlock()
	if j == nil {
		s.end(c, CodeExpired+": the proposer restarted and holds no params", "")
		return
	}
	pol := s.disp.Policy()
	var cands []api.ContractBid
	for _, b := range c.Bids {
		if circle, ok := s.trust.Circle(b.BidderID); ok && pol.AllowsOutbound(circle) {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		s.end(c, fmt.Sprintf("%s: no acceptable bid in the window (%d bids)", CodeExpired, len(c.Bids)), "")
		return
	}
	slices.SortFunc(cands, func(a, b api.ContractBid) int { return compareBids(c.Strategy, a, b) })
	best := cands[0]
	hash := ""
	for _, e := range c.Chain {
		if e.Class == api.EventContractBid && e.Origin == best.BidderID {
			hash = e.Hash
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.emit(ctx, api.EventContractAccepted, api.ContractAccepted{ContractID: c.ContractID, ProposerID: s.me, AcceptedBidderID: best.BidderID, AcceptedBidHash: hash}); err != nil {
		return
	}
	s.mu.Lock()
	j.started = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runJob(c, best, j)
	}()
}

// compareBids orders bids by strategy: cheapest (amount, then latency) or
// fastest (latency, then amount); ties go to the lower bidder id.
func compareBids(strategy string, a, b api.ContractBid) int {
	x := []float64{a.BidAmount, a.MaxLatencyMs}
	y := []float64{b.BidAmount, b.MaxLatencyMs}
	if strategy == "fastest" {
		x[0], x[1], y[0], y[1] = x[1], x[0], y[1], y[0]
	}
	for i := range x {
		if x[i] < y[i] {
			return -1
		} else if x[i] > y[i] {
			return 1
		}
	}
	return strings.Compare(a.BidderID, b.BidderID)
}

// runRequest is contract/run: the job of an accepted contract.
type runRequest struct {
	ContractID string `msgpack:"contractId" api:"required"`
	Params     []byte `msgpack:"params"`
}

// runResult answers contract/run: the result's msgpack bytes and the
// receipt alloy's canonical bytes, both hashed by the proposer as received.
type runResult struct {
	Result []byte `msgpack:"result"`
	Alloy  []byte `msgpack:"alloy"`
}

// runJob hands the job to the accepted bidder, verifies what it delivers
// and pays or disputes.
func (s *Service) runJob(c api.Contract, b api.ContractBid, j *job) {
	s.mu.Lock()
	conn := s.conns[b.BidderID]
	s.mu.Unlock()
	if conn == nil {
		s.end(c, CodeExecutorLost+": no link to the accepted bidder", "")
		return
	}
	deadline := time.UnixMilli(acceptedTS(c) + c.DeliverWithinMs)
	if acceptedTS(c) == 0 {
		deadline = time.Now().Add(time.Duration(c.DeliverWithinMs) * time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	raw, err := conn.Call(ctx, methodRun, runRequest{ContractID: c.ContractID, Params: j.params})
	if err != nil {
		cur, _ := s.track.Get(c.ContractID)
		if Ended(cur.State) {
			return
		}
		if ctx.Err() != nil {
			s.end(cur, CodeNotDelivered+": no delivery within the deadline", "")
		} else {
			s.end(cur, CodeExecutorLost+": "+err.Error(), "")
		}
		return
	}
	var res runResult
	if err := raw.Decode(&res); err != nil {
		s.end(c, CodeVerificationFailed+": the executor's answer does not decode: "+err.Error(), "")
		return
	}
	// The delivered event comes by replication; wait for it.
	cur, ok := s.waitFor(ctx, c.ContractID, func(c api.Contract) bool { return c.State != StateAccepted && c.State != StateExecuting })
	if !ok || cur.State != StateDelivered {
		if !Ended(cur.State) {
			s.end(cur, CodeNotDelivered+": no contract:delivered from the executor", "")
		}
		return
	}
	reason := s.verify(ctx, cur, j.params, res)
	passed := reason == ""
	if passed {
		reason = "ok: receipt signed by the executor, hashes match the params and the result"
	}
	ectx, ecancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ecancel()
	if err := s.emit(ectx, api.EventContractVerified, api.ContractVerified{ContractID: c.ContractID, VerifierID: s.me, Passed: passed, VerdictReason: reason}); err != nil {
		return
	}
	if !passed {
		hash := ""
		for _, e := range cur.Chain {
			if e.Class == api.EventContractDelivered {
				hash = e.Hash
			}
		}
		s.end(cur, CodeVerificationFailed+": "+reason, hash)
		return
	}
	if err := s.emit(ectx, api.EventContractPaid, api.ContractPaid{ContractID: c.ContractID, PayerID: s.me, PayeeID: b.BidderID, Amount: b.BidAmount, Currency: c.BidCurrency}); err != nil {
		return
	}
	s.finish(c.ContractID, res.Result)
}

// verify checks a delivery: the receipt is the alloy the log names, its
// chain and signatures hold (alloy/verify, which also stores it), its
// executor is the accepted bidder, and its hashes are those of the params
// sent and the result received. It returns why not, or "".
func (s *Service) verify(ctx context.Context, c api.Contract, params []byte, res runResult) string {
	a, err := alloy.Open(res.Alloy)
	if err != nil {
		return "the receipt does not open: " + err.Error()
	}
	canon, err := a.Marshal()
	if err != nil {
		return "the receipt does not encode: " + err.Error()
	}
	if h := alloy.HashBytes(canon); h != c.DeliveredAlloyHash {
		return fmt.Sprintf("the receipt's hash %s is not the delivered alloy %s", alloy.Short(h), alloy.Short(c.DeliveredAlloyHash))
	}
	if s.k.Provides(api.MethodAlloyVerify) {
		expect := map[string]map[string]any{stageRun: requested(c)}
		v, err := s.self.Handle(ctx, api.MethodAlloyVerify, api.ValueParams{V: api.AlloyVerifyParams{Alloy: string(canon), Expect: expect,
			Artifacts: []api.AlloyArtifact{{Stage: stageRun, Data: resultOrEmpty(res.Result)}}}})
		if err != nil {
			return "alloy/verify: " + err.Error()
		}
		var verdict api.AlloyVerdict
		if err := api.Assign(&verdict, v); err != nil {
			return "alloy/verify's verdict: " + err.Error()
		}
		if !verdict.Passed {
			return "alloy/verify: " + verdict.Reason
		}
	}
	if len(a.Stages) != 1 {
		return fmt.Sprintf("the receipt has %d stages, want 1", len(a.Stages))
	}
	st := a.Stages[0]
	switch {
	case st.Executor != c.AcceptedBidderID:
		return fmt.Sprintf("the receipt was signed by %s, not the accepted bidder %s", alloy.Short(st.Executor), alloy.Short(c.AcceptedBidderID))
	case st.InputHash != c.InputHash || st.InputHash != alloy.SHA256Hex(params):
		return "the receipt's inputHash is not the params'"
	case st.OutputHash != alloy.SHA256Hex(res.Result):
		return "the result received does not hash to the receipt's outputHash"
	}
	return ""
}

func resultOrEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// stageRun is the receipt's one stage.
const stageRun = "run"

// requested is the receipt stage's requested config.
func requested(c api.Contract) map[string]any {
	return map[string]any{"contractId": c.ContractID, "command": c.Command, "proposer": c.ProposerID}
}

// waitFor waits until the contract satisfies cond (or ctx ends).
func (s *Service) waitFor(ctx context.Context, id string, cond func(api.Contract) bool) (api.Contract, bool) {
	for {
		ch := s.track.Changed()
		c, ok := s.track.Get(id)
		if ok && cond(c) {
			return c, true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return c, false
		case <-s.closing:
			return c, false
		}
	}
}

// serveRun runs an accepted contract's job here: only for the proposer of a
// contract whose accepted bidder is this install. It emits executing, runs
// the command locally, signs a compute receipt over the params and the
// result, emits delivered with the receipt's hash, and answers.
func (s *Service) serveRun(ctx context.Context, from string, params api.RawParams) (any, error) {
	var req runRequest
	if err := params.Decode(&req); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, waitAccepted)
	c, ok := s.waitFor(wctx, req.ContractID, func(c api.Contract) bool { return c.State != StateProposed })
	cancel()
	switch {
	case !ok && c.ContractID == "":
		return nil, api.Errorf(api.CodeNotFound, "contract %q is not in this install's log", req.ContractID)
	case c.ProposerID != from:
		return nil, api.Errorf(api.CodePermissionDenied, "contract %s was proposed by %s, not %s", req.ContractID, c.ProposerID, from)
	case c.AcceptedBidderID != s.me || c.State != StateAccepted:
		return nil, api.Errorf(api.CodePermissionDenied, "contract %s is %s with bidder %q accepted, not this install", req.ContractID, c.State, c.AcceptedBidderID)
	case alloy.SHA256Hex(req.Params) != c.InputHash:
		return nil, api.Errorf(api.CodeInvalidArgument, "the params do not hash to the proposal's alloyHash")
	}
	started := time.Now()
	if err := s.emit(ctx, api.EventContractExecuting, api.ContractExecuting{ContractID: c.ContractID, ExecutorID: s.me, StartedAtUnixMs: started.UnixMilli()}); err != nil {
		return nil, err
	}
	var p any
	if len(req.Params) > 0 {
		p = msgpack.RawMessage(req.Params)
	}
	res, err := s.self.Handle(ctx, api.MethodExecute, api.ValueParams{V: api.ExecuteParams{Command: c.Command, Params: p}})
	if err != nil {
		return nil, err
	}
	out, err := encode(res)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "the result does not encode: %v", err)
	}
	a := &alloy.Alloy{Type: alloy.TypeComputeReceipt, Domains: []string{"compute"}}
	if err := a.AddStage(alloy.Stage{
		Name: stageRun, InputHash: alloy.SHA256Hex(req.Params), Config: alloy.Config{Requested: requested(c)},
		OutputHash: alloy.SHA256Hex(out), StartedAt: started.UnixMilli(), EndedAt: max(time.Now().UnixMilli(), started.UnixMilli()),
	}, s.k.Identity()); err != nil {
		return nil, api.Errorf(api.CodeInternal, "the receipt: %v", err)
	}
	canon, err := a.Marshal()
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "the receipt: %v", err)
	}
	if err := s.emit(ctx, api.EventContractDelivered, api.ContractDelivered{ContractID: c.ContractID, ExecutorID: s.me, DeliveredAlloyHash: alloy.HashBytes(canon)}); err != nil {
		return nil, err
	}
	if s.opts.Tamper != nil {
		out = s.opts.Tamper(out)
	}
	return runResult{Result: out, Alloy: canon}, nil
}

// encode is a value's msgpack bytes (raw msgpack as it is).
func encode(v any) ([]byte, error) {
	switch r := v.(type) {
	case msgpack.RawMessage:
		return r, nil
	case api.RawParams:
		return r, nil
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	enc.SetCustomStructTag("msgpack")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *Service) propose(ctx context.Context, _ *kernel.Call, p api.ContractProposeParams) (any, error) {
	if err := api.CheckName("command", p.Command, api.MaxCommandNameLen); err != nil {
		return nil, err
	}
	if p.RequiredCapability == "" {
		p.RequiredCapability = p.Command
	} else if err := api.CheckName("requiredCapability", p.RequiredCapability, api.MaxCommandNameLen); err != nil {
		return nil, err
	}
	switch p.Strategy {
	case "":
		p.Strategy = "cheapest"
		if st := s.disp.Policy().Outbound.Strategy; st == "fastest" {
			p.Strategy = st
		}
	case "cheapest", "fastest":
	default:
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"strategy\": %q is not cheapest or fastest", p.Strategy)
	}
	if p.MaxBid < 0 || math.IsNaN(p.MaxBid) || math.IsInf(p.MaxBid, 0) {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"maxBid\": %g, want a finite number ≥ 0", p.MaxBid)
	}
	if len(p.BidCurrency) > MaxCurrencyLen {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"bidCurrency\" is %d bytes long, over the limit of %d", len(p.BidCurrency), MaxCurrencyLen)
	}
	if p.ExpiryMs == 0 {
		p.ExpiryMs = DefaultExpiryMs
	} else if p.ExpiryMs < MinExpiryMs || p.ExpiryMs > MaxExpiryMs {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"expiryMs\": %d, want %d to %d (0: default %d)", p.ExpiryMs, MinExpiryMs, MaxExpiryMs, DefaultExpiryMs)
	}
	if p.DeliverWithinMs == 0 {
		p.DeliverWithinMs = DefaultDeliverWithin
	} else if p.DeliverWithinMs < 1 || p.DeliverWithinMs > MaxDeliverWithin {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"deliverWithinMs\": %d, want 1 to %d (0: default %d)", p.DeliverWithinMs, MaxDeliverWithin, DefaultDeliverWithin)
	}
	params, err := encode(p.Params)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"params\" does not encode: %v", err)
	}
	if len(params) > MaxParamsBytes {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"params\" is %d bytes, over the limit of %d", len(params), MaxParamsBytes)
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	id := "ct-" + hex.EncodeToString(rnd[:])
	j := &job{params: params, done: make(chan struct{})}
	s.mu.Lock()
	s.jobs[id] = j
	s.mu.Unlock()
	now := time.Now()
	if err := s.emit(ctx, api.EventContractProposed, api.ContractProposed{
		ContractID: id, ProposerID: s.me, AlloyHash: alloy.SHA256Hex(params), BidCurrency: p.BidCurrency, MaxBid: p.MaxBid,
		ExpiryUnixMs: now.UnixMilli() + p.ExpiryMs, RequiredCapability: p.RequiredCapability, Command: p.Command,
		Strategy: p.Strategy, DeliverWithinMs: p.DeliverWithinMs,
	}); err != nil {
		s.mu.Lock()
		delete(s.jobs, id)
		s.mu.Unlock()
		return nil, err
	}
	if !p.Wait {
		c, _ := s.waitFor(ctx, id, func(api.Contract) bool { return true })
		return api.ContractProposeResult{Contract: c}, nil
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		return nil, api.Errorf(api.CodeDeadlineExceeded, "contract %s did not end before the call's deadline; see contract/get", id)
	}
	c, _ := s.waitFor(ctx, id, func(c api.Contract) bool { return Ended(c.State) })
	out := api.ContractProposeResult{Contract: c}
	if j.result != nil {
		out.Result = msgpack.RawMessage(j.result)
	}
	return out, nil
}

func (s *Service) get(_ context.Context, _ *kernel.Call, p api.ContractGetParams) (any, error) {
	if err := api.CheckName("contractId", p.ContractID, maxContractID); err != nil {
		return nil, err
	}
	c, ok := s.track.Get(p.ContractID)
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no contract %q in this install's log", p.ContractID)
	}
	return c, nil
}

func (s *Service) list(_ context.Context, _ *kernel.Call, p api.ContractListParams) (any, error) {
	if p.State != "" && !slices.Contains(States, p.State) {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"state\": %q is not one of %s", p.State, strings.Join(States, ", "))
	}
	out := api.ContractListResult{Contracts: s.track.List(p.State), Reservations: []string{}}
	s.mu.Lock()
	for id := range s.reserved {
		out.Reservations = append(out.Reservations, id)
	}
	s.mu.Unlock()
	slices.Sort(out.Reservations)
	return out, nil
}

// nopPeer is the client of the service's own session.
type nopPeer struct{}

func (nopPeer) Notify(string, any) error { return nil }
func (nopPeer) Call(context.Context, string, any) (api.Params, error) {
	return nil, api.Errorf(api.CodeUnavailable, "not a provider")
}
