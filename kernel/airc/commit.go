package airc

import (
	"bytes"
	"encoding/binary"
	"errors"

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

// write puts one batch into tx. Any error rolls the whole batch back.
func (l *Log) write(tx *bolt.Tx, batch []*item, cursors map[string]cursorUpdate, head, lamport uint64) error {
	var (
		events     = tx.Bucket(bEvents)
		ids        = tx.Bucket(bIDs)
		slots      = tx.Bucket(bSlots)
		transcript = tx.Bucket(bTranscript)
		meta       = tx.Bucket(bMeta)
		counters   = map[string]*channelCounters{}
		chains     = map[string][]byte{}
		subs       = map[string]*bolt.Bucket{}
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
		seq := u64(ev.Seq)
		if err := events.Put(seq, it.value); err != nil {
			return err
		}
		if err := ids.Put(idKey(ev.Origin, ev.ID), seq); err != nil {
			return err
		}
		sk := slotKey(ev.Origin, ev.Channel, ev.OriginSeq)
		// A fork never takes a slot: the first-seen event keeps it, and a
		// fork that landed in a hole leaves the hole for the real event.
		if !it.fork && slots.Get(sk) == nil {
			sv := make([]byte, 0, 8+2*HashSize)
			sv = append(append(append(sv, seq...), it.hash[:]...), ev.Prev...)
			if err := slots.Put(sk, sv); err != nil {
				return err
			}
		}
		sub := subs[ev.Channel]
		if sub == nil {
			var err error
			if sub, err = transcript.CreateBucketIfNotExists([]byte(ev.Channel)); err != nil {
				return err
			}
			subs[ev.Channel] = sub
		}
		tv := binary.BigEndian.AppendUint64(append(make([]byte, 0, 16), seq...), uint64(ev.TS))
		if err := sub.Put(transcriptKey(ev.Lamport, ev.ID, ev.Origin), tv); err != nil {
			return err
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
