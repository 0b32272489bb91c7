package msgrpc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cat joins byte pieces, for hand-built messages.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// reqHead is the start of request 7 for method "m" up to its params array.
var reqHead = []byte{0x94, 0x00, 0x07, 0xa1, 'm'}

// chunkReader returns at most n bytes per Read, so framing sees messages split
// at every possible boundary.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func nested(depth int) []byte {
	b := bytes.Repeat([]byte{0x91}, depth)
	return append(b, 0x01)
}

func TestReadMessageValid(t *testing.T) {
	msgs := [][]byte{
		mustMarshal(t, []any{0, 1, "kernel/ping", []any{}}),
		mustMarshal(t, []any{0, 4294967295, "events/emit", []any{map[string]any{"name": "chat:posted", "payload": map[string]any{"text": strings.Repeat("x", 300), "n": 1.5, "b": []byte{1, 2}}}}}),
		mustMarshal(t, []any{1, 1, nil, map[string]any{"ts": int64(-5)}}),
		mustMarshal(t, []any{1, 2, map[string]any{"code": "not_found", "message": "no"}, nil}),
		mustMarshal(t, []any{2, "events/event", []any{map[string]any{"subscription": "s1"}}}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'e', 0xd4, 0x01, 0x02}),             // fixext1
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'e', 0xc7, 0x02, 0x05, 0xaa, 0xbb}), // ext8
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'd'}, nested(MaxDepth-3)),           // exactly at the depth limit
		cat(reqHead, []byte{0x91, 0xdf, 0, 0, 0, 0}),                              // map32 with no pairs
	}
	stream := bytes.Join(msgs, nil)
	for _, chunk := range []int{1, 3, 7, 4096, -1} {
		r := NewReader(&chunkReader{data: stream, n: max(chunk, 1)}, 0)
		r.slowOnly = chunk < 0 // the incremental walk alone, byte by byte
		for i, want := range msgs {
			got, err := r.ReadMessage()
			if err != nil {
				t.Fatalf("chunk %d, message %d: %v", chunk, i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("chunk %d, message %d: got % x, want % x", chunk, i, got, want)
			}
			if _, err := ParseMessage(got); err != nil {
				t.Fatalf("chunk %d, message %d: parse: %v", chunk, i, err)
			}
		}
		if _, err := r.ReadMessage(); err != io.EOF {
			t.Fatalf("chunk %d: at the end got %v, want io.EOF", chunk, err)
		}
	}
}

func TestReadMessageBad(t *testing.T) {
	const max = 1024
	cases := []struct {
		name   string
		in     []byte
		code   api.Code
		msgid  bool // the request's msgid must be reported
		unexpE bool // caused by io.ErrUnexpectedEOF
	}{
		{"over size", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xda, 0x08, 0x00}, make([]byte, 2048)), api.CodeMessageTooLarge, true, false},
		{"lying bin32", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff}), api.CodeMessageTooLarge, true, false},
		{"lying str32", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdb, 0x7f, 0xff, 0xff, 0xff}), api.CodeMessageTooLarge, true, false},
		{"lying ext32", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}), api.CodeMessageTooLarge, true, false},
		{"lying array32", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff}), api.CodeMessageTooLarge, true, false},
		{"lying map32", cat(reqHead, []byte{0x91, 0xdf, 0x10, 0x00, 0x00, 0x00}), api.CodeMessageTooLarge, true, false},
		{"lying outer array32", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, api.CodeMessageTooLarge, false, false},
		{"elements beyond budget", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdc, 0x04, 0x00}), api.CodeMessageTooLarge, true, false},
		{"too deep", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'd'}, nested(MaxDepth-2)), api.CodeProtocolError, true, false},
		{"too deep at once", nested(100), api.CodeProtocolError, false, false},
		{"reserved 0xc1", []byte{0xc1}, api.CodeProtocolError, false, false},
		{"reserved 0xc1 in params", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc1}), api.CodeProtocolError, true, false},
		{"truncated header", []byte{0x94, 0x00}, api.CodeProtocolError, false, true},
		{"truncated payload", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xa5, 'a', 'b'}), api.CodeProtocolError, true, true},
		{"truncated length", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdb, 0x00}), api.CodeProtocolError, true, true},
		{"truncated container", cat(reqHead, []byte{0x92, 0x80}), api.CodeProtocolError, true, true},
		// Only bytes that arrived count: no msgid is made up from the rest.
		{"truncated msgid", []byte{0x94, 0x00, 0xce, 0x00, 0x00}, api.CodeProtocolError, false, true},
	}
	for _, tc := range cases {
		for _, slow := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/slow=%v", tc.name, slow), func(t *testing.T) {
				r := NewReader(&chunkReader{data: tc.in, n: 5}, max)
				r.slowOnly = slow
				got, err := r.ReadMessage()
				if err == nil {
					t.Fatalf("accepted % x", got)
				}
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("got %T %v, want *ProtocolError", err, err)
				}
				if !errors.Is(err, &api.Error{Code: tc.code}) {
					t.Fatalf("got %v, want code %s", err, tc.code)
				}
				if pe.HasMsgID != tc.msgid || (tc.msgid && pe.MsgID != 7) {
					t.Fatalf("msgid: got %v %d, want %v 7", pe.HasMsgID, pe.MsgID, tc.msgid)
				}
				if errors.Is(err, io.ErrUnexpectedEOF) != tc.unexpE {
					t.Fatalf("ErrUnexpectedEOF: got %v, want %v", !tc.unexpE, tc.unexpE)
				}
			})
		}
	}
}

// A length header is never a reason to allocate: a bin32 that claims 4 GiB
// under the default 16 MiB limit, or one that claims 15 MiB and then ends,
// costs no more than the bytes that actually arrived.
func TestReadMessageAllocatesFromBytesNotHeaders(t *testing.T) {
	cases := map[string][]byte{
		"4 GiB bin32":            cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff}),
		"15 MiB bin32 truncated": cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc6, 0x00, 0xf0, 0x00, 0x00}, make([]byte, 100)),
		"1G element array32":     cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdd, 0x40, 0x00, 0x00, 0x00}),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range 10 {
				r := NewReader(bytes.NewReader(in), 0)
				if _, err := r.ReadMessage(); err == nil {
					t.Fatal("accepted")
				}
			}
			runtime.ReadMemStats(&after)
			// 10 readers with 64 KiB bufio buffers each, plus one read chunk.
			if d := after.TotalAlloc - before.TotalAlloc; d > 2<<20 {
				t.Fatalf("allocated %d bytes for 10 bad messages", d)
			}
		})
	}
}

// heldCap is the size of the buffer r holds between messages: none (0) after
// a message handed out straight from the read buffer.
func heldCap(r *Reader) int {
	if r.buf == nil {
		return 0
	}
	return cap(*r.buf)
}

func TestReadMessageRetainsNoHugeBuffer(t *testing.T) {
	big := mustMarshal(t, []any{0, 1, "m", []any{map[string]any{"b": make([]byte, 3<<20)}}})
	small := mustMarshal(t, []any{2, "n", []any{}})
	r := NewReader(bytes.NewReader(cat(big, small)), 0)
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if c := heldCap(r); c > poolMax {
		t.Fatalf("after a small message the reader holds a %d byte buffer", c)
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Fatal(err)
	}
	if r.buf != nil {
		t.Fatal("an idle reader holds a buffer")
	}
}

func TestParseMessage(t *testing.T) {
	m := func(v ...any) []byte { return mustMarshal(t, v) }
	cases := []struct {
		name  string
		in    []byte
		code  api.Code // "" when valid
		msgid bool
		want  Message
	}{
		{"request", m(0, 7, "a/b", []any{map[string]any{"k": 1}}), "", true, Message{Type: TypeRequest, MsgID: 7, Method: "a/b", Params: api.RawParams{0x81, 0xa1, 'k', 0x01}}},
		{"request empty params", m(0, 7, "a/b", []any{}), "", true, Message{Type: TypeRequest, MsgID: 7, Method: "a/b"}},
		{"request nil params", m(0, 7, "a/b", []any{nil}), "", true, Message{Type: TypeRequest, MsgID: 7, Method: "a/b"}},
		{"response", m(1, 9, nil, "ok"), "", false, Message{Type: TypeResponse, MsgID: 9, Result: []byte{0xa2, 'o', 'k'}}},
		{"response error", m(1, 9, map[string]any{"code": "x"}, nil), "", false, Message{Type: TypeResponse, MsgID: 9, Error: m(map[string]any{"code": "x"})[1:], Result: []byte{0xc0}}},
		{"notification", m(2, "n", []any{}), "", false, Message{Type: TypeNotification, Method: "n"}},
		{"not an array", m(map[string]any{}), api.CodeProtocolError, false, Message{}},
		{"scalar", []byte{0x05}, api.CodeProtocolError, false, Message{}},
		{"two elements", m(0, 1), api.CodeProtocolError, false, Message{}},
		{"five elements", m(0, 1, "m", []any{}, 1), api.CodeProtocolError, false, Message{}},
		{"unknown type tag", m(3, 1, "m", []any{}), api.CodeProtocolError, false, Message{}},
		{"negative type tag", m(-1, 1, "m", []any{}), api.CodeProtocolError, false, Message{}},
		{"string type tag", m("0", 1, "m", []any{}), api.CodeProtocolError, false, Message{}},
		{"request of three", m(0, 1, "m"), api.CodeProtocolError, false, Message{}},
		{"notification of four", m(2, "m", []any{}, 1), api.CodeProtocolError, false, Message{}},
		{"msgid a string", m(0, "1", "m", []any{}), api.CodeProtocolError, false, Message{}},
		{"msgid negative", m(0, -1, "m", []any{}), api.CodeProtocolError, false, Message{}},
		{"msgid over uint32", m(0, uint64(1)<<32, "m", []any{}), api.CodeProtocolError, false, Message{}},
		{"method not a string", m(0, 7, 5, []any{}), api.CodeProtocolError, true, Message{}},
		{"method binary", m(0, 7, []byte("m"), []any{}), api.CodeProtocolError, true, Message{}},
		{"params a map", m(0, 7, "m", map[string]any{}), api.CodeInvalidArgument, true, Message{}},
		{"params two maps", m(0, 7, "m", []any{map[string]any{}, map[string]any{}}), api.CodeInvalidArgument, true, Message{}},
		{"params of an int", m(0, 7, "m", []any{1}), api.CodeInvalidArgument, true, Message{}},
		{"params of an array", m(0, 7, "m", []any{[]any{}}), api.CodeInvalidArgument, true, Message{}},
		{"trailing bytes", append(m(2, "n", []any{}), 0x00), api.CodeProtocolError, false, Message{}},
		{"truncated", m(0, 7, "abc", []any{})[:5], api.CodeProtocolError, true, Message{}},
		{"lying str32", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xff}), api.CodeProtocolError, true, Message{}},
		{"lying array32", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff}), api.CodeProtocolError, true, Message{}},
		{"too deep", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'd'}, nested(MaxDepth)), api.CodeProtocolError, true, Message{}},
		{"reserved 0xc1", cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc1}), api.CodeProtocolError, true, Message{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMessage(tc.in)
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Type != tc.want.Type || got.MsgID != tc.want.MsgID || got.Method != tc.want.Method ||
					!bytes.Equal(got.Params, tc.want.Params) || !bytes.Equal(got.Error, tc.want.Error) || !bytes.Equal(got.Result, tc.want.Result) {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Err.Code != tc.code {
				t.Fatalf("got %v, want code %s", err, tc.code)
			}
			if pe.HasMsgID != tc.msgid || (tc.msgid && pe.MsgID != 7) {
				t.Fatalf("msgid: got %v %d, want %v", pe.HasMsgID, pe.MsgID, tc.msgid)
			}
		})
	}
}

func TestEncodeParams(t *testing.T) {
	type p struct {
		Name string `msgpack:"name"`
	}
	cases := []struct {
		name   string
		params any
		want   []byte // the params array
		bad    bool
	}{
		{"nil", nil, []byte{0x90}, false},
		{"struct", p{Name: "a"}, []byte{0x91, 0x81, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'a'}, false},
		{"nil pointer", (*p)(nil), []byte{0x90}, false},
		{"map", map[string]any{}, []byte{0x91, 0x80}, false},
		{"raw params", api.RawParams{0x80}, []byte{0x91, 0x80}, false},
		{"empty raw params", api.RawParams(nil), []byte{0x90}, false},
		{"raw message", msgpack.RawMessage{0x81, 0xa1, 'k', 0xc0}, []byte{0x91, 0x81, 0xa1, 'k', 0xc0}, false},
		{"value params", api.ValueParams{V: map[string]int{}}, []byte{0x91, 0x80}, false},
		{"a string", "x", nil, true},
		{"raw array", msgpack.RawMessage{0x90}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := encodeNotification("n", tc.params)
			if tc.bad {
				if !errors.Is(err, &api.Error{Code: api.CodeInvalidArgument}) {
					t.Fatalf("got %v, want invalid_argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := cat([]byte{0x93, 0x02, 0xa1, 'n'}, tc.want)
			if !bytes.Equal(e.buf.Bytes(), want) {
				t.Fatalf("got % x, want % x", e.buf.Bytes(), want)
			}
		})
	}
}

func TestEncodeResponse(t *testing.T) {
	cases := []struct {
		name   string
		result any
		err    *api.Error
		want   []any
	}{
		{"value", map[string]int{"a": 1}, nil, []any{int8(1), int8(3), nil, map[string]any{"a": int8(1)}}},
		{"raw verbatim", msgpack.RawMessage{0xa1, 'r'}, nil, []any{int8(1), int8(3), nil, "r"}},
		{"error", nil, &api.Error{Code: api.CodeNotFound, Message: "gone"}, []any{int8(1), int8(3), map[string]any{"code": "not_found", "message": "gone"}, nil}},
		{"unencodable result", make(chan int), nil, []any{int8(1), int8(3), map[string]any{"code": "internal", "message": "encoding result: msgpack: Encode(unsupported chan int)"}, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := encodeResponse(3, tc.result, tc.err)
			var got []any
			if err := msgpack.Unmarshal(e.buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			// fmt prints maps sorted by key, so this compares content.
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	e := DecodeError(mustMarshal(t, map[string]any{"code": "not_found", "message": "m", "data": []int{1}}))
	if e.Code != api.CodeNotFound || e.Message != "m" || e.Data == nil {
		t.Fatalf("got %#v", e)
	}
	if e := DecodeError(mustMarshal(t, "boom")); e.Code != api.CodeInternal || e.Message != "boom" {
		t.Fatalf("got %#v", e)
	}
	if e := DecodeError(mustMarshal(t, map[string]any{"message": "m"})); e.Code != api.CodeInternal {
		t.Fatalf("got %#v", e)
	}
	if e := DecodeError([]byte{0xc0}); e != nil {
		t.Fatalf("got %#v", e)
	}
}

// Method names are interned up to a bound, and names past it still parse.
func TestMethodNamesInterned(t *testing.T) {
	msg := mustMarshal(t, []any{2, "test/interned", []any{}})
	a, err := ParseMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		m, err := ParseMessage(msg)
		if err != nil || m.Method != a.Method {
			t.Fatalf("%q %v", m.Method, err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per parse of a known method", n)
	}
	for i := range 2 * maxInterned {
		name := fmt.Sprintf("test/made-up-%d", i)
		m, err := ParseMessage(mustMarshal(t, []any{2, name, []any{}}))
		if err != nil || m.Method != name {
			t.Fatalf("%q %v", m.Method, err)
		}
	}
	if n := len(*methodNames.Load()); n > maxInterned {
		t.Fatalf("%d names interned, bound %d", n, maxInterned)
	}
}
