package airc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/continuum-grid/continuum/api"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// The commit loop: one goroutine takes everything queued, writes it in one
// transaction (one fsync) and answers every waiter; then the index writers
// and the per-batch write.

// loop is the one commit goroutine: it takes everything queued, writes it in
// one transaction (one fsync), then answers every waiter. There is no fixed
// timer: while one batch is being fsync'd, the next one queues up, so batches
// grow with the load; and after a commit it may wait a little for the
// appenders it just answered to come back (see gather).
func (l *Log) loop() {
	defer close(l.loopDone)
	var (
		expect int           // items the next batch is expected to hold
		linger time.Duration // how long gather waits for them: the last commit's time
		idle   time.Time     // when the queue was last found empty
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		<-l.wake
		if time.Since(idle) > linger {
			expect = 0 // a new burst: nobody is known to be coming back
		}
		for {
			l.gather(expect, linger, timer)
			l.mu.Lock()
			n := min(len(l.queue), maxBatch)
			batch := l.queue[:n:n]
			l.queue = l.queue[n:]
			var cursors map[string]cursorUpdate
			if len(l.dirtyCursor) > 0 {
				cursors, l.dirtyCursor = l.dirtyCursor, map[string]cursorUpdate{}
				l.committingCursor = cursors
			}
			closed := l.closed
			l.mu.Unlock()
			if len(batch) == 0 && len(cursors) == 0 {
				if closed {
					l.closeIndex()
					return
				}
				idle = time.Now()
				break
			}
			for _, it := range batch {
				<-it.ready
			}
			began := time.Now()
			if l.commitBatch(batch, cursors) {
				// Those answered now are expected back, on top of what queued
				// meanwhile: in a closed loop of n appenders, each commit then
				// takes all n instead of alternating between two halves.
				linger = min(time.Since(began), l.maxLinger)
				l.mu.Lock()
				expect = len(batch) + len(l.queue)
				l.mu.Unlock()
				continue
			}
			expect = 0
			// The commit failed and everything queued was answered. Acks that
			// were put back wait for the next wake-up instead of spinning on a
			// broken disk — except at Close, where they are given up (that
			// only means redelivery) so Close can finish.
			if !closed {
				break
			}
			l.mu.Lock()
			if n := len(l.dirtyCursor); n > 0 {
				l.log.Error("airc: closing with unwritten acks; their events will be delivered again", "cursors", n)
				clear(l.dirtyCursor)
			}
			l.mu.Unlock()
		}
	}
}

// maxLinger bounds how long gather waits for a batch to fill.
const maxLinger = time.Millisecond

// gather waits until the queue holds expect items, for at most linger, so
// that the next commit takes the appenders that are about to come back along
// with those already queued. Each commit costs two fdatasyncs whatever it
// holds, and while the commit goroutine sits in them it keeps its P (Go's
// sysmon does not take back a P from syscalls this short), so on two cores a
// commit goroutine that commits back to back leaves one core for everything
// else: batches stay small and the emitters wait for CPU. Waiting here parks
// it instead, so both cores sign and read requests, and the next batch holds
// more. A lone appender is never held: expect is then 1. The wait ends early
// at Close, at a barrier or rejection record (enqueue wakes for those), and
// at an ack.
func (l *Log) gather(expect int, linger time.Duration, timer *time.Timer) {
	if expect <= 1 || linger <= 0 {
		return
	}
	l.mu.Lock()
	if l.closed || len(l.queue) >= expect || !onlyEvents(l.queue) {
		l.mu.Unlock()
		return
	}
	l.want = expect
	// A wake-up sent before now is stale: the queue was just looked at, and
	// every later enqueue checks want under mu.
	select {
	case <-l.wake:
	default:
	}
	l.mu.Unlock()
	timer.Reset(linger)
	select {
	case <-l.wake:
	case <-timer.C:
	}
	timer.Stop()
	l.mu.Lock()
	l.want = 0
	l.mu.Unlock()
}

// onlyEvents reports whether q holds events only: a barrier (Flush,
// syncIndex) or a rejection record is not kept waiting.
func onlyEvents(q []*item) bool {
	for _, it := range q {
		if it.kind != kindEvent {
			return false
		}
	}
	return true
}

// commitBatch writes one batch and answers its waiters; false if it failed.
func (l *Log) commitBatch(batch []*item, cursors map[string]cursorUpdate) bool {
	var (
		events  int
		head    = l.head.Load()
		lamport = l.lamport.Load()
		lazy    []*item
		flush   = false
	)
	for _, it := range batch {
		switch {
		case it.kind == kindEvent:
			events++
			head = it.ev.Seq
			lamport = max(lamport, it.ev.Lamport)
			if it.lazy {
				lazy = append(lazy, it)
			}
		case it.flush:
			flush = true
		}
	}
	// Only the commit goroutine changes unindexed, so it reads it unlocked.
	waiting := l.unindexed
	flush = flush || len(waiting)+len(lazy) >= indexEvery
	began := time.Now()
	err := l.db.Update(func(tx *bolt.Tx) error {
		if f := l.failCommit.Load(); f != nil {
			if err := (*f)(); err != nil {
				return err
			}
		}
		if err := l.write(tx, batch, cursors, head, lamport); err != nil {
			return err
		}
		if !flush {
			return nil
		}
		return writeIndex(tx, head, waiting, lazy)
	})
	if err != nil {
		l.failBatch(batch, cursors, err)
		return false
	}
	if m := l.opts.Metrics; m != nil {
		took, size := time.Since(began), 0
		for _, it := range batch {
			if it.kind == kindEvent {
				size += len(it.value)
			}
		}
		m.Commit(events, size, took)
	}
	l.head.Store(head)
	l.lamport.Store(lamport)
	var shared []*api.SharedEvent
	if events > 0 && l.opts.OnCommit != nil {
		shared = make([]*api.SharedEvent, 0, events)
	}
	l.mu.Lock()
	l.committingCursor = nil // in the file now
	for _, it := range batch {
		if it.kind != kindEvent {
			continue
		}
		if shared != nil {
			shared = append(shared, api.ShareStored(&it.ev, it.value))
		}
		it.committed = true
		it.value = nil // written, and handed on; an index entry needs only the envelope fields
		if !it.lazy || flush {
			l.forgetLocked(it)
		}
	}
	if flush {
		for _, it := range waiting {
			l.forgetLocked(it)
		}
		l.unindexed = nil
	} else {
		l.unindexed = append(l.unindexed, lazy...)
	}
	l.mu.Unlock()
	if shared != nil {
		l.opts.OnCommit(shared)
	}
	for _, it := range batch {
		close(it.done)
	}
	return true
}

// forgetLocked drops a committed and indexed event from the queue indexes,
// unless a later event took its place there. mu must be held.
func (l *Log) forgetLocked(it *item) {
	if k := string(idKey(it.ev.Origin, it.ev.ID)); l.pendingID[k] == it {
		delete(l.pendingID, k)
	}
	if k := string(slotKey(it.ev.Origin, it.ev.Channel, it.ev.OriginSeq)); l.pendingSlot[k] == it {
		delete(l.pendingSlot, k)
	}
}

// syncIndex returns once every event committed before the call has its
// index entries in the file (readers of the transcript call it first). It
// costs a commit only when some are waiting.
func (l *Log) syncIndex(ctx context.Context) error {
	l.mu.Lock()
	if len(l.unindexed) == 0 || l.closed {
		l.mu.Unlock()
		return nil
	}
	it := &item{kind: kindBarrier, flush: true, ready: make(chan struct{}), done: make(chan struct{})}
	close(it.ready)
	l.enqueue(it)
	l.mu.Unlock()
	return waitItem(ctx, it)
}

// closeIndex writes the waiting index entries at Close, so a clean shutdown
// leaves nothing for Open to derive. If it fails, Open derives them.
func (l *Log) closeIndex() {
	if len(l.unindexed) == 0 || l.db.IsReadOnly() {
		return
	}
	head := l.head.Load()
	err := l.db.Update(func(tx *bolt.Tx) error { return writeIndex(tx, head, l.unindexed, nil) })
	if err != nil {
		l.log.Warn("airc: could not write the index at close; the next open derives it from the events", "err", err)
		return
	}
	l.mu.Lock()
	for _, it := range l.unindexed {
		l.forgetLocked(it)
	}
	l.unindexed = nil
	l.mu.Unlock()
}

// failBatch answers every waiter of the failed batch, and of everything queued
// on top of it (admitted against state that now never was), with unavailable,
// and restarts admission from the committed state.
func (l *Log) failBatch(batch []*item, cursors map[string]cursorUpdate, cause error) {
	err := unavailable("append", cause)
	l.log.Error("airc: group commit failed; the batch was rolled back", "events", len(batch), "err", cause)
	l.mu.Lock()
	failed := append(batch, l.queue...)
	l.queue = nil
	clear(l.pendingID)
	clear(l.pendingSlot)
	// Committed events that still wait for their index entries stay
	// findable: they are in the file, only their index is in memory.
	for _, it := range l.unindexed {
		l.pendingID[string(idKey(it.ev.Origin, it.ev.ID))] = it
		l.pendingSlot[string(slotKey(it.ev.Origin, it.ev.Channel, it.ev.OriginSeq))] = it
	}
	clear(l.chains)
	l.clock = l.lamport.Load()
	l.nextSeq = l.head.Load() + 1
	for name, u := range cursors {
		if _, newer := l.dirtyCursor[name]; !newer {
			l.dirtyCursor[name] = u
		}
	}
	l.committingCursor = nil // back in dirtyCursor
	l.mu.Unlock()
	for _, it := range failed {
		it.err = err
		close(it.done)
	}
}

// waitItem waits for it's commit; ctx only stops the waiting.
func waitItem(ctx context.Context, it *item) error {
	select {
	case <-it.done:
		return it.err
	case <-ctx.Done():
		return fmt.Errorf("airc: stopped waiting for the commit (%w); the event may still be stored — retry with the same id to find out", ctx.Err())
	}
}

// channelCounters are the per-channel statistics kept in bChannels.
type channelCounters struct {
	events, bytes, lastSeq, lastLamport uint64
}

func (c channelCounters) encode() []byte {
	b := make([]byte, 0, 32)
	for _, v := range []uint64{c.events, c.bytes, c.lastSeq, c.lastLamport} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

func decodeCounters(b []byte) channelCounters {
	if len(b) < 32 {
		return channelCounters{}
	}
	return channelCounters{getU64(b), getU64(b[8:]), getU64(b[16:]), getU64(b[24:])}
}

// indexWriter puts the dedupe, slot and transcript entries of events.
type indexWriter struct {
	ids, slots, transcript *bolt.Bucket
	subs                   map[string]*bolt.Bucket
}

// Slots and transcripts grow at the end of each chain and each channel
// (originSeq and lamport only grow, bar received events that fill holes or
// lag), so pages that split there are left full, as in the events bucket:
// with bbolt's default of half-full splits the index writes twice the pages.
// The dedupe index keeps the default: client-chosen ids land anywhere.
func newIndexWriter(tx *bolt.Tx) *indexWriter {
	x := &indexWriter{ids: tx.Bucket(bIDs), slots: tx.Bucket(bSlots), transcript: tx.Bucket(bTranscript), subs: map[string]*bolt.Bucket{}}
	x.slots.FillPercent = 1.0
	return x
}

// put writes ev's index entries. A fork never takes a slot: the first-seen
// event keeps it, and a fork that landed in a hole leaves the hole for the
// real event.
func (x *indexWriter) put(ev *api.Event, hash *Hash, fork bool) error {
	seq := u64(ev.Seq)
	if err := x.ids.Put(idKey(ev.Origin, ev.ID), seq); err != nil {
		return err
	}
	sk := slotKey(ev.Origin, ev.Channel, ev.OriginSeq)
	if !fork && x.slots.Get(sk) == nil {
		sv := make([]byte, 0, 8+2*HashSize)
		sv = append(append(append(sv, seq...), hash[:]...), ev.Prev...)
		if err := x.slots.Put(sk, sv); err != nil {
			return err
		}
	}
	sub := x.subs[ev.Channel]
	if sub == nil {
		var err error
		if sub, err = x.transcript.CreateBucketIfNotExists([]byte(ev.Channel)); err != nil {
			return err
		}
		sub.FillPercent = 1.0
		x.subs[ev.Channel] = sub
	}
	tv := binary.BigEndian.AppendUint64(append(make([]byte, 0, 16), seq...), uint64(ev.TS))
	return sub.Put(transcriptKey(ev.Lamport, ev.ID, ev.Origin), tv)
}

// writeIndex puts the index entries of committed local events that waited
// for them (see indexEvery) and records that everything up to head is
// indexed.
func writeIndex(tx *bolt.Tx, head uint64, lists ...[]*item) error {
	x := newIndexWriter(tx)
	for _, list := range lists {
		for _, it := range list {
			if err := x.put(&it.ev, &it.hash, it.fork); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bMeta).Put(kIndexed, u64(head))
}

// reindex writes, at Open, the index entries that a crash kept from being
// written: those of every event above kIndexed that the dedupe index lacks
// (local appends; received events are indexed with their commit). Each
// entry is derived from the stored envelope, the hash by re-encoding it
// canonically, so the result is what writeIndex would have written.
func reindex(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	indexed, head := getU64(meta.Get(kIndexed)), getU64(meta.Get(kHead))
	if indexed >= head {
		return nil
	}
	x := newIndexWriter(tx)
	var missing []api.Event
	c := tx.Bucket(bEvents).Cursor()
	for k, v := c.Seek(u64(indexed + 1)); k != nil && getU64(k) <= head; k, v = c.Next() {
		ev, err := decodeEvent(v)
		if err != nil {
			return err
		}
		if x.ids.Get(idKey(ev.Origin, ev.ID)) == nil {
			missing = append(missing, ev)
		}
	}
	// Put after the walk: writing under a bbolt cursor can make it skip keys.
	for i := range missing {
		ev := &missing[i]
		p, _ := ev.Payload.(msgpack.RawMessage)
		signing, err := appendCanonical([]byte(SigningDomain), ev, p)
		if err != nil {
			return fmt.Errorf("airc: stored event seq %d has no canonical encoding: %w", ev.Seq, err)
		}
		h := Hash(sha256.Sum256(signing))
		if err := x.put(ev, &h, false); err != nil {
			return err
		}
	}
	return meta.Put(kIndexed, u64(head))
}

// write puts one batch into tx. Any error rolls the whole batch back. Local
// appends get their index entries later (writeIndex), received events now.
func (l *Log) write(tx *bolt.Tx, batch []*item, cursors map[string]cursorUpdate, head, lamport uint64) error {
	var (
		events   = tx.Bucket(bEvents)
		meta     = tx.Bucket(bMeta)
		counters = map[string]*channelCounters{}
		chains   = map[string][]byte{}
		x        *indexWriter
	)
	// Seqs only grow: filling pages completely halves the file for the
	// append-only buckets.
	events.FillPercent = 1.0
	for _, it := range batch {
		switch it.kind {
		case kindBarrier:
			continue
		case kindRejection:
			if err := l.putRejection(tx, it.rej); err != nil {
				return err
			}
			continue
		}
		ev := &it.ev
		if it.value == nil {
			return errors.New("airc: event could not be encoded")
		}
		if err := events.Put(u64(ev.Seq), it.value); err != nil {
			return err
		}
		if !it.lazy {
			if x == nil {
				x = newIndexWriter(tx)
			}
			if err := x.put(ev, &it.hash, it.fork); err != nil {
				return err
			}
		}
		c := counters[ev.Channel]
		if c == nil {
			cc := decodeCounters(tx.Bucket(bChannels).Get([]byte(ev.Channel)))
			c = &cc
			counters[ev.Channel] = c
		}
		c.events++
		c.bytes += uint64(len(it.value))
		c.lastSeq = ev.Seq
		c.lastLamport = max(c.lastLamport, ev.Lamport)
		if it.advance {
			chains[chainKey(ev.Origin, ev.Channel)] = append(u64(ev.OriginSeq), it.hash[:]...)
		}
		if it.gapTo != 0 {
			if err := tx.Bucket(bHoles).Put(holeKey(ev.Origin, ev.Channel, it.gapFrom), u64(it.gapTo)); err != nil {
				return err
			}
		}
		if it.fill {
			if err := fillHole(tx.Bucket(bHoles), ev.Origin, ev.Channel, ev.OriginSeq); err != nil {
				return err
			}
		}
		if it.fork {
			fo := tx.Bucket(bForkOrigins)
			if err := fo.Put([]byte(ev.Origin), u64(getU64(fo.Get([]byte(ev.Origin)))+1)); err != nil {
				return err
			}
		}
		if it.rej != nil {
			if err := l.putRejection(tx, it.rej); err != nil {
				return err
			}
		}
	}
	for k, v := range chains {
		if err := tx.Bucket(bChains).Put([]byte(k), v); err != nil {
			return err
		}
	}
	for ch, c := range counters {
		if err := tx.Bucket(bChannels).Put([]byte(ch), c.encode()); err != nil {
			return err
		}
	}
	if err := l.writeCursors(tx, cursors); err != nil {
		return err
	}
	if err := meta.Put(kHead, u64(head)); err != nil {
		return err
	}
	return meta.Put(kLamport, u64(lamport))
}

func (l *Log) putRejection(tx *bolt.Tx, r *Rejection) error {
	b := tx.Bucket(bRejections)
	n, err := b.NextSequence()
	if err != nil {
		return err
	}
	r.N = n
	v, err := msgpack.Marshal(r)
	if err != nil {
		return err
	}
	b.FillPercent = 1.0
	if err := b.Put(u64(n), v); err != nil {
		return err
	}
	// Keep the newest maxRej records: a peer sending garbage must not grow
	// the file without bound.
	if n > uint64(l.maxRej) {
		return b.Delete(u64(n - uint64(l.maxRej)))
	}
	return nil
}

func holeKey(origin, channel string, first uint64) []byte { return slotKey(origin, channel, first) }

// fillHole removes originSeq from the hole range that holds it, splitting the
// range when originSeq is inside it.
func fillHole(holes *bolt.Bucket, origin, channel string, s uint64) error {
	prefix := holeKey(origin, channel, 0)
	prefix = prefix[:len(prefix)-8]
	c := holes.Cursor()
	k, v := c.Seek(holeKey(origin, channel, s))
	if k == nil || !bytes.Equal(k, holeKey(origin, channel, s)) {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
		return nil
	}
	first, last := getU64(k[len(prefix):]), getU64(v)
	if s < first || s > last {
		return nil
	}
	if err := holes.Delete(holeKey(origin, channel, first)); err != nil {
		return err
	}
	if s > first {
		if err := holes.Put(holeKey(origin, channel, first), u64(s-1)); err != nil {
			return err
		}
	}
	if s < last {
		return holes.Put(holeKey(origin, channel, s+1), u64(last))
	}
	return nil
}
