package airc

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/wire"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/vmihailenco/msgpack/v5"
)

// SigningDomain prefixes the canonical encoding in the bytes an origin signs,
// so an event signature can never be taken for a signature over anything else
// the same key signs (alloys, contracts, TLS).
const SigningDomain = "continuum/event/v1\n"

// HashSize is the size of an event hash (SHA-256).
const HashSize = sha256.Size

// Hash is an event hash: SHA-256 of the signed bytes (SigningDomain followed by
// the canonical encoding). It chains an origin's events (prev) and tells two
// events apart when a fork is detected.
type Hash [HashSize]byte

// MaxDepth bounds the nesting of a payload; deeper payloads are refused so a
// hostile peer cannot exhaust the stack (the bound of every reader,
// wire.MaxDepth).
const MaxDepth = wire.MaxDepth

// canonicalFields is the number of elements of the canonical array.
const canonicalFields = 12

// ErrNotCanonicalizable wraps every reason a value has no canonical encoding.
var ErrNotCanonicalizable = errors.New("airc: no canonical encoding")

func canonErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotCanonicalizable}, args...)...)
}

// CanonicalPayload returns the canonical msgpack encoding of a payload. A
// msgpack.RawMessage is taken as encoded msgpack (the socket path); any other
// value (the in-process path) is first encoded with msgpack.Marshal. Both then
// go through the same transcoder, so the same data gives the same bytes
// whichever path brought it. A plain []byte is a bin value, not msgpack. See
// docs/CANONICAL.md for the rules.
func CanonicalPayload(v any) ([]byte, error) {
	var raw []byte
	switch p := v.(type) {
	case nil:
		return []byte{0xc0}, nil
	case msgpack.RawMessage:
		raw = p
	default:
		b, err := msgpack.Marshal(v)
		if err != nil {
			return nil, canonErr("payload: %v", err)
		}
		raw = b
	}
	if len(raw) == 0 {
		return nil, canonErr("payload: empty msgpack")
	}
	out, rest, err := transcode(make([]byte, 0, len(raw)+8), raw, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, canonErr("payload: %d trailing bytes after the value", len(rest))
	}
	return out, nil
}

// Canonical returns the canonical encoding of ev (every envelope field except
// seq and sig), computing the payload's canonical form.
func Canonical(ev *api.Event) ([]byte, error) {
	p, err := CanonicalPayload(ev.Payload)
	if err != nil {
		return nil, err
	}
	return appendCanonical(nil, ev, p)
}

// SigningBytes returns SigningDomain followed by the canonical encoding: the
// exact bytes the origin signs and the event hash covers.
func SigningBytes(ev *api.Event) ([]byte, error) {
	p, err := CanonicalPayload(ev.Payload)
	if err != nil {
		return nil, err
	}
	return appendCanonical([]byte(SigningDomain), ev, p)
}

// HashOf returns the event hash of ev.
func HashOf(ev *api.Event) (Hash, error) {
	b, err := SigningBytes(ev)
	if err != nil {
		return Hash{}, err
	}
	return sha256.Sum256(b), nil
}

// SignEvent sets ev.Sig to id's signature over ev's signing bytes. It does
// not set ev.Origin: the caller must have set it to id.PeerID().
func SignEvent(id *identity.Identity, ev *api.Event) error {
	if ev.Origin != id.PeerID() {
		return fmt.Errorf("airc: event origin %q is not the signer %q", ev.Origin, id.PeerID())
	}
	b, err := SigningBytes(ev)
	if err != nil {
		return err
	}
	ev.Sig = id.Sign(b)
	return nil
}

// VerifyEvent checks ev.Sig against the key named by ev.Origin. It returns
// the event hash when the signature holds.
func VerifyEvent(ev *api.Event) (Hash, error) {
	b, err := SigningBytes(ev)
	if err != nil {
		return Hash{}, err
	}
	if !identity.Verify(ev.Origin, b, ev.Sig) {
		return Hash{}, errors.New("airc: signature does not verify against the origin's key")
	}
	return sha256.Sum256(b), nil
}

// appendCanonical appends the canonical array of ev, whose payload is already
// canonical (payload), to dst.
func appendCanonical(dst []byte, ev *api.Event, payload []byte) ([]byte, error) {
	for _, f := range []struct{ name, v string }{
		{"id", ev.ID}, {"class", ev.Class}, {"channel", ev.Channel}, {"origin", ev.Origin},
		{"sender", ev.Sender}, {"schemaVersion", ev.SchemaVersion},
	} {
		if !utf8.ValidString(f.v) {
			return nil, canonErr("%s is not valid UTF-8", f.name)
		}
	}
	prev := ev.Prev
	if len(prev) == 0 {
		prev = zeroHash[:]
	}
	if len(prev) != HashSize {
		return nil, canonErr("prev is %d bytes, want %d", len(prev), HashSize)
	}
	dst = append(dst, 0x90|canonicalFields)
	dst = wire.AppendStr(dst, ev.ID)
	dst = wire.AppendStr(dst, ev.Class)
	dst = wire.AppendStr(dst, ev.Channel)
	dst = wire.AppendStr(dst, ev.Origin)
	dst = wire.AppendUint(dst, ev.OriginSeq)
	dst = wire.AppendBin(dst, prev)
	dst = wire.AppendStr(dst, ev.Sender)
	dst = wire.AppendUint(dst, ev.Lamport)
	dst = wire.AppendInt(dst, ev.TS)
	dst = wire.AppendStr(dst, ev.SchemaVersion)
	if err := checkHeaders(ev.Headers); err != nil {
		return nil, err
	}
	dst = appendHeaders(dst, ev.Headers)
	return append(dst, payload...), nil
}

var zeroHash Hash

func checkHeaders(h map[string]string) error {
	for k, v := range h {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return canonErr("header %q is not valid UTF-8", k)
		}
	}
	return nil
}

// appendHeaders writes headers as a map whose entries are sorted by the
// bytewise order of their keys' canonical encodings (the one map rule).
func appendHeaders(dst []byte, h map[string]string) []byte {
	dst = wire.AppendMapHeader(dst, len(h))
	if len(h) == 0 {
		return dst
	}
	type entry struct {
		enc []byte
		k   string
	}
	ents := make([]entry, 0, len(h))
	for k := range h {
		ents = append(ents, entry{wire.AppendStr(nil, k), k})
	}
	slices.SortFunc(ents, func(a, b entry) int { return bytes.Compare(a.enc, b.enc) })
	for _, e := range ents {
		dst = append(dst, e.enc...)
		dst = wire.AppendStr(dst, h[e.k])
	}
	return dst
}

// canonicalNaN is the one NaN the canonical form uses.
const canonicalNaN = 0x7ff8000000000000

func appendFloat(dst []byte, f float64) []byte {
	if f != f {
		f = math.Float64frombits(canonicalNaN)
	}
	return wire.AppendFloat64(dst, f)
}

// take returns the first n bytes of src and the rest, refusing a length that
// runs past the input (no allocation is ever made from an unchecked length).
func take(src []byte, n uint64) ([]byte, []byte, error) {
	if n > uint64(len(src)) {
		return nil, nil, canonErr("truncated msgpack: need %d bytes, have %d", n, len(src))
	}
	return src[:n], src[n:], nil
}

func be(src []byte, size int) (uint64, []byte, error) {
	b, rest, err := take(src, uint64(size))
	if err != nil {
		return 0, nil, err
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, rest, nil
}

// transcode reads one msgpack value from src and appends its canonical form to
// dst. It returns the rest of src.
func transcode(dst, src []byte, depth int) ([]byte, []byte, error) {
	if depth > MaxDepth {
		return nil, nil, canonErr("payload nested deeper than %d", MaxDepth)
	}
	if len(src) == 0 {
		return nil, nil, canonErr("truncated msgpack")
	}
	c, src := src[0], src[1:]
	var (
		n   uint64
		err error
	)
	switch {
	case c <= 0x7f:
		return append(dst, c), src, nil
	case c >= 0xe0:
		return append(dst, c), src, nil
	case c&0xf0 == 0x80:
		return transcodeMap(dst, src, uint64(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return transcodeArray(dst, src, uint64(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return transcodeStr(dst, src, uint64(c&0x1f))
	}
	switch c {
	case 0xc0, 0xc2, 0xc3:
		return append(dst, c), src, nil
	case 0xc4, 0xc5, 0xc6:
		if n, src, err = be(src, 1<<(c-0xc4)); err != nil {
			return nil, nil, err
		}
		var b []byte
		if b, src, err = take(src, n); err != nil {
			return nil, nil, err
		}
		return wire.AppendBin(dst, b), src, nil
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		if c >= 0xd4 {
			n = 1 << (c - 0xd4)
		} else if n, src, err = be(src, 1<<(c-0xc7)); err != nil {
			return nil, nil, err
		}
		var typ, data []byte
		if typ, src, err = take(src, 1); err != nil {
			return nil, nil, err
		}
		if data, src, err = take(src, n); err != nil {
			return nil, nil, err
		}
		return wire.AppendExt(dst, typ[0], data), src, nil
	case 0xca:
		if n, src, err = be(src, 4); err != nil {
			return nil, nil, err
		}
		return appendFloat(dst, float64(math.Float32frombits(uint32(n)))), src, nil
	case 0xcb:
		if n, src, err = be(src, 8); err != nil {
			return nil, nil, err
		}
		return appendFloat(dst, math.Float64frombits(n)), src, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		if n, src, err = be(src, 1<<(c-0xcc)); err != nil {
			return nil, nil, err
		}
		return wire.AppendUint(dst, n), src, nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		if n, src, err = be(src, size); err != nil {
			return nil, nil, err
		}
		shift := 64 - 8*size // sign-extend
		return wire.AppendInt(dst, int64(n<<shift)>>shift), src, nil
	case 0xd9, 0xda, 0xdb:
		if n, src, err = be(src, 1<<(c-0xd9)); err != nil {
			return nil, nil, err
		}
		return transcodeStr(dst, src, n)
	case 0xdc, 0xdd:
		if n, src, err = be(src, 2<<(c-0xdc)); err != nil {
			return nil, nil, err
		}
		return transcodeArray(dst, src, n, depth)
	case 0xde, 0xdf:
		if n, src, err = be(src, 2<<(c-0xde)); err != nil {
			return nil, nil, err
		}
		return transcodeMap(dst, src, n, depth)
	}
	return nil, nil, canonErr("msgpack format byte 0x%02x is never used", c)
}

func transcodeStr(dst, src []byte, n uint64) ([]byte, []byte, error) {
	s, rest, err := take(src, n)
	if err != nil {
		return nil, nil, err
	}
	if !utf8.Valid(s) {
		return nil, nil, canonErr("str is not valid UTF-8 (send bytes as bin)")
	}
	return append(wire.AppendStrHeader(dst, len(s)), s...), rest, nil
}

func transcodeArray(dst, src []byte, n uint64, depth int) ([]byte, []byte, error) {
	// Every element takes at least one byte: a count larger than the input is
	// a lie, refused before anything is done with it.
	if n > uint64(len(src)) {
		return nil, nil, canonErr("truncated msgpack: array of %d in %d bytes", n, len(src))
	}
	dst = wire.AppendArrayHeader(dst, int(n))
	var err error
	for range n {
		if dst, src, err = transcode(dst, src, depth+1); err != nil {
			return nil, nil, err
		}
	}
	return dst, src, nil
}

func transcodeMap(dst, src []byte, n uint64, depth int) ([]byte, []byte, error) {
	if n > uint64(len(src))/2 {
		return nil, nil, canonErr("truncated msgpack: map of %d in %d bytes", n, len(src))
	}
	dst = wire.AppendMapHeader(dst, int(n))
	if n == 0 {
		return dst, src, nil
	}
	// Transcode every entry into one scratch buffer, then copy them out in key
	// order.
	type entry struct{ k, kv []byte }
	var (
		scratch = make([]byte, 0, 64)
		spans   = make([][3]int, 0, n) // start, end of key, end of value
		err     error
	)
	for range n {
		start := len(scratch)
		if scratch, src, err = transcode(scratch, src, depth+1); err != nil {
			return nil, nil, err
		}
		kend := len(scratch)
		if scratch, src, err = transcode(scratch, src, depth+1); err != nil {
			return nil, nil, err
		}
		spans = append(spans, [3]int{start, kend, len(scratch)})
	}
	ents := make([]entry, len(spans))
	for i, s := range spans {
		ents[i] = entry{k: scratch[s[0]:s[1]], kv: scratch[s[0]:s[2]]}
	}
	slices.SortFunc(ents, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	for i, e := range ents {
		if i > 0 && bytes.Equal(ents[i-1].k, e.k) {
			return nil, nil, canonErr("map has the key %x twice", e.k)
		}
		dst = append(dst, e.kv...)
	}
	return dst, src, nil
}
