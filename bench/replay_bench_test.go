package bench

import (
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/ipc/client"
)

// BenchmarkReplay is the replay shape's timed part repeated on one daemon:
// each op subscribes from the start and reads every logged event (payloads
// decoded). It reports the process's CPU time per event (daemon and client
// together, as in busbench), which stays steady on a shared machine when
// events/s does not.
func BenchmarkReplay(b *testing.B) {
	c, err := StartContinuum()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	want, err := logReplayEvents(c)
	if err != nil {
		b.Fatal(err)
	}
	rd, err := c.Dial(client.WithEventBuffer(1 << 16))
	if err != nil {
		b.Fatal(err)
	}
	var elapsed time.Duration
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		s, err := readReplay(rd, want)
		if err != nil {
			b.Fatal(err)
		}
		if s.Note != "" {
			b.Fatal(s.Note)
		}
		elapsed += s.Elapsed
	}
	b.StopTimer()
	events := float64(b.N * want)
	b.ReportMetric(float64(cpuTime()-cpu0)/events, "cpu-ns/event")
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
}

// cpuTime is the user+sys time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
