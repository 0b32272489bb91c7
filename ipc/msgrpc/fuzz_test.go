package msgrpc

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// fuzzMax is small so the fuzzer reaches the size limit easily.
const fuzzMax = 4096

// FuzzReadMessage feeds byte streams, cut into chunks of every size, through
// the framing reader and the message parser. Whatever the input: no panic; no
// message and no buffer beyond the limit; whatever framing accepts is one
// whole msgpack object by the codec's own reading too; and whatever parses
// as a message encodes back to a message that parses the same.
func FuzzReadMessage(f *testing.F) {
	seeds := [][]byte{
		mustMarshal(f, []any{0, 1, "kernel/ping", []any{}}),
		mustMarshal(f, []any{0, 2, "events/emit", []any{map[string]any{"name": "chat:posted", "payload": map[string]any{"text": "hi", "f": 1.25, "bin": []byte{1}}}}}),
		mustMarshal(f, []any{1, 2, nil, map[string]any{"id": "e1", "seq": 9}}),
		mustMarshal(f, []any{1, 3, map[string]any{"code": "not_found", "message": "no such class"}, nil}),
		mustMarshal(f, []any{2, "events/event", []any{map[string]any{"subscription": "s", "event": map[string]any{"payload": nil}}}}),
		cat(mustMarshal(f, []any{0, 1, "a", []any{}}), mustMarshal(f, []any{2, "b", []any{}})),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdb, 0x00, 0x01, 0x00, 0x00}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff}),
		cat(reqHead, []byte{0x91, 0xdf, 0xff, 0xff, 0xff, 0xff}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xd8, 0x01}, make([]byte, 16)),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc8, 0x00, 0x02, 0x01, 0xaa, 0xbb}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'd'}, nested(MaxDepth-3)),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'd'}, nested(MaxDepth)),
		{0xc1},
		{0x94, 0x03, 0x01, 0xa1, 'm', 0x90},
		{0x93, 0x00, 0x01, 0xa1},
	}
	for _, s := range seeds {
		for _, chunk := range []byte{0, 2, 255} {
			f.Add(s, chunk)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk byte) {
		r := NewReader(&chunkReader{data: data, n: int(chunk) + 1}, fuzzMax)
		for {
			msg, err := r.ReadMessage()
			if err != nil {
				var pe *ProtocolError
				if err != io.EOF && !errors.As(err, &pe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				if r.buf != nil {
					t.Fatal("reader kept a buffer after an error")
				}
				return
			}
			// A held buffer may be a pooled one another reader grew (up to
			// poolMax); only the message itself is bound by the limit.
			if len(msg) > fuzzMax || heldCap(r) > max(fuzzMax, poolMax) {
				t.Fatalf("message of %d bytes in a buffer of %d, over the %d limit", len(msg), heldCap(r), fuzzMax)
			}
			dec := msgpack.NewDecoder(bytes.NewReader(msg))
			if err := dec.Skip(); err != nil {
				t.Fatalf("framing accepted what the codec cannot read: %v\n% x", err, msg)
			}
			if dec.Buffered().(*bytes.Reader).Len() != 0 {
				t.Fatalf("framing cut a message short: % x", msg)
			}
			m, err := ParseMessage(msg)
			if err != nil {
				if _, ok := err.(*ProtocolError); !ok {
					t.Fatalf("parse error of type %T", err)
				}
				continue
			}
			enc, err := EncodeMessage(m)
			if err != nil {
				t.Fatalf("cannot encode a parsed message %+v: %v", m, err)
			}
			m2, err := ParseMessage(enc)
			if err != nil {
				t.Fatalf("re-encoded message does not parse: %v\n% x", err, enc)
			}
			if m.Type != m2.Type || m.MsgID != m2.MsgID || m.Method != m2.Method ||
				!bytes.Equal(m.Params, m2.Params) || !bytes.Equal(m.Error, m2.Error) || !bytes.Equal(m.Result, m2.Result) {
				t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
			}
		}
	})
}
