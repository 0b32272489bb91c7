package grid_test

import (
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// kernel/metrics carries the grid's links and grid/status's counters (the
// daemon adds them; the kernel does not import the grid).
func TestMetricsCarryGridCounters(t *testing.T) {
	a, b := startNode(t), startNode(t)
	var m api.Metrics
	a.must(api.MethodKernelMetrics, api.Empty{}, &m)
	if m.Grid.PeersUp != 0 {
		t.Fatalf("peersUp %d before any link", m.Grid.PeersUp)
	}
	join(t, a, b, "household")
	st := a.status()
	a.must(api.MethodKernelMetrics, api.Empty{}, &m)
	if m.Grid.PeersUp != 1 || m.Grid.Counters["link.up"] == 0 || m.Grid.Counters["link.up"] != st.Counters["link.up"] {
		t.Fatalf("kernel/metrics grid %+v; grid/status counters %v", m.Grid, st.Counters)
	}
}
