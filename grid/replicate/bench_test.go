package replicate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// BenchmarkReplicatePipe is BenchmarkReplicationThroughput of package grid
// without QUIC: two kernels joined by a net.Pipe, b.N events already in A's
// log, timed until B holds them all. Next to the QUIC figure it shows what
// the transport costs.
//
//	go test ./grid/replicate -run '^$' -bench ReplicatePipe -benchtime 100000x
func BenchmarkReplicatePipe(b *testing.B) {
	a, bb := newNode(b, "a", Options{}), newNode(b, "b", Options{})
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				_, _, err := a.k.Log().Append(context.Background(), api.Event{
					ID: fmt.Sprintf("e%d", i), Class: "chat:posted", Channel: "general", Sender: "bench", SchemaVersion: "v1",
					Payload: map[string]any{"roomId": "general", "text": "a message of a typical chat size", "i": i},
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	connect(b, a, bb, "household")
	for bb.vec()["general"][a.id()] < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
