package inference_test

import (
	"context"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// kernel/metrics counts the tokens each generation produced.
func TestMetricsCountTokens(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	_, c := startDaemon(t, opts)
	path := writeModel(t, gguf.DefaultTinyConfig())
	var total int
	for range 2 {
		r, err := generate(context.Background(), c, api.GenerateParams{Model: path, Prompt: prompt, MaxTokens: 8})
		if err != nil {
			t.Fatal(err)
		}
		total += len(r.Tokens)
	}
	var m api.Metrics
	if err := c.Call(context.Background(), api.MethodKernelMetrics, nil, &m); err != nil {
		t.Fatal(err)
	}
	if total == 0 || m.Inference.Tokens != uint64(total) || m.Inference.GenerateSecs <= 0 || m.Inference.TokensPerSecs <= 0 {
		t.Fatalf("generated %d tokens; kernel/metrics says %+v", total, m.Inference)
	}
}
