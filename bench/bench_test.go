package bench

import (
	"testing"
	"time"
)

// TestSmoke runs one short window of every shape on both sides, at the
// lowest concurrency and, for fan-out, the highest: the bench must keep
// building and running as the daemon changes. Figures come from
// cmd/busbench, not from here.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons and NATS servers")
	}
	for _, sh := range Shapes() {
		for _, n := range []int{sh.Conc[0], sh.Conc[len(sh.Conc)-1]} {
			for side, run := range map[string]Runner{"continuum": sh.Continuum, sh.PeerName: sh.Peer} {
				s, err := run(100*time.Millisecond, n)
				if err != nil {
					t.Fatalf("%s n=%d %s: %v", sh.Key, n, side, err)
				}
				if s.Ops == 0 {
					t.Errorf("%s n=%d %s: nothing completed in the window", sh.Key, n, side)
				}
				t.Logf("%s n=%d %-20s %10.0f %s", sh.Key, n, side, s.Rate(), sh.Unit)
			}
		}
	}
}
