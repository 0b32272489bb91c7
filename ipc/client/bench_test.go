package client

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/internal/testbackend"
	"github.com/continuum-grid/continuum/ipc/server"
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
