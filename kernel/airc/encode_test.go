package airc

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// TestEncodeEventMatchesMsgpack pins the hand-written envelope encoder to
// what msgpack.Marshal makes of record: byte for byte where the headers
// have at most one key (more follow Go's map order there), and equal once
// decoded otherwise. Lengths cover every string and bin header size.
func TestEncodeEventMatchesMsgpack(t *testing.T) {
	reflected := func(ev *api.Event) []byte {
		p, _ := ev.Payload.(msgpack.RawMessage)
		b, err := msgpack.Marshal(&record{
			ID: ev.ID, Class: ev.Class, Channel: ev.Channel, Origin: ev.Origin, OriginSeq: ev.OriginSeq,
			Prev: ev.Prev, Sender: ev.Sender, Lamport: ev.Lamport, Seq: ev.Seq, TS: ev.TS,
			SchemaVersion: ev.SchemaVersion, Headers: ev.Headers, Payload: p, Sig: ev.Sig,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	many := map[string]string{}
	for i := range 70000 {
		many[strings.Repeat("k", i%40)+string(rune('a'+i%26))+strings.Repeat("x", i/26%7)+string(rune(i))] = "v"
	}
	if len(many) <= 65535 {
		t.Fatalf("want a map32 of headers, have %d keys", len(many))
	}
	payload, err := CanonicalPayload(map[string]any{"roomId": "r", "text": strings.Repeat("t", 300)})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("s", size)
		bin := bytes.Repeat([]byte{7}, size)
		for _, ev := range []api.Event{
			{ID: s, Class: s, Channel: s, Origin: s, Sender: s, SchemaVersion: s, Prev: bin, Sig: bin, Payload: msgpack.RawMessage(payload)},
			{ID: "01JDQ2ZC4B6S1V4Q0C3Y3P9K1M", Class: "chat:posted", Channel: "global", OriginSeq: 1<<63 + uint64(size), Lamport: uint64(size), Seq: 1, TS: -int64(size) - 1, Headers: map[string]string{s: s}, Payload: msgpack.RawMessage{0xc0}},
			{Headers: map[string]string{}, Prev: []byte{}, Sig: []byte{}, TS: 1 << 62, Payload: msgpack.RawMessage(payload)},
		} {
			got, _ := encodeEvent(&ev)
			if want := reflected(&ev); !bytes.Equal(got, want) {
				t.Fatalf("size %d: encodeEvent\n%x\nmsgpack.Marshal\n%x", size, got, want)
			}
		}
	}
	for _, h := range []map[string]string{{"a": "1", "b": "2", "c": "3"}, many} {
		ev := api.Event{ID: "x", Headers: h, Payload: msgpack.RawMessage(payload)}
		got, _ := encodeEvent(&ev)
		var a, b record
		if err := msgpack.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		if err := msgpack.Unmarshal(reflected(&ev), &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) || len(a.Headers) != len(h) {
			t.Fatalf("%d headers: decoded records differ", len(h))
		}
	}
}
