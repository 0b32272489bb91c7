package metrics

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/continuum-grid/continuum/api"
)

// ContentType is the media type of WritePrometheus's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// sortMetrics orders the labelled parts, so output is stable between scrapes.
func sortMetrics(m *api.Metrics) {
	slices.SortFunc(m.Calls, func(a, b api.MethodMetrics) int { return strings.Compare(a.Method, b.Method) })
	slices.SortFunc(m.Events, func(a, b api.ClassMetrics) int { return strings.Compare(a.Class, b.Class) })
}

// WritePrometheus writes m in the Prometheus text exposition format, every
// family prefixed continuum_.
func WritePrometheus(w io.Writer, m *api.Metrics) error {
	b := bufio.NewWriter(w)
	p := promWriter{b: b}

	p.family("continuum_uptime_seconds", "gauge", "Seconds since the kernel opened.")
	p.sample("continuum_uptime_seconds", nil, m.UptimeSeconds)
	p.family("continuum_connections_open", "gauge", "Client sessions open now.")
	p.sample("continuum_connections_open", nil, float64(m.Connections.Open))
	p.family("continuum_connections_total", "counter", "Client sessions opened since start.")
	p.sample("continuum_connections_total", nil, float64(m.Connections.Total))

	p.family("continuum_calls_total", "counter", "Calls by method and result code (ok or an error code).")
	for _, c := range m.Calls {
		codes := make([]string, 0, len(c.Codes))
		for code := range c.Codes {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		for _, code := range codes {
			p.sample("continuum_calls_total", []string{"method", c.Method, "code", code}, float64(c.Codes[code]))
		}
	}
	p.family("continuum_call_duration_seconds", "histogram", "Call latency by method, in the kernel.")
	for _, c := range m.Calls {
		p.histogram("continuum_call_duration_seconds", []string{"method", c.Method}, c.Latency)
	}

	for _, f := range []struct {
		name, help string
		v          func(api.ClassMetrics) uint64
	}{
		{"continuum_events_emitted_total", "Events published to the bus, by class.", func(c api.ClassMetrics) uint64 { return c.Emitted }},
		{"continuum_events_delivered_total", "Deliveries to live subscribers, by class.", func(c api.ClassMetrics) uint64 { return c.Delivered }},
		{"continuum_events_dropped_total", "Deliveries dropped on a full subscriber queue, by class.", func(c api.ClassMetrics) uint64 { return c.Dropped }},
	} {
		p.family(f.name, "counter", f.help)
		for _, c := range m.Events {
			p.sample(f.name, []string{"class", c.Class}, float64(f.v(c)))
		}
	}
	p.family("continuum_subscriptions", "gauge", "Live subscriptions now.")
	p.sample("continuum_subscriptions", nil, float64(m.Subscriptions))
	p.family("continuum_subscriber_lag_events", "gauge", "Events queued for live subscribers, not yet delivered.")
	p.sample("continuum_subscriber_lag_events", nil, float64(m.SubscriberLag))
	p.family("continuum_client_lag_events", "gauge", "Per client whose subscriptions are behind: events queued plus log positions to the head; the most behind first, at most 20 clients, the rest under _other.")
	for _, l := range m.Subscribers {
		p.sample("continuum_client_lag_events", []string{"client", l.Client}, float64(l.LagEvents))
	}

	p.family("continuum_log_commits_total", "counter", "airc log group commits (one fsync each).")
	p.sample("continuum_log_commits_total", nil, float64(m.Log.Commits))
	p.family("continuum_log_events_total", "counter", "Events committed to the airc log.")
	p.sample("continuum_log_events_total", nil, float64(m.Log.Events))
	p.family("continuum_log_bytes_total", "counter", "Encoded event bytes committed to the airc log.")
	p.sample("continuum_log_bytes_total", nil, float64(m.Log.Bytes))
	p.family("continuum_log_commit_duration_seconds", "histogram", "Time of one log commit, fsync included.")
	p.histogram("continuum_log_commit_duration_seconds", nil, m.Log.CommitLatency)
	p.family("continuum_log_events_per_commit", "histogram", "Events in one group commit.")
	p.histogram("continuum_log_events_per_commit", nil, m.Log.EventsPerCommit)

	p.family("continuum_inference_tokens_total", "counter", "Tokens generated.")
	p.sample("continuum_inference_tokens_total", nil, float64(m.Inference.Tokens))
	p.family("continuum_inference_generate_seconds_total", "counter", "Seconds spent generating.")
	p.sample("continuum_inference_generate_seconds_total", nil, m.Inference.GenerateSecs)
	p.family("continuum_inference_tokens_per_second", "gauge", "Tokens over generating seconds since start.")
	p.sample("continuum_inference_tokens_per_second", nil, m.Inference.TokensPerSecs)

	p.family("continuum_grid_peers_up", "gauge", "Grid links up now.")
	p.sample("continuum_grid_peers_up", nil, float64(m.Grid.PeersUp))
	p.family("continuum_grid_replication_lag_events", "gauge", "Per peer: seqs of its log past what this install pulled and committed, as of its last answer.")
	for _, pr := range m.Grid.Peers {
		p.sample("continuum_grid_replication_lag_events", []string{"peer", pr.PeerID}, float64(pr.LagEvents))
	}
	p.family("continuum_grid_replication_behind_seconds", "gauge", "Per peer: seconds since this install last held everything the peer had; 0 when caught up.")
	for _, pr := range m.Grid.Peers {
		p.sample("continuum_grid_replication_behind_seconds", []string{"peer", pr.PeerID}, pr.BehindSeconds)
	}
	p.family("continuum_grid_counter_total", "counter", "grid/status counters, by name (docs/GRID.md).")
	names := make([]string, 0, len(m.Grid.Counters))
	for n := range m.Grid.Counters {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p.sample("continuum_grid_counter_total", []string{"name", n}, float64(m.Grid.Counters[n]))
	}
	return b.Flush()
}

type promWriter struct{ b *bufio.Writer }

func (p promWriter) family(name, typ, help string) {
	p.b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

// sample writes one line; labels alternate name, value.
func (p promWriter) sample(name string, labels []string, v float64) {
	p.b.WriteString(name)
	if len(labels) > 0 {
		p.b.WriteByte('{')
		for i := 0; i < len(labels); i += 2 {
			if i > 0 {
				p.b.WriteByte(',')
			}
			p.b.WriteString(labels[i] + `="` + escapeLabel(labels[i+1]) + `"`)
		}
		p.b.WriteByte('}')
	}
	p.b.WriteByte(' ')
	p.b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	p.b.WriteByte('\n')
}

func (p promWriter) histogram(name string, labels []string, h api.Histogram) {
	var cum uint64
	for i, n := range h.Counts {
		cum += n
		le := "+Inf"
		if i < len(h.Bounds) {
			le = strconv.FormatFloat(h.Bounds[i], 'g', -1, 64)
		}
		p.sample(name+"_bucket", append(slices.Clip(labels), "le", le), float64(cum))
	}
	p.sample(name+"_sum", labels, h.Sum)
	p.sample(name+"_count", labels, float64(h.Count))
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// escapeLabel escapes a label value as the text format requires.
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
