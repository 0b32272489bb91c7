package daemon_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/kernel"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, d *testDaemon) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses /metrics: %v", err)
	}
	return fams
}

// value is the counter, gauge or histogram count of the sample of family
// name whose labels include want (name, value pairs); -1 when absent.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func TestMetricsMoveWhenCallsAreMade(t *testing.T) {
	d := start(t, func(c *daemon.Config) { c.MetricsListen = "127.0.0.1:0" })
	c := dial(t, d)
	// Dial returns once the socket is connected; the daemon opens the
	// session when it accepts, which may be later. One answered call means
	// it is open, so the count below includes it.
	if err := c.Call(ctxT(t), api.MethodKernelInfo, nil, nil); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, d)
	for _, name := range []string{"continuum_connections_open", "continuum_log_commits_total", "continuum_grid_peers_up", "continuum_inference_tokens_total", "continuum_subscriber_lag_events"} {
		if _, ok := before[name]; !ok {
			t.Errorf("family %s missing", name)
		}
	}
	// Hosted services may hold in-process sessions of their own; ours is one.
	open := value(before, "continuum_connections_open")
	if open < 1 {
		t.Errorf("connections_open = %v with a client connected", open)
	}

	for range 3 {
		if _, err := c.Ping(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Call(ctxT(t), "no/such-method", nil, nil)
	wantCode(t, err, api.CodeUnknownMethod)
	declare(t, c, api.ClassConfig{Name: "metric:tick", Broadcast: true, Channel: api.ChannelGlobal})
	sub, err := c.Subscribe(ctxT(t), api.SubscribeParams{Pattern: "metric:tick"})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		mustEmit(t, c, api.EmitParams{Name: "metric:tick", Payload: map[string]any{"n": 1}})
	}
	collect(t, sub, 4)

	after := scrape(t, d)
	if got := value(after, "continuum_calls_total", "method", "kernel/ping", "code", "ok"); got != 3 {
		t.Errorf("kernel/ping ok calls = %v, want 3", got)
	}
	if got := value(after, "continuum_calls_total", "method", "no/such-method", "code", "unknown_method"); got != 1 {
		t.Errorf("unknown_method calls = %v, want 1", got)
	}
	if got := value(after, "continuum_call_duration_seconds", "method", "events/emit"); got != 4 {
		t.Errorf("events/emit latency observations = %v, want 4", got)
	}
	if got := value(after, "continuum_events_emitted_total", "class", "metric:tick"); got != 4 {
		t.Errorf("emitted metric:tick = %v, want 4", got)
	}
	if got := value(after, "continuum_events_delivered_total", "class", "metric:tick"); got != 4 {
		t.Errorf("delivered metric:tick = %v, want 4", got)
	}
	if got := value(after, "continuum_log_events_total"); got < 4 {
		t.Errorf("log events = %v, want at least 4", got)
	}
	commits, was := value(after, "continuum_log_commits_total"), value(before, "continuum_log_commits_total")
	if commits <= was {
		t.Errorf("log commits %v → %v: did not move", was, commits)
	}
	if got := value(after, "continuum_log_bytes_total"); got <= 0 {
		t.Errorf("log bytes = %v", got)
	}
	if got := value(after, "continuum_log_events_per_commit"); got != commits {
		t.Errorf("events-per-commit observations %v, want one per commit with events (%v)", got, commits)
	}

	// kernel/metrics reports the same counters as /metrics.
	var m api.Metrics
	if err := c.Call(ctxT(t), api.MethodKernelMetrics, nil, &m); err != nil {
		t.Fatal(err)
	}
	var pings uint64
	for _, mm := range m.Calls {
		if mm.Method == api.MethodKernelPing {
			pings = mm.Codes["ok"]
			if len(mm.Latency.Counts) != len(mm.Latency.Bounds)+1 || mm.Latency.Count != 3 {
				t.Errorf("ping latency histogram %+v", mm.Latency)
			}
		}
	}
	if pings != 3 || float64(m.Connections.Open) != open || m.Log.Commits < uint64(commits) {
		t.Errorf("kernel/metrics: pings %d, open %d, commits %d", pings, m.Connections.Open, m.Log.Commits)
	}

	// A client that goes away is counted out.
	c.Close()
	deadline := ctxT(t)
	for value(scrape(t, d), "continuum_connections_open") != open-1 {
		select {
		case <-deadline.Done():
			t.Fatal("connections_open never went down after the client closed")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestMetricsListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:9464", ":9464", "not-an-address"} {
		dir := shortDir(t)
		_, err := daemon.Start(daemon.Config{Kernel: kernelCfg(dir), Socket: dir + "/d.sock", MetricsListen: addr})
		if err == nil {
			t.Errorf("--metrics-listen %q was accepted", addr)
			continue
		}
		wantCode(t, err, api.CodeInvalidArgument)
	}
}

func TestMetricsOnlyGET(t *testing.T) {
	d := start(t, func(c *daemon.Config) { c.MetricsListen = "127.0.0.1:0" })
	resp, err := http.Post("http://"+d.MetricsAddr()+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %s", resp.Status)
	}
	if d.MetricsAddr() == "" || start(t).MetricsAddr() != "" {
		t.Error("MetricsAddr: want set when on and empty when off")
	}
}

func kernelCfg(dir string) kernel.Config { return kernel.Config{StateDir: dir + "/state"} }
