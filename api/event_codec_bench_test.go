package api

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// benchEvent is a local event like the bus bench's: small map payload, no
// chain fields.
func benchEvent() Event {
	return Event{ID: "01JDQ2ZC4B6S1V4Q0C3Y3P9K1M", Class: "bench:tick", Sender: "c3", TS: 1700000000123,
		Payload: msgpack.RawMessage(mustMarshal(map[string]any{"ts": int64(1700000000123456789), "n": 12345, "text": "the quick brown fox"}))}
}

// BenchmarkEncodeEvent is encoding one envelope: AppendEvent (what the
// daemon does once per publish), against the reflection encoder it replaced
// (what it did once per subscriber).
func BenchmarkEncodeEvent(b *testing.B) {
	ev := benchEvent()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			var err error
			if buf, err = AppendEvent(buf[:0], &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		ref := toRef(ev)
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		for b.Loop() {
			buf.Reset()
			if err := enc.Encode(&ref); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeEmitParams is the daemon's first cost per emit: the
// hand-written decoder against DecodeParams's reflection.
func BenchmarkDecodeEmitParams(b *testing.B) {
	raw := mustMarshal(map[string]any{"name": "bench:tick", "payload": map[string]any{"ts": int64(1700000000123456789), "n": 12345, "text": "the quick brown fox"}})
	b.Run("by-hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p EmitParams
			if err := DecodeParams(raw, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p emitMirror
			if err := DecodeParams(raw, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
