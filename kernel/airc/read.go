package airc

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"slices"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// Limits of the read methods.
const (
	DefaultReadLimit   = 100
	MaxReadLimit       = 10000
	DefaultReplayLimit = 100
	MaxReplayLimit     = 500
)

// ReplayEnd, passed as Replay's before, pages back from the newest event.
const ReplayEnd = "end"

// Read returns up to limit committed events with seq > afterSeq, in seq
// order (limit ≤ 0 means DefaultReadLimit; above MaxReadLimit is cut to it).
// Subscriptions from "start" or a seq, and durable cursors, read through it.
// Seqs dropped by retention are skipped.
func (l *Log) Read(afterSeq uint64, limit int) ([]api.Event, error) {
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	limit = min(limit, MaxReadLimit)
	// Never show a seq past the committed head: a concurrent commit's events
	// are visible to readers only once OnCommit has been told, which keeps
	// Read-then-live delivery free of gaps and reordering.
	head := l.head.Load()
	var out []api.Event
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		for k, v := c.Seek(u64(afterSeq + 1)); k != nil && len(out) < limit && getU64(k) <= head; k, v = c.Next() {
			ev, err := decodeEvent(v)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// ReadEncoded is Read without decoding: it calls fn with the stored
// envelope of each committed event with seq > afterSeq, in seq order, up to
// limit events (the same limits as Read), and returns the seq of the last
// event it visited (afterSeq when none). The envelope is the msgpack map of
// api.Event as api.AppendEvent writes it (files from before that may hold
// integers at full width, which every reader takes), so it goes on the wire
// as it is. It is valid only during the call (bbolt memory):
// copy what you keep. An error from fn stops the read and is returned.
// Log tailers read through it, filtering with api.PeekEvent, so a replayed
// event is neither decoded nor encoded again in the daemon.
func (l *Log) ReadEncoded(afterSeq uint64, limit int, fn func(seq uint64, env []byte) error) (uint64, error) {
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	limit = min(limit, MaxReadLimit)
	head := l.head.Load() // as in Read: never past the committed head
	last := afterSeq
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		n := 0
		for k, v := c.Seek(u64(afterSeq + 1)); k != nil && n < limit; k, v = c.Next() {
			seq := getU64(k)
			if seq > head {
				break
			}
			if err := fn(seq, v); err != nil {
				return err
			}
			last = seq
			n++
		}
		return nil
	})
	return last, err
}

// Get returns the event (origin, id) if it is in the log.
func (l *Log) Get(origin, id string) (api.Event, bool, error) {
	if ev, ok := l.unindexedEvent(origin, id); ok { // its dedupe entry is not written yet
		return ev, true, nil
	}
	var (
		ev    api.Event
		found bool
	)
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bIDs).Get(idKey(origin, id))
		if v == nil {
			return nil
		}
		raw := tx.Bucket(bEvents).Get(v)
		if raw == nil {
			return nil
		}
		var err error
		ev, err = decodeEvent(raw)
		found = err == nil
		return err
	})
	return ev, found, err
}

// Replay pages through a channel in transcript order (lamport, id). With after
// it returns the events after that cursor, ascending; with before, the events
// before it (ReplayEnd: the newest), still in ascending order; with neither,
// the first page. next is the cursor to pass as the same argument for the
// following page in that direction, or "" when there is none. Cursors are
// opaque strings; limit ≤ 0 means DefaultReplayLimit, above MaxReplayLimit is
// invalid_argument.
func (l *Log) Replay(channel, after, before string, limit int) ([]api.Event, string, error) {
	if after != "" && before != "" {
		return nil, "", api.Errorf(api.CodeInvalidArgument, "airc: replay takes after or before, not both")
	}
	if limit > MaxReplayLimit {
		return nil, "", api.Errorf(api.CodeInvalidArgument, "airc: replay limit %d is above %d", limit, MaxReplayLimit)
	}
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	var from []byte
	for _, cur := range []string{after, before} {
		if cur == "" || cur == ReplayEnd && cur == before {
			continue
		}
		k, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil || len(k) < 10 {
			return nil, "", api.Errorf(api.CodeInvalidArgument, "airc: %q is not a replay cursor", cur)
		}
		from = k
	}
	// The transcript entries of the newest local events may still be in
	// memory (see indexEvery): write them first, when one of them is on
	// this channel. An event committed after this check may be missed, as
	// it may be by a read that began a moment earlier.
	if l.unindexedOn(channel) {
		if err := l.syncIndex(context.Background()); err != nil {
			return nil, "", err
		}
	}
	var (
		out  []api.Event
		next string
	)
	err := l.db.View(func(tx *bolt.Tx) error {
		sub := tx.Bucket(bTranscript).Bucket([]byte(channel))
		if sub == nil {
			return nil
		}
		events := tx.Bucket(bEvents)
		c := sub.Cursor()
		var k, v []byte
		step := c.Next
		switch {
		case before == ReplayEnd:
			k, v = c.Last()
			step = c.Prev
		case before != "":
			if k, v = c.Seek(from); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
			step = c.Prev
		case after != "":
			if k, v = c.Seek(from); k != nil && bytes.Equal(k, from) {
				k, v = c.Next()
			}
		default:
			k, v = c.First()
		}
		var last []byte
		for ; k != nil && len(out) < limit; k, v = step() {
			raw := events.Get(v[:8])
			if raw == nil {
				continue // only if retention and the index disagree; skip rather than fail
			}
			ev, err := decodeEvent(raw)
			if err != nil {
				return err
			}
			out = append(out, ev)
			last = k
		}
		if k != nil && last != nil {
			next = base64.RawURLEncoding.EncodeToString(last)
		}
		return nil
	})
	if before != "" {
		slices.Reverse(out)
	}
	return out, next, err
}

// unindexedOn reports whether a committed event on channel still has its
// index entries in memory. Replay forces them out only then: a page of a
// quiet room costs no commit (and no fsync) while another room is busy.
func (l *Log) unindexedOn(channel string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, it := range l.unindexed {
		if it.ev.Channel == channel {
			return true
		}
	}
	return false
}

// ReplayCursor is the cursor of ev's place in its channel's transcript, for
// Replay's after or before.
func ReplayCursor(ev *api.Event) string {
	return base64.RawURLEncoding.EncodeToString(transcriptKey(ev.Lamport, ev.ID, ev.Origin))
}

// ChannelStats are one channel's counters.
type ChannelStats struct {
	Events      uint64 `json:"events"`      // events stored now
	Bytes       uint64 `json:"bytes"`       // encoded envelope bytes stored now
	LastSeq     uint64 `json:"lastSeq"`     // seq of the newest event appended
	LastLamport uint64 `json:"lastLamport"` // highest lamport appended
}

// Stats describe the whole log.
type Stats struct {
	Head          uint64                  `json:"head"`
	Lamport       uint64                  `json:"lamport"`
	Epoch         uint64                  `json:"epoch"`
	Events        uint64                  `json:"events"`
	Bytes         uint64                  `json:"bytes"`
	Channels      map[string]ChannelStats `json:"channels"`
	Rejections    uint64                  `json:"rejections"` // records ever made (the bucket keeps the newest MaxRejections)
	ForkedOrigins int                     `json:"forkedOrigins"`
	FileBytes     int64                   `json:"fileBytes"` // size of the whole bbolt file
}

// Stats reads the counters.
func (l *Log) Stats() (Stats, error) {
	s := Stats{Head: l.Head(), Lamport: l.Lamport(), Epoch: l.Epoch(), Channels: map[string]ChannelStats{}}
	err := l.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bChannels).ForEach(func(k, v []byte) error {
			c := decodeCounters(v)
			s.Channels[string(k)] = ChannelStats{c.events, c.bytes, c.lastSeq, c.lastLamport}
			s.Events += c.events
			s.Bytes += c.bytes
			return nil
		})
		s.Rejections = tx.Bucket(bRejections).Sequence()
		s.ForkedOrigins = tx.Bucket(bForkOrigins).Stats().KeyN
		s.FileBytes = tx.Size()
		return err
	})
	if fi, err := os.Stat(l.db.Path()); err == nil {
		s.FileBytes = fi.Size()
	}
	return s, err
}

// HighWater returns, per origin and channel, the highest originSeq stored
// (holes below it are listed by Holes). Replication exchanges these.
func (l *Log) HighWater() (map[string]map[string]uint64, error) {
	out := map[string]map[string]uint64{}
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bChains).ForEach(func(k, v []byte) error {
			origin, channel, _ := bytes.Cut(k, []byte{0})
			m := out[string(origin)]
			if m == nil {
				m = map[string]uint64{}
				out[string(origin)] = m
			}
			m[string(channel)] = getU64(v)
			return nil
		})
	})
	return out, err
}

// Range is an inclusive range of originSeqs.
type Range struct{ First, Last uint64 }

// Holes lists the originSeqs of (origin, channel) below its high-water that
// were never received, in order.
func (l *Log) Holes(origin, channel string) ([]Range, error) {
	prefix := holeKey(origin, channel, 0)
	prefix = prefix[:len(prefix)-8]
	var out []Range
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bHoles).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) == len(prefix)+8 {
				out = append(out, Range{getU64(k[len(prefix):]), getU64(v)})
			}
		}
		return nil
	})
	return out, err
}

// Rejections returns up to limit records with N > after, oldest first.
func (l *Log) Rejections(after uint64, limit int) ([]Rejection, error) {
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	var out []Rejection
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRejections).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var r Rejection
			if err := msgpack.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("airc: corrupt rejection record: %w", err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// ForkedOrigins returns the origins flagged for forks, with the number of
// forked events kept for each.
func (l *Log) ForkedOrigins() (map[string]uint64, error) {
	out := map[string]uint64{}
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bForkOrigins).ForEach(func(k, v []byte) error {
			out[string(k)] = getU64(v)
			return nil
		})
	})
	return out, err
}

// Flush waits until everything queued before it (events, rejections, acks)
// is committed.
func (l *Log) Flush(ctx context.Context) error {
	it := &item{kind: kindBarrier, ready: make(chan struct{}), done: make(chan struct{})}
	close(it.ready)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed()
	}
	l.enqueue(it)
	l.mu.Unlock()
	return waitItem(ctx, it)
}
