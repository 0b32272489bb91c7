package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid/link"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
	"github.com/continuum-grid/continuum/kernel/airc"
)

// session is one link-up with one peer: it serves the peer's pulls and
// pulls from it.
type session struct {
	r      *Replicator
	peer   link.Peer
	conn   *msgrpc.Conn
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	stats  *peerState
	once   sync.Once
	pos    position // guarded by r.mu; see position

	// filter is the peer's resync vectors (chainKey -> have), set by a pull
	// that gives them and kept for the rest of the link.
	fmu    sync.Mutex
	filter map[string]have
	// filterHead is this log's head when the filter came: it describes
	// what the peer held then, so it applies to events up to there. Later
	// events of the peer's own origin are ones it sent since.
	filterHead uint64
}

func (s *session) allowed(channel string) bool { return s.r.opts.Channels(channel, s.peer.Circle) }

func (s *session) detach() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		r := s.r
		r.mu.Lock()
		delete(r.live, s)
		s.stats.up--
		counts := fmt.Sprint(s.stats.counts)
		r.mu.Unlock()
		r.lg.Info("repl: link down", "peer", s.peer.ID, "position", s.position().Seq, "counts", counts)
	})
}

// ---- serving ----

func (s *session) serve(ctx context.Context, method string, params api.RawParams) (any, error) {
	switch method {
	case methodState:
		return s.state()
	case methodPull:
		var p pullParams
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		return s.pull(ctx, p)
	}
	return nil, api.Errorf(api.CodeUnknownMethod, "%s: no such method in the repl protocol", method)
}

func (s *session) state() (*stateResult, error) {
	l := s.r.log
	res := &stateResult{Epoch: l.Epoch(), Head: l.Head()}
	v, err := vectors(l, s.allowed)
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "repl: read the vectors: %v", err)
	}
	res.Channels = v
	if p, ok, err := loadSeen(s.r.opts.DB, s.peer.ID); err == nil && ok {
		res.Pulled = &p
	}
	return res, nil
}

// errFull stops a read once a batch is full.
var errFull = errors.New("batch full")

// errPastHead stops a pull's read at the first seq committed after the
// head the answer names.
var errPastHead = errors.New("past the head")

// maxScan bounds how many stored events one pull reads when it skips most of
// them (other channels, a resync filter), so a pull always answers soon.
const maxScan = 64 * 1024

func (s *session) pull(ctx context.Context, p pullParams) (*pullResult, error) {
	l := s.r.log
	limit := s.r.opts.BatchEvents
	if p.Max > 0 {
		limit = min(p.Max, maxBatchEvents)
	}
	maxBytes := s.r.opts.BatchBytes
	if p.MaxBytes > 0 {
		maxBytes = min(p.MaxBytes, maxBatchBytes)
	}
	wait := min(time.Duration(max(p.WaitMs, 0))*time.Millisecond, maxLongPoll)
	if p.Have != nil {
		if len(p.Have) > maxHave {
			return nil, api.Errorf(api.CodeInvalidArgument, "repl: %d chains in have, at most %d", len(p.Have), maxHave)
		}
		f := make(map[string]have, len(p.Have))
		for _, h := range p.Have {
			f[h.Channel+"\x00"+h.Origin] = h
		}
		s.fmu.Lock()
		s.filter, s.filterHead = f, l.Head()
		s.fmu.Unlock()
	}
	s.fmu.Lock()
	filter, filterHead := s.filter, s.filterHead
	s.fmu.Unlock()
	deadline := time.Now().Add(wait)
	after := p.After
	for {
		wake := s.r.opts.Committed()
		epoch, head := l.Epoch(), l.Head()
		if (p.Epoch != 0 && p.Epoch != epoch) || after > head {
			return &pullResult{Epoch: epoch, Head: head, Last: after, Stale: true}, nil
		}
		res := &pullResult{Epoch: epoch, Head: head, Last: after}
		var (
			buf     []byte
			scanned int
			ev      api.Event
		)
		for len(res.Events) == 0 && res.Last < head && scanned < maxScan {
			visited := 0
			last, err := l.ReadEncoded(res.Last, limit, func(seq uint64, env []byte) error {
				// The log may have committed more since head was read; the
				// answer must not reach past the head it names (the puller
				// takes last > head for a broken peer).
				if seq > head {
					return errPastHead
				}
				if len(res.Events) > 0 && (len(res.Events) >= limit || len(buf)+len(env) > maxBytes) {
					return errFull
				}
				visited++
				res.Last = seq
				k, err := api.PeekEvent(env)
				if err != nil || !s.allowed(string(k.Channel)) {
					return nil
				}
				if err := api.UnmarshalEvent(env, &ev); err != nil {
					return nil
				}
				if filter == nil || seq > filterHead {
					if ev.Origin == s.peer.ID {
						return nil // its own events: it has them (a restored peer resyncs with a filter)
					}
				} else {
					if h, ok := filter[ev.Channel+"\x00"+ev.Origin]; ok && h.holds(ev.OriginSeq) {
						return nil
					}
				}
				start := len(buf)
				buf = append(buf, env...)
				res.Events = append(res.Events, buf[start:len(buf):len(buf)])
				return nil
			})
			if err != nil && !errors.Is(err, errFull) && !errors.Is(err, errPastHead) {
				return nil, api.Errorf(api.CodeUnavailable, "repl: read the log: %v", err)
			}
			scanned += visited
			if errors.Is(err, errPastHead) {
				res.Last = head // everything up to head was seen, or is not stored
				break
			}
			if errors.Is(err, errFull) {
				break
			}
			if visited == 0 {
				res.Last = max(last, head) // nothing stored up to head (retention dropped it)
			}
		}
		if len(res.Events) > 0 || res.Last < head || time.Now().After(deadline) {
			s.r.count(s.stats, "served", uint64(len(res.Events)))
			return res, nil
		}
		after = res.Last
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, api.Errorf(api.CodeCancelled, "repl: the link closed")
		}
		t.Stop()
	}
}

// holds reports whether the puller said it holds originSeq n.
func (h have) holds(n uint64) bool {
	if n > h.HW {
		return false
	}
	for _, r := range h.Holes {
		if n >= r[0] && n <= r[1] {
			return false
		}
	}
	return true
}

// ---- pulling ----

// errResync restarts the pull from the peer's state.
var errResync = errors.New("resync")

func (s *session) pullLoop() {
	defer close(s.done)
	force := false
	backoff := s.r.opts.StallTimeout
	resyncs := 0
	for s.ctx.Err() == nil {
		select {
		case <-s.conn.Done():
			return // the stream is gone: nothing more can be pulled on it
		default:
		}
		before := s.position()
		err := s.run(force)
		if s.ctx.Err() != nil {
			return
		}
		if s.position() != before { // it made progress: a new failure starts the backoff over
			backoff, resyncs = s.r.opts.StallTimeout, 0
		}
		select {
		case <-s.conn.Done():
			s.r.lg.Info("repl: the stream closed", "peer", s.peer.ID, "err", err)
			return
		default:
		}
		wait := 100 * time.Millisecond
		if errors.Is(err, errResync) {
			force = true
			s.r.count(s.stats, "resync", 1)
			s.r.lg.Warn("repl: the peer's log is not where it was; resyncing from its vectors", "peer", s.peer.ID)
			if resyncs++; resyncs > 2 { // a peer that keeps moving under us waits like a failing one
				wait = backoff
				backoff = min(2*backoff, maxRetryBackoff)
			}
		} else {
			// A stalled peer, or one that answered what no honest peer
			// sends (counted stall or broken): ask again later on the same
			// stream, with a doubling backoff, since the link stays up and a
			// slow or briefly confused peer may recover. Meanwhile every
			// other link pulls on, so a range it holds back comes from any
			// peer that has it.
			force = false
			wait = backoff
			backoff = min(2*backoff, maxRetryBackoff)
			s.r.lg.Warn("repl: pulling from the peer failed; asking again later", "peer", s.peer.ID, "err", err, "retry_in", wait)
		}
		select {
		case <-time.After(wait):
		case <-s.ctx.Done():
		case <-s.conn.Done():
		}
	}
}

// maxRetryBackoff caps the wait before asking a failing peer again.
const maxRetryBackoff = 5 * time.Minute

// stallError marks a pull the peer did not answer in time.
type stallError struct{ after time.Duration }

func (e stallError) Error() string {
	return fmt.Sprintf("the peer did not answer a pull within %v", e.after)
}

func (s *session) call(method string, params any, wait time.Duration, dst any) error {
	limit := wait + s.r.opts.StallTimeout
	ctx, cancel := context.WithTimeout(s.ctx, limit)
	defer cancel()
	raw, err := s.conn.Call(ctx, method, params)
	if err != nil {
		if s.ctx.Err() == nil && ctx.Err() != nil {
			s.r.count(s.stats, "stall", 1)
			return stallError{limit}
		}
		s.r.count(s.stats, "broken", 1)
		return err
	}
	if err := decode(raw, dst); err != nil {
		s.r.count(s.stats, "broken", 1)
		return err
	}
	return nil
}

type pulled struct {
	res pullResult
	err error
}

func (s *session) run(force bool) error {
	l := s.r.log
	var st stateResult
	if err := s.call(methodState, struct{}{}, 0, &st); err != nil {
		return err
	}
	// The peer holds more of this log than this log does: this state dir is
	// an older copy. Bump the epoch so nobody takes the seqs handed out from
	// now on for the ones handed out before, and take everything back from
	// the peer's vectors.
	s.sawHead(st.Head)
	older, why, err := olderCopy(l, &st)
	if err != nil {
		return err
	}
	if older {
		e, err := l.BumpEpoch()
		if err != nil {
			return err
		}
		s.r.count(s.stats, "restored", 1)
		s.r.lg.Warn("repl: a peer holds more of this log than it has; this state is an older copy: epoch bumped", "peer", s.peer.ID, "why", why, "head", l.Head(), "epoch", e)
		force = true
	}
	pos, ok, err := loadPosition(s.r.opts.DB, s.peer.ID)
	if err != nil {
		return err
	}
	p := pullParams{After: pos.Seq, Epoch: st.Epoch, Max: s.r.opts.BatchEvents, MaxBytes: s.r.opts.BatchBytes}
	if force || !ok || pos.Epoch != st.Epoch || pos.Seq > st.Head {
		if ok && !force && (pos.Epoch != st.Epoch || pos.Seq > st.Head) {
			s.r.count(s.stats, "resync", 1)
			s.r.lg.Warn("repl: the peer's epoch changed or its head went back; resyncing from its vectors", "peer", s.peer.ID, "epoch", pos.Epoch, "theirEpoch", st.Epoch, "pulled", pos.Seq, "theirHead", st.Head)
		}
		p.After = 0
		if p.Have, err = s.haves(); err != nil {
			return err
		}
		if err := resetPosition(s.r.opts.DB, s.peer.ID, st.Epoch); err != nil {
			return err
		}
	}
	s.setPosition(st.Epoch, p.After)
	lastWrite := time.Now()
	defer func() { s.writePosition() }()

	var (
		pending     func(context.Context) []airc.IngestResult
		pendingLast uint64
	)
	// A batch admitted when the link goes down is committed within a
	// commit or two; knowing it was lets the position move past it. (This
	// runs before the deferred writePosition above.)
	defer func() {
		if pending != nil && s.finish(pending) == nil {
			s.setPosition(p.Epoch, pendingLast)
		}
	}()
	next := s.startPull(p)
	for {
		var got pulled
		select {
		case got = <-next:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
		if got.err != nil {
			return got.err
		}
		r := &got.res
		switch {
		case r.Stale || r.Epoch != p.Epoch:
			return errResync
		case r.Last < p.After || r.Last > r.Head || len(r.Events) > maxBatchEvents:
			s.r.count(s.stats, "broken", 1)
			return fmt.Errorf("repl: the peer answered a pull after %d with last %d, head %d, %d events", p.After, r.Last, r.Head, len(r.Events))
		}
		s.sawHead(r.Head)
		// Ask for the next batch before taking this one in, so the peer reads
		// while this side verifies and commits.
		p.Have = nil
		p.After = r.Last
		p.WaitMs = 0
		if r.Last == r.Head { // caught up: the next pull waits for a commit there
			p.WaitMs = s.r.opts.LongPoll.Milliseconds()
		}
		next = s.startPull(p)
		// Verify and queue this batch, then wait for the previous one's
		// commit: the fsync of one batch overlaps the signature checks of
		// the next. At the head nothing more is coming soon, so this batch
		// is waited for at once.
		wait := s.admit(r.Events)
		if pending != nil {
			err := s.finish(pending)
			pending = nil
			if err != nil {
				return err
			}
			s.setPosition(p.Epoch, pendingLast)
		}
		pending, pendingLast = wait, r.Last
		if r.Last == r.Head {
			err := s.finish(pending)
			pending = nil
			if err != nil {
				return err
			}
			s.setPosition(p.Epoch, r.Last)
		}
		if time.Since(lastWrite) > cursorEvery {
			s.writePosition()
			lastWrite = time.Now()
		}
	}
}

func (s *session) startPull(p pullParams) <-chan pulled {
	ch := make(chan pulled, 1)
	go func() {
		var got pulled
		got.err = s.call(methodPull, p, time.Duration(p.WaitMs)*time.Millisecond, &got.res)
		ch <- got
	}()
	return ch
}

// position is this session's place in the peer's log (guarded by r.mu);
// the peer's stats show the latest session's.
func (s *session) position() position {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	return s.pos
}

func (s *session) setPosition(epoch, seq uint64) {
	s.r.mu.Lock()
	s.pos = position{Epoch: epoch, Seq: seq}
	s.stats.epoch, s.stats.pulled = epoch, seq
	if seq >= s.stats.head {
		s.stats.caught = time.Now()
	}
	s.r.mu.Unlock()
}

// sawHead records the peer's head from its answer, for the lag.
func (s *session) sawHead(head uint64) {
	s.r.mu.Lock()
	s.stats.head = head
	if s.stats.pulled >= head {
		s.stats.caught = time.Now()
	}
	s.r.mu.Unlock()
}

func (s *session) writePosition() {
	p := s.position()
	if err := storePosition(s.r.opts.DB, s.peer.ID, p); err != nil {
		s.r.lg.Warn("repl: could not remember the position in a peer's log (it is pulled again)", "peer", s.peer.ID, "err", err)
	}
}

// haves lists what this install holds of every chain it shares with the
// peer, for a resync pull; nil (no filter) when there are too many.
func (s *session) haves() ([]have, error) {
	v, err := vectors(s.r.log, s.allowed)
	if err != nil {
		return nil, err
	}
	var out []have
	for ch, origins := range v {
		for origin, hw := range origins {
			holes, err := s.r.log.Holes(origin, ch)
			if err != nil {
				return nil, err
			}
			h := have{Channel: ch, Origin: origin, HW: hw}
			for _, r := range holes {
				h.Holes = append(h.Holes, [2]uint64{r.First, r.Last})
			}
			out = append(out, h)
			if len(out) > maxHave {
				return nil, nil
			}
		}
	}
	return out, nil
}

// admit decodes one batch of envelopes and queues it in the log (see
// airc.AdmitBatch); finish waits for it. An envelope that does not decode,
// or of a channel this side does not take from the peer, is counted and
// skipped; an event Ingest refuses is counted by reason. Only a failure of
// the log itself (closed, the disk) fails the batch, and then the position
// does not move past it.
func (s *session) admit(envs [][]byte) func(context.Context) []airc.IngestResult {
	if len(envs) == 0 {
		return func(context.Context) []airc.IngestResult { return nil }
	}
	s.r.count(s.stats, "batches", 1)
	evs := make([]api.Event, 0, len(envs))
	for _, env := range envs {
		var ev api.Event
		if err := api.UnmarshalEvent(env, &ev); err != nil {
			s.r.count(s.stats, "undecodable", 1)
			s.r.lg.Warn("repl: a received envelope does not decode; skipped", "peer", s.peer.ID, "err", err)
			continue
		}
		if !s.allowed(ev.Channel) {
			s.r.count(s.stats, "not_shared", 1)
			continue
		}
		evs = append(evs, ev)
	}
	return s.r.log.AdmitBatch(evs)
}

func (s *session) finish(wait func(context.Context) []airc.IngestResult) error {
	// Not cancelled by the link going down: an admitted batch is committed
	// within a commit or two.
	res := wait(context.WithoutCancel(s.ctx))
	counts := map[string]uint64{}
	var failed error
	for _, r := range res {
		var re *airc.RejectError
		switch {
		case errors.As(r.Err, &re):
			counts["rejected:"+string(re.Reason)]++
		case r.Err != nil:
			failed = r.Err
		default:
			counts[r.Outcome.String()]++
		}
	}
	s.r.mu.Lock()
	for k, n := range counts {
		s.stats.counts[k] += n
	}
	s.r.mu.Unlock()
	if failed != nil {
		return fmt.Errorf("repl: the log could not take a batch: %w", failed)
	}
	return nil
}

// olderCopy tells from a peer's state whether this log is an older copy of
// itself: the peer has pulled past this log's head in this epoch, or holds
// events of this install's own origin beyond its own chains' high-water (an
// install never has fewer of its own events than a peer, retention
// included: chain heads outlive the events). The second holds even when
// the peer's pulled position was not saved before the copy was made.
func olderCopy(l *airc.Log, st *stateResult) (bool, string, error) {
	if st.Pulled != nil && st.Pulled.Epoch == l.Epoch() && st.Pulled.Seq > l.Head() {
		return true, fmt.Sprintf("it pulled this log to seq %d, past the head %d", st.Pulled.Seq, l.Head()), nil
	}
	self := l.PeerID()
	var mine map[string]uint64
	for ch, origins := range st.Channels {
		theirs := origins[self]
		if theirs == 0 {
			continue
		}
		if mine == nil {
			hw, err := l.HighWater()
			if err != nil {
				return false, "", err
			}
			if mine = hw[self]; mine == nil {
				mine = map[string]uint64{}
			}
		}
		if theirs > mine[ch] {
			return true, fmt.Sprintf("it holds this install's events on %s to originSeq %d, past its own %d", ch, theirs, mine[ch]), nil
		}
	}
	return false, "", nil
}
