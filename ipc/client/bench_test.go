package client

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/internal/testbackend"
	"github.com/continuum-grid/continuum/ipc/server"
	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkClientCall is Client.Call of test/echo (params {}, result into a
// map) over the socket, the callers sharing one Client, and in process.
func BenchmarkClientCall(b *testing.B) {
	for _, tr := range []string{"socket", "inproc"} {
		for _, callers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/callers=%d", tr, callers), func(b *testing.B) {
				be := testbackend.New()
				var c *Client
				var err error
				if tr == "socket" {
					path, _ := serve(b, be, server.Options{})
					c, err = Dial(context.Background(), path)
				} else {
					c, err = NewInProcess(be)
				}
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				ctx := context.Background()
				params := map[string]any{}
				var wg sync.WaitGroup
				errs := make(chan error, callers)
				b.ResetTimer()
				for w := range callers {
					share := b.N / callers
					if w < b.N%callers {
						share++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						var out map[string]any
						for range share {
							if err := c.Call(ctx, testbackend.MethodEcho, params, &out); err != nil {
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
			})
		}
	}
}

var _ api.Backend = (*testbackend.Backend)(nil)

// benchNotification is an events/event notification's params as the daemon
// writes them: a local event with a small map payload, like the bench's.
func benchNotification(b *testing.B) api.RawParams {
	ev := api.Event{ID: "01JDQ2ZC4B6S1V4Q0C3Y3P9K1M", Class: "bench:tick", Sender: "c3", TS: 1700000000123,
		Payload: map[string]any{"ts": int64(1700000000123456789), "n": 12345, "text": "the quick brown fox"}}
	enc, err := api.AppendEvent(nil, &ev)
	if err != nil {
		b.Fatal(err)
	}
	return api.AppendEventNotification(nil, "s1f", enc)
}

// BenchmarkDecodeEvent is the client's decoding of one events/event
// notification: the one-pass decoder it uses, against the two reflection
// passes it replaced (params into {subscription, raw event}, then the raw
// event into api.Event).
func BenchmarkDecodeEvent(b *testing.B) {
	raw := benchNotification(b)
	b.Run("one-pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := decodeEvent(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What the socket path does (handleRawEvent, without the routing).
	b.Run("lent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := api.UnmarshalEventNotificationLent(raw, new(api.Event)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection-two-pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var n struct {
				Subscription string             `msgpack:"subscription"`
				Event        msgpack.RawMessage `msgpack:"event"`
			}
			if err := api.DecodeParams(raw, &n); err != nil {
				b.Fatal(err)
			}
			var ev api.Event
			if err := decodeFieldsByReflection(n.Event, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// decodeFieldsByReflection is api.DecodeParams's field-by-field decoding on
// a struct with Event's fields (api.Event itself now decodes by hand).
func decodeFieldsByReflection(raw []byte, ev *api.Event) error {
	var r struct {
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
	err := api.DecodeParams(raw, &r)
	ev.ID, ev.Class, ev.Payload = r.ID, r.Class, r.Payload
	return err
}
