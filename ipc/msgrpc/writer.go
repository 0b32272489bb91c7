package msgrpc

import (
	"context"
	"errors"
	"sync"
)

// writer is a Conn's outgoing side: the write combiner. Whoever sends while
// nobody is writing takes the right to write and, before letting go, writes
// what other senders queued meanwhile, one flush per batch; those others only
// queue. The socket is only tried without waiting: what it will not take at
// once, and everything for a transport that cannot be tried (direct nil),
// goes to the writer goroutine (loop) together with the right to write, so
// no sender waits on the peer beyond the bounded queue.
//
// Its only ties to the rest of the connection are done (closed when the
// connection closes) and fail (which closes it, after a write error or once a
// close marker is written).
type writer struct {
	t         Transport
	direct    *StreamTransport // t when senders may write to it themselves; nil when only loop may
	queueSize int
	done      <-chan struct{}
	fail      func(reason error)

	mu   sync.Mutex
	q    []outMsg      // queued messages, oldest first
	busy bool          // someone holds the right to write (and will drain q)
	shut bool          // the last message was queued, or the conn closed
	room chan struct{} // closed when q is taken; nil when no sender waits
	kick chan struct{} // passes the right to write to loop

	// Owned by whoever holds the right to write, so not under mu:
	spare []outMsg // an emptied batch, reused as the next q
	rest  []outMsg // messages an inline writer left to loop
	flush bool     // the transport holds bytes an inline writer could not send
}

// outMsg is one queued message.
type outMsg struct {
	e          *encoder // nil for a bare close marker
	closeAfter bool     // flush, then close with reason
	// noWait queues the message even past the queue's bound: its sender
	// must not wait on the peer (a reader answering a request another
	// connection's reader took, see AsyncHandler), and what such senders
	// add is bounded by the requests in flight.
	noWait bool
	reason error
}

// errShut is what enqueue returns once the queue takes nothing more; Conn
// turns it into an unavailable error that names why the connection closed.
var errShut = errors.New("msgrpc: writer shut")

// maxInlineRounds bounds how many batches a sender writes, for itself and
// for the senders that queued behind it, before it leaves the rest to
// loop: under a steady stream a sender (a handler, the reader) must
// still get back to its own work.
const maxInlineRounds = 8

// init readies w for t and starts its writer goroutine.
func (w *writer) init(t Transport, queueSize int, done <-chan struct{}, fail func(error)) {
	w.t, w.queueSize, w.done, w.fail = t, queueSize, done, fail
	w.kick = make(chan struct{}, 1)
	if st, ok := t.(*StreamTransport); ok && st.canTry() {
		w.direct = st
	}
	go w.loop()
}

// enqueue adds m to the queue, owning its encoder from here on, and sees that
// it gets written: by the goroutine holding the right to write, if there is
// one, which drains the queue before it lets go; else by this goroutine,
// which takes that right (or by loop, for a transport that cannot be tried
// without waiting). It waits only while the queue is full, which happens only
// when the peer does not read. A close marker (closeAfter) never waits for
// room and is the last message the queue takes.
//
// inline false leaves the writing to loop even when nobody is writing.
func (w *writer) enqueue(ctx context.Context, m outMsg, inline bool) error {
	w.mu.Lock()
	for !m.closeAfter && !m.noWait && !w.shut && len(w.q) >= w.queueSize {
		if w.room == nil {
			w.room = make(chan struct{})
		}
		room := w.room
		w.mu.Unlock()
		select {
		case <-room:
		case <-w.done:
			putEncoder(m.e)
			return errShut
		case <-ctx.Done():
			putEncoder(m.e)
			return ctx.Err()
		}
		w.mu.Lock()
	}
	if w.shut {
		w.mu.Unlock()
		if m.e != nil {
			putEncoder(m.e)
		}
		return errShut
	}
	if m.closeAfter {
		w.shut = true
	}
	w.q = append(w.q, m)
	if w.busy {
		w.mu.Unlock()
		return nil
	}
	w.busy = true
	w.mu.Unlock()
	if w.direct == nil || !inline {
		w.handOff(nil, false)
		return nil
	}
	w.drain(true)
	return nil
}

// shutdown makes the queue take nothing more; the connection is closing.
func (w *writer) shutdown() {
	w.mu.Lock()
	w.shut = true
	w.mu.Unlock()
}

// full reports whether a sender would wait for room in the queue now, as
// happens only when the peer is not reading.
func (w *writer) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.q) >= w.queueSize
}

// drain writes the queue, a batch at a time with one flush per batch, until
// it finds the queue empty and gives up the right to write, which its caller
// holds. Inline (a sender writing), the socket is only tried: when it takes
// less than everything, or after maxInlineRounds, the rest goes to loop
// with the right to write. loop itself (inline false) waits on the
// socket as long as it takes, or until the connection closes.
func (w *writer) drain(inline bool) {
	batch := w.rest
	w.rest = nil
	for round := 0; ; round++ {
		if batch == nil {
			w.mu.Lock()
			if len(w.q) == 0 {
				w.busy = false
				w.mu.Unlock()
				return
			}
			batch, w.q, w.spare = w.q, w.spare, nil
			if w.room != nil {
				close(w.room)
				w.room = nil
			}
			w.mu.Unlock()
		}
		if inline && round == maxInlineRounds {
			w.handOff(batch, false)
			return
		}
		for i := range batch {
			m := batch[i]
			batch[i] = outMsg{}
			if m.e != nil {
				err := w.t.WriteMessage(m.e.buf.Bytes())
				putEncoder(m.e)
				if err != nil {
					w.fail(err)
					return
				}
			}
			// Flush at the end of the batch, before a close, and whenever
			// a socket's buffer has filled (so it stays bounded); other
			// transports buffer as they see fit until their Flush.
			full := w.direct != nil && w.direct.buffered() >= streamBufSize
			if !m.closeAfter && !full && i < len(batch)-1 {
				continue
			}
			if inline {
				done, err := w.direct.tryFlush()
				if err != nil {
					w.fail(err)
					return
				}
				if !done {
					rest := batch[i+1:]
					if m.closeAfter {
						rest = []outMsg{{closeAfter: true, reason: m.reason}}
					}
					w.handOff(rest, true)
					return
				}
			} else if err := w.t.Flush(); err != nil {
				w.fail(err)
				return
			}
			if m.closeAfter {
				w.fail(m.reason)
				return
			}
		}
		w.spare = batch[:0]
		batch = nil
	}
}

// handOff passes the right to write to loop, with the messages left of a
// batch and whether the transport still holds bytes to flush.
func (w *writer) handOff(rest []outMsg, flush bool) {
	w.rest, w.flush = rest, flush
	// At most one hand-off is ever pending: the right to write comes back
	// from loop only after it has taken this one.
	select {
	case w.kick <- struct{}{}:
	case <-w.done:
	}
}

// loop writes when a sender cannot: for transports that cannot be tried
// without waiting, and whenever the socket was full. Its waits on a peer that
// does not read hold up no sender (beyond the queue's bound) and end when the
// connection closes.
func (w *writer) loop() {
	for {
		select {
		case <-w.kick:
		case <-w.done:
			return
		}
		if w.flush {
			w.flush = false
			if err := w.t.Flush(); err != nil {
				w.fail(err)
				continue
			}
		}
		w.drain(false)
	}
}
