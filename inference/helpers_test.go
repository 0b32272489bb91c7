package inference_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// libDir is where the tests find the llama.cpp libraries:
// $CONTINUUM_LLAMA_LIB_DIR, else <repo>/.cache/llama/cpu (what `make
// llama-libs` fills). Tests never download. A test binary loads one folder
// (llama.cpp loads once per process).
func libDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv(inference.EnvLibDir)
	if d == "" {
		_, file, _, _ := runtime.Caller(0)
		d = filepath.Join(filepath.Dir(file), "..", ".cache", "llama", "cpu")
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		t.Fatalf("llama.cpp libraries not found at %s: run `make llama-libs` (or scripts/fetch-llama-libs.sh), or set %s", d, inference.EnvLibDir)
	}
	return d
}

// cpuOpts are the options of a test daemon that may run on the CPU, with
// one thread per context (two threads stall under the Go runtime on a busy
// 2-core machine).
func cpuOpts(t testing.TB) inference.Options {
	return inference.Options{LlamaLibDir: libDir(t), AllowCPU: true, NThreads: 1}
}

// startDaemon runs continuumd in-process on a temp socket and state dir and
// dials it with the real client over the socket.
func startDaemon(t testing.TB, opts inference.Options) (*daemon.Daemon, *client.Client) {
	t.Helper()
	// t.TempDir() holds the test's name; a socket path must stay short.
	sockDir, err := os.MkdirTemp("", "inf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	d, err := daemon.Start(daemon.Config{
		Socket:    filepath.Join(sockDir, "d.sock"),
		Inference: opts,
		Kernel:    kernelConfig(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d, dial(t, d)
}

func dial(t testing.TB, d *daemon.Daemon) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), d.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// writeModel writes a tiny GGUF model and returns its absolute path.
func writeModel(t testing.TB, cfg gguf.TinyConfig) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := gguf.WriteTinyModelFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	return path
}

// longConfig is a tiny model with a 4096-token context, so a generation can
// run long enough to be cancelled or to hold a context: greedy from prompt it
// runs longRunTokens tokens before an end-of-generation token, about 2.5 s
// on a 2-core machine.
const longRunTokens = 2188

func longConfig() gguf.TinyConfig {
	c := gguf.DefaultTinyConfig()
	c.ContextLength = 4096
	return c
}

func load(t testing.TB, c *client.Client, path, name string) api.LoadedModel {
	t.Helper()
	var m api.LoadedModel
	if err := c.Call(context.Background(), api.MethodInferenceLoad, api.LoadModelParams{Path: path, Name: name}, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func generate(ctx context.Context, c *client.Client, p api.GenerateParams) (api.GenerateResult, error) {
	var r api.GenerateResult
	err := c.Call(ctx, api.MethodInferenceGenerate, p, &r)
	return r, err
}

func models(t testing.TB, c *client.Client) []api.LoadedModel {
	t.Helper()
	var ms []api.LoadedModel
	if err := c.Call(context.Background(), api.MethodInferenceModels, nil, &ms); err != nil {
		t.Fatal(err)
	}
	return ms
}

func subscribe(t testing.TB, c *client.Client, pattern string) *client.Subscription {
	t.Helper()
	s, err := c.Subscribe(context.Background(), api.SubscribeParams{Pattern: pattern})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenEvents reads the inference:tokens events of request id from s until
// one with index last arrives.
func tokenEvents(t testing.TB, s *client.Subscription, id string, last int) ([]api.TokenEvent, []api.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []api.TokenEvent
	var evs []api.Event
	for len(out) == 0 || out[len(out)-1].Index < last {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d events of %s: %v", len(out), id, err)
		}
		var te api.TokenEvent
		if err := api.Assign(&te, ev.Payload); err != nil {
			t.Fatalf("payload %#v: %v", ev.Payload, err)
		}
		if te.RequestID == id {
			out = append(out, te)
			evs = append(evs, *ev)
		}
	}
	return out, evs
}

func wantCode(t testing.TB, err error, code api.Code, msgParts ...string) {
	t.Helper()
	if got := api.CodeOf(err); got != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	if !errors.Is(err, &api.Error{Code: code}) {
		t.Fatalf("errors.Is does not match %s for %v", code, err)
	}
	for _, p := range msgParts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}

// waitIdle waits until no generation runs or waits on any model.
func waitIdle(t testing.TB, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy := false
		for _, m := range models(t, c) {
			busy = busy || m.Active > 0 || m.Queued > 0
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("generations still running: %+v", models(t, c))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func kernelConfig(t testing.TB) kernel.Config {
	return kernel.Config{StateDir: t.TempDir()}
}
