package llama

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/continuum-grid/continuum/llama/gguf"
)

// BenchmarkGenerate measures greedy generation of 128 tokens from a short
// prompt on the CPU with the gguf.BenchTinyConfig model: tokens/s (decode
// rate, as GenerateResult.TokensPerSec defines it) and time to first token.
//
//	go test -run '^$' -bench Generate -benchtime 20x ./llama/
func BenchmarkGenerate(b *testing.B) {
	l := lib(b)
	path := filepath.Join(b.TempDir(), "bench.gguf")
	if err := gguf.WriteTinyModelFile(path, gguf.BenchTinyConfig()); err != nil {
		b.Fatal(err)
	}
	m, err := l.LoadModel(context.Background(), path, ModelOptions{AllowCPU: true})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			cx, err := m.NewContext(ContextOptions{NCtx: 1024, NThreads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer cx.Close()
			req := GenerateRequest{Prompt: "the quick brown fox jumps over the lazy dog", MaxTokens: 128}
			var tps, ttft float64
			var n int
			for b.Loop() {
				res, err := cx.Generate(context.Background(), req, nil)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Tokens) != 128 {
					b.Fatalf("%d tokens (%s)", len(res.Tokens), res.StopReason)
				}
				tps += res.TokensPerSec
				ttft += res.TimeToFirstTokenMs
				n++
			}
			b.ReportMetric(tps/float64(n), "tokens/s")
			b.ReportMetric(ttft/float64(n), "ttft_ms")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*128), "ns/token")
		})
	}
}

// TestBenchModelFirstTokens prints the benchmark model's first greedy ids,
// to check that another engine (bench/node-llama prints its own) decodes
// the same sequence and so does the same work.
func TestBenchModelFirstTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 35 MB model")
	}
	m := tinyModel(t, gguf.BenchTinyConfig())
	cx := newCtx(t, m, 1024)
	res, _ := gen(t, cx, GenerateRequest{Prompt: "the quick brown fox jumps over the lazy dog", MaxTokens: 8})
	t.Logf("first ids: %v", res.Tokens)
	if len(res.Tokens) != 8 {
		t.Fatalf("%+v", res)
	}
}
