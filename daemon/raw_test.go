package daemon_test

// These tests speak MessagePack-RPC to a real daemon with nothing but a socket
// and a msgpack codec, the way a client written from docs/PROTOCOL.md alone
// would: they do not use ipc/.

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/daemon"
	"github.com/vmihailenco/msgpack/v5"
)

type raw struct {
	t    *testing.T
	conn net.Conn
	dec  *msgpack.Decoder
}

func rawDial(t *testing.T, d *testDaemon) *raw {
	t.Helper()
	conn, err := net.Dial("unix", d.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &raw{t: t, conn: conn, dec: msgpack.NewDecoder(conn)}
}

func (r *raw) send(msg ...any) {
	r.t.Helper()
	b, err := msgpack.Marshal(msg)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(b)
}

func (r *raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// next reads one message, or returns nil at EOF.
func (r *raw) next() []any {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var msg []any
	if err := r.dec.Decode(&msg); err != nil {
		if err == io.EOF || isClosed(err) {
			return nil
		}
		r.t.Fatalf("read: %v", err)
	}
	return msg
}

func isClosed(err error) bool {
	var ne net.Error
	if ok := asNetErr(err, &ne); ok && ne.Timeout() {
		return false
	}
	return bytes.Contains([]byte(err.Error()), []byte("connection reset")) || bytes.Contains([]byte(err.Error()), []byte("EOF"))
}

func asNetErr(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

func errCode(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["code"].(string)
	return s
}

func TestRawPipelinedRequests(t *testing.T) {
	d := start(t)
	r := rawDial(t, d)
	const n = 200
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	for i := 1; i <= n; i++ {
		method := "kernel/ping"
		if i%2 == 0 {
			method = "events/list-classes"
		}
		if err := enc.Encode([]any{0, i, method, []any{}}); err != nil {
			t.Fatal(err)
		}
	}
	r.write(buf.Bytes()) // all 200 in one write, before reading anything
	seen := map[int64]bool{}
	for len(seen) < n {
		msg := r.next()
		if msg == nil {
			t.Fatalf("connection closed after %d responses", len(seen))
		}
		if len(msg) != 4 || toInt(msg[0]) != 1 || msg[2] != nil {
			t.Fatalf("bad response %v", msg)
		}
		id := toInt(msg[1])
		if seen[id] || id < 1 || id > n {
			t.Fatalf("unexpected msgid %d", id)
		}
		seen[id] = true
	}
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	}
	return -1
}

// Every kind of bad input closes only the offending connection, with an
// error response when the msgid is known and kernel/protocol-error otherwise;
// a bystander connection keeps being served.
func TestRawBadInputClosesOnlyThatConnection(t *testing.T) {
	d := start(t, func(c *daemon.Config) { c.MaxMessageSize = 64 << 10 })
	bystander := rawDial(t, d)
	bystander.send(0, 1, "events/subscribe", []any{map[string]any{"pattern": "*"}})
	if msg := bystander.next(); msg == nil || msg[2] != nil {
		t.Fatalf("subscribe: %v", msg)
	}

	bin32Lie := []byte{0x94, 0x00, 0x07, 0xab}
	bin32Lie = append(bin32Lie, []byte("kernel/ping")...)
	bin32Lie = append(bin32Lie, 0x91, 0xc6) // params: [ bin32 of ... ]
	bin32Lie = binary.BigEndian.AppendUint32(bin32Lie, 0xffffffff)

	big := make([]byte, 100<<10)
	oversize, _ := msgpack.Marshal([]any{0, 8, "kernel/ping", []any{map[string]any{"pad": big}}})

	cases := []struct {
		name  string
		bytes []byte
		code  string // expected code in the response or notification
	}{
		{"reserved byte 0xc1", []byte{0xc1}, "protocol_error"},
		{"not an array", mustMarshal(t, map[string]any{"a": 1}), "protocol_error"},
		{"unknown type tag", mustMarshal(t, []any{7, 1, "kernel/ping", []any{}}), "protocol_error"},
		{"params not an array", mustMarshal(t, []any{0, 3, "kernel/ping", map[string]any{}}), ""},
		{"two params", mustMarshal(t, []any{0, 4, "kernel/ping", []any{map[string]any{}, map[string]any{}}}), ""},
		{"bin32 claims 4 GiB", bin32Lie, "message_too_large"},
		{"over the size limit", oversize, "message_too_large"},
		{"map32 claims 4 billion entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, ""},
		{"str8 cut short then EOF", []byte{0x94, 0x00, 0x01, 0xd9, 0x20, 'k'}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDial(t, d)
			r.write(tc.bytes)
			if tc.name == "str8 cut short then EOF" {
				r.conn.(*net.UnixConn).CloseWrite()
			}
			var codes []string
			for {
				msg := r.next()
				if msg == nil {
					break
				}
				switch {
				case len(msg) == 4 && toInt(msg[0]) == 1:
					codes = append(codes, errCode(msg[2]))
				case len(msg) == 3 && toInt(msg[0]) == 2 && msg[1] == "kernel/protocol-error":
					params, _ := msg[2].([]any)
					if len(params) == 1 {
						codes = append(codes, errCode(params[0]))
					}
				}
			}
			if tc.code != "" && (len(codes) == 0 || codes[0] != tc.code) {
				t.Fatalf("got %v before close, want %s", codes, tc.code)
			}
			if tc.code == "" && len(codes) > 0 && codes[0] == "" {
				t.Fatalf("got an answer without a code: %v", codes)
			}
		})
	}
	// The bystander still works, and sees nothing of the others' mistakes.
	bystander.send(0, 2, "kernel/ping", []any{})
	if msg := bystander.next(); msg == nil || toInt(msg[1]) != 2 || msg[2] != nil {
		t.Fatalf("bystander: %v", msg)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A raw subscriber that stops reading its socket makes the kernel drop and
// report (events/lagged) after the stall bound, instead of slowing the
// emitter for as long as it does not read.
func TestRawSubscriberThatDoesNotReadIsToldItLagged(t *testing.T) {
	d := start(t, func(c *daemon.Config) { c.Kernel.SubscriberQueue = 16 })
	slow := rawDial(t, d)
	slow.send(0, 1, "events/subscribe", []any{map[string]any{"pattern": "flood:*"}})
	if msg := slow.next(); msg == nil || msg[2] != nil {
		t.Fatalf("subscribe: %v", msg)
	}
	emitter := dial(t, d)
	ctx := ctxT(t)
	pad := string(make([]byte, 4096))
	start := time.Now()
	const n = 2000 // ~8 MB: far more than the socket buffers hold
	for i := 0; i < n; i++ {
		if _, err := emitter.Emit(ctx, emitParams("flood:x", pad)); err != nil {
			t.Fatal(err)
		}
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("emits took %v: the emitter was slowed by a subscriber", time.Since(start))
	}
	events, dropped := slow.countEvents(n)
	if dropped == 0 || events+int(dropped) != n {
		t.Fatalf("events %d + dropped %d, want %d with some dropped", events, dropped, n)
	}
}

// countEvents reads notifications until n events are accounted for, as
// delivered (events/event) or dropped (events/lagged), and returns both.
func (r *raw) countEvents(n int) (events int, dropped uint64) {
	r.t.Helper()
	for events+int(dropped) < n {
		msg := r.next()
		if msg == nil {
			r.t.Fatalf("connection closed after %d events and %d dropped", events, dropped)
		}
		if len(msg) != 3 {
			continue
		}
		switch msg[1] {
		case "events/event":
			events++
		case "events/lagged":
			dropped += uint64(toInt(msg[2].([]any)[0].(map[string]any)["dropped"]))
		}
	}
	return events, dropped
}
