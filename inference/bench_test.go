package inference_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// BenchmarkGenerateDaemon measures generation THROUGH the daemon: the Go
// client calls inference/generate over the Unix socket with stream: true and
// times the inference:tokens events as they arrive, the way an application
// sees them. Same work as llama's BenchmarkGenerate and bench/node-llama:
// the gguf.BenchTinyConfig model, the prompt below, 128 greedy tokens, a
// 1024-token context, one thread.
//
// Metrics: tokens/s (client side: events after the first over the time from
// first to last event), ttft_ms (client side: from sending the request to
// the first event), and the daemon's own figures (server_tokens/s,
// server_ttft_ms). $CONTINUUM_BENCH_MODEL names a model file to use instead
// of writing one; $THREADS overrides the thread count.
//
// It runs the daemon in this process; scripts/bench-inference.sh (make
// bench) measures a separate continuumd process against node-llama-cpp with
// bench/cmd/viadaemon instead.
//
//	go test -run '^$' -bench GenerateDaemon -benchtime 20x ./inference/
func BenchmarkGenerateDaemon(b *testing.B) {
	path := os.Getenv("CONTINUUM_BENCH_MODEL")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.gguf")
		if err := gguf.WriteTinyModelFile(path, gguf.BenchTinyConfig()); err != nil {
			b.Fatal(err)
		}
	}
	opts := cpuOpts(b)
	opts.NCtx = 1024
	if n, err := strconv.Atoi(os.Getenv("THREADS")); err == nil && n > 0 {
		opts.NThreads = n
	}
	_, c := startDaemon(b, opts)
	load(b, c, path, "bench")
	sub := subscribe(b, c, api.EventInferenceTokens)
	const maxTokens = 128
	ctx := context.Background()

	type arrival struct {
		index int
		at    time.Time
	}
	arrivals := make(chan arrival, 4*maxTokens)
	go func() {
		for ev := range sub.Events() {
			now := time.Now()
			var te api.TokenEvent
			if api.Assign(&te, ev.Payload) == nil {
				arrivals <- arrival{te.Index, now}
			}
		}
		close(arrivals)
	}()

	// One warm-up request, as node's first evaluation also pays for setup.
	if _, err := generate(ctx, c, api.GenerateParams{Model: "bench", Prompt: benchPrompt, MaxTokens: 8}); err != nil {
		b.Fatal(err)
	}
	var tps, ttft, stps, sttft float64
	n := 0
	for b.Loop() {
		start := time.Now()
		res, err := generate(ctx, c, api.GenerateParams{Model: "bench", Prompt: benchPrompt, MaxTokens: maxTokens, Stream: true})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Tokens) != maxTokens {
			b.Fatalf("%d tokens (%s)", len(res.Tokens), res.StopReason)
		}
		var first, last time.Time
		for got := 0; got < maxTokens; got++ {
			a, ok := <-arrivals
			if !ok {
				b.Fatal("subscription ended")
			}
			if a.index == 0 {
				first = a.at
			}
			last = a.at
		}
		tps += float64(maxTokens-1) / last.Sub(first).Seconds()
		ttft += float64(first.Sub(start).Microseconds()) / 1000
		stps += res.TokensPerSec
		sttft += res.TimeToFirstTokenMs
		n++
	}
	b.ReportMetric(tps/float64(n), "tokens/s")
	b.ReportMetric(ttft/float64(n), "ttft_ms")
	b.ReportMetric(stps/float64(n), "server_tokens/s")
	b.ReportMetric(sttft/float64(n), "server_ttft_ms")
}

const benchPrompt = "the quick brown fox jumps over the lazy dog"
