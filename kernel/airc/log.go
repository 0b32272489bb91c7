package airc

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/continuum-grid/continuum/kernel/metrics"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// MaxLamport is the largest lamport time the log takes (2^53-1, the largest
// integer every client language holds exactly).
const MaxLamport = 1<<53 - 1

// DefaultMaxLamportSkew is Options.MaxLamportSkew when it is zero.
const DefaultMaxLamportSkew = 1 << 20

// maxBatch bounds one group commit, so a flood cannot build one huge
// transaction; what is left waits for the next.
const maxBatch = 8192

// indexEvery is how many committed local events may wait for their index
// entries (dedupe, slot, transcript) before a group commit writes them. Each
// of those indexes is its own B-tree, so writing them with every commit costs
// a leaf and its branch pages per tree per commit — two thirds of the pages
// a small commit writes. Written a few hundred at a time, the branch pages
// are shared by them all and the leaves are full. Until then they are served
// from memory, and a crash loses nothing: Open derives them again from the
// events themselves. Small enough that the commit which writes them stays
// short (it delays that batch's acks) and Open's work after a crash is
// negligible.
const indexEvery = 256

// Retention bounds what a channel keeps. Zero fields mean no bound.
type Retention struct {
	// MaxCount keeps at most this many events, dropping the oldest in
	// transcript order (lamport, id).
	MaxCount int
	// MaxAge drops events whose origin timestamp (ts) is older than this.
	MaxAge time.Duration
}

func (r Retention) zero() bool { return r.MaxCount <= 0 && r.MaxAge <= 0 }

// Options configure a Log. The zero value is usable.
type Options struct {
	// Logger receives warnings (rejections, forks, failed commits); nil
	// discards.
	Logger *slog.Logger
	// MaxLamportSkew refuses a received event whose lamport is further ahead of
	// the local clock than this (0 = DefaultMaxLamportSkew), so one poisoned
	// event cannot push every clock towards the ceiling. Above MaxLamport is
	// always refused.
	MaxLamportSkew uint64
	// Retention overrides DefaultRetention per channel.
	Retention map[string]Retention
	// DefaultRetention applies to channels without an entry in Retention; the
	// zero value keeps everything.
	DefaultRetention Retention
	// RetentionInterval is how often the background retention pass runs when
	// some retention is configured (0 = one minute; negative = never, call
	// ApplyRetention yourself).
	RetentionInterval time.Duration
	// OnCommit is called by the commit goroutine after each group commit has
	// been fsync'd, with that batch's new events in seq order, before any
	// Append or Ingest of the batch returns. Successive calls never overlap
	// and follow seq order, so publishing to live subscribers here delivers in
	// seq order. It must not wait for the log (Append from inside it would
	// deadlock); the slice is the callee's to keep. Each event is shared
	// together with the very bytes that were stored (SharedEvent.Encoded),
	// so subscribers send those: an emit is encoded once, and a live
	// subscriber gets the same bytes as one reading the log.
	OnCommit func(events []*api.SharedEvent)
	// Metrics, when set, counts each group commit (events, bytes, the
	// transaction's time with its fsync).
	Metrics *metrics.Registry
	// Now replaces time.Now (tests).
	Now func() time.Time
	// MaxRejections bounds the rejections bucket (0 = 10000); the oldest
	// records go first.
	MaxRejections int
}

// Log is the airc log on an open bbolt file. All methods are safe for
// concurrent use.
type Log struct {
	db     *bolt.DB
	id     *identity.Identity
	self   string
	log    *slog.Logger
	opts   Options
	skew   uint64
	now    func() time.Time
	maxRej int

	// Admission state, guarded by mu. It runs ahead of the file: it includes
	// events that are queued but not yet committed. A failed commit throws all
	// of it away and starts again from what is committed.
	mu          sync.Mutex
	closed      bool
	queue       []*item
	clock       uint64            // lamport clock including queued events
	nextSeq     uint64            // next seq to hand out
	chains      map[string]*chain // chainKey -> state; a cache loaded from bChains on first use
	pendingID   map[string]*item  // string(idKey) -> queued event
	pendingSlot map[string]*item  // string(slotKey) -> queued event
	dirtyCursor map[string]cursorUpdate
	// committingCursor holds the acks taken out of dirtyCursor by the commit
	// goroutine until their transaction has committed (or failed and put
	// them back), so Cursor never misses an ack in flight.
	committingCursor map[string]cursorUpdate
	// unindexed are committed local events whose dedupe, slot and transcript
	// entries are not written yet, in seq order (see indexEvery). They stay in
	// pendingID and pendingSlot until they are.
	unindexed []*item
	// want is how many queued items the commit goroutine waits for while it
	// gathers a batch (see gather); enqueue wakes it only from there on. 0
	// (not gathering): every enqueue wakes it.
	want int
	// maxLinger bounds gather's wait (maxLinger below; tests raise it).
	maxLinger time.Duration

	wake     chan struct{}
	loopDone chan struct{}
	stopRet  chan struct{}
	retDone  chan struct{}
	kickRet  chan struct{} // a retention pass now (SetRetention); buffered 1
	// retMu guards the retention rules (opts.Retention, opts.DefaultRetention),
	// which SetRetention replaces while passes run.
	retMu sync.RWMutex

	// Committed state, written by the commit goroutine after the fsync.
	head    atomic.Uint64
	lamport atomic.Uint64
	epoch   atomic.Uint64

	failCommit atomic.Pointer[func() error] // test hook: runs inside each commit transaction
}

// chain is the admission view of one origin's history on one channel.
type chain struct {
	hw  uint64 // highest originSeq stored
	tip Hash   // hash of the event at hw
}

type itemKind uint8

const (
	kindEvent itemKind = iota
	kindRejection
	kindBarrier
)

// item is one queued write and the answer its waiters get.
type item struct {
	kind itemKind
	ev   api.Event // final envelope; Payload is the canonical msgpack.RawMessage
	hash Hash
	// value is the encoded envelope, written by the submitting goroutine
	// before it closes ready (signing happens there, in parallel).
	value []byte
	ready chan struct{}

	// effects on the chain and hole indexes, decided at admission
	lazy    bool // a local append: its index entries may wait (see indexEvery)
	flush   bool // a barrier that writes every waiting index entry
	advance bool // set the chain's high-water to this event
	gapFrom uint64
	gapTo   uint64 // hole [gapFrom, gapTo] recorded when gapTo != 0
	fill    bool   // this event fills a recorded hole
	fork    bool   // stored next to a conflicting event: flag the origin
	rej     *Rejection

	done      chan struct{}
	err       error // valid after done is closed
	committed bool  // set under mu once the event's transaction is committed
}

// Open opens the airc log in db, creating its buckets on first use, and starts
// the commit goroutine. id signs local events. The caller keeps ownership of
// db: Close stops the log but does not close the file.
func Open(db *bolt.DB, id *identity.Identity, opts Options) (*Log, error) {
	if db == nil || id == nil {
		return nil, errors.New("airc: Open needs a database and an identity")
	}
	l := &Log{
		db:          db,
		id:          id,
		self:        id.PeerID(),
		log:         opts.Logger,
		opts:        opts,
		skew:        opts.MaxLamportSkew,
		now:         opts.Now,
		maxRej:      opts.MaxRejections,
		chains:      map[string]*chain{},
		pendingID:   map[string]*item{},
		pendingSlot: map[string]*item{},
		dirtyCursor: map[string]cursorUpdate{},
		wake:        make(chan struct{}, 1),
		loopDone:    make(chan struct{}),
		maxLinger:   maxLinger,
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.skew == 0 {
		l.skew = DefaultMaxLamportSkew
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.maxRej <= 0 {
		l.maxRej = 10000
	}
	// A read-only file (bbolt's ReadOnly option) opens for reading: every
	// write then fails with unavailable.
	run := db.Update
	if db.IsReadOnly() {
		run = db.View
	}
	err := run(func(tx *bolt.Tx) error {
		if !tx.Writable() {
			if tx.Bucket(bMeta) == nil {
				return errors.New("the read-only file holds no airc log")
			}
			l.epoch.Store(getU64(tx.Bucket(bMeta).Get(kEpoch)))
			l.head.Store(getU64(tx.Bucket(bMeta).Get(kHead)))
			l.lamport.Store(getU64(tx.Bucket(bMeta).Get(kLamport)))
			// A file left by a crash may lack the index entries of its newest
			// local events, and a read-only open cannot write them: Read sees
			// those events, Get and Replay do not until a writable open.
			if ix := tx.Bucket(bMeta).Get(kIndexed); ix != nil && getU64(ix) < l.head.Load() {
				l.log.Warn("airc: read-only file with unindexed events; Get and Replay miss them until it is opened for writing", "indexed", getU64(ix), "head", l.head.Load())
			}
			return nil
		}
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		if v := meta.Get(kVersion); v != nil {
			if got := getU64(v); got > schemaVersion {
				return fmt.Errorf("the airc log was written by a newer continuum (layout %d, this one knows %d)", got, schemaVersion)
			}
		}
		// Layout 1 wrote every index with its event: all of it is indexed.
		if meta.Get(kIndexed) == nil {
			if err := meta.Put(kIndexed, u64(getU64(meta.Get(kHead)))); err != nil {
				return err
			}
		}
		if err := meta.Put(kVersion, u64(schemaVersion)); err != nil {
			return err
		}
		if err := reindex(tx); err != nil {
			return err
		}
		if meta.Get(kEpoch) == nil {
			if err := meta.Put(kEpoch, u64(1)); err != nil {
				return err
			}
		}
		l.epoch.Store(getU64(meta.Get(kEpoch)))
		l.head.Store(getU64(meta.Get(kHead)))
		l.lamport.Store(getU64(meta.Get(kLamport)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("airc: open: %w", err)
	}
	l.clock = l.lamport.Load()
	l.nextSeq = l.head.Load() + 1
	go l.loop()
	l.kickRet = make(chan struct{}, 1)
	if l.retentionConfigured() {
		l.startRetention()
	}
	return l, nil
}

// Close stops taking appends, waits until everything already queued (events,
// rejections, acks) is committed, and stops the commit goroutine. It does not
// close the bbolt file. Appends after Close fail with unavailable.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	stopRet := l.stopRet
	l.mu.Unlock()
	l.signal()
	<-l.loopDone
	if stopRet != nil {
		close(l.stopRet)
		<-l.retDone
	}
	return nil
}

// PeerID is the origin this log stamps on local events.
func (l *Log) PeerID() string { return l.self }

// Head is the seq of the last committed event (0 when empty).
func (l *Log) Head() uint64 { return l.head.Load() }

// Lamport is the committed lamport clock: the highest lamport of any event in
// the log.
func (l *Log) Lamport() uint64 { return l.lamport.Load() }

// Epoch is the log's epoch (see the package doc).
func (l *Log) Epoch() uint64 { return l.epoch.Load() }

// BumpEpoch increments the epoch durably and returns the new value. Call it
// when the file is found older than its peers expect (a restored or copied
// state dir), so that positions handed out before are not taken for positions
// handed out after.
func (l *Log) BumpEpoch() (uint64, error) {
	var e uint64
	err := l.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		e = getU64(meta.Get(kEpoch)) + 1
		return meta.Put(kEpoch, u64(e))
	})
	if err != nil {
		return 0, unavailable("bump epoch", err)
	}
	l.epoch.Store(e)
	l.log.Warn("airc: epoch bumped", "epoch", e)
	return e, nil
}

func unavailable(what string, err error) error {
	return api.Errorf(api.CodeUnavailable, "airc: %s: the store could not commit (%v); nothing of it was written, retry later", what, err)
}

func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// enqueue appends it to the commit queue; mu must be held. A barrier or a
// rejection record always wakes the commit goroutine; an event only once the
// batch it gathers is as large as it waits for.
func (l *Log) enqueue(it *item) {
	l.queue = append(l.queue, it)
	if it.kind != kindEvent || len(l.queue) >= l.want {
		l.signal()
	}
}

// unindexedEvent returns the committed event (origin, id) if its dedupe
// entry is still waiting in memory.
func (l *Log) unindexedEvent(origin, id string) (api.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if it := l.pendingID[string(idKey(origin, id))]; it != nil && it.committed {
		return it.ev, true
	}
	return api.Event{}, false
}

// encodeEvent writes the stored envelope: exactly the bytes api.AppendEvent
// puts on the wire (the one envelope codec; integers at their smallest
// encoding, header keys sorted), so a log-backed subscriber and a live one
// receive the same bytes, and what was stored goes to subscribers as it is,
// never encoded twice. Payload is the canonical msgpack.RawMessage.
func encodeEvent(ev *api.Event) ([]byte, error) {
	p, _ := ev.Payload.(msgpack.RawMessage)
	n := 128 + len(ev.ID) + len(ev.Class) + len(ev.Channel) + len(ev.Origin) + len(ev.Prev) +
		len(ev.Sender) + len(ev.SchemaVersion) + len(p) + len(ev.Sig)
	for k, v := range ev.Headers {
		n += 10 + len(k) + len(v)
	}
	return api.AppendEvent(make([]byte, 0, n), ev)
}

// decodeEvent decodes a stored envelope (written by encodeEvent, or by the
// layouts before it with integers at full width: the reader takes any
// width). v may be bbolt memory, so it is copied first: the event aliases
// only its private copy. A nil payload reads as the canonical nil, as it was
// stored and signed.
func decodeEvent(v []byte) (api.Event, error) {
	var ev api.Event
	if err := api.UnmarshalEvent(bytes.Clone(v), &ev); err != nil {
		return api.Event{}, fmt.Errorf("airc: corrupt event record: %w", err)
	}
	if ev.Payload == nil {
		ev.Payload = msgpack.RawMessage{0xc0}
	}
	return ev, nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
