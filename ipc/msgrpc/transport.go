package msgrpc

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// Transport moves whole messages. It is the seam between framing and
// everything above it: a byte stream (Unix socket) frames messages with
// Reader, a message-oriented carrier (a WebSocket, one binary frame per
// message) already has them and only needs ParseMessage's checks, which Conn
// applies to every message whatever its transport.
//
// Conn calls ReadMessage from one goroutine, and WriteMessage and Flush from
// one goroutine at a time (not always the same one); Close may be called from
// any goroutine at any time and must unblock both.
type Transport interface {
	// ReadMessage returns the next message's bytes, valid until the next call.
	// A message the peer framed badly is a *ProtocolError.
	ReadMessage() ([]byte, error)
	// WriteMessage queues one whole message; it may be buffered until Flush.
	WriteMessage(msg []byte) error
	// Flush sends whatever WriteMessage buffered.
	Flush() error
	Close() error
}

// StreamTransport frames messages on a byte stream: msgpack objects back to
// back, with no length prefix, as msgpack-rpc and Neovim do.
//
// When the stream is a socket (it implements syscall.Conn, as *net.UnixConn
// does), a Conn writes through it from whichever goroutine produced a message,
// trying the socket without waiting and leaving only what the socket would
// not take to its writer goroutine; see Conn.
type StreamTransport struct {
	rwc io.ReadWriteCloser
	r   *Reader

	// wbuf holds what WriteMessage buffered and Flush has not sent yet.
	wbuf []byte

	// For writes that must not wait: nil when rwc is not a syscall.Conn.
	raw syscall.RawConn
	// rawWrite is raw.Write's callback, made once so that a write does not
	// allocate a closure; wn and werr carry its results back.
	rawWrite func(fd uintptr) bool
	wn       int
	werr     error
}

var _ Transport = (*StreamTransport)(nil)

// streamBufSize is how much a StreamTransport buffers before it sends: many
// small replies per syscall, and what a flush keeps for the next round.
const streamBufSize = 64 << 10

// NewStreamTransport frames rwc, refusing incoming messages over maxSize
// bytes (DefaultMaxMessageSize when maxSize <= 0).
func NewStreamTransport(rwc io.ReadWriteCloser, maxSize int) *StreamTransport {
	t := &StreamTransport{rwc: rwc, r: NewReader(rwc, maxSize)}
	if sc, ok := rwc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			t.raw = raw
			t.rawWrite = t.writeOnce
		}
	}
	return t
}

// ReadMessage implements Transport.
func (t *StreamTransport) ReadMessage() ([]byte, error) { return t.r.ReadMessage() }

// WriteMessage implements Transport. It only buffers when the socket can be
// written without waiting (the Conn above flushes by size itself); otherwise
// it sends the buffer first when msg would overfill it.
func (t *StreamTransport) WriteMessage(msg []byte) error {
	if t.raw == nil && len(t.wbuf) > 0 && len(t.wbuf)+len(msg) > streamBufSize {
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if t.wbuf == nil {
		t.wbuf = make([]byte, 0, max(4096, len(msg)))
	}
	t.wbuf = append(t.wbuf, msg...)
	return nil
}

// Flush implements Transport: it waits until everything buffered is sent.
func (t *StreamTransport) Flush() error {
	if len(t.wbuf) == 0 {
		return nil
	}
	_, err := t.rwc.Write(t.wbuf)
	t.sent(len(t.wbuf))
	return err
}

// buffered reports how many bytes wait for a flush.
func (t *StreamTransport) buffered() int { return len(t.wbuf) }

// canTry reports whether tryFlush works on this stream.
func (t *StreamTransport) canTry() bool { return t.raw != nil }

// tryFlush sends as much of the buffer as the socket takes without waiting.
// done reports whether all of it went; the rest stays buffered for Flush.
func (t *StreamTransport) tryFlush() (done bool, err error) {
	for len(t.wbuf) > 0 {
		t.wn, t.werr = 0, nil
		if err := t.raw.Write(t.rawWrite); err != nil {
			return false, err // closed
		}
		switch {
		case t.werr == syscall.EAGAIN || (t.werr == nil && t.wn == 0):
			// Full (a write that takes nothing without saying why is
			// treated the same, so this loop always ends).
			return false, nil
		case t.werr != nil:
			return false, os.NewSyscallError("write", t.werr)
		}
		t.sent(t.wn)
	}
	return true, nil
}

// writeOnce is raw.Write's callback: one write(2), never a wait for the socket
// to become writable (returning true ends raw.Write whatever happened).
func (t *StreamTransport) writeOnce(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), t.wbuf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		t.wn, t.werr = max(n, 0), err
		return true
	}
}

// sent drops the first n buffered bytes, which the socket took.
func (t *StreamTransport) sent(n int) {
	rest := copy(t.wbuf, t.wbuf[n:])
	t.wbuf = t.wbuf[:rest]
	// After a large message, let the buffer go instead of pinning it.
	if rest == 0 && cap(t.wbuf) > 4*streamBufSize {
		t.wbuf = nil
	}
}

// Close implements Transport.
func (t *StreamTransport) Close() error { return t.rwc.Close() }
