package airc

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// layout2Record is the stored envelope as layouts 1 and 2 wrote it before
// the log stored api.AppendEvent's bytes: msgpack.Marshal of this struct,
// integers at full width. Files written then must still read.
type layout2Record struct {
	ID            string             `msgpack:"id"`
	Class         string             `msgpack:"class"`
	Channel       string             `msgpack:"channel"`
	Origin        string             `msgpack:"origin"`
	OriginSeq     uint64             `msgpack:"originSeq"`
	Prev          []byte             `msgpack:"prev"`
	Sender        string             `msgpack:"sender"`
	Lamport       uint64             `msgpack:"lamport"`
	Seq           uint64             `msgpack:"seq"`
	TS            int64              `msgpack:"ts"`
	SchemaVersion string             `msgpack:"schemaVersion"`
	Headers       map[string]string  `msgpack:"headers"`
	Payload       msgpack.RawMessage `msgpack:"payload"`
	Sig           []byte             `msgpack:"sig"`
}

// The stored envelope is exactly the wire envelope (api.AppendEvent, the one
// envelope codec), with header keys sorted so the same event always stores
// the same bytes; it decodes back to the event; and the full-width records
// of older files decode to the same event. Lengths cover every string and
// bin header size.
func TestStoredEnvelopeIsTheWireEnvelope(t *testing.T) {
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
			{Headers: map[string]string{"b": "2", "a": "1", "c": s}, Prev: []byte{}, Sig: []byte{}, TS: 1 << 62, Payload: msgpack.RawMessage(payload)},
		} {
			got, err := encodeEvent(&ev)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := api.AppendEvent(nil, &ev)
			if !bytes.Equal(got, want) {
				t.Fatalf("size %d: stored\n%x\nwire\n%x", size, got, want)
			}
			for range 5 { // map order must not show
				if again, _ := encodeEvent(&ev); !bytes.Equal(again, got) {
					t.Fatalf("size %d: the same event stored as different bytes", size)
				}
			}
			back, err := decodeEvent(got)
			if err != nil {
				t.Fatal(err)
			}
			old, err := msgpack.Marshal(&layout2Record{ID: ev.ID, Class: ev.Class, Channel: ev.Channel, Origin: ev.Origin, OriginSeq: ev.OriginSeq,
				Prev: ev.Prev, Sender: ev.Sender, Lamport: ev.Lamport, Seq: ev.Seq, TS: ev.TS,
				SchemaVersion: ev.SchemaVersion, Headers: ev.Headers, Payload: ev.Payload.(msgpack.RawMessage), Sig: ev.Sig})
			if err != nil {
				t.Fatal(err)
			}
			fromOld, err := decodeEvent(old)
			if err != nil {
				t.Fatal(err)
			}
			if !sameFields(back, ev) || !sameFields(fromOld, ev) {
				t.Fatalf("size %d: decoded\n%+v\nfrom an old record\n%+v\nwant\n%+v", size, back, fromOld, ev)
			}
		}
	}
	// Small integers take their smallest encoding (the old records wrote
	// 0xcf/0xd3 everywhere, and log-backed subscribers received those).
	ev := api.Event{ID: "x", Class: "c:d", Channel: "global", OriginSeq: 1, Lamport: 2, Seq: 3, TS: 4, Payload: msgpack.RawMessage{0xc0}}
	got, _ := encodeEvent(&ev)
	if bytes.Contains(got, []byte{0xcf}) || bytes.Contains(got, []byte{0xd3}) {
		t.Fatalf("small integers stored at full width: %x", got)
	}
}

// sameFields compares events as stored: empty and nil byte slices alike.
func sameFields(a, b api.Event) bool {
	norm := func(e api.Event) api.Event {
		if len(e.Prev) == 0 {
			e.Prev = nil
		}
		if len(e.Sig) == 0 {
			e.Sig = nil
		}
		if len(e.Headers) == 0 {
			e.Headers = nil
		}
		return e
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
