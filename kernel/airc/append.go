package airc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// IngestOutcome says what Ingest did with a foreign event.
type IngestOutcome uint8

const (
	// IngestAppended: stored; it was the next event of its origin's chain on
	// its channel (originSeq = high-water+1, prev = hash of the high-water event).
	IngestAppended IngestOutcome = iota + 1
	// IngestDuplicate: (origin, id) was already in the log; nothing stored.
	IngestDuplicate
	// IngestGap: stored, but originSeq skipped ahead of the high-water; the
	// missing originSeqs are recorded as a hole (see Holes) for replication to
	// fetch, and the high-water moves to this event.
	IngestGap
	// IngestFilled: stored; it filled part of a recorded hole, and its prev
	// matched its stored neighbours.
	IngestFilled
	// IngestFork: stored next to a conflicting, validly signed event of the
	// same origin at the same (channel, originSeq), or with a prev that does
	// not match the stored predecessor. Neither is overwritten; the origin is
	// flagged (ForkedOrigins) and a RejectFork record names the new event's
	// seq. The chain's high-water stays on the first-seen branch.
	IngestFork
	// IngestRejected: refused; err is a *RejectError and a Rejection is
	// recorded.
	IngestRejected
)

func (o IngestOutcome) String() string {
	switch o {
	case IngestAppended:
		return "appended"
	case IngestDuplicate:
		return "duplicate"
	case IngestGap:
		return "gap"
	case IngestFilled:
		return "filled"
	case IngestFork:
		return "fork"
	case IngestRejected:
		return "rejected"
	}
	return fmt.Sprintf("IngestOutcome(%d)", uint8(o))
}

// RejectReason is the typed reason recorded for a refused (or, for
// RejectFork, flagged) foreign event.
type RejectReason string

const (
	// RejectMalformed: a field is missing or out of shape (origin not a peer
	// id, prev or sig of the wrong size, originSeq or lamport 0, a payload
	// with no canonical encoding). Checked before the signature, because the
	// signature cannot be checked without them.
	RejectMalformed RejectReason = "malformed"
	// RejectBadSignature: sig does not verify against the origin's key.
	RejectBadSignature RejectReason = "bad_signature"
	// RejectLamportBound: lamport above MaxLamport, or further ahead of the
	// local clock than Options.MaxLamportSkew.
	RejectLamportBound RejectReason = "lamport_bound"
	// RejectFork marks a fork: the event was kept (Rejection.Kept is its seq),
	// but it conflicts with another event of its origin.
	RejectFork RejectReason = "fork"
)

// RejectError is the error Ingest returns for a refused event. It unwraps to
// an *api.Error with code invalid_argument.
type RejectError struct {
	Reason RejectReason
	Detail string
}

func (e *RejectError) Error() string {
	return "airc: event refused (" + string(e.Reason) + "): " + e.Detail
}

// Unwrap gives the wire error, so api.CodeOf reports invalid_argument.
func (e *RejectError) Unwrap() error {
	return api.Errorf(api.CodeInvalidArgument, "event refused (%s): %s", e.Reason, e.Detail)
}

// Rejection is the stored record of a refused or forked foreign event. The
// event fields are as the event claimed them: for a bad signature they are
// not to be trusted.
type Rejection struct {
	N         uint64       `msgpack:"n" json:"n"`   // record number, increasing
	At        int64        `msgpack:"at" json:"at"` // unix ms when recorded
	Reason    RejectReason `msgpack:"reason" json:"reason"`
	Detail    string       `msgpack:"detail" json:"detail"`
	Origin    string       `msgpack:"origin" json:"origin"`
	ID        string       `msgpack:"id" json:"id"`
	Channel   string       `msgpack:"channel" json:"channel"`
	OriginSeq uint64       `msgpack:"originSeq" json:"originSeq"`
	Lamport   uint64       `msgpack:"lamport" json:"lamport"`
	Kept      uint64       `msgpack:"kept,omitempty" json:"kept,omitempty"` // seq of the kept event (forks)
}

func errClosed() error { return api.Errorf(api.CodeUnavailable, "airc: the log is closed") }

// Append logs a local broadcast event and returns it as stored, once the
// transaction holding it is fsync'd.
//
// The caller sets Class, Channel (non-empty: only broadcast events are
// logged), Sender, SchemaVersion, Headers, Payload and optionally ID. The log
// stamps ID (a ULID when empty), Origin (this install), OriginSeq, Prev,
// Lamport (clock+1), TS (now), Seq and Sig, overwriting whatever the caller
// put there. The returned event's Payload is the canonical msgpack
// (msgpack.RawMessage); read it with api.Event.DecodePayload.
//
// If (this origin, ID) is already logged or queued, Append stores nothing and
// returns the stored event with duplicate true — also when both appends are in
// the same group commit. (If retention already dropped that event, the
// returned event carries only ID, Origin and Seq.)
//
// Errors: invalid_argument for a malformed event (nothing queued); unavailable
// when the log is closed or the commit failed (nothing of it written); a
// context error if ctx ends first, in which case the event may still be
// committed — retry with the same ID to find out.
func (l *Log) Append(ctx context.Context, ev api.Event) (api.Event, bool, error) {
	return l.appendSigned(ctx, ev, l.id)
}

// AppendAs is Append with another local origin: the event is stamped and
// signed as signer (its Origin is signer's peer id, its OriginSeq and Prev
// continue signer's own chain on the channel, and dedupe is by (signer, ID)),
// so any peer verifies it against signer's key through Ingest, exactly as it
// verifies this install's events. The kernel's personas post this way.
//
// signer's chains are single-writer like the install's own: only one log may
// ever append as a given signer, or its chain forks at every peer that holds
// both histories. A nil signer is this install's own (Append).
func (l *Log) AppendAs(ctx context.Context, ev api.Event, signer *identity.Identity) (api.Event, bool, error) {
	if signer == nil {
		signer = l.id
	}
	return l.appendSigned(ctx, ev, signer)
}

func (l *Log) appendSigned(ctx context.Context, ev api.Event, signer *identity.Identity) (api.Event, bool, error) {
	origin := signer.PeerID()
	if err := ctx.Err(); err != nil {
		return api.Event{}, false, err
	}
	if err := checkLocal(&ev); err != nil {
		return api.Event{}, false, api.Errorf(api.CodeInvalidArgument, "airc: %v", err)
	}
	payload, err := CanonicalPayload(ev.Payload)
	if err != nil {
		return api.Event{}, false, api.Errorf(api.CodeInvalidArgument, "airc: %v", err)
	}
	generated := ev.ID == ""
	if generated {
		ev.ID = NewID(l.now())
	}
	ev.Origin = origin
	ev.Payload = msgpack.RawMessage(payload)
	ev.Sig = nil
	it := &item{kind: kindEvent, ready: make(chan struct{}), done: make(chan struct{})}
	var signing []byte

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return api.Event{}, false, errClosed()
	}
	ik := idKey(origin, ev.ID)
	if !generated { // a fresh ULID cannot be a duplicate
		if dup, stored, err := l.lookupLocked(ik); err != nil || dup != nil || stored != nil {
			l.mu.Unlock()
			return l.answerDuplicate(ctx, dup, stored, err)
		}
	}
	ch, err := l.chainLocked(origin, ev.Channel)
	if err != nil {
		l.mu.Unlock()
		return api.Event{}, false, unavailable("read chain", err)
	}
	if l.clock >= MaxLamport {
		l.mu.Unlock()
		return api.Event{}, false, api.Errorf(api.CodeResourceExhausted, "airc: the lamport clock is at 2^53-1")
	}
	ev.OriginSeq = ch.hw + 1
	ev.Prev = append([]byte(nil), ch.tip[:]...)
	ev.Lamport = l.clock + 1
	ev.TS = l.now().UnixMilli()
	ev.Seq = l.nextSeq
	// The signed bytes exclude the signature, so the hash (and the next
	// event's prev) is known now and the costly signing can happen outside
	// the lock, in parallel with other appenders.
	signing = make([]byte, 0, len(SigningDomain)+signingFixed+len(ev.ID)+len(ev.Class)+len(ev.Channel)+len(ev.Origin)+len(ev.Sender)+len(ev.SchemaVersion)+len(payload))
	signing, err = appendCanonical(append(signing, SigningDomain...), &ev, payload)
	if err != nil {
		l.mu.Unlock()
		return api.Event{}, false, api.Errorf(api.CodeInvalidArgument, "airc: %v", err)
	}
	it.hash = sha256.Sum256(signing)
	it.advance, it.lazy = true, true
	ch.hw, ch.tip = ev.OriginSeq, it.hash
	l.clock = ev.Lamport
	l.nextSeq++
	it.ev = ev
	l.pendingID[string(ik)] = it
	l.pendingSlot[string(slotKey(ev.Origin, ev.Channel, ev.OriginSeq))] = it
	l.enqueue(it)
	l.mu.Unlock()

	// Nothing may return between enqueue and close(ready): the commit
	// goroutine waits for ready.
	it.ev.Sig = signer.Sign(signing)
	it.value, err = encodeEvent(&it.ev)
	close(ready(it, err))
	if err := waitItem(ctx, it); err != nil {
		return api.Event{}, false, err
	}
	return it.ev, false, nil
}

// signingFixed bounds the canonical encoding's bytes besides the strings and
// the payload (headers with a few entries included), so the signed bytes are
// built in one allocation under mu rather than regrown there.
const signingFixed = 160

// ready records an encoding failure (which would be a bug: every field was
// checked) so the commit refuses the item instead of writing garbage.
func ready(it *item, err error) chan struct{} {
	if err != nil {
		it.value = nil
	}
	return it.ready
}

// answerDuplicate answers an append whose (origin, id) is queued (dup) or
// stored (stored).
func (l *Log) answerDuplicate(ctx context.Context, dup *item, stored *api.Event, err error) (api.Event, bool, error) {
	if err != nil {
		return api.Event{}, false, unavailable("dedupe lookup", err)
	}
	if stored != nil {
		return *stored, true, nil
	}
	if err := waitItem(ctx, dup); err != nil {
		return api.Event{}, false, err
	}
	return dup.ev, true, nil
}

// lookupLocked finds (origin, id) among queued events, then in the file. mu
// must be held: checking the queue first and the file second under mu never
// misses an event that is committed in between, because the commit goroutine
// drops it from the queue index only after the commit, under mu.
func (l *Log) lookupLocked(ik []byte) (*item, *api.Event, error) {
	if it := l.pendingID[string(ik)]; it != nil {
		return it, nil, nil
	}
	var (
		ev    *api.Event
		found bool
	)
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bIDs).Get(ik)
		if v == nil {
			return nil
		}
		found = true
		seq := getU64(v)
		raw := tx.Bucket(bEvents).Get(u64(seq))
		if raw == nil { // dropped by retention; the index stays so it is not taken in again
			origin, id, _ := bytes.Cut(ik, []byte{0})
			ev = &api.Event{ID: string(id), Origin: string(origin), Seq: seq}
			return nil
		}
		e, err := decodeEvent(raw)
		ev = &e
		return err
	})
	if err != nil || !found {
		return nil, nil, err
	}
	return nil, ev, nil
}

// chainLocked returns the admission state of (origin, channel), loading it
// from the file on first use. mu must be held.
func (l *Log) chainLocked(origin, channel string) (*chain, error) {
	k := chainKey(origin, channel)
	if c := l.chains[k]; c != nil {
		return c, nil
	}
	c := &chain{}
	err := l.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bChains).Get([]byte(k)); len(v) == 8+HashSize {
			c.hw = getU64(v)
			copy(c.tip[:], v[8:])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.chains[k] = c
	return c, nil
}

func checkLocal(ev *api.Event) error {
	if ev.Class == "" || len(ev.Class) > MaxClassLen {
		return fmt.Errorf("class must be 1 to %d bytes", MaxClassLen)
	}
	if ev.Channel == "" {
		return errors.New("channel is empty: the airc log holds broadcast events only")
	}
	if err := checkName("channel", ev.Channel, MaxChannelLen); err != nil {
		return err
	}
	if ev.ID != "" {
		if err := checkName("id", ev.ID, MaxIDLen); err != nil {
			return err
		}
	}
	return nil
}

// Ingest takes a foreign, already-signed event (replication calls it) and
// returns it as stored with what was done.
//
// Checks, in order: shape (RejectMalformed); the signature against the key
// in the origin's peer id, before anything else of the event is trusted
// (RejectBadSignature); dedupe by (origin, id) (IngestDuplicate, nothing
// stored); lamport ≤ MaxLamport and ≤ clock+MaxLamportSkew
// (RejectLamportBound); then the origin's chain on the channel decides between
// IngestAppended, IngestGap, IngestFilled and IngestFork (see those). A
// refusal is recorded with its reason and returned as a *RejectError with
// IngestRejected; it never blocks later events. The incoming Seq is ignored;
// the event gets this log's next seq. A stored event moves the clock to
// max(clock, lamport) and keeps its own lamport.
//
// Like Append it returns once the transaction holding the event (or the
// rejection record) is fsync'd; unavailable if that commit failed.
func (l *Log) Ingest(ctx context.Context, ev api.Event) (api.Event, IngestOutcome, error) {
	if err := ctx.Err(); err != nil {
		return api.Event{}, 0, err
	}
	f := prepareForeign(ev)
	return l.finishForeign(ctx, l.admitForeign(&f))
}

// foreign is a received event after the checks that need no log state:
// shape, canonical payload, signature. reason is set when one failed.
type foreign struct {
	ev      api.Event
	payload []byte
	hash    Hash
	reason  RejectReason
	detail  string
}

// prepareForeign runs the stateless checks of Ingest. It touches nothing of
// the log, so IngestBatch runs it in parallel.
func prepareForeign(ev api.Event) foreign {
	ev.Seq = 0
	f := foreign{ev: ev}
	if reason, detail := checkForeign(&f.ev); reason != "" {
		f.reason, f.detail = reason, detail
		return f
	}
	payload, err := CanonicalPayload(f.ev.Payload)
	if err != nil {
		f.reason, f.detail = RejectMalformed, err.Error()
		return f
	}
	signing, err := appendCanonical([]byte(SigningDomain), &f.ev, payload)
	if err != nil {
		f.reason, f.detail = RejectMalformed, err.Error()
		return f
	}
	if !identity.Verify(f.ev.Origin, signing, f.ev.Sig) {
		f.reason, f.detail = RejectBadSignature, "sig does not verify against the origin's key"
		return f
	}
	f.ev.Payload = msgpack.RawMessage(payload)
	f.payload = payload
	f.hash = sha256.Sum256(signing)
	return f
}

// admitted is a foreign event queued for commit (or answered without one):
// what finishForeign waits for.
type admitted struct {
	it      *item // the queued event or rejection record
	outcome IngestOutcome
	rej     *RejectError // set for a queued rejection record
	dup     *item        // a queued event with the same (origin, id)
	stored  *api.Event   // a stored event with the same (origin, id)
	err     error        // answered at once (closed, store error)
}

// admitForeign decides a prepared event against the log's state and queues
// it (or its rejection record) without waiting for the commit. Events
// admitted one after another are decided in that order, so a batch of one
// origin's chain admitted in originSeq order appends without gaps.
func (l *Log) admitForeign(f *foreign) admitted {
	if f.reason != "" {
		return l.queueRejection(&f.ev, f.reason, f.detail)
	}
	ev := f.ev
	hash := f.hash
	it := &item{kind: kindEvent, hash: hash, ready: make(chan struct{}), done: make(chan struct{})}

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return admitted{err: errClosed()}
	}
	view := &liveView{l: l}
	vd, err := admit(view, &ev, hash, l.clock, l.skew)
	if err != nil {
		l.mu.Unlock()
		return admitted{err: unavailable("admission read", err)}
	}
	switch vd.outcome {
	case IngestDuplicate:
		l.mu.Unlock()
		return admitted{outcome: IngestDuplicate, dup: view.dup, stored: view.stored}
	case IngestRejected:
		l.mu.Unlock()
		return l.queueRejection(&ev, vd.refuse, vd.detail)
	}
	it.advance, it.fork, it.fill, it.gapFrom, it.gapTo = vd.advance, vd.fork, vd.fill, vd.gapFrom, vd.gapTo
	if vd.fork {
		it.rej = &Rejection{Reason: RejectFork, Detail: vd.detail}
	}
	ik := idKey(ev.Origin, ev.ID)
	if it.advance {
		ch, _ := l.chainLocked(ev.Origin, ev.Channel) // loaded by admit: a map lookup
		ch.hw, ch.tip = ev.OriginSeq, hash
	}
	if it.rej != nil {
		l.fillRejection(it.rej, &ev)
		it.rej.Kept = l.nextSeq
	}
	ev.Seq = l.nextSeq
	l.nextSeq++
	l.clock = max(l.clock, ev.Lamport)
	it.ev = ev
	l.pendingID[string(ik)] = it
	if sk := string(slotKey(ev.Origin, ev.Channel, ev.OriginSeq)); !it.fork && l.pendingSlot[sk] == nil {
		l.pendingSlot[sk] = it // a fork never takes a slot (see write)
	}
	l.enqueue(it)
	l.mu.Unlock()

	it.value, err = encodeEvent(&it.ev)
	close(ready(it, err))
	return admitted{it: it, outcome: vd.outcome}
}

// finishForeign waits for an admitted event's commit and answers as Ingest.
func (l *Log) finishForeign(ctx context.Context, a admitted) (api.Event, IngestOutcome, error) {
	switch {
	case a.err != nil:
		return api.Event{}, 0, a.err
	case a.outcome == IngestDuplicate:
		e, _, err := l.answerDuplicate(ctx, a.dup, a.stored, nil)
		if err != nil {
			return api.Event{}, 0, err
		}
		return e, IngestDuplicate, nil
	}
	if err := waitItem(ctx, a.it); err != nil {
		return api.Event{}, 0, err
	}
	if a.rej != nil {
		return api.Event{}, IngestRejected, a.rej
	}
	if a.it.fork {
		ev := &a.it.ev
		l.log.Warn("airc: fork detected; both events kept and the origin flagged",
			"origin", ev.Origin, "channel", ev.Channel, "originSeq", ev.OriginSeq, "seq", ev.Seq, "detail", a.it.rej.Detail)
	}
	return a.it.ev, a.outcome, nil
}

// slotInfo is what the slot index holds for an event: its seq, hash and prev.
type slotInfo struct {
	seq  uint64
	hash Hash
	prev []byte
}

// slotLocked reads (origin, channel, originSeq) from the queue or the file.
func (l *Log) slotLocked(tx *bolt.Tx, origin, channel string, originSeq uint64) (slotInfo, bool) {
	k := slotKey(origin, channel, originSeq)
	if it := l.pendingSlot[string(k)]; it != nil {
		return slotInfo{it.ev.Seq, it.hash, it.ev.Prev}, true
	}
	v := tx.Bucket(bSlots).Get(k)
	if len(v) != 8+2*HashSize {
		return slotInfo{}, false
	}
	s := slotInfo{seq: getU64(v), prev: clone(v[8+HashSize:])}
	copy(s.hash[:], v[8:])
	return s, true
}

func (l *Log) fillRejection(r *Rejection, ev *api.Event) {
	r.At = l.now().UnixMilli()
	r.Origin, r.ID, r.Channel, r.OriginSeq, r.Lamport = ev.Origin, ev.ID, ev.Channel, ev.OriginSeq, ev.Lamport
}

// queueRejection queues the record of a refusal; finishForeign waits for
// its commit and returns the *RejectError.
func (l *Log) queueRejection(ev *api.Event, reason RejectReason, detail string) admitted {
	rej := &Rejection{Reason: reason, Detail: detail}
	l.fillRejection(rej, ev)
	l.log.Warn("airc: refused a received event", "reason", reason, "origin", ev.Origin, "id", ev.ID, "channel", ev.Channel, "detail", detail)
	it := &item{kind: kindRejection, rej: rej, ready: make(chan struct{}), done: make(chan struct{})}
	close(it.ready)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return admitted{err: errClosed()}
	}
	l.enqueue(it)
	l.mu.Unlock()
	return admitted{it: it, outcome: IngestRejected, rej: &RejectError{Reason: reason, Detail: detail}}
}

// checkForeign checks what must hold before the signature can be checked.
func checkForeign(ev *api.Event) (RejectReason, string) {
	if !identity.ValidPeerID(ev.Origin) {
		return RejectMalformed, fmt.Sprintf("origin %q is not a peer id", ev.Origin)
	}
	if err := checkName("id", ev.ID, MaxIDLen); err != nil {
		return RejectMalformed, err.Error()
	}
	if err := checkName("channel", ev.Channel, MaxChannelLen); err != nil {
		return RejectMalformed, err.Error()
	}
	if ev.Class == "" || len(ev.Class) > MaxClassLen {
		return RejectMalformed, fmt.Sprintf("class must be 1 to %d bytes", MaxClassLen)
	}
	switch {
	case ev.OriginSeq == 0:
		return RejectMalformed, "originSeq is 0"
	case ev.Lamport == 0:
		return RejectMalformed, "lamport is 0"
	case len(ev.Prev) != HashSize:
		return RejectMalformed, fmt.Sprintf("prev is %d bytes, want %d", len(ev.Prev), HashSize)
	case len(ev.Sig) != 64:
		return RejectMalformed, fmt.Sprintf("sig is %d bytes, want 64", len(ev.Sig))
	}
	return "", ""
}
