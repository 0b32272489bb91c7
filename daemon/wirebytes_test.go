package daemon_test

import (
	"bytes"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// rawEvent reads messages until an events/event notification and returns
// the event's bytes exactly as the daemon wrote them.
func (r *raw) rawEvent() []byte {
	r.t.Helper()
	for {
		msg, err := r.dec.DecodeRaw()
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		var n struct {
			_msgpack struct{} `msgpack:",as_array"`
			Type     int
			Method   string
			Params   []struct {
				Event msgpack.RawMessage `msgpack:"event"`
			}
		}
		if err := msgpack.Unmarshal(msg, &n); err != nil || n.Type != 2 || n.Method != api.NotifyEvent {
			continue // a response, or another notification
		}
		if len(n.Params) != 1 {
			r.t.Fatalf("events/event with %d params", len(n.Params))
		}
		return n.Params[0].Event
	}
}

// A live subscriber and one reading the log receive the same bytes for the
// same broadcast event: the envelope as stored, which is the one wire
// encoding (api.AppendEvent: smallest integers, sorted header keys). Before
// the log stored those bytes, log-backed subscribers got full-width
// integers (0xcf/0xd3) that no other path wrote.
func TestSubscribersReceiveTheStoredEnvelope(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	declare(t, c, api.ClassConfig{Name: "chat:posted", Broadcast: true, Channel: api.ChannelByRoomID})

	live := rawDial(t, d)
	live.send(0, 1, api.MethodSubscribe, []any{map[string]any{"pattern": "chat:*"}})
	if msg := live.next(); msg == nil || msg[2] != nil {
		t.Fatalf("live subscribe: %v", msg)
	}
	for i := range 3 {
		mustEmit(t, c, api.EmitParams{Name: "chat:posted", Headers: map[string]string{"z": "1", "a": "2"}, Payload: map[string]any{"roomId": "general", "i": i}})
	}
	replay := rawDial(t, d)
	replay.send(0, 1, api.MethodSubscribe, []any{map[string]any{"pattern": "chat:*", "from": "start"}})

	for i := range 3 {
		a, b := live.rawEvent(), replay.rawEvent()
		if !bytes.Equal(a, b) {
			t.Fatalf("event %d: live subscriber got\n%x\nlog-backed subscriber got\n%x", i, a, b)
		}
		var ev api.Event
		if err := api.UnmarshalEvent(a, &ev); err != nil {
			t.Fatal(err)
		}
		if want, _ := api.AppendEvent(nil, &ev); !bytes.Equal(a, want) {
			t.Fatalf("event %d is not in the one wire encoding:\n%x\nwant\n%x", i, a, want)
		}
		if ev.Seq == 0 || len(ev.Sig) != 64 || ev.Headers["a"] != "2" {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
}
