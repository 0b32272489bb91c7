package metrics

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram([]float64{1, 2})
	for _, v := range []float64{0.5, 1, 1.5, 3, 7} {
		h.Observe(v)
	}
	s := h.Snapshot()
	if fmt.Sprint(s.Counts) != "[2 1 2]" || s.Count != 5 || s.Sum != 13 {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestLabelsAreBounded(t *testing.T) {
	r := New()
	for i := range MaxLabels + 10 {
		r.Call(fmt.Sprintf("m/%d", i)).Done(time.Millisecond, nil)
	}
	var m api.Metrics
	r.Snapshot(&m)
	if len(m.Calls) != MaxLabels+1 {
		t.Fatalf("%d method labels, want %d and %s", len(m.Calls), MaxLabels, OtherLabel)
	}
	var other uint64
	for _, c := range m.Calls {
		if c.Method == OtherLabel {
			other = c.Codes["ok"]
		}
	}
	if other != 10 {
		t.Fatalf("%s holds %d calls, want 10", OtherLabel, other)
	}
}

func TestCallCodes(t *testing.T) {
	r := New()
	c := r.Call("events/emit")
	c.Done(time.Microsecond, nil)
	c.Done(time.Microsecond, api.Errorf(api.CodeInvalidArgument, "x"))
	c.Done(time.Microsecond, fmt.Errorf("plain"))
	var m api.Metrics
	r.Snapshot(&m)
	got := m.Calls[0].Codes
	if got["ok"] != 1 || got["invalid_argument"] != 1 || got[string(api.CodeOf(fmt.Errorf("plain")))] != 1 {
		t.Fatalf("codes %v", got)
	}
}

func TestWritePrometheusEscapesLabels(t *testing.T) {
	r := New()
	r.Class("a\"b\\c\nd").Emitted.Add(2)
	var m api.Metrics
	r.Snapshot(&m)
	var b bytes.Buffer
	if err := WritePrometheus(&b, &m); err != nil {
		t.Fatal(err)
	}
	want := `continuum_events_emitted_total{class="a\"b\\c\nd"} 2` + "\n"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("no %q in\n%s", want, b.String())
	}
	if !strings.Contains(b.String(), `continuum_log_commit_duration_seconds_bucket{le="+Inf"} 0`) {
		t.Fatal("histogram has no +Inf bucket")
	}
}

// BenchmarkCallDone is the cost the kernel adds to every call.
func BenchmarkCallDone(b *testing.B) {
	r := New()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			r.Call("kernel/ping").Done(time.Since(start), nil)
		}
	})
}
