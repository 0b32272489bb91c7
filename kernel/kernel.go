// Package kernel is the core of continuumd: the registries (event classes,
// commands), the in-process bus, sessions, and the built-in methods of the
// protocol. It knows no transport: transports (ipc/) and in-process clients
// reach it through api.Backend, which *Kernel implements.
//
// Open(cfg) starts a kernel on a state directory; Close(ctx) drains in-flight
// calls and closes the store. Nothing else is needed to embed it.
package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/airc"
	"github.com/continuum-grid/continuum/kernel/bus"
	"github.com/continuum-grid/continuum/kernel/classes"
	"github.com/continuum-grid/continuum/kernel/commands"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/continuum-grid/continuum/kernel/metrics"
	"github.com/continuum-grid/continuum/kernel/store"
)

// Version is the daemon version reported by kernel/info.
var Version = "0.1.0-dev"

// Config configures a kernel.
type Config struct {
	// StateDir holds the bbolt file and the identity key; "" means
	// paths.StateDir().
	StateDir string
	// Logger receives the kernel's logs; nil discards them.
	Logger *slog.Logger
	// SubscriberQueue bounds each live subscription's queue (default 4096).
	SubscriberQueue int
	// SubscriberStall bounds how long one emit of a live (unlogged) event
	// waits for room in subscribers' full queues before those subscribers
	// are marked lagged and lose it (bus.PublishWait): subscribers that keep
	// reading slow the emitter instead of losing events. 0 means
	// bus.DefaultStall (500 ms); a negative value never waits (every full
	// queue drops at once).
	SubscriberStall time.Duration
	// Retention limits what the airc log keeps, per channel (Retention) and
	// for every other channel (DefaultRetention); zero keeps everything.
	Retention        map[string]airc.Retention
	DefaultRetention airc.Retention
	// RetentionInterval is how often retention runs when some is configured
	// (0 = once a minute).
	RetentionInterval time.Duration
	// MaxLamportSkew bounds how far ahead of the local clock a received event
	// may be (0 = the log's default).
	MaxLamportSkew uint64
}

// Kernel is a running core. It is safe for concurrent use.
type Kernel struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	id      *identity.Identity
	alog    *airc.Log
	classes *classes.Registry
	bus     *bus.Bus
	cmds    *commands.Registry[*session]

	metrics  *metrics.Registry
	sourceMu sync.Mutex
	sources  []func(*api.Metrics) // AddMetricsSource

	services []api.MethodSpec // specs of kernel-hosted services beyond api.Methods

	quicAddrs atomic.Pointer[[]string]          // where the grid listens, for kernel/info
	webSocket atomic.Pointer[api.WebSocketInfo] // the WebSocket listener, for kernel/info

	gridRouter atomic.Pointer[gridRouterBox] // set by the grid service (gridroute.go)

	idPrefix  string
	nextID    atomic.Uint64
	nextSess  atomic.Uint64
	draining  atomic.Bool
	inflight  sync.WaitGroup
	closeOnce sync.Once

	sessMu   sync.Mutex
	sessions map[*session]struct{}

	headMu  sync.Mutex
	headCh  chan struct{} // closed and replaced at each log commit
	tailers sync.WaitGroup
}

// Open starts a kernel on cfg.StateDir.
func Open(cfg Config) (*Kernel, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st, err := store.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	id, err := identity.LoadOrCreate(st.Dir)
	if err != nil {
		st.Close()
		return nil, err
	}
	reg, err := classes.Open(st.DB)
	if err != nil {
		st.Close()
		return nil, err
	}
	mreg := metrics.New()
	k := &Kernel{
		metrics:  mreg,
		cfg:      cfg,
		log:      logger,
		store:    st,
		id:       id,
		classes:  reg,
		bus:      bus.NewCounted(mreg),
		cmds:     commands.NewRegistry[*session](),
		idPrefix: strconv.FormatInt(time.Now().UnixNano(), 36) + "-",
		sessions: map[*session]struct{}{},
		headCh:   make(chan struct{}),
	}
	k.alog, err = airc.Open(st.DB, id, airc.Options{
		Logger:           logger,
		MaxLamportSkew:   cfg.MaxLamportSkew,
		Retention:        cfg.Retention,
		DefaultRetention: cfg.DefaultRetention,
		OnCommit:         k.onCommit,
		Metrics:          mreg,
		// Negative would mean "never" to the log; the daemon has no caller
		// of ApplyRetention, so keep the default instead.
		RetentionInterval: max(cfg.RetentionInterval, 0),
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open the airc log: %w", err)
	}
	if err := k.registerBuiltins(); err != nil {
		k.alog.Close()
		st.Close()
		return nil, err
	}
	return k, nil
}

// PeerID is this install's self-certifying peer id.
func (k *Kernel) PeerID() string { return k.id.PeerID() }

// StateDir is the directory the kernel keeps its state in.
func (k *Kernel) StateDir() string { return k.store.Dir }

// Logger is the kernel's logger, for services that run inside it.
func (k *Kernel) Logger() *slog.Logger { return k.log }

// Close stops taking requests, waits for in-flight calls until ctx is done,
// ends every subscription and closes the store. Transports should be shut
// down first so their sessions close cleanly.
func (k *Kernel) Close(ctx context.Context) error {
	var err error
	k.closeOnce.Do(func() {
		k.draining.Store(true)
		done := make(chan struct{})
		go func() { k.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("kernel: calls still in flight at close: %w", ctx.Err())
		}
		k.sessMu.Lock()
		open := make([]*session, 0, len(k.sessions))
		for s := range k.sessions {
			open = append(open, s)
		}
		k.sessMu.Unlock()
		for _, s := range open {
			s.Close()
		}
		k.tailers.Wait()
		k.bus.Close()
		err = errors.Join(err, k.alog.Close(), k.store.Close())
	})
	return err
}

// newEventID makes a local event id: unique per origin for this process's
// life (a boot-time prefix and a counter), cheap enough for the hot path.
func (k *Kernel) newEventID() string {
	return k.idPrefix + strconv.FormatUint(k.nextID.Add(1), 36)
}

var _ api.Backend = (*Kernel)(nil)

// Open opens a session for a connected client (api.Backend).
func (k *Kernel) Open(peer api.Peer, caller api.Caller) (api.Session, error) {
	if k.draining.Load() {
		return nil, api.Errorf(api.CodeUnavailable, "continuumd is shutting down")
	}
	s := &session{
		k:           k,
		id:          clientID(caller, k.nextSess.Add(1)),
		peer:        peer,
		caller:      caller,
		subs:        map[string]closer{},
		invocations: map[string]context.CancelCauseFunc{},
	}
	k.sessMu.Lock()
	k.sessions[s] = struct{}{}
	k.sessMu.Unlock()
	k.metrics.ConnectionsOpened.Add(1)
	k.log.Debug("session opened", "client", s.id, "transport", caller.Transport, "uid", caller.UID, "pid", caller.PID)
	return s, nil
}

// AddMetricsSource adds fn to what kernel/metrics (and the daemon's /metrics)
// reports: it fills the parts of api.Metrics the kernel cannot see, such as
// the grid's and inference's counters. fn runs on every scrape; it must be
// quick and must not call the kernel back.
func (k *Kernel) AddMetricsSource(fn func(*api.Metrics)) {
	k.sourceMu.Lock()
	k.sources = append(k.sources, fn)
	k.sourceMu.Unlock()
}

// Metrics returns the counters now (kernel/metrics).
func (k *Kernel) Metrics() *api.Metrics {
	m := &api.Metrics{}
	k.metrics.Snapshot(m)
	m.Subscriptions, m.SubscriberLag = k.bus.Queued()
	k.sourceMu.Lock()
	sources := slices.Clone(k.sources)
	k.sourceMu.Unlock()
	for _, fn := range sources {
		fn(m)
	}
	return m
}
