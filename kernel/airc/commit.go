package airc

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/continuum-grid/continuum/api"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

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
