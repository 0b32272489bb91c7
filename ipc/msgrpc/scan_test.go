package msgrpc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzReadMessageFastSlow holds the in-place walk of buffered bytes (scan) to
// the incremental walk it stands in for: over the same stream, cut into the
// same reads, a Reader and one restricted to the incremental walk return the
// same messages byte for byte and fail in the same way (code, text, msgid,
// truncation), whatever the read buffer's size (small ones send messages
// through the hand-over from scan to walk) and the size limit. Every message
// read also parses the same with and without ParseMessage's structure check.
func FuzzReadMessageFastSlow(f *testing.F) {
	event := mustMarshal(f, []any{2, "events/event", []any{map[string]any{"subscription": "s", "event": map[string]any{
		"id": "e1", "seq": 9, "payload": map[string]any{"text": strings.Repeat("y", 300), "f": 1.5, "l": []any{1, -2, nil, true}},
	}}}})
	seeds := [][]byte{
		mustMarshal(f, []any{0, 1, "kernel/ping", []any{}}),
		mustMarshal(f, []any{1, 2, nil, map[string]any{"id": "e1", "seq": 9, "bin": make([]byte, 70000)}}),
		mustMarshal(f, []any{1, 3, map[string]any{"code": "not_found", "message": "no such class"}, nil}),
		cat(event, event, event, mustMarshal(f, []any{2, "b", []any{}})),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdb, 0x00, 0x01, 0x00, 0x00}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff}),
		cat(reqHead, []byte{0x91, 0xdf, 0xff, 0xff, 0xff, 0xff}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xd8, 0x01}, make([]byte, 16)),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xc8, 0x00, 0x02, 0x01, 0xaa, 0xbb}),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'd'}, nested(MaxDepth-3)),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'd'}, nested(MaxDepth)),
		cat(reqHead, []byte{0x91, 0x81, 0xa1, 'x', 0xa5, 'a', 'b'}),
		{0x94, 0x00, 0xce, 0x00, 0x00},
		{0xc1},
		{0x94, 0x03, 0x01, 0xa1, 'm', 0x90},
		{0x93, 0x00, 0x01, 0xa1},
	}
	for _, s := range seeds {
		for _, chunk := range []byte{0, 2, 255} {
			for _, bufSize := range []byte{0, 20, 255} {
				f.Add(s, chunk, bufSize, uint16(0))
				f.Add(s, chunk, bufSize, uint16(40))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk, bufSize byte, limit uint16) {
		max := fuzzMax
		if limit > 0 {
			max = int(limit)
		}
		size := 16 + 16*int(bufSize) // bufio's smallest buffer is 16 bytes
		fast := NewReader(bufio.NewReaderSize(&chunkReader{data: data, n: int(chunk) + 1}, size), max)
		slow := NewReader(bufio.NewReaderSize(&chunkReader{data: data, n: int(chunk) + 1}, size), max)
		slow.slowOnly = true
		for i := 0; ; i++ {
			got, gerr := fast.ReadMessage()
			want, werr := slow.ReadMessage()
			if d := errDiff(gerr, werr); d != "" {
				t.Fatalf("message %d: %s", i, d)
			}
			if gerr != nil {
				if fast.buf != nil {
					t.Fatal("reader kept a buffer after an error")
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("message %d: got % x, want % x", i, got, want)
			}
			// The buffer may come from the pool that every reader in the
			// process shares, grown there by another reader up to poolMax;
			// what the reader must never do is keep more than that.
			if c := heldCap(fast); c > max && c > poolMax {
				t.Fatalf("a buffer of %d bytes, over the %d limit", c, max)
			}
			m1, err1 := ParseMessage(got)
			m2, err2 := parseFramed(got)
			if d := errDiff(err2, err1); d != "" || !reflect.DeepEqual(m1, m2) {
				t.Fatalf("message %d: parseFramed differs from ParseMessage: %s\n%+v\n%+v", i, d, m2, m1)
			}
		}
	})
}

// errDiff says how two errors from reading differ, or "" when they do not.
func errDiff(got, want error) string {
	var pg, pw *ProtocolError
	switch {
	case got == nil && want == nil:
		return ""
	case errors.As(got, &pg) && errors.As(want, &pw):
		if pg.Err.Code != pw.Err.Code || pg.Err.Message != pw.Err.Message || pg.HasMsgID != pw.HasMsgID || pg.MsgID != pw.MsgID ||
			errors.Is(got, io.ErrUnexpectedEOF) != errors.Is(want, io.ErrUnexpectedEOF) {
			return "got " + describe(got) + ", want " + describe(want)
		}
		return ""
	case got == want:
		return ""
	}
	return "got " + describe(got) + ", want " + describe(want)
}

func describe(err error) string {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Error() + " (unexpected EOF: " + map[bool]string{true: "yes", false: "no"}[errors.Is(err, io.ErrUnexpectedEOF)] + ")"
	}
	if err == nil {
		return "no error"
	}
	return err.Error()
}
