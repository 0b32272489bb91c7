package api

import "github.com/vmihailenco/msgpack/v5"

// Event is the envelope every event travels in (docs/PROTOCOL.md, "Events"). Local events carry
// Channel "" and Seq 0; broadcast events are logged, chained per origin and
// channel (OriginSeq, Prev) and signed by their origin (Sig).
//
// Payload is whatever the emitter sent. On the socket path the kernel keeps it as
// msgpack.RawMessage, so it is forwarded without being decoded again; use
// DecodePayload to read it whatever its form.
//
// An Event encodes and decodes through a hand-written codec (event_codec.go:
// AppendEvent, UnmarshalEvent, and the msgpack.CustomEncoder/CustomDecoder
// methods built on them), because every event crosses it once per publish in
// the daemon and once per subscriber in each client. The bytes are the map the
// struct tags below describe; a decoded payload is always raw msgpack.
type Event struct {
	ID            string            `msgpack:"id" json:"id" desc:"unique per origin; a client may supply it to make a retry idempotent"`
	Class         string            `msgpack:"class" json:"class" desc:"event class name, domain:collection:op"`
	Channel       string            `msgpack:"channel" json:"channel" desc:"resolved channel; empty when local"`
	Origin        string            `msgpack:"origin" json:"origin" desc:"peer id of the install that first logged it"`
	OriginSeq     uint64            `msgpack:"originSeq" json:"originSeq" desc:"the origin's counter on this channel: 1, 2, 3 with no gaps"`
	Prev          []byte            `msgpack:"prev" json:"prev" desc:"32-byte hash of the origin's previous event on this channel"`
	Sender        string            `msgpack:"sender" json:"sender" desc:"the client or persona that emitted it"`
	Lamport       uint64            `msgpack:"lamport" json:"lamport" desc:"lamport time given by the origin"`
	Seq           uint64            `msgpack:"seq" json:"seq" desc:"this install's log position; 0 when not logged"`
	TS            int64             `msgpack:"ts" json:"ts" desc:"unix milliseconds at the origin"`
	SchemaVersion string            `msgpack:"schemaVersion" json:"schemaVersion" desc:"schema version of the payload"`
	Headers       map[string]string `msgpack:"headers" json:"headers" desc:"string headers"`
	Payload       any               `msgpack:"payload" json:"payload" desc:"the event's data"`
	Sig           []byte            `msgpack:"sig" json:"sig" desc:"64-byte Ed25519 signature by the origin; broadcast events only"`
}

// DecodePayload decodes the payload into dst, whether it is raw msgpack (socket
// path) or a Go value (in-process path).
func (e *Event) DecodePayload(dst any) error { return Assign(dst, e.Payload) }

// PayloadMap returns the payload as a map with string keys, or nil if it is not
// one. Channel resolution reads roomId and peerId through it.
func (e *Event) PayloadMap() map[string]any {
	return AsMap(e.Payload)
}

// AsMap returns v as map[string]any when it is one (or raw msgpack of one).
func AsMap(v any) map[string]any {
	switch p := v.(type) {
	case map[string]any:
		return p
	case msgpack.RawMessage:
		var m map[string]any
		if err := msgpack.Unmarshal(p, &m); err != nil {
			return nil
		}
		return m
	}
	var m map[string]any
	if err := Assign(&m, v); err != nil {
		return nil
	}
	return m
}

// Header names the kernel sets on events.
const (
	// HeaderSchemaWarning marks an event delivered despite a schemaVersion that
	// differs from its class's (onUnknownSchema=warn); the value is the class's version.
	HeaderSchemaWarning = "continuum-schema-mismatch"
)
