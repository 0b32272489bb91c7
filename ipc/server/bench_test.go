package server

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/msgrpc"
)

// nopBackend answers every request with an empty map: the server's own cost.
type nopBackend struct{}

func (nopBackend) Open(api.Peer, api.Caller) (api.Session, error) { return nopSession{}, nil }

type nopSession struct{}

func (nopSession) ID() string { return "bench" }
func (nopSession) Handle(context.Context, string, api.Params) (any, error) {
	return api.Empty{}, nil
}
func (nopSession) Close() {}

// BenchmarkServerRoundTrip is a msgrpc.Conn calling through ipc/server into
// a backend that does nothing, over the Unix socket. conns=1 shares one
// connection among the callers (pipelined); conns=N gives each its own.
// kernel/ping is served inline on the reader (DefaultInlineMethods),
// bench/nop in a goroutine of its own.
func BenchmarkServerRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		method         string
		callers, conns int
	}{
		{"bench/nop", 1, 1}, {"bench/nop", 16, 1}, {"bench/nop", 16, 16},
		{"kernel/ping", 1, 1}, {"kernel/ping", 16, 1}, {"kernel/ping", 16, 16},
	} {
		b.Run(fmt.Sprintf("%s/callers=%d/conns=%d", tc.method, tc.callers, tc.conns), func(b *testing.B) {
			f := startWith(b, nopBackend{}, Options{})
			conns := make([]*msgrpc.Conn, tc.conns)
			for i := range conns {
				conns[i] = f.dial(b, nil)
			}
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, tc.callers)
			b.ResetTimer()
			for w := range tc.callers {
				share := b.N / tc.callers
				if w < b.N%tc.callers {
					share++
				}
				c := conns[w%tc.conns]
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range share {
						if _, err := c.Call(ctx, tc.method, nil); err != nil {
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
