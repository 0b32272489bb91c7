// Package grid is the daemon's grid service: it hosts the grid/* methods in
// the kernel (invite, join, trust, untrust, peers, status), keeps the trust
// store (grid/trust) and the QUIC links (grid/link), and runs the grid's
// protocols (replication) over every link.
//
// What it promises: only the operator adds trust, through these methods; a
// trusted peer with addresses is kept linked (redialled with backoff, after
// restarts of either side); untrust closes the live link at once; every
// refusal is a catalogue error naming its reason.
package grid

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/contract"
	"github.com/continuum-grid/continuum/grid/dispatch"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/grid/replicate"
	"github.com/continuum-grid/continuum/grid/trust"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/identity"
)

// Options configure the service.
type Options struct {
	// ListenQUIC is the UDP address to accept links on (--listen-quic);
	// "" accepts none (joins and trusted peers with addresses are still
	// dialled, from an ephemeral port).
	ListenQUIC string
	// Protocols run over every link besides replication (tests add their own).
	Protocols []link.Protocol
	// Replicate tunes replication of the airc log (grid/replicate); its
	// Committed, DB and Logger are set by Host. Its Channels policy is the
	// daemon's --replicate flag (nil: replicate.DefaultChannels).
	Replicate replicate.Options
	// NoReplication runs links without the repl protocol.
	NoReplication bool
	// Logger receives the grid's logs; nil discards them.
	Logger *slog.Logger
	// Link tunes the link layer (timeouts, backoff); its Identity, Listen,
	// Trust, Epoch, Protocols and Logger are set by Host.
	Link link.Options
	// Dispatch tunes manifests and grid dispatch (timers); its Logger is
	// set by Host.
	Dispatch dispatch.Options
	// Contract tunes the contract service (deadlines); its Logger is set
	// by Host.
	Contract contract.Options
}

// Service is the running grid. It is safe for concurrent use.
type Service struct {
	k     *kernel.Kernel
	log   *slog.Logger
	trust *trust.Store
	links *link.Manager
	repl  *replicate.Replicator // nil with NoReplication
	disp  *dispatch.Dispatcher
	ctr   *contract.Service
}

var (
	_ link.Trust       = (*trust.Store)(nil)
	_ link.AddrUpdater = (*trust.Store)(nil)
)

// Host opens the trust store, starts the link manager, and registers the
// grid/* methods on k. Call it after kernel.Open and before serving clients.
func Host(k *kernel.Kernel, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ts, err := trust.Open(k.DB(), k.Identity())
	if err != nil {
		return nil, err
	}
	lo := opts.Link
	lo.Identity = k.Identity()
	lo.Listen = opts.ListenQUIC
	lo.Trust = ts
	lo.Epoch = k.Log().Epoch
	lo.Protocols = opts.Protocols
	lo.Logger = opts.Logger
	do := opts.Dispatch
	do.Logger = opts.Logger
	disp, err := dispatch.New(k, ts, do)
	if err != nil {
		return nil, err
	}
	co := opts.Contract
	co.Logger = opts.Logger
	ctr, err := contract.New(k, ts, disp, co)
	if err != nil {
		disp.Close()
		return nil, err
	}
	lo.Protocols = append(append([]link.Protocol{}, opts.Protocols...), disp, ctr)
	var repl *replicate.Replicator
	if !opts.NoReplication {
		ro := opts.Replicate
		if ro.Channels == nil {
			// Which channels replicate per circle is the policy's (docs/GRID.md).
			ro.Channels = func(channel, circle string) bool { return disp.Policy().Replicates(channel, circle) }
		}
		ro.Committed, ro.DB, ro.Logger = k.Committed, k.DB(), opts.Logger
		repl = replicate.New(k.Log(), ro)
		lo.Protocols = append(lo.Protocols, repl)
	}
	lm, err := link.New(lo)
	if err != nil {
		disp.Close()
		return nil, err
	}
	s := &Service{k: k, log: opts.Logger, trust: ts, links: lm, repl: repl, disp: disp, ctr: ctr}
	for _, m := range []struct {
		name string
		fn   kernel.Service
	}{
		{api.MethodGridInvite, typed(s.invite)},
		{api.MethodGridJoin, typed(s.join)},
		{api.MethodGridTrust, typed(s.trustPeer)},
		{api.MethodGridUntrust, typed(s.untrust)},
		{api.MethodGridPeers, typed(s.peers)},
		{api.MethodGridStatus, typed(s.status)},
		{api.MethodGridRoutes, typed(s.routes)},
		{api.MethodGridPolicyReload, typed(s.policyReload)},
	} {
		spec, ok := api.Lookup(m.name)
		if !ok {
			lm.Close()
			return nil, fmt.Errorf("grid: %s is missing from api.Methods", m.name)
		}
		if err := k.Host(spec, m.fn); err != nil {
			lm.Close()
			return nil, err
		}
	}
	if err := ctr.Host(); err != nil {
		lm.Close()
		return nil, err
	}
	disp.Start(lm)
	k.SetGridRouter(disp)
	k.SetQUICAddrs(lm.Addrs())
	for _, r := range ts.List() {
		lm.Connect(r.PeerID, r.Addrs)
	}
	return s, nil
}

// Links is the link manager (for the protocols' tests and the daemon).
func (s *Service) Links() *link.Manager { return s.links }

// Counters are the grid's counters, shown by grid/status; protocols add theirs.
func (s *Service) Counters() *link.Counters { return s.links.Counters() }

// QUICAddrs are where the grid accepts links (nil when not listening).
func (s *Service) QUICAddrs() []string { return s.links.Addrs() }

// Replicator is the replication protocol (nil with NoReplication).
func (s *Service) Replicator() *replicate.Replicator { return s.repl }

// Contracts is the contract service (tests compare its tracker).
func (s *Service) Contracts() *contract.Service { return s.ctr }

// Dispatcher is the grid router (manifests, capability index, dispatch).
func (s *Service) Dispatcher() *dispatch.Dispatcher { return s.disp }

// ReloadPolicy reads the policy file again (grid/policy-reload, SIGHUP).
func (s *Service) ReloadPolicy() api.PolicyReloadResult { return s.disp.Reload() }

func (s *Service) routes(_ context.Context, p api.RoutesParams) (any, error) {
	return s.disp.Routes(p.Capability), nil
}

func (s *Service) policyReload(context.Context, api.Empty) (any, error) {
	return s.disp.Reload(), nil
}

// Close takes every link down.
func (s *Service) Close() error {
	s.k.SetGridRouter(nil)
	s.ctr.Close()
	s.disp.Close()
	err := s.links.Close()
	if s.repl != nil {
		s.repl.Close()
	}
	return err
}

// typed adapts a grid method, which needs no caller, to kernel.Typed (the
// one params adapter).
func typed[P any](fn func(ctx context.Context, p P) (any, error)) kernel.Service {
	return kernel.Typed(func(ctx context.Context, _ *kernel.Call, p P) (any, error) { return fn(ctx, p) })
}

func checkPeerID(field, id string) error {
	if !identity.ValidPeerID(id) {
		return api.Errorf(api.CodeInvalidArgument, "field %q: %q is not a peer id", field, id)
	}
	return nil
}

func checkCircle(c string) error {
	if !trust.ValidCircle(c) {
		return api.Errorf(api.CodeInvalidArgument, "field \"circle\": %q is not one of %s", c, strings.Join(trust.Circles, ", "))
	}
	return nil
}

func (s *Service) invite(_ context.Context, p api.InviteParams) (any, error) {
	if err := checkCircle(p.Circle); err != nil {
		return nil, err
	}
	ttl := trust.DefaultInviteTTL
	if p.TTLSeconds < 0 || time.Duration(p.TTLSeconds)*time.Second > trust.MaxInviteTTL {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"ttlSeconds\": %d, want 1 to %d (0: default %d)", p.TTLSeconds, int(trust.MaxInviteTTL/time.Second), int(trust.DefaultInviteTTL/time.Second))
	} else if p.TTLSeconds > 0 {
		ttl = time.Duration(p.TTLSeconds) * time.Second
	}
	addrs := s.links.Addrs()
	if len(addrs) == 0 {
		return nil, api.Errorf(api.CodeUnavailable, "the grid does not listen for links, so a joiner could not reach this install: start continuumd with --listen-quic ADDR")
	}
	tok, err := s.trust.Invite(p.Circle, ttl, addrs)
	if err != nil {
		return nil, err
	}
	t, _ := trust.ParseToken(tok)
	return api.InviteResult{Token: tok, ExpiresAtMs: t.ExpMs, Addrs: addrs}, nil
}

func (s *Service) join(ctx context.Context, p api.JoinParams) (any, error) {
	t, err := trust.ParseToken(p.Token)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"token\": %v", err).WithData(map[string]any{"reason": string(link.ReasonInvalidToken)})
	}
	if t.Expired(time.Now()) {
		return nil, api.Errorf(api.CodePermissionDenied, "the invite token expired at %s; ask the inviter for a new one", time.UnixMilli(t.ExpMs).UTC().Format(time.RFC3339)).WithData(map[string]any{"reason": string(link.ReasonTokenExpired)})
	}
	if t.Inviter == s.k.Identity().PeerID() {
		return nil, api.Errorf(api.CodeInvalidArgument, "the invite token was issued by this install; redeem it on the other one").WithData(map[string]any{"reason": string(link.ReasonInvalidToken)})
	}
	if len(t.Addrs) == 0 {
		return nil, api.Errorf(api.CodeInvalidArgument, "the invite token names no address to reach the inviter at")
	}
	peer, err := s.links.Join(ctx, t.Inviter, t.Addrs, p.Token, func(lp link.Peer) error {
		circle := lp.Circle
		if circle != t.Circle {
			return fmt.Errorf("the inviter answered circle %q, the token says %q", circle, t.Circle)
		}
		_, err := s.trust.Put(trust.Record{PeerID: t.Inviter, Circle: t.Circle, Addrs: t.Addrs})
		return err
	})
	if err != nil {
		if re, ok := err.(*link.RefusedError); ok {
			return nil, re.APIError()
		}
		return nil, err
	}
	s.log.Info("joined by invite", "peer", peer.ID, "circle", peer.Circle)
	return api.JoinResult{PeerID: peer.ID, Circle: peer.Circle}, nil
}

func (s *Service) trustPeer(_ context.Context, p api.TrustParams) (any, error) {
	if err := checkPeerID("peerId", p.PeerID); err != nil {
		return nil, err
	}
	if err := checkCircle(p.Circle); err != nil {
		return nil, err
	}
	if p.PeerID == s.k.Identity().PeerID() {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"peerId\": %s is this install", p.PeerID)
	}
	r, err := s.trust.Put(trust.Record{PeerID: p.PeerID, Circle: p.Circle, Addrs: p.Addrs})
	if err != nil {
		return nil, err
	}
	s.links.Connect(r.PeerID, r.Addrs)
	s.log.Info("peer trusted", "peer", r.PeerID, "circle", r.Circle, "addrs", r.Addrs)
	return s.gridPeer(r), nil
}

func (s *Service) untrust(_ context.Context, p api.UntrustParams) (any, error) {
	if err := checkPeerID("peerId", p.PeerID); err != nil {
		return nil, err
	}
	removed, err := s.trust.Delete(p.PeerID)
	if err != nil {
		return nil, err
	}
	// Close the link even when no record was there: a link is only ever up
	// for a trusted peer, but be certain.
	s.links.Disconnect(p.PeerID, link.ReasonTrustRevoked)
	if removed {
		s.log.Info("peer untrusted; link closed", "peer", p.PeerID)
	}
	return api.UntrustResult{Removed: removed}, nil
}

func (s *Service) gridPeer(r trust.Record) api.GridPeer {
	st := s.links.State(r.PeerID)
	return api.GridPeer{
		PeerID: r.PeerID, Circle: r.Circle, Addrs: r.Addrs, AddedAtMs: r.AddedAtMs,
		State: st.State, RTTMs: float64(st.RTT.Microseconds()) / 1000, LastSeenMs: st.LastSeenMs, LastError: st.LastError,
	}
}

func (s *Service) peers(context.Context, api.Empty) (any, error) {
	recs := s.trust.List()
	out := api.PeersResult{Peers: make([]api.GridPeer, 0, len(recs))}
	for _, r := range recs {
		out.Peers = append(out.Peers, s.gridPeer(r))
	}
	return out, nil
}

// Metrics returns the links up now and the counters grid/status reports.
func (s *Service) Metrics() (api.GridMetrics, error) {
	st, err := s.status(context.Background(), api.Empty{})
	if err != nil {
		return api.GridMetrics{}, err
	}
	g := st.(api.GridStatus)
	m := api.GridMetrics{PeersUp: g.Links, Counters: g.Counters, Peers: []api.PeerReplication{}}
	if s.repl != nil {
		// One entry per peer replicated with since start: trusted peers
		// only (nobody else gets a link), so the label is bounded by the
		// trust list the operator keeps.
		now := time.Now()
		for id, ps := range s.repl.Stats() {
			pr := api.PeerReplication{PeerID: id, Up: ps.Up, LagEvents: ps.Lag()}
			if pr.LagEvents > 0 {
				pr.BehindSeconds = now.Sub(ps.CaughtUp).Seconds()
			}
			m.Peers = append(m.Peers, pr)
		}
		slices.SortFunc(m.Peers, func(a, b api.PeerReplication) int { return strings.Compare(a.PeerID, b.PeerID) })
	}
	return m, nil
}

func (s *Service) status(context.Context, api.Empty) (any, error) {
	hw, err := s.k.Log().HighWater()
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "read the log's vectors: %v", err)
	}
	channels := map[string]map[string]uint64{}
	for origin, byChannel := range hw {
		for ch, seq := range byChannel {
			if channels[ch] == nil {
				channels[ch] = map[string]uint64{}
			}
			channels[ch][origin] = seq
		}
	}
	up := 0
	for _, r := range s.trust.List() {
		if s.links.Up(r.PeerID) {
			up++
		}
	}
	addrs := s.links.Addrs()
	if addrs == nil {
		addrs = []string{}
	}
	counters := s.links.Counters().Snapshot()
	if s.repl != nil {
		// repl.REASON totals, and repl.PEERID.REASON per peer.
		for id, ps := range s.repl.Stats() {
			for reason, n := range ps.Counts {
				counters["repl."+reason] += n
				counters["repl."+id+"."+reason] = n
			}
		}
	}
	return api.GridStatus{
		PeerID: s.k.Identity().PeerID(), QUICAddrs: addrs, Epoch: s.k.Log().Epoch(),
		Channels: channels, Links: up, Counters: counters,
	}, nil
}
