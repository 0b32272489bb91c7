package airc

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/continuum-grid/continuum/kernel/store"
	bolt "go.etcd.io/bbolt"
)

func benchLog(b *testing.B) (*Log, *store.Store) { return benchLogWith(b, Options{}) }

func benchLogWith(b *testing.B, opts Options) (*Log, *store.Store) {
	b.Helper()
	dir := b.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	id, _ := identity.Generate()
	l, err := Open(st.DB, id, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(); st.Close() })
	return l, st
}

var benchPayload = map[string]any{"roomId": "room-1", "text": "hello, this is a chat message of modest size"}

// BenchmarkAppend measures acknowledged (fsync'd, signed) appends with 1, 16
// and 64 concurrent appenders spread over 8 channels: events/s, and p50/p99
// latency of one Append.
//
// Besides the rates it reports what they depend on less than on the load of
// a shared machine: CPU time of the process per event (user+system),
// events per commit and page writes per commit (bbolt's count; each is a
// pwrite that the commit's fdatasync then waits for).
func BenchmarkAppend(b *testing.B) { benchAppend(b, 8) }

// BenchmarkAppendOneChannel is BenchmarkAppend with every appender on one
// channel, the shape of the daemon bench (a class on the global channel).
func BenchmarkAppendOneChannel(b *testing.B) { benchAppend(b, 1) }

func benchAppend(b *testing.B, channels int) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			var commits atomic.Int64
			l, st := benchLogWith(b, Options{OnCommit: func([]*api.SharedEvent) { commits.Add(1) }})
			var (
				left = atomic.Int64{}
				wg   sync.WaitGroup
				lats = make([][]time.Duration, writers)
			)
			left.Store(int64(b.N))
			b.ResetTimer()
			s0, c0, cpu0 := st.DB.Stats(), commits.Load(), cpuTime()
			start := time.Now()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						t0 := time.Now()
						_, _, err := l.Append(context.Background(), api.Event{Class: "chat:posted", Channel: fmt.Sprintf("room-%d", w%channels), Sender: "bench", SchemaVersion: "v1", Payload: benchPayload})
						if err != nil {
							b.Error(err)
							return
						}
						lats[w] = append(lats[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			s1, c1, cpu1 := st.DB.Stats(), commits.Load(), cpuTime()
			b.StopTimer()
			if n := c1 - c0; n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "events/commit")
				b.ReportMetric(float64(s1.TxStats.GetWrite()-s0.TxStats.GetWrite())/float64(n), "writes/commit")
			}
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
			all := slices.Concat(lats...)
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// BenchmarkBoltFloor is the floor the group commit improves on: one bbolt
// transaction (and fsync) per event, one writer, no signing.
func BenchmarkBoltFloor(b *testing.B) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	value := make([]byte, 300)
	bucket := []byte("floor")
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		err := st.DB.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return bk.Put(u64(uint64(i)), value)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkSign is the CPU cost the log cannot batch away: one Ed25519
// signature per event.
func BenchmarkSign(b *testing.B) {
	id, _ := identity.Generate()
	msg := make([]byte, 300)
	for i := 0; i < b.N; i++ {
		id.Sign(msg)
	}
}

// BenchmarkRead reads the log back in seq order, in pages of 500.
func BenchmarkRead(b *testing.B) {
	l, _ := benchLog(b)
	const n = 20000
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				if _, _, err := l.Append(context.Background(), api.Event{Class: "chat:posted", Channel: "room", Payload: benchPayload}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	read := 0
	for read < b.N {
		after := uint64(read % n)
		evs, err := l.Read(after, 500)
		if err != nil {
			b.Fatal(err)
		}
		read += len(evs)
		if len(evs) == 0 { // past the end: start over from seq 0
			read = (read/n + 1) * n
		}
	}
	b.ReportMetric(float64(read)/time.Since(start).Seconds(), "events/s")
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
