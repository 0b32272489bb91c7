package api

import (
	"bytes"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// refEvent is Event as the reflection encoder saw it before the hand-written
// codec: the bytes AppendEvent writes must stay the same.
type refEvent struct {
	ID            string            `msgpack:"id"`
	Class         string            `msgpack:"class"`
	Channel       string            `msgpack:"channel"`
	Origin        string            `msgpack:"origin"`
	OriginSeq     uint64            `msgpack:"originSeq"`
	Prev          []byte            `msgpack:"prev"`
	Sender        string            `msgpack:"sender"`
	Lamport       uint64            `msgpack:"lamport"`
	Seq           uint64            `msgpack:"seq"`
	TS            int64             `msgpack:"ts"`
	SchemaVersion string            `msgpack:"schemaVersion"`
	Headers       map[string]string `msgpack:"headers"`
	Payload       any               `msgpack:"payload"`
	Sig           []byte            `msgpack:"sig"`
}

// reflectEncode encodes v as the daemon's connections did: reflection, with
// compact integers.
func reflectEncode(t testing.TB, v any, compact bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(compact)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sampleEvent() Event {
	return Event{
		ID: "01JDQ2ZC4B6S1V4Q0C3Y3P9K1M", Class: "chat:posted", Channel: "room-1",
		Origin: "peer7x4kq2m3h5n6p7r8s9t0v1w2y3z4a5b6c7d8e9f0g1h2", OriginSeq: 70000,
		Prev: bytes.Repeat([]byte{7}, 32), Sender: "c12", Lamport: 1 << 40, Seq: 300,
		TS: 1700000000123, SchemaVersion: "v1", Headers: map[string]string{"k": "v"},
		Payload: msgpack.RawMessage(mustMarshal(map[string]any{"roomId": "room-1", "text": "hello"})),
		Sig:     bytes.Repeat([]byte{9}, 64),
	}
}

func mustMarshal(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func toRef(e Event) refEvent {
	return refEvent{e.ID, e.Class, e.Channel, e.Origin, e.OriginSeq, e.Prev, e.Sender, e.Lamport, e.Seq, e.TS, e.SchemaVersion, e.Headers, e.Payload, e.Sig}
}

func TestAppendEventMatchesReflection(t *testing.T) {
	cases := map[string]Event{
		"full":        sampleEvent(),
		"zero":        {},
		"local":       {ID: "x", Class: "a:b", TS: -5, Payload: map[string]any{"n": int64(1) << 40}}, // one key: map order is random
		"negative ts": {TS: -1 << 40, Payload: []any{1, "x", nil}},
		"long strings": {Class: strings.Repeat("c", 40), Channel: strings.Repeat("h", 300), Sender: strings.Repeat("s", 70000),
			Prev: bytes.Repeat([]byte{1}, 300), Sig: []byte{}},
		"go payload": {Payload: struct {
			N int64 `msgpack:"n"`
		}{N: 1 << 33}},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := AppendEvent(nil, &ev)
			if err != nil {
				t.Fatal(err)
			}
			want := reflectEncode(t, toRef(ev), true)
			if !bytes.Equal(got, want) {
				t.Fatalf("bytes differ\n got %x\nwant %x", got, want)
			}
			// Through msgpack, by value and by pointer, and inside a
			// notification.
			if b := reflectEncode(t, ev, false); !bytes.Equal(b, want) {
				t.Fatalf("msgpack.Encode(Event) differs:\n got %x\nwant %x", b, want)
			}
			if b := reflectEncode(t, &ev, false); !bytes.Equal(b, want) {
				t.Fatal("msgpack.Encode(*Event) differs")
			}
			type refNote struct {
				Subscription string   `msgpack:"subscription"`
				Event        refEvent `msgpack:"event"`
			}
			wantNote := reflectEncode(t, refNote{"s1", toRef(ev)}, true)
			if b := reflectEncode(t, EventNotification{Subscription: "s1", Event: ev}, false); !bytes.Equal(b, wantNote) {
				t.Fatalf("EventNotification differs:\n got %x\nwant %x", b, wantNote)
			}
			if b := AppendEventNotification(nil, "s1", got); !bytes.Equal(b, wantNote) {
				t.Fatal("AppendEventNotification differs")
			}
			sh := ShareEvent(&ev)
			if b := reflectEncode(t, &EventDelivery{Subscription: "s1", Event: sh}, false); !bytes.Equal(b, wantNote) {
				t.Fatal("EventDelivery differs")
			}
			// The transport's fast path writes the same bytes.
			if b, err := (&EventDelivery{Subscription: "s1", Event: sh}).AppendParams([]byte{0xff}); err != nil || !bytes.Equal(b[1:], wantNote) || b[0] != 0xff {
				t.Fatalf("AppendParams differs (%v)", err)
			}
		})
	}
}

func TestUnmarshalEventRoundTrip(t *testing.T) {
	ev := sampleEvent()
	for _, compact := range []bool{true, false} { // older logs hold full-width integers
		b := reflectEncode(t, toRef(ev), compact)
		var got Event
		if err := UnmarshalEvent(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("compact=%v:\n got %+v\nwant %+v", compact, got, ev)
		}
		// The payload is a sub-slice of the input, not a copy.
		p := got.Payload.(msgpack.RawMessage)
		if i := bytes.Index(b, p); i < 0 || &b[i] != &p[0] {
			t.Fatal("payload does not alias the input")
		}
		if cap(p) != len(p) {
			t.Fatal("payload's capacity reaches past it: an append would overwrite the input")
		}
	}
	// Through msgpack.Unmarshal (DecodeMsgpack) and DecodeParams, which
	// reach it for a field of type Event.
	var viaLib Event
	if err := msgpack.Unmarshal(reflectEncode(t, ev, true), &viaLib); err != nil || !reflect.DeepEqual(viaLib, ev) {
		t.Fatalf("msgpack.Unmarshal: %v %+v", err, viaLib)
	}
	var n EventNotification
	if err := DecodeParams(reflectEncode(t, EventNotification{Subscription: "s9", Event: ev}, true), &n); err != nil || n.Subscription != "s9" || !reflect.DeepEqual(n.Event, ev) {
		t.Fatalf("DecodeParams: %v %+v", err, n)
	}
	var rr ReplayResult
	if err := DecodeParams(reflectEncode(t, ReplayResult{Events: []Event{ev, {}}, Next: new("x")}, true), &rr); err != nil || len(rr.Events) != 2 || !reflect.DeepEqual(rr.Events[0], ev) {
		t.Fatalf("ReplayResult: %v %+v", err, rr)
	}
}

func TestUnmarshalEventNotification(t *testing.T) {
	ev := sampleEvent()
	b := reflectEncode(t, map[string]any{"extra": []any{1, map[string]any{"x": 2}}, "event": toRef(ev), "subscription": "s42", "later": "x"}, true)
	var n EventNotification
	if err := UnmarshalEventNotification(b, &n); err != nil {
		t.Fatal(err)
	}
	if n.Subscription != "s42" || !reflect.DeepEqual(n.Event, ev) {
		t.Fatalf("got %+v", n)
	}
}

// The lent form reads the same and fails the same, keeps nothing of its
// input, and allocates one buffer for all of the event's bytes (and the
// payload's interface value).
func TestUnmarshalEventNotificationLent(t *testing.T) {
	ev := sampleEvent()
	b := reflectEncode(t, map[string]any{"extra": []any{1, map[string]any{"x": 2}}, "event": toRef(ev), "subscription": "s42", "later": "x"}, true)
	got := new(Event)
	sub, err := UnmarshalEventNotificationLent(b, got)
	if err != nil || string(sub) != "s42" || !reflect.DeepEqual(*got, ev) {
		t.Fatalf("got %q %+v %v", sub, got, err)
	}
	for i := range b { // the buffer is reused for the next message
		b[i] = 0xff
	}
	if !reflect.DeepEqual(*got, ev) {
		t.Fatalf("the event changed with the bytes it was read from: %+v", got)
	}
	// Empty and nil byte fields keep their difference.
	sparse := reflectEncode(t, map[string]any{"event": map[string]any{"prev": []byte{}, "sig": nil, "payload": nil}, "subscription": "s"}, true)
	var e2 Event
	if _, err := UnmarshalEventNotificationLent(sparse, &e2); err != nil || e2.Prev == nil || len(e2.Prev) != 0 || e2.Sig != nil || e2.Payload != nil {
		t.Fatalf("sparse: %v %+v", err, e2)
	}
	live := ev
	live.Headers = nil // headers are a map of their own
	params := AppendEventNotification(nil, "s1", mustMarshal(toRef(live)))
	var into Event
	if n := testing.AllocsPerRun(100, func() {
		into = Event{}
		_, _ = UnmarshalEventNotificationLent(params, &into)
	}); n > 2 {
		t.Fatalf("%v allocations per notification", n)
	}
	b = reflectEncode(t, map[string]any{"event": toRef(ev), "subscription": "s42"}, true)
	for _, in := range [][]byte{
		reflectEncode(t, map[string]any{"subscription": 1}, true),
		reflectEncode(t, map[string]any{"event": map[string]any{"seq": "x"}}, true),
		append(append([]byte{}, b...), 0xc0),
		b[:len(b)-2],
	} {
		var n EventNotification
		want := UnmarshalEventNotification(in, &n)
		_, err := UnmarshalEventNotificationLent(in, new(Event))
		if want == nil || err == nil || err.Error() != want.Error() {
			t.Fatalf("lent: %v, copying: %v", err, want)
		}
	}
}

func TestUnmarshalEventLenient(t *testing.T) {
	// Unknown keys are skipped wherever they are; nil is the zero value;
	// bin and str are interchangeable for strings and bytes.
	b := reflectEncode(t, map[string]any{
		"future":  map[string]any{"a": []any{1.5, true, nil, []byte{1}, msgpack.RawMessage{0xd4, 1, 2}}},
		"id":      []byte("bin-id"),
		"class":   "a:b",
		"channel": nil,
		"seq":     nil,
		"ts":      uint64(5),
		"prev":    "str-prev",
		"payload": nil,
		"headers": nil,
		"zz":      "",
	}, true)
	var got Event
	if err := UnmarshalEvent(b, &got); err != nil {
		t.Fatal(err)
	}
	want := Event{ID: "bin-id", Class: "a:b", TS: 5, Prev: []byte("str-prev")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// A repeated key: the last one wins.
	b = append([]byte{0x82}, reflectEncode(t, "class", true)...)
	b = append(b, reflectEncode(t, "first", true)...)
	b = append(b, reflectEncode(t, "class", true)...)
	b = append(b, reflectEncode(t, "second", true)...)
	if err := UnmarshalEvent(b, &got); err != nil || got.Class != "second" {
		t.Fatalf("repeated key: %v %q", err, got.Class)
	}
}

func TestUnmarshalEventErrors(t *testing.T) {
	good := reflectEncode(t, toRef(sampleEvent()), true)
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"not a map", reflectEncode(t, []any{1}, true), "event must be a map, got array"},
		{"wrong string", reflectEncode(t, map[string]any{"class": 5}, true), `field "class" has the wrong type: expected string, got integer`},
		{"wrong uint", reflectEncode(t, map[string]any{"seq": "x"}, true), `field "seq" has the wrong type: expected non-negative integer, got string`},
		{"negative uint", reflectEncode(t, map[string]any{"lamport": -3}, true), `field "lamport" is -3`},
		{"wrong int", reflectEncode(t, map[string]any{"ts": 1.5}, true), `field "ts" has the wrong type: expected integer, got float`},
		{"int overflow", reflectEncode(t, map[string]any{"ts": uint64(1) << 63}, true), `field "ts" is 9223372036854775808: out of range`},
		{"wrong bytes", reflectEncode(t, map[string]any{"sig": true}, true), `field "sig" has the wrong type: expected binary, got boolean`},
		{"wrong headers", reflectEncode(t, map[string]any{"headers": []any{}}, true), `field "headers" has the wrong type: expected map, got array`},
		{"header value", reflectEncode(t, map[string]any{"headers": map[string]any{"a": 1}}, true), `field "headers" has the wrong type: expected string, got integer`},
		{"key type", reflectEncode(t, map[int]any{1: 2}, true), "event keys must be strings, got integer"},
		{"truncated", good[:len(good)-3], "unexpected end of input"},
		{"trailing", append(append([]byte{}, good...), 0xc0), "1 bytes after the envelope"},
		{"huge map header", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, "unexpected end of input"},
		{"huge str header", []byte{0x81, 0xa2, 'i', 'd', 0xdb, 0xff, 0xff, 0xff, 0xff}, "unexpected end of input"},
		{"bad type byte", []byte{0x81, 0xa1, 'x', 0xc1}, "reserved type code 0xc1"},
		{"empty", nil, "unexpected end of input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := UnmarshalEvent(tc.in, &ev)
			if CodeOf(err) != CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid_argument with %q", err, tc.want)
			}
		})
	}
	var n EventNotification
	if err := UnmarshalEventNotification(reflectEncode(t, map[string]any{"subscription": 1}, true), &n); err == nil ||
		!strings.Contains(err.Error(), `field "subscription" has the wrong type`) {
		t.Fatalf("notification: %v", err)
	}
}

func TestPeekEvent(t *testing.T) {
	ev := sampleEvent()
	for _, compact := range []bool{true, false} {
		k, err := PeekEvent(reflectEncode(t, toRef(ev), compact))
		if err != nil || string(k.Class) != ev.Class || string(k.Channel) != ev.Channel || k.Seq != ev.Seq {
			t.Fatalf("compact=%v: %v %+v", compact, err, k)
		}
	}
	if _, err := PeekEvent([]byte{0x91, 0x01}); err == nil {
		t.Fatal("peek of an array succeeded")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = PeekEvent(reflectEncode(t, toRef(ev), true)) }); n > 4 {
		t.Logf("allocs %v (encoding included)", n)
	}
}

func TestSharedEvent(t *testing.T) {
	ev := sampleEvent()
	want, _ := AppendEvent(nil, &ev)
	sh := ShareEvent(&ev)
	if sh.Class != ev.Class || sh.Channel != ev.Channel || sh.Seq != ev.Seq {
		t.Fatalf("routing fields %+v", sh)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := sh.Encoded()
			if err != nil || !bytes.Equal(b, want) {
				t.Errorf("Encoded: %v", err)
			}
			if e, _ := sh.Event(); e != &ev {
				t.Error("Event is not the shared value")
			}
		}()
	}
	wg.Wait()

	raw := reflectEncode(t, toRef(ev), false) // as the log stores it
	se, err := ShareEncoded(raw)
	if err != nil || se.Class != ev.Class || se.Channel != ev.Channel || se.Seq != ev.Seq {
		t.Fatalf("ShareEncoded: %v %+v", err, se)
	}
	if b, _ := se.Encoded(); &b[0] != &raw[0] {
		t.Fatal("stored bytes were copied")
	}
	got, err := se.Event()
	if err != nil || !reflect.DeepEqual(*got, ev) {
		t.Fatalf("Event: %v %+v", err, got)
	}
	d := &EventDelivery{Subscription: "s1", Event: se}
	n, err := d.Notification()
	if err != nil || n.Subscription != "s1" || !reflect.DeepEqual(n.Event, ev) {
		t.Fatalf("Notification: %v", err)
	}
	// Over a connection the stored bytes go out as they are.
	enc := reflectEncode(t, d, true)
	if !bytes.Equal(enc, AppendEventNotification(nil, "s1", raw)) {
		t.Fatal("delivery of stored bytes differs")
	}
	var back EventNotification
	if err := UnmarshalEventNotification(enc, &back); err != nil || !reflect.DeepEqual(back.Event, ev) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := ShareEncoded([]byte{0x01}); err == nil {
		t.Fatal("ShareEncoded of an integer succeeded")
	}
}

func FuzzUnmarshalEvent(f *testing.F) {
	f.Add(mustMarshal(toRef(sampleEvent())))
	f.Add([]byte{0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xdd, 0, 0, 0, 2, 0x91, 0x90})
	f.Add([]byte{0x82, 0xa1, 'x', 0xc7, 0, 1, 0xa3, 's', 'e', 'q', 0xcf, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev Event
		err := UnmarshalEvent(b, &ev)
		var n EventNotification
		_ = UnmarshalEventNotification(b, &n)
		_, _ = UnmarshalEventNotificationLent(b, new(Event))
		_, _ = PeekEvent(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := AppendEvent(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		var ev2 Event
		if err := UnmarshalEvent(again, &ev2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(ev), normalize(ev2)) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, ev2)
		}
	})
}

// normalize makes empty and nil bytes compare equal.
func normalize(e Event) Event {
	if len(e.Prev) == 0 {
		e.Prev = nil
	}
	if len(e.Sig) == 0 {
		e.Sig = nil
	}
	return e
}

// emitMirror has EmitParams's fields and tags but not its hand-written
// decoder, so DecodeParams reads it by reflection: the reference.
type emitMirror EmitParams

func TestEmitParamsDecoderMatchesReflection(t *testing.T) {
	cases := map[string]any{
		"full": map[string]any{"name": "a:b", "payload": map[string]any{"x": []any{1, "y"}}, "schemaVersion": "v2",
			"channel": "c", "headers": map[string]string{"h": "v"}, "id": "i1", "future": map[string]any{"z": 1}},
		"name only":        map[string]any{"name": "a:b"},
		"nil payload":      map[string]any{"name": "a:b", "payload": nil, "headers": nil},
		"missing name":     map[string]any{"payload": 1},
		"nil name":         map[string]any{"name": nil},
		"wrong name":       map[string]any{"name": 5},
		"wrong id":         map[string]any{"name": "a", "id": true},
		"wrong headers":    map[string]any{"name": "a", "headers": []any{1}},
		"not a map":        []any{"a"},
		"non-string key":   map[int]any{1: "a"},
		"nil params":       nil,
		"bin name":         map[string]any{"name": []byte("a:b")},
		"string payload":   map[string]any{"name": "a", "payload": "text"},
		"wrong header val": map[string]any{"name": "a", "headers": map[string]any{"h": 1}},
		"strict":           map[string]any{"name": "a", "strict": true},
		"strict false":     map[string]any{"name": "a", "strict": false},
		"strict nil":       map[string]any{"name": "a", "strict": nil},
		"wrong strict":     map[string]any{"name": "a", "strict": "yes"},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			b := reflectEncode(t, in, true)
			var fast EmitParams
			var ref emitMirror
			errFast := DecodeParams(b, &fast)
			errRef := DecodeParams(b, &ref)
			if (errFast == nil) != (errRef == nil) {
				t.Fatalf("fast: %v, reflection: %v", errFast, errRef)
			}
			if errFast != nil {
				if CodeOf(errFast) != CodeInvalidArgument {
					t.Fatalf("fast error %v is not invalid_argument", errFast)
				}
				// The reflection decoder's message for a map of the wrong
				// element type is less precise; the rest must agree.
				if name != "wrong header val" && errFast.Error() != errRef.Error() {
					t.Fatalf("messages differ:\n fast %v\n  ref %v", errFast, errRef)
				}
				return
			}
			if !reflect.DeepEqual(EmitParams(ref), fast) {
				t.Fatalf("fast %+v\n ref %+v", fast, ref)
			}
		})
	}
	if err := DecodeParams(nil, &EmitParams{}); err == nil || !strings.Contains(err.Error(), `field "name" is required`) {
		t.Fatalf("empty params: %v", err)
	}
}

func FuzzEmitParamsDecoder(f *testing.F) {
	f.Add(mustMarshal(map[string]any{"name": "a:b", "payload": map[string]any{"x": 1}, "headers": map[string]string{"h": "v"}}))
	f.Add(mustMarshal(map[string]any{"name": nil, "id": 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast EmitParams
		if DecodeParams(b, &fast) != nil {
			// The reflection decoder is not run on what the fast one
			// refuses: it allocates from unchecked length headers, which
			// makes the fuzzer crawl.
			return
		}
		var ref emitMirror
		if err := DecodeParams(b, &ref); err != nil {
			t.Fatalf("fast accepted what reflection refused (%v): %+v", err, fast)
		}
		if !reflect.DeepEqual(EmitParams(ref), fast) {
			t.Fatalf("fast %+v\n ref %+v", fast, ref)
		}
	})
}

func TestEmitParamsEncoderMatchesReflection(t *testing.T) {
	for name, p := range map[string]EmitParams{
		"name only":    {Name: "a:b"},
		"raw payload":  {Name: "a:b", Payload: msgpack.RawMessage(mustMarshal(map[string]any{"x": 1}))},
		"go payload":   {Name: "a:b", Payload: struct{ N int64 }{1 << 40}, ID: "i"},
		"everything":   {Name: "a:b", Payload: []any{1, "x"}, SchemaVersion: "v2", Channel: "c", Headers: map[string]string{"h": "v"}, ID: "i"},
		"empty header": {Name: "a:b", Headers: map[string]string{}, Channel: "c"},
		"strict":       {Name: "a:b", Strict: true},
		"strict, id":   {Name: "a:b", Strict: true, ID: "i", Headers: map[string]string{"h": "v"}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, compact := range []bool{true, false} {
				got := reflectEncode(t, p, compact)
				want := reflectEncode(t, emitMirror(p), compact)
				if !bytes.Equal(got, want) {
					t.Fatalf("compact=%v\n got %x\nwant %x", compact, got, want)
				}
				var back EmitParams
				if err := DecodeParams(got, &back); err != nil || back.Name != p.Name || back.ID != p.ID {
					t.Fatalf("read back: %v %+v", err, back)
				}
			}
		})
	}
}
