package airc

import (
	"bytes"
	"fmt"

	"github.com/continuum-grid/continuum/api"
	bolt "go.etcd.io/bbolt"
)

// The admission rule for a received event, as a pure function: what the log
// does with a validly signed foreign event given what it already holds. It
// reads the log only through admissionView, so it is tested by tables of
// states and events (admission_test.go) with no bbolt file and no commit
// loop; Ingest feeds it the queue and the file under the admission lock.

// admissionView is what the rule reads: the dedupe index, the chain heads and
// the slots, each including what is queued but not committed yet.
type admissionView interface {
	// seen reports whether (origin, id) is queued or stored.
	seen(origin, id string) (bool, error)
	// chain is (origin, channel)'s high-water originSeq and the hash of the
	// event there (zero values for a chain never seen).
	chain(origin, channel string) (hw uint64, tip Hash, err error)
	// slot is the event held at (origin, channel, originSeq), if any.
	slot(origin, channel string, originSeq uint64) (slotInfo, bool, error)
}

// verdict is what admission decided for one event.
type verdict struct {
	outcome IngestOutcome
	// refuse is set when the event is refused (outcome IngestRejected): the
	// reason and detail recorded.
	refuse RejectReason
	detail string
	// effects of a stored event on the chain and hole indexes
	advance bool   // the chain's high-water moves to this event
	gapFrom uint64 // hole [gapFrom, gapTo] recorded when gapTo != 0
	gapTo   uint64
	fill    bool // it fills a recorded hole
	fork    bool // stored next to a conflicting event: flag the origin (detail says why)
}

// admit decides ev, whose signature has been checked and whose hash is
// hash, against v, with the local lamport clock and the allowed skew. The
// rules, in order (docs/PROTOCOL.md, docs/GRID.md "Replication"):
//  1. (origin, id) already held → duplicate; nothing is stored.
//  2. lamport above MaxLamport, or more than skew ahead of clock → refused
//     (lamport_bound), so one poisoned event cannot drag every clock up.
//  3. originSeq = high-water+1 with prev = the high-water's hash → appended;
//     the same originSeq with another prev → a fork, kept beside the chain.
//  4. originSeq beyond high-water+1 → stored, the skipped originSeqs become
//     a hole, the high-water moves.
//  5. at or below the high-water: a held slot → a fork (the same hash would
//     have had the same id); an empty slot fills a hole, and must link to
//     the neighbours held on both sides, or it is a fork.
func admit(v admissionView, ev *api.Event, hash Hash, clock, skew uint64) (verdict, error) {
	if dup, err := v.seen(ev.Origin, ev.ID); err != nil || dup {
		return verdict{outcome: IngestDuplicate}, err
	}
	if ev.Lamport > MaxLamport || ev.Lamport > clock && ev.Lamport-clock > skew { // no overflow for any skew
		return verdict{outcome: IngestRejected, refuse: RejectLamportBound,
			detail: fmt.Sprintf("lamport %d is beyond the bound (clock %d, skew %d, ceiling 2^53-1)", ev.Lamport, clock, skew)}, nil
	}
	hw, tip, err := v.chain(ev.Origin, ev.Channel)
	if err != nil {
		return verdict{}, err
	}
	switch {
	case ev.OriginSeq == hw+1 && bytes.Equal(ev.Prev, tip[:]):
		return verdict{outcome: IngestAppended, advance: true}, nil
	case ev.OriginSeq == hw+1:
		return verdict{outcome: IngestFork, fork: true, detail: fmt.Sprintf("prev does not match the hash of originSeq %d", hw)}, nil
	case ev.OriginSeq > hw+1:
		return verdict{outcome: IngestGap, advance: true, gapFrom: hw + 1, gapTo: ev.OriginSeq - 1}, nil
	}
	return admitBelow(v, ev, hash)
}

// admitBelow is rule 5: an event at or below its chain's high-water.
func admitBelow(v admissionView, ev *api.Event, hash Hash) (verdict, error) {
	fork := func(format string, args ...any) (verdict, error) {
		return verdict{outcome: IngestFork, fork: true, detail: fmt.Sprintf(format, args...)}, nil
	}
	if s, ok, err := v.slot(ev.Origin, ev.Channel, ev.OriginSeq); err != nil {
		return verdict{}, err
	} else if ok {
		return fork("another event (seq %d, hash %x) holds originSeq %d", s.seq, s.hash[:8], ev.OriginSeq)
	}
	if ev.OriginSeq > 1 {
		if p, ok, err := v.slot(ev.Origin, ev.Channel, ev.OriginSeq-1); err != nil {
			return verdict{}, err
		} else if ok && !bytes.Equal(p.hash[:], ev.Prev) {
			return fork("prev does not match the stored originSeq %d (seq %d)", ev.OriginSeq-1, p.seq)
		}
	} else if !bytes.Equal(ev.Prev, zeroHash[:]) {
		return fork("originSeq 1 with a non-zero prev")
	}
	if n, ok, err := v.slot(ev.Origin, ev.Channel, ev.OriginSeq+1); err != nil {
		return verdict{}, err
	} else if ok && !bytes.Equal(n.prev, hash[:]) {
		return fork("the stored originSeq %d (seq %d) does not link to it", ev.OriginSeq+1, n.seq)
	}
	return verdict{outcome: IngestFilled, fill: true}, nil
}

// liveView is the admission view of the running log: the queue first, then
// the file. mu must be held while it is used. seen keeps what it found, so
// that a duplicate is answered with it.
type liveView struct {
	l      *Log
	dup    *item      // a queued event with the (origin, id) asked
	stored *api.Event // a stored one
}

var _ admissionView = (*liveView)(nil)

func (v *liveView) seen(origin, id string) (bool, error) {
	dup, stored, err := v.l.lookupLocked(idKey(origin, id))
	v.dup, v.stored = dup, stored
	return dup != nil || stored != nil, err
}

func (v *liveView) chain(origin, channel string) (uint64, Hash, error) {
	c, err := v.l.chainLocked(origin, channel)
	if err != nil {
		return 0, Hash{}, err
	}
	return c.hw, c.tip, nil
}

func (v *liveView) slot(origin, channel string, originSeq uint64) (s slotInfo, ok bool, err error) {
	err = v.l.db.View(func(tx *bolt.Tx) error {
		s, ok = v.l.slotLocked(tx, origin, channel, originSeq)
		return nil
	})
	return s, ok, err
}
