package inference_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// startOn runs a daemon on a given state dir (a restart is a second call)
// and returns it with a client; stop shuts it down.
func startOn(t *testing.T, state string, opts inference.Options) (stop func(), c *client.Client) {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "inf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	d, err := daemon.Start(daemon.Config{Socket: filepath.Join(sockDir, "d.sock"), Inference: opts, Kernel: kernel.Config{StateDir: state}})
	if err != nil {
		t.Fatal(err)
	}
	c = dial(t, d)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop, c
}

// waitModels polls inference/models until it lists want (names), or fails.
func waitModels(t *testing.T, c *client.Client, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ms := models(t, c)
		got := make([]string, len(ms))
		for i, m := range ms {
			got[i] = m.Name
		}
		if len(got) == len(want) {
			same := true
			for i := range want {
				same = same && got[i] == want[i]
			}
			if same {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("models %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A restart reloads what inference/load loaded, under the same names; what
// was unloaded stays unloaded; a model whose file is gone is forgotten; and
// --no-reload-models (NoReload) starts with nothing.
func TestRestartReloadsLoadedModels(t *testing.T) {
	state := t.TempDir()
	a, b := writeModel(t, gguf.DefaultTinyConfig()), writeModel(t, gguf.DefaultTinyConfig())
	gone := writeModel(t, gguf.DefaultTinyConfig())

	stop, c := startOn(t, state, cpuOpts(t))
	load(t, c, a, "alpha")
	load(t, c, b, "beta")
	load(t, c, gone, "gone")
	if err := c.Call(context.Background(), api.MethodInferenceUnload, api.NameParams{Name: "beta"}, nil); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}

	stop, c = startOn(t, state, cpuOpts(t))
	waitModels(t, c, "alpha")
	ms := models(t, c)
	if ms[0].Path != a {
		t.Fatalf("reloaded %+v, want the file %s", ms[0], a)
	}
	// It generates: a reloaded model is a loaded model.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r, err := generate(ctx, c, api.GenerateParams{Model: "alpha", Prompt: prompt, MaxTokens: 2}); err != nil || len(r.Tokens) != 2 {
		t.Fatalf("generate on the reloaded model: %+v %v", r, err)
	}
	stop()

	// Without a GPU and without --allow-cpu the reload fails, and the model
	// stays remembered for a start that can load it.
	noGPU := cpuOpts(t)
	noGPU.AllowCPU = false
	stop, c = startOn(t, state, noGPU)
	time.Sleep(100 * time.Millisecond)
	if ms := models(t, c); len(ms) != 0 {
		t.Fatalf("loaded without a GPU: %+v", ms)
	}
	stop()

	noReload := cpuOpts(t)
	noReload.NoReload = true
	stop, c = startOn(t, state, noReload)
	time.Sleep(100 * time.Millisecond)
	if ms := models(t, c); len(ms) != 0 {
		t.Fatalf("NoReload loaded %+v", ms)
	}
	stop()

	_, c = startOn(t, state, cpuOpts(t))
	waitModels(t, c, "alpha")
}
