package msgrpc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/wire"
)

// Limits every reader applies unless told otherwise.
const (
	// DefaultMaxMessageSize bounds one message, header bytes included.
	DefaultMaxMessageSize = 16 << 20
	// MaxDepth bounds how deeply arrays and maps may nest. The message shape
	// itself uses three levels; 64 leaves room for any sane payload while
	// keeping a stack of nested headers from becoming a CPU or stack bomb.
	// The same bound as every other reader's (wire.MaxDepth).
	MaxDepth = wire.MaxDepth
)

// ProtocolError is a message that cannot be read or does not have the shape of
// a MessagePack-RPC message. The connection that carried it is closed after the
// error is reported. When the bytes got as far as a request's msgid, HasMsgID is
// set so the request can be answered with Err instead of a notification.
//
// errors.Is(err, &api.Error{Code: api.CodeMessageTooLarge}) and errors.As into
// an *api.Error both work on it.
type ProtocolError struct {
	Err      *api.Error // code protocol_error, message_too_large or invalid_argument
	MsgID    uint32
	HasMsgID bool
	cause    error // an I/O error behind it, such as io.ErrUnexpectedEOF
}

func (e *ProtocolError) Error() string {
	if e.HasMsgID {
		return fmt.Sprintf("%v (request %d)", e.Err, e.MsgID)
	}
	return e.Err.Error()
}

// Unwrap exposes the *api.Error and any I/O cause.
func (e *ProtocolError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Err, e.cause}
	}
	return []error{e.Err}
}

func protoErr(code api.Code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Err: api.Errorf(code, format, args...)}
}

// bufPool holds message buffers between messages, so an idle connection holds
// none and a busy one reuses the same few. Buffers that grew past poolMax are
// left to the collector: one huge message must not pin its memory forever.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const poolMax = 1 << 20

// readChunk bounds how much a declared length may make the reader allocate
// ahead of the bytes that actually arrived: a 15 MiB str header followed by a
// closed stream costs at most this much, not 15 MiB.
const readChunk = 64 << 10

// Reader reads whole msgpack objects from a byte stream without trusting
// their length headers. Before it reads any declared length it checks that the
// message so far, plus that length, plus one byte for every array or map
// element announced but not yet read, stays within the maximum size. So a
// header that lies about its length fails at once with message_too_large and
// allocates nothing, and a count of elements can never promise more bytes than
// the budget holds.
//
// Most messages are already whole in the read buffer when their first byte is
// read, so the Reader first walks the buffered bytes in place (scan), and only
// when a message is larger than the read buffer does it go on with the
// incremental walk (walk), which reads byte by byte (headers) and chunk by
// chunk (payloads) into a pooled buffer. Both apply the same checks in the same
// order, so a stream gets the same messages and the same errors either way;
// FuzzReadMessageFastSlow holds them to that.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r     *bufio.Reader
	max   int64
	buf   *[]byte
	stack [MaxDepth]uint64 // elements still to read in each open array or map

	slowOnly bool // tests: use the incremental walk alone, as the reference
}

// NewReader returns a Reader over r that accepts messages of at most maxSize
// bytes (DefaultMaxMessageSize when maxSize <= 0). A *bufio.Reader is used
// as is; anything else is wrapped in one.
func NewReader(r io.Reader, maxSize int) *Reader {
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{r: br, max: int64(maxSize)}
}

// MaxSize reports the largest message the Reader accepts.
func (r *Reader) MaxSize() int { return int(r.max) }

// ReadMessage reads exactly one msgpack object and returns its bytes. The
// slice is only valid until the next call. At a clean end of stream it
// returns io.EOF; bad bytes give a *ProtocolError (a stream that ends inside a
// message is one too, wrapping io.ErrUnexpectedEOF); other I/O errors come back
// as they are.
func (r *Reader) ReadMessage() ([]byte, error) {
	// While messages keep arriving the buffer is reused as is; it goes back
	// to the pool only before a wait, so that a connection idling between
	// messages holds no memory, or when a large message grew it.
	if r.buf != nil && (r.r.Buffered() == 0 || cap(*r.buf) > poolMax) {
		r.release()
	}
	if r.slowOnly {
		return r.readSlow()
	}
	// Wait for the first byte before taking a buffer.
	if _, err := r.r.Peek(1); err != nil {
		r.release()
		return nil, err
	}
	var st scanState
	b, _ := r.r.Peek(r.r.Buffered())
	for {
		need, perr := r.scan(b, &st)
		if perr != nil {
			if id, ok := requestID(b[:perr.consumed]); ok {
				perr.MsgID, perr.HasMsgID = id, true
			}
			_, _ = r.r.Discard(perr.consumed) // as far as the incremental walk reads
			r.release()
			return nil, perr.ProtocolError
		}
		if need == 0 {
			// The message is whole in the read buffer: hand it out from
			// there. Discard only moves the read position; the bytes stay
			// where they are until the next call reads more, which is as
			// long as the slice is promised to be valid. No copy, and no
			// pooled buffer, for nearly every message.
			msg := b[:st.pos:st.pos]
			_, _ = r.r.Discard(len(msg))
			return msg, nil
		}
		if need > r.r.Size() {
			// The message cannot be whole in the read buffer: keep what is
			// walked and read the rest incrementally.
			return r.readRest(b, &st)
		}
		// The message straddles what has arrived: wait for more, then walk
		// on from the last whole element, so a message trickling in is
		// still walked once, not once per read.
		var err error
		if b, err = r.r.Peek(need); err != nil {
			_, _ = r.r.Discard(len(b))
			r.release()
			if t := truncated(err, len(b)); t != err {
				pe := t.(*ProtocolError)
				if id, ok := requestID(b); ok {
					pe.MsgID, pe.HasMsgID = id, true
				}
				return nil, pe
			}
			return nil, err
		}
		b, _ = r.r.Peek(r.r.Buffered())
	}
}

// readSlow is the incremental path from the message's first byte.
func (r *Reader) readSlow() ([]byte, error) {
	c, err := r.r.ReadByte()
	if err != nil {
		r.release()
		return nil, err
	}
	if r.buf == nil {
		r.buf = bufPool.Get().(*[]byte)
	}
	*r.buf = append((*r.buf)[:0], c)
	return r.finish(r.walk(c, 0, 0))
}

// readRest copies the whole elements scan walked in b into the buffer,
// consumes them, and goes on with the incremental walk from there.
func (r *Reader) readRest(b []byte, st *scanState) ([]byte, error) {
	if st.pos == 0 {
		return r.readSlow()
	}
	if r.buf == nil {
		r.buf = bufPool.Get().(*[]byte)
	}
	*r.buf = (*r.buf)[:0]
	copy(r.grow(st.pos), b[:st.pos])
	_, _ = r.r.Discard(st.pos)
	c, err := r.readByte()
	if err == nil {
		err = r.walk(c, st.depth, st.owed)
	}
	return r.finish(err)
}

// finish ends an incremental walk: the message, or the error with the msgid
// of the request it broke off, if that much arrived.
func (r *Reader) finish(err error) ([]byte, error) {
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			if id, ok := requestID(*r.buf); ok {
				pe.MsgID, pe.HasMsgID = id, true
			}
		}
		r.release()
		return nil, err
	}
	return *r.buf, nil
}

func (r *Reader) release() {
	if r.buf == nil {
		return
	}
	if cap(*r.buf) <= poolMax {
		bufPool.Put(r.buf)
	}
	r.buf = nil
}

// walk reads the rest of the object whose first byte, c, is already in the
// buffer. It keeps an explicit stack instead of recursing, so the depth limit
// is the only bound on nesting and it is checked before anything is pushed.
// depth and owed (elements announced by open containers, not yet started) are
// 0 at the start of a message; readRest passes where scan stopped, c being
// the first byte of the next element.
func (r *Reader) walk(c byte, depth int, owed uint64) error {
	for {
		if depth > 0 {
			r.stack[depth-1]--
			owed--
		}
		elems, err := r.object(c, owed)
		if err != nil {
			return err
		}
		if elems > 0 {
			if depth == MaxDepth {
				return protoErr(api.CodeProtocolError, "nesting deeper than %d levels", MaxDepth)
			}
			r.stack[depth] = elems
			depth++
			owed += elems
		}
		for depth > 0 && r.stack[depth-1] == 0 {
			depth--
		}
		if depth == 0 {
			return nil
		}
		if c, err = r.readByte(); err != nil {
			return err
		}
	}
}

// object consumes the rest of one object after its type byte c. For an array
// or map it consumes only the header and returns how many elements follow
// (twice the pairs for a map).
func (r *Reader) object(c byte, owed uint64) (uint64, error) {
	switch {
	case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		return 0, nil
	case c >= 0x80 && c <= 0x8f: // fixmap
		return r.container(2*uint64(c&0x0f), owed)
	case c >= 0x90 && c <= 0x9f: // fixarray
		return r.container(uint64(c&0x0f), owed)
	case c >= 0xa0 && c <= 0xbf: // fixstr
		return 0, r.payload(uint64(c&0x1f), owed)
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return 0, nil
	case 0xc1:
		return 0, protoErr(api.CodeProtocolError, "reserved type code 0xc1")
	case 0xc4, 0xd9: // bin8, str8
		n, err := r.length(1, owed)
		if err != nil {
			return 0, err
		}
		return 0, r.payload(n, owed)
	case 0xc5, 0xda: // bin16, str16
		n, err := r.length(2, owed)
		if err != nil {
			return 0, err
		}
		return 0, r.payload(n, owed)
	case 0xc6, 0xdb: // bin32, str32
		n, err := r.length(4, owed)
		if err != nil {
			return 0, err
		}
		return 0, r.payload(n, owed)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, then a type byte, then data
		n, err := r.length(1<<(c-0xc7), owed)
		if err != nil {
			return 0, err
		}
		return 0, r.payload(n+1, owed)
	case 0xca, 0xcb: // float32, float64
		return 0, r.payload(4<<(c-0xca), owed)
	case 0xcc, 0xcd, 0xce, 0xcf: // uint8..uint64
		return 0, r.payload(1<<(c-0xcc), owed)
	case 0xd0, 0xd1, 0xd2, 0xd3: // int8..int64
		return 0, r.payload(1<<(c-0xd0), owed)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext1..16: a type byte, then data
		return 0, r.payload(1+(1<<(c-0xd4)), owed)
	case 0xdc: // array16
		n, err := r.length(2, owed)
		if err != nil {
			return 0, err
		}
		return r.container(n, owed)
	case 0xdd: // array32
		n, err := r.length(4, owed)
		if err != nil {
			return 0, err
		}
		return r.container(n, owed)
	case 0xde: // map16
		n, err := r.length(2, owed)
		if err != nil {
			return 0, err
		}
		return r.container(2*n, owed)
	case 0xdf: // map32
		n, err := r.length(4, owed)
		if err != nil {
			return 0, err
		}
		return r.container(2*n, owed)
	}
	return 0, protoErr(api.CodeProtocolError, "unknown type code 0x%02x", c) // unreachable: every byte is covered
}

// container checks that elems more elements fit in the budget, one byte each
// at the least, before the walk commits to reading them.
func (r *Reader) container(elems, owed uint64) (uint64, error) {
	if err := r.fits(elems, owed); err != nil {
		return 0, err
	}
	return elems, nil
}

// length reads a big-endian length field of size bytes.
func (r *Reader) length(size int, owed uint64) (uint64, error) {
	if err := r.payload(uint64(size), owed); err != nil {
		return 0, err
	}
	b := *r.buf
	var n uint64
	for _, x := range b[len(b)-size:] {
		n = n<<8 | uint64(x)
	}
	return n, nil
}

func (r *Reader) fits(n, owed uint64) error {
	if have := uint64(len(*r.buf)); n > math.MaxInt64 || have+owed+n > uint64(r.max) {
		return r.tooLarge(n, have)
	}
	return nil
}

func (r *Reader) tooLarge(n, have uint64) *ProtocolError {
	return protoErr(api.CodeMessageTooLarge, "message exceeds the %d byte limit (a header declares %d more bytes or elements after %d)", r.max, n, have)
}

// payload appends exactly n more bytes from the stream, after checking the
// budget, growing the buffer only as the bytes actually arrive.
func (r *Reader) payload(n, owed uint64) error {
	if n == 0 {
		return nil
	}
	if err := r.fits(n, owed); err != nil {
		return err
	}
	for n > 0 {
		step := min(n, readChunk)
		b := r.grow(int(step))
		if got, err := io.ReadFull(r.r, b[len(b)-int(step):]); err != nil {
			// Only what arrived is the message: requestID must not read a
			// msgid out of the unfilled tail.
			*r.buf = b[:len(b)-int(step)+got]
			return truncated(err, len(*r.buf))
		}
		n -= step
	}
	return nil
}

// grow extends the buffer by n bytes, doubling its capacity but never past the
// message limit, so the buffer's capacity is itself bounded by the limit.
func (r *Reader) grow(n int) []byte {
	b := *r.buf
	if len(b)+n > cap(b) {
		c := max(2*cap(b), len(b)+n)
		c = min(c, max(int(r.max), len(b)+n))
		nb := make([]byte, len(b), c)
		copy(nb, b)
		b = nb
	}
	b = b[:len(b)+n]
	*r.buf = b
	return b
}

func (r *Reader) readByte() (byte, error) {
	c, err := r.r.ReadByte()
	if err != nil {
		return 0, truncated(err, len(*r.buf))
	}
	if uint64(len(*r.buf))+1 > uint64(r.max) {
		return 0, protoErr(api.CodeMessageTooLarge, "message exceeds the %d byte limit", r.max)
	}
	*r.buf = append(*r.buf, c)
	return c, nil
}

// truncated turns an end of stream inside a message into a protocol error;
// other I/O errors (a reset, a closed connection) stay what they are.
func truncated(err error, have int) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		pe := protoErr(api.CodeProtocolError, "stream ended inside a message after %d bytes", have)
		pe.cause = io.ErrUnexpectedEOF
		return pe
	}
	return err
}

// requestID reads the msgid of a request from the start of a message, however
// much of it arrived: [0, msgid, ...] with a 4-element array header.
func requestID(b []byte) (uint32, bool) {
	n, p, ok := wire.ArrayHeader(b, 0)
	if !ok || n != 4 {
		return 0, false
	}
	typ, p, ok := wire.Uint(b, p)
	if !ok || typ != TypeRequest {
		return 0, false
	}
	id, _, ok := wire.Uint(b, p)
	if !ok || id > math.MaxUint32 {
		return 0, false
	}
	return uint32(id), true
}
