package msgrpc

import (
	"bytes"
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// Message type tags, the first element of every message.
const (
	TypeRequest      = 0
	TypeResponse     = 1
	TypeNotification = 2
)

// Message is one parsed MessagePack-RPC message. Which fields are set depends
// on Type: requests have MsgID, Method and Params; responses MsgID, Error and
// Result; notifications Method and Params.
//
// Params, Error and Result alias the bytes the message was parsed from.
type Message struct {
	Type   int
	MsgID  uint32
	Method string
	Params api.RawParams // the single map of the params array; nil when the array is empty or holds nil
	Error  []byte        // raw error element; nil when it is msgpack nil
	Result []byte        // raw result element (0xc0 for a nil result)
}

// ParseMessage checks the shape of one whole message and splits it into its
// parts. It accepts exactly one msgpack object, so trailing bytes are an
// error; and it checks the object's structure as Reader does (depth, reserved
// codes, lengths that overrun the bytes), so it is also the check for a
// transport that receives whole messages, such as WebSocket frames. Every
// failure is a *ProtocolError, with the msgid set when the message got that far.
func ParseMessage(b []byte) (Message, error) {
	return parseChecked(b, true)
}

// parseFramed is ParseMessage for bytes a Reader returned: the Reader has
// already checked that they are exactly one msgpack object of sound
// structure, so only the message's shape is left to check. Anything else
// must go through ParseMessage: parse trusts every length in b.
func parseFramed(b []byte) (Message, error) {
	return parseChecked(b, false)
}

func parseChecked(b []byte, structure bool) (Message, error) {
	m, err := parse(b, structure)
	if err != nil {
		if id, ok := requestID(b); ok {
			err.MsgID, err.HasMsgID = id, true
		}
		return Message{}, err
	}
	return m, nil
}

func parse(b []byte, structure bool) (Message, *ProtocolError) {
	var m Message
	var err *ProtocolError
	if structure {
		end, err := wire.Skip(b, 0, MaxDepth)
		if err != nil {
			return m, protoErr(api.CodeProtocolError, "message: %v", err)
		}
		if end != len(b) {
			return m, protoErr(api.CodeProtocolError, "%d bytes after the message", len(b)-end)
		}
	}
	n, p, ok := wire.ArrayHeader(b, 0)
	if !ok {
		return m, protoErr(api.CodeProtocolError, "a message must be an array, got %s", api.WireType(b[0]))
	}
	if n != 3 && n != 4 {
		return m, protoErr(api.CodeProtocolError, "a message must be an array of 3 or 4 elements, got %d", n)
	}
	typ, p, ok := wire.Uint(b, p)
	if !ok {
		return m, protoErr(api.CodeProtocolError, "the message type must be 0, 1 or 2, got %s", api.WireType(b[p]))
	}
	m.Type = int(min(typ, math.MaxInt32))
	switch typ {
	case TypeRequest, TypeResponse:
		if n != 4 {
			return m, protoErr(api.CodeProtocolError, "a %s must have 4 elements, got %d", typeName(typ), n)
		}
		id, q, ok := wire.Uint(b, p)
		if !ok || id > math.MaxUint32 {
			return m, protoErr(api.CodeProtocolError, "the msgid must be an unsigned 32-bit integer")
		}
		m.MsgID, p = uint32(id), q
		if typ == TypeRequest {
			if m.Method, p, err = method(b, p); err != nil {
				return m, err
			}
			m.Params, err = params(b, p)
			return m, err
		}
		q, _ = wire.Skip(b, p, MaxDepth-1) // the structure was checked: by the framer or above
		if b[p] != 0xc0 {
			m.Error = b[p:q]
		}
		m.Result = b[q:]
		return m, nil
	case TypeNotification:
		if n != 3 {
			return m, protoErr(api.CodeProtocolError, "a notification must have 3 elements, got %d", n)
		}
		if m.Method, p, err = method(b, p); err != nil {
			return m, err
		}
		m.Params, err = params(b, p)
		return m, err
	}
	return m, protoErr(api.CodeProtocolError, "unknown message type %d", typ)
}

func typeName(t uint64) string {
	if t == TypeRequest {
		return "request"
	}
	return "response"
}

func method(b []byte, p int) (string, int, *ProtocolError) {
	c := b[p]
	var n, h int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n, h = int(c&0x1f), 1
	case c == 0xd9:
		n, h = int(b[p+1]), 2
	case c == 0xda:
		n, h = int(binary.BigEndian.Uint16(b[p+1:])), 3
	case c == 0xdb:
		n, h = int(binary.BigEndian.Uint32(b[p+1:])), 5
	default:
		return "", p, protoErr(api.CodeProtocolError, "the method must be a string, got %s", api.WireType(c))
	}
	// skip has checked that the whole string lies within b.
	return methodName(b[p+h : p+h+n]), p + h + n, nil
}

// Method names are interned: a connection sees the same few names over and
// over, and turning each into a new string was an allocation per message.
// The table is copied on write and bounded, so a peer that makes up names
// can neither grow it without limit nor slow down lookups, which take no
// lock.
var (
	methodNames   atomic.Pointer[map[string]string]
	methodNamesMu sync.Mutex
)

const (
	maxInterned      = 512 // names in the table
	maxInternedBytes = 64  // longer names are not interned
)

func methodName(b []byte) string {
	if tab := methodNames.Load(); tab != nil {
		if s, ok := (*tab)[string(b)]; ok { // no allocation: the compiler looks up b as is
			return s
		}
	}
	s := string(b)
	if len(b) > maxInternedBytes {
		return s
	}
	methodNamesMu.Lock()
	defer methodNamesMu.Unlock()
	old := methodNames.Load()
	if old != nil {
		if t, ok := (*old)[s]; ok { // added while this one waited
			return t
		}
		if len(*old) >= maxInterned {
			return s
		}
	}
	tab := make(map[string]string, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			tab[k] = v
		}
	}
	tab[s] = s
	methodNames.Store(&tab)
	return s
}

func lenOf(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

func params(b []byte, p int) (api.RawParams, *ProtocolError) {
	n, q, ok := wire.ArrayHeader(b, p)
	if !ok || n > 1 {
		return nil, protoErr(api.CodeInvalidArgument, "params must be an array holding one map")
	}
	if n == 0 || b[q] == 0xc0 {
		return nil, nil
	}
	c := b[q]
	if !(c >= 0x80 && c <= 0x8f) && c != 0xde && c != 0xdf {
		return nil, protoErr(api.CodeInvalidArgument, "params must be an array holding one map, got an array holding %s", api.WireType(c))
	}
	return api.RawParams(b[q:]), nil
}

// encoder pairs a pooled msgpack encoder with the buffer it writes into.
type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encPool = sync.Pool{New: func() any {
	e := &encoder{enc: msgpack.NewEncoder(nil)}
	e.buf.Grow(512)
	return e
}}

func getEncoder() *encoder {
	e := encPool.Get().(*encoder)
	e.buf.Reset()
	e.enc.Reset(&e.buf)
	// Compact integers keep ids and counts small on the wire; any msgpack
	// reader accepts every integer width.
	e.enc.UseCompactInts(true)
	return e
}

func putEncoder(e *encoder) {
	if e.buf.Cap() <= poolMax {
		encPool.Put(e)
	}
}

// The message header bytes are written by hand: they are the hot path and
// their layout is fixed by the protocol.
func (e *encoder) uint(v uint32) { _ = e.enc.EncodeUint(uint64(v)) }

func (e *encoder) str(s string) { _ = e.enc.EncodeString(s) }

// params writes a params array: empty for nil, else one element holding the
// map. Raw params are written verbatim; anything else must encode to a map (or
// nil, which becomes an empty array).
func (e *encoder) params(v any) error {
	var raw []byte
	switch p := v.(type) {
	case nil:
		e.buf.WriteByte(0x90)
		return nil
	case api.RawParams:
		raw = p
	case msgpack.RawMessage:
		raw = p
	case api.ValueParams:
		return e.params(p.V)
	case api.ParamsAppender:
		e.buf.WriteByte(0x91)
		b, err := p.AppendParams(e.buf.AvailableBuffer())
		if err != nil {
			return api.Errorf(api.CodeInvalidArgument, "encoding params: %v", err)
		}
		e.buf.Write(b) // in place when it fit the buffer's spare room
		return nil
	default:
		start := e.buf.Len()
		e.buf.WriteByte(0x91)
		if err := e.enc.Encode(v); err != nil {
			return api.Errorf(api.CodeInvalidArgument, "encoding params: %v", err)
		}
		c := e.buf.Bytes()[start+1]
		if c == 0xc0 {
			e.buf.Truncate(start)
			e.buf.WriteByte(0x90)
			return nil
		}
		if !wire.IsMap(c) {
			return api.Errorf(api.CodeInvalidArgument, "params must encode to a map, got %s (%T)", api.WireType(c), v)
		}
		return nil
	}
	if len(raw) == 0 || raw[0] == 0xc0 {
		e.buf.WriteByte(0x90)
		return nil
	}
	if !wire.IsMap(raw[0]) {
		return api.Errorf(api.CodeInvalidArgument, "params must be a map, got %s", api.WireType(raw[0]))
	}
	e.buf.WriteByte(0x91)
	e.buf.Write(raw)
	return nil
}

// value writes a result: raw msgpack verbatim, anything else encoded.
func (e *encoder) value(v any) error {
	switch r := v.(type) {
	case msgpack.RawMessage:
		if len(r) == 0 {
			e.buf.WriteByte(0xc0)
			return nil
		}
		e.buf.Write(r)
		return nil
	case api.RawParams:
		if len(r) == 0 {
			e.buf.WriteByte(0x80) // RawParams: empty means an empty map
			return nil
		}
		e.buf.Write(r)
		return nil
	case api.ValueParams:
		return e.value(r.V)
	}
	if err := e.enc.Encode(v); err != nil {
		return api.Errorf(api.CodeInternal, "encoding result: %v", err)
	}
	return nil
}

// encodeRequest encodes a request [0, msgid, method, [params]].
func encodeRequest(id uint32, methodName string, p any) (*encoder, error) {
	e := getEncoder()
	e.buf.WriteByte(0x94)
	e.buf.WriteByte(TypeRequest)
	e.uint(id)
	e.str(methodName)
	if err := e.params(p); err != nil {
		putEncoder(e)
		return nil, err
	}
	return e, nil
}

func encodeNotification(methodName string, p any) (*encoder, error) {
	e := getEncoder()
	e.buf.WriteByte(0x93)
	e.buf.WriteByte(TypeNotification)
	e.str(methodName)
	if err := e.params(p); err != nil {
		putEncoder(e)
		return nil, err
	}
	return e, nil
}

// encodeResponse encodes [1, msgid, error, result]. A result that cannot be
// encoded turns into an internal error response, so the caller always gets an
// answer.
func encodeResponse(id uint32, result any, rerr *api.Error) *encoder {
	e := getEncoder()
	head := func() {
		e.buf.WriteByte(0x94)
		e.buf.WriteByte(TypeResponse)
		e.uint(id)
	}
	head()
	if rerr == nil {
		e.buf.WriteByte(0xc0)
		err := e.value(result)
		if err == nil {
			return e
		}
		rerr = api.AsError(err)
		e.buf.Reset()
		head()
	}
	if err := e.enc.Encode(rerr); err != nil {
		// Data held something unencodable; the code and message still go.
		e.buf.Reset()
		head()
		_ = e.enc.Encode(&api.Error{Code: rerr.Code, Message: rerr.Message})
	}
	e.buf.WriteByte(0xc0)
	return e
}

// EncodeMessage encodes m as msgpack-rpc bytes. Params, Error and Result are
// written verbatim. It is the inverse of ParseMessage, for tests and tools.
func EncodeMessage(m Message) ([]byte, error) {
	var e *encoder
	var err error
	switch m.Type {
	case TypeRequest:
		e, err = encodeRequest(m.MsgID, m.Method, m.Params)
	case TypeNotification:
		e, err = encodeNotification(m.Method, m.Params)
	case TypeResponse:
		e = getEncoder()
		e.buf.WriteByte(0x94)
		e.buf.WriteByte(TypeResponse)
		e.uint(m.MsgID)
		if len(m.Error) == 0 {
			e.buf.WriteByte(0xc0)
		} else {
			e.buf.Write(m.Error)
		}
		if len(m.Result) == 0 {
			e.buf.WriteByte(0xc0)
		} else {
			e.buf.Write(m.Result)
		}
	default:
		return nil, api.Errorf(api.CodeInvalidArgument, "unknown message type %d", m.Type)
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(e.buf.Bytes())
	putEncoder(e)
	return out, nil
}

// DecodeError reads the error element of a response. The protocol's error is
// a map {code, message, data?}; other shapes (a bare string, as some
// msgpack-rpc peers send) still become an *api.Error, with code internal.
func DecodeError(raw []byte) *api.Error {
	if len(raw) == 0 || raw[0] == 0xc0 {
		return nil
	}
	if wire.IsMap(raw[0]) {
		var e api.Error
		if err := msgpack.Unmarshal(raw, &e); err == nil {
			if e.Code == "" {
				e.Code = api.CodeInternal
			}
			return &e
		}
	}
	var v any
	if err := msgpack.Unmarshal(raw, &v); err != nil {
		return api.Errorf(api.CodeInternal, "undecodable error from peer: %v", err)
	}
	if s, ok := v.(string); ok {
		return &api.Error{Code: api.CodeInternal, Message: s}
	}
	return &api.Error{Code: api.CodeInternal, Message: "error from peer", Data: v}
}
