package grid_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/metrics"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// kernel/metrics carries the replication lag per peer: present for the peer
// replicated with, up, and nothing behind once every event the peer posted
// is here; /metrics writes it as gauges labelled by peer, which the
// Prometheus text parser reads back.
func TestMetricsCarryReplicationLag(t *testing.T) {
	a, b := startNode(t), startNode(t)
	join(t, a, b, "household")
	b.declare()
	b.post("general", 200, "lag")
	var m api.Metrics
	eventually(t, 30*time.Second, "a holds b's 200 events and reports no lag", func() bool {
		a.must(api.MethodKernelMetrics, api.Empty{}, &m)
		for _, p := range m.Grid.Peers {
			if p.PeerID == b.id {
				return p.Up && p.LagEvents == 0 && p.BehindSeconds == 0 && a.hw("general", b.id) == 200
			}
		}
		return false
	})
	if len(m.Grid.Peers) != 1 {
		t.Fatalf("peers in kernel/metrics: %+v", m.Grid.Peers)
	}
	var buf bytes.Buffer
	if err := metrics.WritePrometheus(&buf, &m); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses the scrape: %v", err)
	}
	for _, name := range []string{"continuum_grid_replication_lag_events", "continuum_grid_replication_behind_seconds"} {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetLabel()[0].GetValue() != b.id || f.GetMetric()[0].GetGauge().GetValue() != 0 {
			t.Errorf("%s: %v", name, f)
		}
	}
}
