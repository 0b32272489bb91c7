package bench

import (
	"errors"
	"testing"
	"time"
)

// TestSmoke runs one short window of every shape on every side, at the
// lowest and the highest concurrency: the bench must keep building and
// running as the daemon changes. Figures come from cmd/busbench, not from
// here.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons and NATS servers")
	}
	shapes := Shapes()
	switch err := DurableSupported(); {
	case err == nil:
		ReplayEvents = 500
		shapes = append(shapes, DurableShapes()...)
	case errors.Is(err, ErrNotLogged):
		t.Log("durable shapes skipped:", err)
	default:
		t.Fatal(err)
	}
	for _, sh := range shapes {
		for _, n := range []int{sh.Conc[0], sh.Conc[len(sh.Conc)-1]} {
			sides := map[string]Runner{sh.SideName(): sh.Continuum}
			for _, p := range sh.Peers {
				sides[p.Name] = p.Run
			}
			for side, run := range sides {
				s, err := run(100*time.Millisecond, n)
				if err != nil {
					t.Fatalf("%s n=%d %s: %v", sh.Key, n, side, err)
				}
				if s.Ops == 0 {
					t.Errorf("%s n=%d %s: nothing completed in the window", sh.Key, n, side)
				}
				t.Logf("%s n=%d %-22s %10.0f %s", sh.Key, n, side, s.Rate(), sh.Unit)
			}
		}
	}
}
