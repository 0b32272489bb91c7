package airc

import (
	bolt "go.etcd.io/bbolt"

	"github.com/continuum-grid/continuum/api"
)

// Durable cursors: a name's last acknowledged seq, batched into the group
// commits (see Ack) and readable at every instant from Ack's return on.

// cursorUpdate is an ack (or a delete) waiting for its commit.
type cursorUpdate struct {
	seq uint64
	del bool
}

// Position is a durable cursor: the last acknowledged seq, and the epoch it
// was acknowledged in.
type Position struct {
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Ack advances the durable cursor name to seq (a lower seq than the stored
// one is ignored: cursors only move forward). Acks are batched: Ack returns
// at once and the cursor is written with the next group commit, which the
// commit goroutine starts right away, so it is on disk within about one
// fsync. A crash before that loses only the newest acks, which means events
// are delivered again — allowed, delivery is at-least-once. Flush waits for
// it.
func (l *Log) Ack(name string, seq uint64) error {
	if err := checkCursorName(name); err != nil {
		return err
	}
	if h := l.Head(); seq > h {
		return api.Errorf(api.CodeInvalidArgument, "airc: ack of seq %d beyond the head %d", seq, h)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed()
	}
	if u, ok := l.dirtyCursor[name]; !ok || u.del || u.seq < seq {
		l.dirtyCursor[name] = cursorUpdate{seq: seq}
	}
	l.signal()
	return nil
}

// DeleteCursor removes the durable cursor name (batched like Ack).
func (l *Log) DeleteCursor(name string) error {
	if err := checkCursorName(name); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed()
	}
	l.dirtyCursor[name] = cursorUpdate{del: true}
	l.signal()
	return nil
}

// checkCursorName refuses a name the cursors bucket cannot hold, before it
// joins a group commit that it would fail for everyone.
func checkCursorName(name string) error {
	if err := checkName("cursor name", name, MaxCursorLen); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "airc: %v", err)
	}
	return nil
}

// Cursor returns the durable cursor name, including an ack not yet written:
// an ack is readable at every instant from Ack's return on — waiting in
// dirtyCursor, then in committingCursor while its transaction runs, then in
// the file (it leaves committingCursor only after the commit). A cursor
// whose Epoch differs from Epoch() was written before the epoch was bumped:
// its seq may name different events now, so resume it from 0 (the
// subscriber dedupes by (origin, id)).
func (l *Log) Cursor(name string) (Position, bool, error) {
	if err := checkCursorName(name); err != nil {
		return Position{}, false, err
	}
	l.mu.Lock()
	u, dirty := l.dirtyCursor[name]
	if !dirty {
		u, dirty = l.committingCursor[name]
	}
	l.mu.Unlock()
	var (
		p  Position
		ok bool
	)
	err := l.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bCursors).Get([]byte(name)); len(v) == 16 {
			p, ok = Position{Epoch: getU64(v), Seq: getU64(v[8:])}, true
		}
		return nil
	})
	if dirty {
		switch {
		case u.del:
			return Position{}, false, err
		case !ok || p.Epoch != l.Epoch() || u.seq > p.Seq:
			p, ok = Position{Epoch: l.Epoch(), Seq: u.seq}, true
		}
	}
	return p, ok, err
}

func (l *Log) writeCursors(tx *bolt.Tx, cursors map[string]cursorUpdate) error {
	if len(cursors) == 0 {
		return nil
	}
	b := tx.Bucket(bCursors)
	epoch := getU64(tx.Bucket(bMeta).Get(kEpoch))
	for name, u := range cursors {
		// Ack refuses such names; one that got here anyway is dropped alone
		// (its events are delivered again) instead of failing the batch.
		if err := checkCursorName(name); err != nil {
			l.log.Error("airc: dropping an unwritable cursor", "err", err)
			continue
		}
		if u.del {
			if err := b.Delete([]byte(name)); err != nil {
				return err
			}
			continue
		}
		if v := b.Get([]byte(name)); len(v) == 16 && getU64(v) == epoch && getU64(v[8:]) > u.seq {
			continue
		}
		if err := b.Put([]byte(name), append(u64(epoch), u64(u.seq)...)); err != nil {
			return err
		}
	}
	return nil
}
