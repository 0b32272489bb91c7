package msgrpc

import (
	"bufio"
	"io"
)

// Transport moves whole messages. It is the seam between framing and
// everything above it: a byte stream (Unix socket) frames messages with
// Reader, a message-oriented carrier (a WebSocket, one binary frame per
// message) already has them and only needs ParseMessage's checks, which Conn
// applies to every message whatever its transport.
//
// Conn calls ReadMessage from one goroutine and WriteMessage and Flush from
// another; Close may be called from any goroutine at any time and must unblock
// both.
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
type StreamTransport struct {
	rwc io.ReadWriteCloser
	r   *Reader
	w   *bufio.Writer
}

var _ Transport = (*StreamTransport)(nil)

// NewStreamTransport frames rwc, refusing incoming messages over maxSize
// bytes (DefaultMaxMessageSize when maxSize <= 0).
func NewStreamTransport(rwc io.ReadWriteCloser, maxSize int) *StreamTransport {
	return &StreamTransport{
		rwc: rwc,
		r:   NewReader(rwc, maxSize),
		// Writes are batched by Conn's writer goroutine, which flushes only
		// when its queue runs dry; 64 KiB holds many small replies per syscall.
		w: bufio.NewWriterSize(rwc, 64<<10),
	}
}

// ReadMessage implements Transport.
func (t *StreamTransport) ReadMessage() ([]byte, error) { return t.r.ReadMessage() }

// WriteMessage implements Transport.
func (t *StreamTransport) WriteMessage(msg []byte) error {
	_, err := t.w.Write(msg)
	return err
}

// Flush implements Transport.
func (t *StreamTransport) Flush() error { return t.w.Flush() }

// Close implements Transport.
func (t *StreamTransport) Close() error { return t.rwc.Close() }
