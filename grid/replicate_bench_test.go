package grid_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
)

// Replication over a real loopback QUIC link between two kernels with
// their own bbolt files (docs/BENCHMARKS.md), next to the raw quic-go floor
// of grid/link in the same run:
//
//	go test ./grid/link ./grid -run '^$' -bench 'RawQUIC|Replication|LocalEmit' -benchtime 100000x
//
// Throughput: b.N events already in A's log, then B links to A; the time
// until B holds all of them. Latency: one event at a time emitted on A (the
// emit's own fsync included), timed until B's live subscriber gets it.

type benchNode struct {
	k *kernel.Kernel
	g *grid.Service
	c *client.Client
}

func benchPair(b *testing.B) (a, bb *benchNode, link func()) {
	b.Helper()
	mk := func(name string) *benchNode {
		k, err := kernel.Open(kernel.Config{StateDir: filepath.Join(b.TempDir(), name)})
		if err != nil {
			b.Fatal(err)
		}
		g, err := grid.Host(k, grid.Options{ListenQUIC: "127.0.0.1:0", Link: fastLinks})
		if err != nil {
			b.Fatal(err)
		}
		c, err := client.NewInProcess(k)
		if err != nil {
			b.Fatal(err)
		}
		return &benchNode{k: k, g: g, c: c}
	}
	a, bb = mk("a"), mk("b")
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range []*benchNode{a, bb} {
			n.c.Close()
			n.g.Close()
			n.k.Close(ctx)
		}
	})
	link = func() {
		ctx := context.Background()
		var inv api.InviteResult
		if err := a.c.Call(ctx, api.MethodGridInvite, api.InviteParams{Circle: "household"}, &inv); err != nil {
			b.Fatal(err)
		}
		if err := bb.c.Call(ctx, api.MethodGridJoin, api.JoinParams{Token: inv.Token}, nil); err != nil {
			b.Fatal(err)
		}
	}
	return a, bb, link
}

// appendN fills n's log with count events on channel, from 32 appenders.
func (n *benchNode) appendN(b *testing.B, channel string, count int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(count); i = next.Add(1) {
				_, _, err := n.k.Log().Append(context.Background(), api.Event{
					Class: "chat:posted", Channel: channel, Sender: "bench", SchemaVersion: "v1",
					Payload: map[string]any{"roomId": channel, "text": "a message of a typical chat size", "i": i},
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func (n *benchNode) hw(channel, origin string) uint64 {
	hw, err := n.k.Log().HighWater()
	if err != nil {
		return 0
	}
	return hw[origin][channel]
}

func BenchmarkReplicationThroughput(b *testing.B) {
	a, bb, link := benchPair(b)
	a.appendN(b, "general", b.N)
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	link()
	for bb.hw("general", a.k.PeerID()) < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	// CPU time of the whole process (both kernels, both ends of the link)
	// per replicated event: what the rate would be per core on an idle
	// machine, whatever else shares this one.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}

func BenchmarkReplicationLatency(b *testing.B) {
	a, bb, link := benchPair(b)
	link()
	emitToSubscriber(b, a, bb)
}

// BenchmarkLocalEmitLatency is the same emit timed to a subscriber on A
// itself: one fsync and a local delivery, the part of the replicated
// latency that is not replication.
func BenchmarkLocalEmitLatency(b *testing.B) {
	a, _, _ := benchPair(b)
	emitToSubscriber(b, a, a)
}

// emitToSubscriber times b.N emits on from, one at a time, each until to's
// live subscriber has it.
func emitToSubscriber(b *testing.B, from, to *benchNode) {
	ctx := context.Background()
	sub, err := to.c.Subscribe(ctx, api.SubscribeParams{Pattern: "chat:posted", Channel: "general"})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close(ctx)
	emit := func(i int) {
		_, _, err := from.k.Log().Append(ctx, api.Event{ID: fmt.Sprintf("lat-%d", i), Class: "chat:posted", Channel: "general", Sender: "bench", SchemaVersion: "v1", Payload: map[string]any{"i": i}})
		if err != nil {
			b.Fatal(err)
		}
	}
	// One event through first: the link is up and replicating.
	emit(-1)
	if _, err := sub.Next(ctx); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		emit(i)
		ev, err := sub.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if ev.ID != fmt.Sprintf("lat-%d", i) {
			b.Fatalf("got %s", ev.ID)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
