package replicate

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel/airc"
	bolt "go.etcd.io/bbolt"
)

// Name is the protocol's name on a link.
const Name = "repl"

// Defaults of Options.
const (
	DefaultBatchEvents  = 4096
	DefaultBatchBytes   = 1 << 20
	DefaultLongPoll     = 10 * time.Second
	DefaultStallTimeout = 15 * time.Second
	// maxBatchEvents and maxBatchBytes cap what a peer may ask for in one
	// pull, whatever it asks: far under msgrpc's 16 MiB message limit.
	maxBatchEvents = airc.MaxReadLimit
	maxBatchBytes  = 4 << 20
	maxLongPoll    = 60 * time.Second
	// maxHave bounds the chains a resync pull describes; a puller holding
	// more sends none (it then dedupes everything itself, which is slower,
	// never wrong).
	maxHave = 1 << 16
	// cursorEvery is how often the remembered seq per peer is written while
	// events flow. Writing it less often only means pulling a little again
	// after a crash (dedupe makes that harmless).
	cursorEvery = 200 * time.Millisecond
)

// Options configure a Replicator. The zero value (with a DB) is usable.
type Options struct {
	// Channels says whether channel replicates with a peer trusted in
	// circle; nil is DefaultChannels. Both sides apply their own: a side
	// serves only what it would share and takes only what it would share.
	Channels func(channel, circle string) bool
	// Committed returns a channel closed at the log's next commit
	// (kernel.Kernel.Committed); long-polls wake on it. Required.
	Committed func() <-chan struct{}
	// DB holds the per-peer positions (bucket "grid/repl"). Required.
	DB *bolt.DB
	// Logger receives link-level events and refusals; nil discards.
	Logger *slog.Logger
	// BatchEvents and BatchBytes bound the batches this side asks for.
	BatchEvents int
	BatchBytes  int
	// LongPoll is how long a caught-up pull waits at the server for a commit.
	LongPoll time.Duration
	// StallTimeout is how long beyond LongPoll a pull may go unanswered
	// before the peer is taken for stalled and the link is closed.
	StallTimeout time.Duration
}

// DefaultChannels is the policy until the grid has one (issue 9 part 2):
// "global" with every trusted peer, every other broadcast channel with
// household peers only.
func DefaultChannels(channel, circle string) bool {
	return channel == "global" || circle == "household"
}

// ChannelList is a policy that replicates exactly the named channels with
// every trusted peer (the daemon's --replicate flag), plus "global".
func ChannelList(channels []string) func(channel, circle string) bool {
	set := map[string]bool{"global": true}
	for _, c := range channels {
		set[c] = true
	}
	return func(channel, _ string) bool { return set[channel] }
}

// Replicator is the repl protocol for one install. It is a link.Protocol.
type Replicator struct {
	log  *airc.Log
	opts Options
	lg   *slog.Logger

	mu    sync.Mutex
	peers map[string]*peerState
	live  map[*session]struct{}
}

var _ link.Protocol = (*Replicator)(nil)

// New makes the replicator of l. It starts nothing: links come in Attach.
func New(l *airc.Log, opts Options) *Replicator {
	if opts.Channels == nil {
		opts.Channels = DefaultChannels
	}
	if opts.BatchEvents <= 0 {
		opts.BatchEvents = DefaultBatchEvents
	}
	opts.BatchEvents = min(opts.BatchEvents, maxBatchEvents)
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = DefaultBatchBytes
	}
	opts.BatchBytes = min(opts.BatchBytes, maxBatchBytes)
	if opts.LongPoll <= 0 {
		opts.LongPoll = DefaultLongPoll
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Replicator{log: l, opts: opts, lg: lg, peers: map[string]*peerState{}, live: map[*session]struct{}{}}
}

// Name implements link.Protocol.
func (r *Replicator) Name() string { return Name }

// Attach implements link.Protocol: it serves the peer's pulls on conn and
// starts pulling from it. It does not block.
func (r *Replicator) Attach(p link.Peer, conn *msgrpc.Conn) (msgrpc.Handler, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{r: r, peer: p, conn: conn, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.stats = r.peerStats(p)
	r.mu.Lock()
	r.live[s] = struct{}{}
	s.stats.links++
	r.mu.Unlock()
	r.lg.Info("repl: link up", "peer", p.ID, "circle", p.Circle, "epoch", p.Epoch)
	go s.pullLoop()
	return msgrpc.HandlerFuncs{Request: s.serve}, s.detach
}

// Close ends every session's pulling (the link layer closes the conns).
func (r *Replicator) Close() {
	r.mu.Lock()
	live := make([]*session, 0, len(r.live))
	for s := range r.live {
		live = append(live, s)
	}
	r.mu.Unlock()
	for _, s := range live {
		s.detach()
	}
}

// PeerStats are one peer's counters since this process started.
type PeerStats struct {
	Circle string `json:"circle" msgpack:"circle"`
	// Links is how many times a link to it came up; Up whether one is now.
	Links int  `json:"links" msgpack:"links"`
	Up    bool `json:"up" msgpack:"up"`
	// Epoch and Pulled: where this side is in the peer's log.
	Epoch  uint64 `json:"epoch" msgpack:"epoch"`
	Pulled uint64 `json:"pulled" msgpack:"pulled"`
	// Counts by outcome and reason: appended, duplicate, gap, filled, fork,
	// rejected:<airc reason> (malformed, bad_signature, lamport_bound),
	// undecodable (an envelope that is not one), not_shared (a channel this
	// side does not take from that peer), served (events sent to it),
	// batches, stall, broken (a pull failed: the link died or answered
	// garbage), resync, restored (this install found itself older than the
	// peer knew it and bumped its epoch).
	Counts map[string]uint64 `json:"counts" msgpack:"counts"`
	// Head is the peer's head seq as of its last answer (state or pull);
	// Head - Pulled is how far behind its log this side is.
	Head uint64 `json:"head" msgpack:"head"`
	// CaughtUp is when this side last held everything the peer had
	// (Pulled == Head), or when the first link came up, before that.
	CaughtUp time.Time `json:"caughtUp" msgpack:"caughtUp"`
}

// Lag is how many seqs of the peer's log this side has not pulled yet.
func (p PeerStats) Lag() uint64 {
	if p.Head > p.Pulled {
		return p.Head - p.Pulled
	}
	return 0
}

type peerState struct {
	circle string
	links  int
	up     int
	epoch  uint64
	pulled uint64
	head   uint64
	caught time.Time
	counts map[string]uint64
}

func (r *Replicator) peerStats(p link.Peer) *peerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := r.peers[p.ID]
	if ps == nil {
		ps = &peerState{counts: map[string]uint64{}}
		r.peers[p.ID] = ps
	}
	ps.circle = p.Circle
	ps.up++
	if ps.caught.IsZero() {
		ps.caught = time.Now() // behind, if at all, since the first link
	}
	return ps
}

// count adds n to a peer's counter.
func (r *Replicator) count(ps *peerState, reason string, n uint64) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	ps.counts[reason] += n
	r.mu.Unlock()
}

// Stats returns every peer's counters, by peer id.
func (r *Replicator) Stats() map[string]PeerStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]PeerStats, len(r.peers))
	for id, ps := range r.peers {
		out[id] = PeerStats{Circle: ps.circle, Links: ps.links, Up: ps.up > 0, Epoch: ps.epoch, Pulled: ps.pulled, Counts: maps.Clone(ps.counts), Head: ps.head, CaughtUp: ps.caught}
	}
	return out
}

// Vectors returns what this install holds, {channel: {origin: highest
// originSeq}}, for grid/status.
func (r *Replicator) Vectors() (map[string]map[string]uint64, error) {
	return vectors(r.log, nil)
}

// vectors turns airc's {origin: {channel: hw}} into {channel: {origin: hw}},
// keeping the channels keep allows (all when nil).
func vectors(l *airc.Log, keep func(string) bool) (map[string]map[string]uint64, error) {
	hw, err := l.HighWater()
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]uint64{}
	for origin, chans := range hw {
		for ch, n := range chans {
			if keep != nil && !keep(ch) {
				continue
			}
			m := out[ch]
			if m == nil {
				m = map[string]uint64{}
				out[ch] = m
			}
			m[origin] = n
		}
	}
	return out, nil
}
