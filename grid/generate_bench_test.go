package grid_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// Remote generate against local (docs/BENCHMARKS.md): B has the tiny
// random-weight model loaded (real llama.cpp, CPU); each op is one
// streamed generation of 64 tokens, called on B itself (local) or on A,
// which has no model and dispatches it to B, its token events re-emitted
// on A before the answer (remote); and the same without stream (the
// result alone):
//
//	CONTINUUM_LLAMA_LIB_DIR=$PWD/.cache/llama/cpu go test ./grid -run '^$' -bench GridGenerate -benchtime 200x
func BenchmarkGridGenerate(b *testing.B) {
	lib, ok := llamaLibDir()
	if !ok {
		b.Skipf("llama.cpp libraries not found at %s: run `make llama-libs`", lib)
	}
	start := func() (*daemon.Daemon, *client.Client) {
		dir := b.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil { // the socket's folder must be private
			b.Fatal(err)
		}
		d, err := daemon.Start(daemon.Config{
			Socket: filepath.Join(dir, "d.sock"), Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")},
			Inference: inference.Options{LlamaLibDir: lib, AllowCPU: true, NThreads: 1, NCtx: 256},
			Grid:      grid.Options{ListenQUIC: "127.0.0.1:0", Link: fastLinks},
		})
		if err != nil {
			b.Fatal(err)
		}
		c, err := client.NewInProcess(d.Kernel())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d.Shutdown(ctx)
		})
		return d, c
	}
	_, ca := start()
	_, cb := start()
	ctx := context.Background()
	var inv api.InviteResult
	if err := ca.Call(ctx, api.MethodGridInvite, api.InviteParams{Circle: "household"}, &inv); err != nil {
		b.Fatal(err)
	}
	if err := cb.Call(ctx, api.MethodGridJoin, api.JoinParams{Token: inv.Token}, nil); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "tiny.gguf")
	if err := gguf.WriteTinyModelFile(path, gguf.DefaultTinyConfig()); err != nil {
		b.Fatal(err)
	}
	if err := cb.Call(ctx, api.MethodInferenceLoad, api.LoadModelParams{Path: path, Name: "tiny"}, nil); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var r api.RoutesResult
		if err := ca.Call(ctx, api.MethodGridRoutes, api.RoutesParams{Capability: "llm:tiny"}, &r); err != nil {
			b.Fatal(err)
		}
		if len(r.Routes) == 1 && r.Routes[0].LinkUp {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("llm:tiny never reached a's index")
		}
		time.Sleep(20 * time.Millisecond)
	}
	const tokens = 64
	for _, tc := range []struct {
		name           string
		c              *client.Client
		remote, stream bool
	}{{"local/stream", cb, false, true}, {"remote/stream", ca, true, true}, {"local/result-only", cb, false, false}, {"remote/result-only", ca, true, false}} {
		b.Run(tc.name, func(b *testing.B) {
			p := api.GenerateParams{Model: "tiny", Prompt: "hello world", MaxTokens: tokens, Stream: tc.stream}
			ep := api.ExecuteParams{Command: api.MethodInferenceGenerate, Params: p}
			if tc.remote {
				ep.Scope = &api.ScopeParams{Target: api.ScopeGrid, Capability: "llm:tiny"}
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				var res api.GenerateResult
				if err := tc.c.Execute(ctx, ep, &res); err != nil || len(res.Tokens) != tokens {
					b.Fatalf("%v (%d tokens)", err, len(res.Tokens))
				}
			}
			b.ReportMetric(float64(tokens*b.N)/time.Since(start).Seconds(), "tokens/s")
		})
	}
}

// llamaLibDir is where grid tests find the llama.cpp libraries:
// $CONTINUUM_LLAMA_LIB_DIR, else <repo>/.cache/llama/cpu (make llama-libs);
// ok says whether the folder is there.
func llamaLibDir() (string, bool) {
	lib := os.Getenv(inference.EnvLibDir)
	if lib == "" {
		_, file, _, _ := runtime.Caller(0)
		lib = filepath.Join(filepath.Dir(file), "..", ".cache", "llama", "cpu")
	}
	_, err := os.Stat(lib)
	return lib, err == nil
}
