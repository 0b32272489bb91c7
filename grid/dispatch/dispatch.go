package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/grid/policy"
	"github.com/continuum-grid/continuum/grid/trust"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel"
)

// ProtocolName is the link protocol dispatch runs.
const ProtocolName = "cmd"

// Defaults of Options.
const (
	DefaultHeartbeat = time.Minute
	DefaultStale     = 5 * time.Minute
	DefaultGone      = 15 * time.Minute
	DefaultCheck     = 2 * time.Second
	// MaxHops bounds forwardedBy: a request that passed this many installs
	// is refused.
	MaxHops = 8
)

// Options tune a Dispatcher; zero values are the defaults.
type Options struct {
	Heartbeat time.Duration // manifest re-sent at least this often
	Stale     time.Duration // a manifest older than this is not routed to
	Gone      time.Duration // ... and older than this leaves the index
	Check     time.Duration // how often the offers are rebuilt to catch changes (models loaded)
	Logger    *slog.Logger
}

// Links is what dispatch needs of the link layer.
type Links interface {
	Addrs() []string
	State(peerID string) link.PeerState
	Counters() *link.Counters // grid/status shows dispatch's counters beside the links'
}

// count adds one to a counter of grid/status (docs/GRID.md "Counters").
func (d *Dispatcher) count(name string) {
	if d.links != nil {
		d.links.Counters().Add(name, 1)
	}
}

// Dispatcher is the grid router of one install. Safe for concurrent use.
type Dispatcher struct {
	k     *kernel.Kernel
	me    string
	links Links
	trust *trust.Store
	log   *slog.Logger
	opts  Options
	self  api.Session // an in-process client of the kernel, for its methods

	policy     atomic.Pointer[policy.Policy]
	policyPath string
	reloadMu   sync.Mutex

	ix *index

	mu       sync.Mutex
	remotes  map[string]*remote // attached cmd streams, by peer id
	inflight map[string]int     // our calls in flight, by peer (load-balance)
	jobs     map[*inJob]struct{}
	calls    map[string]*outCall // peerId/job → call waiting for its events
	rate     []time.Time         // outbound dispatches in the last minute

	nextJob atomic.Uint64
	kick    chan struct{}
	closing chan struct{}
	closed  sync.Once
	wg      sync.WaitGroup
}

type remote struct {
	peer link.Peer
	conn *msgrpc.Conn

	mu     sync.Mutex
	sess   api.Session // shared in-process client of its jobs (session)
	closed bool
}

// New makes a dispatcher: it reads the policy file in the kernel's state
// directory (an invalid file is an error: the daemon does not start on a
// policy it cannot read). Pass it to the
// link manager as a Protocol, then call Start with the links, then install
// it with k.SetGridRouter.
func New(k *kernel.Kernel, ts *trust.Store, opts Options) (*Dispatcher, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Stale <= 0 {
		opts.Stale = DefaultStale
	}
	if opts.Gone <= 0 {
		opts.Gone = DefaultGone
	}
	if opts.Check <= 0 {
		opts.Check = DefaultCheck
	}
	pol, path, _, err := policy.Load(k.StateDir())
	if err != nil {
		return nil, err
	}
	sess, err := k.Open(nopPeer{}, api.Caller{Transport: "inproc", UID: -1, GID: -1, PID: -1})
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{
		k: k, me: k.PeerID(), trust: ts, log: opts.Logger, opts: opts, self: sess,
		policyPath: path, ix: newIndex(),
		remotes: map[string]*remote{}, inflight: map[string]int{}, jobs: map[*inJob]struct{}{}, calls: map[string]*outCall{},
		kick: make(chan struct{}, 1), closing: make(chan struct{}),
	}
	d.policy.Store(pol)
	return d, nil
}

// Start starts publishing this install's manifest and following the
// peers'; links are where it is reachable and how its links fare.
func (d *Dispatcher) Start(links Links) {
	d.links = links
	d.wg.Add(2)
	go d.publishLoop()
	go d.followLoop()
}

// Policy is the policy in force.
func (d *Dispatcher) Policy() *policy.Policy { return d.policy.Load() }

// OffersChanged implements kernel.GridRouter: the manifest is rebuilt now.
func (d *Dispatcher) OffersChanged() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Offered implements kernel.GridRouter: a trusted peer's live manifest
// offers command.
func (d *Dispatcher) Offered(command string) bool {
	for _, o := range d.ix.offers(command, "", time.Now(), d.opts.Stale, d.opts.Gone) {
		if _, ok := d.trust.Circle(o.peer); ok && !o.stale {
			return true
		}
	}
	return false
}

// Close stops publishing and following; links close the streams.
func (d *Dispatcher) Close() {
	d.closed.Do(func() {
		close(d.closing)
		d.wg.Wait()
		d.self.Close()
	})
}

// Name implements link.Protocol.
func (d *Dispatcher) Name() string { return ProtocolName }

// Attach implements link.Protocol: the peer's cmd stream carries its
// requests to run here and the events of our calls running there.
func (d *Dispatcher) Attach(p link.Peer, conn *msgrpc.Conn) (msgrpc.Handler, func()) {
	r := &remote{peer: p, conn: conn}
	d.mu.Lock()
	d.remotes[p.ID] = r
	d.mu.Unlock()
	d.OffersChanged() // a new link: tell it (and everyone) where we stand now
	h := msgrpc.HandlerFuncs{
		Request: func(ctx context.Context, method string, params api.RawParams) (any, error) {
			if method != methodRun {
				return nil, api.Errorf(api.CodeUnknownMethod, "cmd protocol: no method %q", method)
			}
			return d.serveRun(ctx, r, params)
		},
		Notification: func(_ context.Context, method string, params api.RawParams) {
			if method == methodEvent {
				d.onEvent(p.ID, params)
			}
		},
	}
	return h, func() {
		d.mu.Lock()
		if d.remotes[p.ID] == r {
			delete(d.remotes, p.ID)
		}
		d.mu.Unlock()
		r.close()
	}
}

func (d *Dispatcher) remote(peer string) *remote {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.remotes[peer]
}

// Routes answers grid/routes.
func (d *Dispatcher) Routes(capability string) api.RoutesResult {
	out := api.RoutesResult{Routes: []api.GridRoute{}}
	for _, o := range d.ix.offers("", capability, time.Now(), d.opts.Stale, d.opts.Gone) {
		circle, trusted := d.trust.Circle(o.peer)
		if !trusted {
			continue // untrusted: out of routing, and out of sight
		}
		st := d.links.State(o.peer)
		state := "live"
		if o.stale {
			state = "stale"
		}
		out.Routes = append(out.Routes, api.GridRoute{
			Capability: o.o.Capability, Command: o.o.Command, PeerID: o.peer, Circle: circle, Idempotent: o.o.Idempotent,
			Terms: o.o.Terms, Load: o.load, State: state, LinkUp: d.remote(o.peer) != nil,
			RTTMs: float64(st.RTT.Microseconds()) / 1000, AdvertisedAtMs: o.seen.UnixMilli(),
		})
	}
	return out
}

// Reload reads the policy file again: a valid file whose tests pass is
// swapped in at once (inbound jobs it no longer admits are cancelled, the
// manifest is re-sent); anything else keeps the policy in force and says
// why.
func (d *Dispatcher) Reload() api.PolicyReloadResult {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	p, path, found, err := policy.Load(d.k.StateDir())
	res := api.PolicyReloadResult{Path: path, Source: "file"}
	if !found {
		res.Source = "defaults"
	}
	if err != nil {
		res.Reason = err.Error() + "; the policy in force is kept"
		d.log.Warn("policy reload refused", "path", path, "err", err)
		return res
	}
	d.policy.Store(p)
	res.Loaded, res.Tests = true, len(p.Tests)
	// Running inbound jobs are admitted again under the new policy.
	d.mu.Lock()
	for j := range d.jobs {
		if why := p.AcceptsInbound(j.circle, j.command); why != "" {
			j.cancel(fmt.Errorf("the policy no longer admits it: %s", why))
		}
	}
	d.mu.Unlock()
	d.OffersChanged()
	d.log.Info("policy reloaded", "path", path, "source", res.Source, "tests", res.Tests)
	return res
}

// circleRank orders circles from most to least trusted.
func circleRank(c string) int {
	if i := slices.Index(trust.Circles, c); i >= 0 {
		return i
	}
	return len(trust.Circles)
}

func joinIDs(ids []string) string { return strings.Join(ids, ", ") }

// nopPeer is the client of the dispatcher's own session: it subscribes to
// nothing and serves no command.
type nopPeer struct{}

func (nopPeer) Notify(string, any) error { return nil }
func (nopPeer) Call(context.Context, string, any) (api.Params, error) {
	return nil, api.Errorf(api.CodeUnavailable, "not a provider")
}

// Offers are this install's offers now, as its manifest would publish them
// (the contract service bids from their terms).
func (d *Dispatcher) Offers(ctx context.Context) []api.Offer { return d.offersNow(ctx) }
