package msgrpc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// runCallers splits b.N calls over n goroutines and reports calls/s.
func runCallers(b *testing.B, n int, call func(worker int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	b.ResetTimer()
	for w := range n {
		share := b.N / n
		if w < b.N%n {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range share {
				if err := call(w); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// rawEchoServer answers every request on a Unix socket with [1, msgid, nil,
// {}] using only the framing Reader and a bufio.Writer: the floor under
// everything Conn and the server add.
func rawEchoServer(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "raw.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 64<<10)
				r := NewReader(br, 0)
				w := bufio.NewWriterSize(c, 64<<10)
				for {
					msg, err := r.ReadMessage()
					if err != nil {
						return
					}
					id, _ := requestID(msg)
					e := encodeResponse(id, nil, nil)
					e.buf.Truncate(e.buf.Len() - 1)
					e.buf.WriteByte(0x80) // result {}
					_, _ = w.Write(e.buf.Bytes())
					putEncoder(e)
					if br.Buffered() == 0 {
						if w.Flush() != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return path
}

// BenchmarkRawUnixEcho is the floor: each caller owns a connection, writes
// [0, msgid, "echo", [{}]] and reads the response with the framing Reader.
func BenchmarkRawUnixEcho(b *testing.B) {
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			path := rawEchoServer(b)
			type rawClient struct {
				c  net.Conn
				r  *Reader
				id uint32
			}
			clients := make([]*rawClient, callers)
			for i := range clients {
				c, err := net.Dial("unix", path)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.Close() })
				clients[i] = &rawClient{c: c, r: NewReader(c, 0)}
			}
			runCallers(b, callers, func(w int) error {
				rc := clients[w]
				rc.id++
				e, err := encodeRequest(rc.id, "echo", map[string]any{})
				if err != nil {
					return err
				}
				_, err = rc.c.Write(e.buf.Bytes())
				putEncoder(e)
				if err != nil {
					return err
				}
				_, err = rc.r.ReadMessage()
				return err
			})
		})
	}
}

// BenchmarkConnRoundTrip is a Conn calling a Conn over a socket pair, the
// callers sharing the one connection (pipelined); the request is served in a
// worker goroutine, or inline on the reader (InlineHandler).
func BenchmarkConnRoundTrip(b *testing.B) {
	for _, inline := range []bool{false, true} {
		for _, callers := range []int{1, 16} {
			b.Run(fmt.Sprintf("inline=%v/callers=%d", inline, callers), func(b *testing.B) {
				benchConnRoundTrip(b, inline, callers)
			})
		}
	}
}

// nopInline answers every request with an empty map, inline or not.
type nopInline struct {
	HandlerFuncs
	inline bool
}

func (h nopInline) InlineMethod(string) bool { return h.inline }

func benchConnRoundTrip(b *testing.B, inline bool, callers int) {
	x, y := socketPair(b)
	a := NewConn(NewStreamTransport(x, 0), Options{})
	s := NewConn(NewStreamTransport(y, 0), Options{})
	s.Start(nopInline{HandlerFuncs{Request: func(context.Context, string, api.RawParams) (any, error) {
		return struct{}{}, nil
	}}, inline})
	a.Start(HandlerFuncs{})
	b.Cleanup(func() { a.Close(); s.Close() })
	ctx := context.Background()
	runCallers(b, callers, func(int) error {
		_, err := a.Call(ctx, "echo", nil)
		return err
	})
}

// BenchmarkReadMessage measures framing alone on a typical small request.
func BenchmarkReadMessage(b *testing.B) {
	msg := mustMarshal(b, []any{0, 1, "events/emit", []any{map[string]any{"name": "chat:posted", "payload": map[string]any{"roomId": "r1", "text": "hello there"}}}})
	stream := &repeatReader{msg: msg}
	r := NewReader(stream, 0)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := r.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParseMessage(m); err != nil {
			b.Fatal(err)
		}
	}
}

type repeatReader struct {
	msg []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.msg[r.off:])
		n += c
		r.off = (r.off + c) % len(r.msg)
	}
	return n, nil
}

// eventNotification builds an events/event notification shaped like the ones
// the daemon sends to subscribers, with a payload text of textLen bytes.
func eventNotification(b *testing.B, seq int, textLen int) []byte {
	b.Helper()
	ev := api.EventNotification{Subscription: "sub-1", Event: api.Event{
		ID: fmt.Sprintf("e%08d", seq), Class: "chat:messages:posted", Origin: "peer-1",
		OriginSeq: uint64(seq), Sender: "client-7", Lamport: uint64(seq), Seq: uint64(seq),
		TS: 1764000000000 + int64(seq), SchemaVersion: "1",
		Payload: map[string]any{"roomId": "r1", "n": seq, "text": strings.Repeat("x", textLen)},
	}}
	e, err := encodeNotification(api.NotifyEvent, ev)
	if err != nil {
		b.Fatal(err)
	}
	defer putEncoder(e)
	return bytes.Clone(e.buf.Bytes())
}

// BenchmarkReadEvents is a subscriber's read side in live fan-out: a stream
// of ~300 byte events/event notifications, framed and parsed as Conn does.
// The stream arrives in reads of at most 16 KiB, so some messages straddle
// what one read delivered.
func BenchmarkReadEvents(b *testing.B) {
	var stream []byte
	for i := range 64 {
		stream = append(stream, eventNotification(b, 1000+i, 40+i%8)...)
	}
	benchReadStream(b, stream, 64, 16<<10)
}

// BenchmarkReadReplay is log replay: bursts of events of mixed sizes (tens of
// bytes to a few KiB of payload) read in socket-sized chunks.
func BenchmarkReadReplay(b *testing.B) {
	var stream []byte
	sizes := []int{8, 40, 120, 300, 900, 2500, 60, 4000}
	const n = 256
	for i := range n {
		stream = append(stream, eventNotification(b, 5000+i, sizes[i%len(sizes)])...)
	}
	benchReadStream(b, stream, n, 64<<10)
}

func benchReadStream(b *testing.B, stream []byte, msgs, chunk int) {
	r := NewReader(&repeatChunkReader{data: stream, n: chunk}, 0)
	b.SetBytes(int64(len(stream) / msgs))
	b.ReportAllocs()
	for b.Loop() {
		m, err := r.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseFramed(m); err != nil { // as Conn parses what a stream's Reader framed
			b.Fatal(err)
		}
	}
}

// repeatChunkReader repeats data forever, at most n bytes per Read, the way a
// socket hands over what has arrived.
type repeatChunkReader struct {
	data []byte
	off  int
	n    int
}

func (r *repeatChunkReader) Read(p []byte) (int, error) {
	p = p[:min(len(p), r.n)]
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

// viaEncoder hides EventDelivery's AppendParams: the params go through the
// msgpack.Encoder (its EncodeMsgpack), as before the fast path.
type viaEncoder struct{ d *api.EventDelivery }

func (v viaEncoder) EncodeMsgpack(enc *msgpack.Encoder) error { return v.d.EncodeMsgpack(enc) }

// BenchmarkEncodeEventDelivery is the per-subscriber cost of one
// events/event notification, the event's envelope already encoded once.
func BenchmarkEncodeEventDelivery(b *testing.B) {
	ev := api.ShareEvent(&api.Event{ID: "e1", Class: "bench:tick", Sender: "c1", TS: 1, Payload: map[string]any{"ts": 1, "n": 2, "text": "the quick brown fox"}})
	if _, err := ev.Encoded(); err != nil {
		b.Fatal(err)
	}
	d := &api.EventDelivery{Subscription: "s1", Event: ev}
	for _, c := range []struct {
		name string
		p    any
	}{{"append", d}, {"encoder", viaEncoder{d}}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e, err := encodeNotification(api.NotifyEvent, c.p)
				if err != nil {
					b.Fatal(err)
				}
				putEncoder(e)
			}
		})
	}
}
