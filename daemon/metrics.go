package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/metrics"
)

// addMetricsSources lets kernel/metrics report the parts only the daemon
// joins: the grid's link and replication counters and inference's tokens.
func (d *Daemon) addMetricsSources() {
	g, inf := d.grid, d.infer
	d.kernel.AddMetricsSource(func(m *api.Metrics) {
		if inf != nil {
			m.Inference = inf.Stats()
		}
		if g != nil {
			if gm, err := g.Metrics(); err == nil {
				m.Grid = gm
			} else {
				d.log.Warn("metrics: grid counters unavailable", "err", err)
			}
		}
	})
}

// checkLoopback refuses an address that is not on the loopback interface:
// the metrics page has no authentication, so it must not face a network.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return api.Errorf(api.CodeInvalidArgument, "--metrics-listen %q: want host:port on loopback (127.0.0.1:9464): %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return api.Errorf(api.CodeInvalidArgument, "--metrics-listen %q: only a loopback address is allowed (127.0.0.1, ::1 or localhost); /metrics has no authentication", addr)
}

// startMetrics serves GET /metrics in the Prometheus text format on addr.
func (d *Daemon) startMetrics(addr string) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", metrics.ContentType)
		if err := metrics.WritePrometheus(w, d.kernel.Metrics()); err != nil {
			d.log.Debug("metrics: scrape ended early", "err", err)
		}
	})
	d.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	d.metricsAddr = ln.Addr().String()
	go func() {
		if err := d.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics listener stopped", "err", err)
		}
	}()
	d.log.Info("continuumd metrics listening", "addr", d.metricsAddr)
	return nil
}

// MetricsAddr is where /metrics is served ("" when off).
func (d *Daemon) MetricsAddr() string { return d.metricsAddr }

func (d *Daemon) stopMetrics(ctx context.Context) error {
	if d.metricsSrv == nil {
		return nil
	}
	return d.metricsSrv.Shutdown(ctx)
}
