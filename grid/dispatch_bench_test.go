package grid_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// A grid command's round trip (docs/BENCHMARKS.md): a caller on A runs a
// command B's provider serves, through A's dispatch, the cmd stream of a
// real loopback QUIC link and B's kernel, against the same command called
// on B itself (the local provided-command round trip) and the raw quic-go
// floor of grid/link, in one run:
//
//	go test ./grid/link ./grid -run '^$' -bench 'RawQUICRoundTrip$|GridCommand' -benchtime 3s
//
// Callers are in-process clients (no socket), so what differs between the
// two is the grid path alone. With 16 callers ns/op is wall time over calls
// (throughput); each op is one call.
func BenchmarkGridCommand(b *testing.B) {
	for _, remote := range []bool{false, true} {
		for _, callers := range []int{1, 16} {
			where := "local"
			if remote {
				where = "remote"
			}
			b.Run(fmt.Sprintf("%s/callers=%d", where, callers), func(b *testing.B) { benchGridCommand(b, remote, callers) })
		}
	}
}

func benchGridCommand(b *testing.B, remote bool, callers int) {
	a, bb, link := benchPair(b)
	// B takes all 16 callers' calls at once (the default is 4).
	if err := os.WriteFile(filepath.Join(bb.k.StateDir(), "policy.json"), []byte(`{"inbound": {"maxConcurrentJobs": 64}}`), 0o600); err != nil {
		b.Fatal(err)
	}
	if r := bb.g.ReloadPolicy(); !r.Loaded {
		b.Fatal(r.Reason)
	}
	link()
	ctx := context.Background()
	prov, err := client.NewInProcess(bb.k)
	if err != nil {
		b.Fatal(err)
	}
	defer prov.Close()
	err = prov.Provide(ctx, api.RegisterParams{Name: "bench/echo", NaturalScope: api.ScopeGrid, Idempotent: true}, func(_ context.Context, inv *client.Invocation) (any, error) {
		return map[string]any{"ok": true}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	caller, scope := bb.c, (*api.ScopeParams)(nil)
	if remote {
		caller, scope = a.c, &api.ScopeParams{Target: api.ScopeGrid}
		deadline := time.Now().Add(10 * time.Second)
		for {
			var r api.RoutesResult
			if err := a.c.Call(ctx, api.MethodGridRoutes, api.RoutesParams{Capability: "bench/echo"}, &r); err != nil {
				b.Fatal(err)
			}
			if len(r.Routes) == 1 && r.Routes[0].LinkUp {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("b's offer never reached a's index")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	p := api.ExecuteParams{Command: "bench/echo", Params: map[string]any{"text": "a 32-byte-ish payload, roughly!"}, Scope: scope}
	for i := 0; i < 100; i++ { // warm up
		if err := caller.Execute(ctx, p, nil); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := caller.Execute(ctx, p, nil); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}
