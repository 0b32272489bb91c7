package api

import (
	"bytes"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"sync"
	"unsafe"

	"github.com/continuum-grid/continuum/api/wire"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// A hand-written msgpack codec for the event envelope and the events/event
// notification. Every event crosses it once per subscriber on the client and
// once per publish in the daemon, so it avoids reflection and keeps the
// payload as a sub-slice of the bytes it was read from. The bytes are the same
// map the reflection encoder wrote before it (the 14 keys in declaration
// order, integers in their smallest encoding, nil slices and maps as nil), so
// the TypeScript and Python bindings read them unchanged.

// Wire keys of the envelope, in the order they are written.
const (
	keyID            = "id"
	keyClass         = "class"
	keyChannel       = "channel"
	keyOrigin        = "origin"
	keyOriginSeq     = "originSeq"
	keyPrev          = "prev"
	keySender        = "sender"
	keyLamport       = "lamport"
	keySeq           = "seq"
	keyTS            = "ts"
	keySchemaVersion = "schemaVersion"
	keyHeaders       = "headers"
	keyPayload       = "payload"
	keySig           = "sig"
	eventFields      = 14

	keySubscription = "subscription"
	keyEvent        = "event"
)

// EncodeMsgpack implements msgpack.CustomEncoder with AppendEvent's bytes.
// It has a value receiver so that an Event is encoded the same way whether or
// not the encoder can take its address (a field of a struct passed by value).
func (e Event) EncodeMsgpack(enc *msgpack.Encoder) error {
	bp := scratchPool.Get().(*[]byte)
	b, err := AppendEvent((*bp)[:0], &e)
	if err == nil {
		_, err = enc.Writer().Write(b)
	}
	putScratch(bp, b)
	return err
}

// DecodeMsgpack implements msgpack.CustomDecoder: the envelope read by
// UnmarshalEvent from a private copy of its bytes, so the payload stays raw
// msgpack (msgpack.RawMessage) and nothing aliases the decoder's input.
func (e *Event) DecodeMsgpack(dec *msgpack.Decoder) error {
	raw, err := dec.DecodeRaw() // a copy the event may keep
	if err != nil {
		return err
	}
	return UnmarshalEvent(raw, e)
}

// EncodeMsgpack implements msgpack.CustomEncoder for the notification:
// {subscription, event}, the event as AppendEvent writes it.
func (n EventNotification) EncodeMsgpack(enc *msgpack.Encoder) error {
	bp := scratchPool.Get().(*[]byte)
	b := appendNotificationHead((*bp)[:0], n.Subscription)
	b, err := AppendEvent(b, &n.Event)
	if err == nil {
		_, err = enc.Writer().Write(b)
	}
	putScratch(bp, b)
	return err
}

// scratchPool holds buffers for encoding through a msgpack.Encoder, which
// takes bytes only through its writer.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func putScratch(bp *[]byte, b []byte) {
	if cap(b) <= 64<<10 {
		*bp = b
		scratchPool.Put(bp)
	}
}

// AppendEvent appends the msgpack envelope of e to b: the one envelope
// encoding, on the wire and in the airc log alike. Integers take their
// smallest encoding; header keys are written in sorted order; a payload
// that is msgpack.RawMessage is written as it is (empty means nil), any
// other payload is encoded with msgpack. The only error is a payload
// msgpack cannot encode.
func AppendEvent(b []byte, e *Event) ([]byte, error) {
	b = append(b, 0x80|eventFields)
	b = appendKeyString(b, keyID, e.ID)
	b = appendKeyString(b, keyClass, e.Class)
	b = appendKeyString(b, keyChannel, e.Channel)
	b = appendKeyString(b, keyOrigin, e.Origin)
	b = wire.AppendUint(wire.AppendStr(b, keyOriginSeq), e.OriginSeq)
	b = wire.AppendBinOrNil(wire.AppendStr(b, keyPrev), e.Prev)
	b = appendKeyString(b, keySender, e.Sender)
	b = wire.AppendUint(wire.AppendStr(b, keyLamport), e.Lamport)
	b = wire.AppendUint(wire.AppendStr(b, keySeq), e.Seq)
	b = wire.AppendInt(wire.AppendStr(b, keyTS), e.TS)
	b = appendKeyString(b, keySchemaVersion, e.SchemaVersion)
	b = wire.AppendStr(b, keyHeaders)
	if e.Headers == nil {
		b = append(b, msgpcode.Nil)
	} else {
		// Sorted keys: the same event always encodes to the same bytes
		// (the airc log stores these bytes; replicas compare them).
		b = wire.AppendMapHeader(b, len(e.Headers))
		if len(e.Headers) == 1 {
			for k, v := range e.Headers {
				b = wire.AppendStr(wire.AppendStr(b, k), v)
			}
		} else {
			for _, k := range slices.Sorted(maps.Keys(e.Headers)) {
				b = wire.AppendStr(wire.AppendStr(b, k), e.Headers[k])
			}
		}
	}
	b = wire.AppendStr(b, keyPayload)
	var err error
	if b, err = appendPayload(b, e.Payload); err != nil {
		return b, err
	}
	b = wire.AppendBinOrNil(wire.AppendStr(b, keySig), e.Sig)
	return b, nil
}

// encodedSizeHint is about the size of e's envelope, so that AppendEvent
// fills one buffer instead of growing one from nothing (five allocations
// for a small event, once per live publish).
func encodedSizeHint(e *Event) int {
	// The keys, their headers and the fixed-size values take about 150.
	n := 160 + len(e.ID) + len(e.Class) + len(e.Channel) + len(e.Origin) + len(e.Prev) +
		len(e.Sender) + len(e.SchemaVersion) + len(e.Sig)
	for k, v := range e.Headers {
		n += len(k) + len(v) + 10
	}
	if raw, ok := e.Payload.(msgpack.RawMessage); ok {
		n += len(raw)
	} else {
		n += 64
	}
	return n
}

func appendPayload(b []byte, p any) ([]byte, error) {
	switch v := p.(type) {
	case nil:
		return append(b, msgpcode.Nil), nil
	case msgpack.RawMessage:
		if len(v) == 0 {
			return append(b, msgpcode.Nil), nil
		}
		return append(b, v...), nil
	}
	// A Go value (the in-process path): the same encoder settings as the
	// socket's, so its integers are as compact as the envelope's.
	pe := payloadEncoders.Get().(*payloadEncoder)
	defer payloadEncoders.Put(pe)
	pe.buf.Reset()
	pe.enc.Reset(&pe.buf)
	pe.enc.UseCompactInts(true)
	if err := pe.enc.Encode(p); err != nil {
		return b, Errorf(CodeInvalidArgument, "encoding the event payload: %v", err)
	}
	return append(b, pe.buf.Bytes()...), nil
}

type payloadEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var payloadEncoders = sync.Pool{New: func() any { return &payloadEncoder{enc: msgpack.NewEncoder(nil)} }}

// AppendEventNotification appends the params map of an events/event
// notification, {subscription, event}, with event the already encoded
// envelope (as AppendEvent writes it), copied as it is.
func AppendEventNotification(b []byte, subscription string, event []byte) []byte {
	return append(appendNotificationHead(b, subscription), event...)
}

func appendNotificationHead(b []byte, subscription string) []byte {
	b = append(b, 0x82)
	b = appendKeyString(b, keySubscription, subscription)
	return wire.AppendStr(b, keyEvent)
}

func appendKeyString(b []byte, key, v string) []byte {
	return wire.AppendStr(wire.AppendStr(b, key), v)
}

// UnmarshalEvent reads one msgpack envelope from b into e (replacing what e
// held) in one pass. It promises:
//
//   - Payload is a msgpack.RawMessage that is a sub-slice of b (nil when the
//     payload is nil), and so are Prev and Sig: b must not change while e is
//     in use. String fields are copies.
//   - Unknown keys are skipped, so newer daemons may add fields.
//   - A value of the wrong type, keys that are not strings, an envelope that
//     is not a map, truncated input or bytes after the map are
//     invalid_argument errors naming the field, as DecodeParams reports them.
//   - nil reads as the zero value, as the reflection decoder allowed.
func UnmarshalEvent(b []byte, e *Event) error {
	r := reader{b: b}
	if err := r.event(e); err != nil {
		return err
	}
	if r.p != len(b) {
		return Errorf(CodeInvalidArgument, "event: %d bytes after the envelope", len(b)-r.p)
	}
	return nil
}

// UnmarshalEventNotification reads the params map of an events/event
// notification, {subscription, event}, in one pass, with UnmarshalEvent's
// promises for the event (its payload aliases b).
func UnmarshalEventNotification(b []byte, n *EventNotification) error {
	*n = EventNotification{}
	r := reader{b: b}
	cnt, err := r.mapLen("params")
	if err != nil {
		return err
	}
	for range cnt {
		key, err := r.key("params")
		if err != nil {
			return err
		}
		switch string(key) {
		case keySubscription:
			s, err := r.str(keySubscription)
			if err != nil {
				return err
			}
			n.Subscription = string(s)
		case keyEvent:
			if err := r.event(&n.Event); err != nil {
				return err
			}
		default:
			if err := r.skip(string(key)); err != nil {
				return err
			}
		}
	}
	if r.p != len(b) {
		return Errorf(CodeInvalidArgument, "params: %d bytes after the map", len(b)-r.p)
	}
	return nil
}

// UnmarshalEventNotificationLent is UnmarshalEventNotification for bytes
// that are only lent for the call (a connection's read buffer, reused for
// the next message): the event keeps nothing of b. Its strings, prev, sig
// and payload are copied into one allocation of their own, about a third of
// the notification's size, instead of the whole notification being copied
// first and then read. The subscription id comes back aliasing b, valid only
// as long as b is, so that a client finds its subscription without making a
// string. The checks and errors are UnmarshalEventNotification's.
//
// e must be a zero Event (new(Event)): it is filled, not cleared first, since
// clearing a heap value costs write barriers while the collector runs.
func UnmarshalEventNotificationLent(b []byte, e *Event) (subscription []byte, err error) {
	r := reader{b: b, lent: true}
	cnt, err := r.mapLen("params")
	if err != nil {
		return nil, err
	}
	for range cnt {
		key, err := r.key("params")
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case keySubscription:
			if subscription, err = r.str(keySubscription); err != nil {
				return nil, err
			}
		case keyEvent:
			if err := r.event(e); err != nil {
				return nil, err
			}
		default:
			if err := r.skip(string(key)); err != nil {
				return nil, err
			}
		}
	}
	if r.p != len(b) {
		return nil, Errorf(CodeInvalidArgument, "params: %d bytes after the map", len(b)-r.p)
	}
	return subscription, nil
}

// EventKeys are an envelope's routing fields, read without decoding the rest.
type EventKeys struct {
	Class   []byte // aliases the envelope's bytes
	Channel []byte // aliases the envelope's bytes
	Seq     uint64
}

// PeekEvent reads class, channel and seq from an encoded envelope, skipping
// the other values it meets before them without allocating: enough to filter
// events by pattern and channel, or to find their position, before deciding
// to decode them. It checks only what it reads: a later value may still be
// malformed.
func PeekEvent(b []byte) (EventKeys, error) {
	var k EventKeys
	r := reader{b: b}
	n, err := r.mapLen("event")
	if err != nil {
		return k, err
	}
	// Stop once the three are read: they come before headers and payload
	// in the daemon's own encoding, so the payload is never walked.
	const all = 7
	found := 0
	for i := 0; i < n && found != all; i++ {
		key, err := r.key("event")
		if err != nil {
			return k, err
		}
		switch string(key) {
		case keyClass:
			k.Class, err = r.str(keyClass)
			found |= 1
		case keyChannel:
			k.Channel, err = r.str(keyChannel)
			found |= 2
		case keySeq:
			k.Seq, err = r.uint(keySeq)
			found |= 4
		default:
			err = r.skipKey(key)
		}
		if err != nil {
			return k, err
		}
	}
	return k, nil
}

// reader walks msgpack in a byte slice. Every length is checked against
// what is left before it is used, so no input can make it allocate or read
// out of bounds.
type reader struct {
	b []byte
	p int
	// lent: b is reused after the call, so an event read keeps nothing of
	// it (UnmarshalEventNotificationLent).
	lent bool
}

// The error constructors are kept out of line so that the readers' fast
// paths stay small enough to inline.
//
//go:noinline
func truncatedErr(field string) error {
	return Errorf(CodeInvalidArgument, "field %q: unexpected end of input", field)
}

//go:noinline
func wrongType(field, want string, c byte) error {
	return Errorf(CodeInvalidArgument, "field %q has the wrong type: expected %s, got %s", field, want, WireType(c))
}

func (r *reader) peek(field string) (byte, error) {
	if r.p < len(r.b) {
		return r.b[r.p], nil
	}
	return 0, truncatedErr(field)
}

// n reads a big-endian unsigned integer of size bytes.
func (r *reader) n(size int, field string) (uint64, error) {
	if len(r.b)-r.p < size {
		return 0, truncatedErr(field)
	}
	s := r.b[r.p : r.p+size]
	r.p += size
	switch size {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	}
	return binary.BigEndian.Uint64(s), nil
}

// take returns the next n bytes.
func (r *reader) take(n uint64, field string) ([]byte, error) {
	if uint64(len(r.b)-r.p) < n {
		return nil, truncatedErr(field)
	}
	s := r.b[r.p : r.p+int(n) : r.p+int(n)]
	r.p += int(n)
	return s, nil
}

func (r *reader) mapLen(field string) (int, error) {
	c, err := r.peek(field)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case msgpcode.IsFixedMap(c):
		r.p++
		return int(c & 0x0f), nil
	case c == msgpcode.Map16:
		r.p++
		n, err = r.n(2, field)
	case c == msgpcode.Map32:
		r.p++
		n, err = r.n(4, field)
	case c == msgpcode.Nil:
		r.p++
		return 0, nil
	default:
		return 0, Errorf(CodeInvalidArgument, "%s must be a map, got %s", field, WireType(c))
	}
	// Each entry takes at least two bytes: a bound that no length header
	// can exceed without the input being truncated.
	if err == nil && n > uint64(len(r.b)-r.p)/2 {
		err = truncatedErr(field)
	}
	return int(n), err
}

// key reads a map key, which must be a string.
func (r *reader) key(field string) ([]byte, error) {
	if r.p < len(r.b) && msgpcode.IsString(r.b[r.p]) {
		return r.str(field)
	}
	return nil, r.keyErr(field)
}

//go:noinline
func (r *reader) keyErr(field string) error {
	c, err := r.peek(field)
	if err != nil {
		return err
	}
	return Errorf(CodeInvalidArgument, "%s keys must be strings, got %s", field, WireType(c))
}

// str reads a string (bin is accepted, and nil reads as empty, as the
// reflection decoder did).
func (r *reader) str(field string) ([]byte, error) {
	// Fast path, inlined: keys and most values are short strings.
	if r.p < len(r.b) {
		if c := r.b[r.p]; c&0xe0 == msgpcode.FixedStrLow {
			if end := r.p + 1 + int(c&msgpcode.FixedStrMask); end <= len(r.b) {
				s := r.b[r.p+1 : end : end]
				r.p = end
				return s, nil
			}
		}
	}
	return r.strSlow(field)
}

func (r *reader) strSlow(field string) ([]byte, error) {
	c, err := r.peek(field)
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case msgpcode.IsFixedString(c):
		r.p++
		n = uint64(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8 || c == msgpcode.Bin8:
		r.p++
		n, err = r.n(1, field)
	case c == msgpcode.Str16 || c == msgpcode.Bin16:
		r.p++
		n, err = r.n(2, field)
	case c == msgpcode.Str32 || c == msgpcode.Bin32:
		r.p++
		n, err = r.n(4, field)
	case c == msgpcode.Nil:
		r.p++
		return nil, nil
	default:
		return nil, wrongType(field, "string", c)
	}
	if err != nil {
		return nil, err
	}
	return r.take(n, field)
}

// bin reads binary (strings are accepted; nil reads as nil).
func (r *reader) bin(field string) ([]byte, error) {
	c, err := r.peek(field)
	if err != nil {
		return nil, err
	}
	if c != msgpcode.Nil && !msgpcode.IsBin(c) && !msgpcode.IsString(c) {
		return nil, wrongType(field, "binary", c)
	}
	s, err := r.str(field)
	if err == nil && s == nil && c != msgpcode.Nil {
		s = []byte{}
	}
	return s, err
}

// boolean reads a bool (nil reads as false, as the reflection decoder does).
func (r *reader) boolean(field string) (bool, error) {
	c, err := r.peek(field)
	if err != nil {
		return false, err
	}
	switch c {
	case msgpcode.True:
		r.p++
		return true, nil
	case msgpcode.False, msgpcode.Nil:
		r.p++
		return false, nil
	}
	return false, wrongType(field, "boolean", c)
}

// uint reads a non-negative integer (nil reads as 0).
func (r *reader) uint(field string) (uint64, error) {
	if r.p < len(r.b) && r.b[r.p] <= msgpcode.PosFixedNumHigh {
		r.p++
		return uint64(r.b[r.p-1]), nil
	}
	return r.uintSlow(field)
}

func (r *reader) uintSlow(field string) (uint64, error) {
	c, err := r.peek(field)
	if err != nil {
		return 0, err
	}
	switch {
	case c <= msgpcode.PosFixedNumHigh:
		r.p++
		return uint64(c), nil
	case c == msgpcode.Uint8:
		r.p++
		return r.n(1, field)
	case c == msgpcode.Uint16:
		r.p++
		return r.n(2, field)
	case c == msgpcode.Uint32:
		r.p++
		return r.n(4, field)
	case c == msgpcode.Uint64:
		r.p++
		return r.n(8, field)
	case c == msgpcode.Nil:
		r.p++
		return 0, nil
	case c == msgpcode.Int8, c == msgpcode.Int16, c == msgpcode.Int32, c == msgpcode.Int64:
		v, err := r.int(field)
		if err == nil && v < 0 {
			return 0, Errorf(CodeInvalidArgument, "field %q is %d: expected a non-negative integer", field, v)
		}
		return uint64(v), err
	case msgpcode.IsFixedNum(c): // negative fixnum
		return 0, Errorf(CodeInvalidArgument, "field %q is %d: expected a non-negative integer", field, int8(c))
	}
	return 0, wrongType(field, "non-negative integer", c)
}

// int reads an integer that fits int64 (nil reads as 0).
func (r *reader) int(field string) (int64, error) {
	c, err := r.peek(field)
	if err != nil {
		return 0, err
	}
	var v uint64
	switch {
	case msgpcode.IsFixedNum(c):
		r.p++
		return int64(int8(c)), nil
	case c == msgpcode.Int8:
		r.p++
		v, err = r.n(1, field)
		return int64(int8(v)), err
	case c == msgpcode.Int16:
		r.p++
		v, err = r.n(2, field)
		return int64(int16(v)), err
	case c == msgpcode.Int32:
		r.p++
		v, err = r.n(4, field)
		return int64(int32(v)), err
	case c == msgpcode.Int64:
		r.p++
		v, err = r.n(8, field)
		return int64(v), err
	case c == msgpcode.Uint8, c == msgpcode.Uint16, c == msgpcode.Uint32, c == msgpcode.Uint64, c == msgpcode.Nil:
		v, err = r.uint(field)
		if err == nil && v > math.MaxInt64 {
			return 0, Errorf(CodeInvalidArgument, "field %q is %d: out of range for a signed 64-bit integer", field, v)
		}
		return int64(v), err
	}
	return 0, wrongType(field, "integer", c)
}

// skip steps over one value of any type, with the one in-buffer walker
// (wire.Skip: bounded lengths and nesting).
func (r *reader) skip(field string) error {
	end, err := wire.Skip(r.b, r.p, wire.MaxDepth)
	if err != nil {
		return skipErr(field, err)
	}
	r.p = end
	return nil
}

// skipKey is skip of the value of a map key that is not a field name: the
// key becomes a string only for the error, since converting it for every
// skipped value allocated (six times per envelope PeekEvent reads).
func (r *reader) skipKey(key []byte) error {
	end, err := wire.Skip(r.b, r.p, wire.MaxDepth)
	if err != nil {
		return skipErr(string(key), err)
	}
	r.p = end
	return nil
}

//go:noinline
func skipErr(field string, err error) error {
	if se, ok := err.(*wire.SyntaxError); ok && se.Truncated {
		return truncatedErr(field)
	}
	return Errorf(CodeInvalidArgument, "field %q: %v", field, err)
}

// value returns the bytes of the next value, skipped.
func (r *reader) value(field string) ([]byte, error) {
	start := r.p
	if err := r.skip(field); err != nil {
		return nil, err
	}
	return r.b[start:r.p:r.p], nil
}

// event reads an envelope at the reader's position (into a zero e when
// r.lent is set, see UnmarshalEventNotificationLent).
func (r *reader) event(e *Event) error {
	if !r.lent {
		*e = Event{}
	}
	n, err := r.mapLen("event")
	if err != nil {
		return err
	}
	// String fields are collected first and copied into one allocation at
	// the end: one string per event instead of one per field.
	var (
		strs    [6][]byte
		dst     [6]*string
		nstr    int
		total   int
		payload []byte // raw msgpack, nil for a nil payload
	)
	addStr := func(field string, to *string) error {
		s, err := r.str(field)
		if err != nil {
			return err
		}
		for i := 0; i < nstr; i++ { // a repeated key: the last one wins
			if dst[i] == to {
				total += len(s) - len(strs[i])
				strs[i] = s
				return nil
			}
		}
		strs[nstr], dst[nstr] = s, to
		nstr++
		total += len(s)
		return nil
	}
	for range n {
		key, err := r.key("event")
		if err != nil {
			return err
		}
		switch string(key) {
		case keyID:
			err = addStr(keyID, &e.ID)
		case keyClass:
			err = addStr(keyClass, &e.Class)
		case keyChannel:
			err = addStr(keyChannel, &e.Channel)
		case keyOrigin:
			err = addStr(keyOrigin, &e.Origin)
		case keySender:
			err = addStr(keySender, &e.Sender)
		case keySchemaVersion:
			err = addStr(keySchemaVersion, &e.SchemaVersion)
		case keyOriginSeq:
			e.OriginSeq, err = r.uint(keyOriginSeq)
		case keyLamport:
			e.Lamport, err = r.uint(keyLamport)
		case keySeq:
			e.Seq, err = r.uint(keySeq)
		case keyTS:
			e.TS, err = r.int(keyTS)
		case keyPrev:
			e.Prev, err = r.bin(keyPrev)
		case keySig:
			e.Sig, err = r.bin(keySig)
		case keyHeaders:
			e.Headers, err = r.headers()
		case keyPayload:
			var raw []byte
			if raw, err = r.value(keyPayload); err == nil {
				payload = nil
				if raw[0] != msgpcode.Nil {
					payload = raw
				}
			}
		default:
			err = r.skipKey(key)
		}
		if err != nil {
			return err
		}
	}
	var buf []byte
	if r.lent {
		// The byte fields join the strings' allocation, after them.
		total += len(e.Prev) + len(e.Sig) + len(payload)
	}
	if total > 0 {
		buf = make([]byte, 0, total)
		for i := 0; i < nstr; i++ {
			buf = append(buf, strs[i]...)
		}
		// buf is never written again where the strings are (what follows
		// is appended within its capacity), so strings may share it.
		all := unsafe.String(unsafe.SliceData(buf), len(buf))
		off := 0
		for i := 0; i < nstr; i++ {
			*dst[i] = all[off : off+len(strs[i])]
			off += len(strs[i])
		}
	}
	if r.lent {
		e.Prev, buf = appendOwn(buf, e.Prev)
		e.Sig, buf = appendOwn(buf, e.Sig)
		payload, _ = appendOwn(buf, payload)
	}
	if payload != nil {
		e.Payload = msgpack.RawMessage(payload)
	}
	return nil
}

// appendOwn copies v to the end of buf, which has room for it, and returns
// the copy (nil stays nil, empty stays empty) and buf grown by it.
func appendOwn(buf, v []byte) (own, grown []byte) {
	if len(v) == 0 {
		if v == nil {
			return nil, buf
		}
		return []byte{}, buf
	}
	start := len(buf)
	buf = append(buf, v...)
	return buf[start:len(buf):len(buf)], buf
}

func (r *reader) headers() (map[string]string, error) {
	c, err := r.peek(keyHeaders)
	if err != nil {
		return nil, err
	}
	if c == msgpcode.Nil {
		r.p++
		return nil, nil
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return nil, wrongType(keyHeaders, "map", c)
	}
	n, err := r.mapLen(keyHeaders)
	if err != nil {
		return nil, err
	}
	h := make(map[string]string, n)
	for range n {
		k, err := r.key(keyHeaders)
		if err != nil {
			return nil, err
		}
		v, err := r.str(keyHeaders)
		if err != nil {
			return nil, err
		}
		h[string(k)] = string(v)
	}
	return h, nil
}

// SharedEvent is one event as the kernel hands it to every subscriber that
// wants it: the envelope (for in-process clients) and its msgpack encoding
// (for connections), each made at most once, on first use, and then shared
// read-only. An event published live starts as a value (ShareEvent) and is
// encoded once however many connections subscribe; an event read from the
// log starts as its stored bytes (ShareEncoded) and is decoded only if an
// in-process client wants it. Its methods are safe for concurrent use; neither
// the event nor the bytes may change once shared.
type SharedEvent struct {
	// Class, Channel and Seq are the envelope's routing fields, set at
	// construction, so that subscriptions can filter without decoding.
	Class   string
	Channel string
	Seq     uint64

	evOnce sync.Once
	ev     *Event
	evErr  error

	rawOnce sync.Once
	raw     []byte
	rawErr  error
}

// ShareEvent shares ev, which must not change afterwards.
func ShareEvent(ev *Event) *SharedEvent {
	s := &SharedEvent{Class: ev.Class, Channel: ev.Channel, Seq: ev.Seq, ev: ev}
	s.evOnce.Do(func() {})
	return s
}

// ShareStored shares an event together with its encoding, as AppendEvent
// wrote it for ev (the airc log hands on what it stored): neither is made
// again. A copy of ev is kept; neither it nor env may change afterwards.
func ShareStored(ev *Event, env []byte) *SharedEvent {
	cp := *ev
	s := &SharedEvent{Class: cp.Class, Channel: cp.Channel, Seq: cp.Seq, ev: &cp, raw: env}
	s.evOnce.Do(func() {})
	s.rawOnce.Do(func() {})
	return s
}

// ShareEncoded shares an encoded envelope (as AppendEvent writes it, or any
// msgpack map with the same keys), which must not change afterwards: Class
// and Channel alias it. It fails when the routing fields cannot be read.
func ShareEncoded(env []byte) (*SharedEvent, error) {
	k, err := PeekEvent(env)
	if err != nil {
		return nil, err
	}
	return ShareEncodedKeys(env, k), nil
}

// ShareEncodedKeys is ShareEncoded for a caller that has already peeked:
// k must be what PeekEvent(env) returned, its slices aliasing env (or bytes
// equal to them that never change either).
func ShareEncodedKeys(env []byte, k EventKeys) *SharedEvent {
	s := &SharedEvent{Class: aliasString(k.Class), Channel: aliasString(k.Channel), Seq: k.Seq, raw: env}
	s.rawOnce.Do(func() {})
	return s
}

// aliasString makes a string of bytes that are never written again.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Event returns the envelope, decoding the shared bytes the first time. The
// result is shared: read it, do not change it.
func (s *SharedEvent) Event() (*Event, error) {
	s.evOnce.Do(func() {
		// A private copy, so that an application holding on to one event
		// does not keep a larger buffer the bytes may be part of alive.
		ev := new(Event)
		if s.evErr = UnmarshalEvent(bytes.Clone(s.raw), ev); s.evErr == nil {
			s.ev = ev
		}
	})
	return s.ev, s.evErr
}

// Encoded returns the envelope's msgpack encoding (AppendEvent), made the
// first time. The result is shared: do not change it.
func (s *SharedEvent) Encoded() ([]byte, error) {
	s.rawOnce.Do(func() {
		s.raw, s.rawErr = AppendEvent(make([]byte, 0, encodedSizeHint(s.ev)), s.ev)
	})
	return s.raw, s.rawErr
}

// EventDelivery is the params of an events/event notification as the kernel
// sends it: one subscription's id around a shared event. Over a connection it
// encodes exactly as EventNotification does, copying the event's bytes, which
// are encoded once per event, not once per subscriber. An in-process client
// takes the event from it as a value.
type EventDelivery struct {
	Subscription string
	Event        *SharedEvent
}

// EncodeMsgpack implements msgpack.CustomEncoder: {subscription, event}.
func (d EventDelivery) EncodeMsgpack(enc *msgpack.Encoder) error {
	raw, err := d.Event.Encoded()
	if err != nil {
		return err
	}
	// The head through the encoder's own methods: no buffer to allocate.
	_ = enc.EncodeMapLen(2)
	_ = enc.EncodeString(keySubscription)
	_ = enc.EncodeString(d.Subscription)
	if err := enc.EncodeString(keyEvent); err != nil {
		return err
	}
	_, err = enc.Writer().Write(raw)
	return err
}

// AppendParams implements ParamsAppender: the same bytes as EncodeMsgpack,
// appended without going through a msgpack.Encoder (one per delivery).
func (d *EventDelivery) AppendParams(b []byte) ([]byte, error) {
	raw, err := d.Event.Encoded()
	if err != nil {
		return b, err
	}
	return AppendEventNotification(b, d.Subscription, raw), nil
}

// ParamsAppender is implemented by params on a hot path that write their own
// MessagePack map: a transport appends it to the message instead of encoding
// the value by reflection. It must append exactly one map.
type ParamsAppender interface {
	AppendParams(b []byte) ([]byte, error)
}

// Notification returns the delivery as an EventNotification value (the
// envelope decoded if it was not yet).
func (d *EventDelivery) Notification() (EventNotification, error) {
	ev, err := d.Event.Event()
	if err != nil {
		return EventNotification{}, err
	}
	return EventNotification{Subscription: d.Subscription, Event: *ev}, nil
}

// paramsDecoder is implemented by params structs on a hot path that DecodeParams
// hands to a hand-written decoder instead of reflection. It must behave as
// DecodeParams does: the same errors (invalid_argument naming the field),
// unknown keys skipped, nil as absent, interface fields kept raw.
type paramsDecoder interface {
	decodeParams(b []byte) error
}

// decodeParams reads events/emit's params, every emit's first cost in the
// daemon, without reflection. The payload stays raw (a sub-slice of b).
func (p *EmitParams) decodeParams(b []byte) error {
	r := reader{b: b}
	haveName := false
	if len(b) > 0 {
		c := b[0]
		if c != msgpcode.Nil && !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
			return Errorf(CodeInvalidArgument, "params must be a map, got %s", WireType(c))
		}
		n, err := r.mapLen("params")
		if err != nil {
			return err
		}
		for range n {
			key, err := r.key("params")
			if err != nil {
				return err
			}
			var s []byte
			switch string(key) {
			case "name":
				var c byte
				if c, err = r.peek("name"); err == nil {
					haveName = c != msgpcode.Nil
					s, err = r.str("name")
					p.Name = string(s)
				}
			case "payload":
				var raw []byte
				if raw, err = r.value("payload"); err == nil && raw[0] != msgpcode.Nil {
					p.Payload = msgpack.RawMessage(raw)
				}
			case "schemaVersion":
				s, err = r.str("schemaVersion")
				p.SchemaVersion = string(s)
			case "channel":
				s, err = r.str("channel")
				p.Channel = string(s)
			case "id":
				s, err = r.str("id")
				p.ID = string(s)
			case "headers":
				p.Headers, err = r.headers()
			case "strict":
				p.Strict, err = r.boolean("strict")
			default:
				err = r.skipKey(key)
			}
			if err != nil {
				return err
			}
		}
	}
	if !haveName {
		return Errorf(CodeInvalidArgument, "field %q is required", "name")
	}
	return nil
}

// EncodeMsgpack implements msgpack.CustomEncoder for events/emit's params,
// every Go client's cost per emit: the bytes the struct tags describe
// (omitempty fields left out when empty), without reflection over the
// struct. The payload goes through enc, with its settings.
func (p EmitParams) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 2
	for _, s := range [...]string{p.SchemaVersion, p.Channel, p.ID} {
		if s != "" {
			n++
		}
	}
	if len(p.Headers) > 0 {
		n++
	}
	if p.Strict {
		n++
	}
	_ = enc.EncodeMapLen(n)
	_ = enc.EncodeString("name")
	_ = enc.EncodeString(p.Name)
	_ = enc.EncodeString("payload")
	if err := enc.Encode(p.Payload); err != nil {
		return err
	}
	for _, kv := range [...][2]string{{"schemaVersion", p.SchemaVersion}, {"channel", p.Channel}} {
		if kv[1] != "" {
			_ = enc.EncodeString(kv[0])
			_ = enc.EncodeString(kv[1])
		}
	}
	if len(p.Headers) > 0 {
		_ = enc.EncodeString("headers")
		_ = enc.EncodeMapLen(len(p.Headers))
		for k, v := range p.Headers {
			_ = enc.EncodeString(k)
			_ = enc.EncodeString(v)
		}
	}
	if p.ID != "" {
		_ = enc.EncodeString("id")
		_ = enc.EncodeString(p.ID)
	}
	if p.Strict {
		_ = enc.EncodeString("strict")
		return enc.EncodeBool(true)
	}
	return nil
}
