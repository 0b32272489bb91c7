package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/grid"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// startInferenceDaemon runs continuumd in-process with the inference service
// on the CPU libraries ($CONTINUUM_LLAMA_LIB_DIR or .cache/llama/cpu).
func startInferenceDaemon(t *testing.T, allowCPU bool) string {
	t.Helper()
	lib := os.Getenv(inference.EnvLibDir)
	if lib == "" {
		_, file, _, _ := runtime.Caller(0)
		lib = filepath.Join(filepath.Dir(file), "..", "..", ".cache", "llama", "cpu")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("llama.cpp libraries not found at %s: run `make llama-libs` or set %s", lib, inference.EnvLibDir)
	}
	sockDir, err := os.MkdirTemp("", "ccli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "d.sock")
	d, err := daemon.Start(daemon.Config{
		Socket:    sock,
		Kernel:    kernel.Config{StateDir: t.TempDir()},
		Inference: inference.Options{LlamaLibDir: lib, AllowCPU: allowCPU, NThreads: 1, NCtx: 256},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return sock
}

func TestModelAndGenerate(t *testing.T) {
	sock := startInferenceDaemon(t, true)
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := gguf.WriteTinyModelFile(path, gguf.DefaultTinyConfig()); err != nil {
		t.Fatal(err)
	}
	// A relative path is made absolute by the CLI.
	t.Chdir(filepath.Dir(path))
	r := cli(t, sock, "model", "load", "tiny.gguf", "--name", "tiny").ok(t)
	if !strings.Contains(r.stdout, "loaded tiny") || !strings.Contains(r.stdout, path) || !strings.Contains(r.stdout, "CPU") {
		t.Fatalf("model load:\n%s", r.stdout)
	}
	r = cli(t, sock, "model", "list").ok(t)
	if !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, "tiny") {
		t.Fatalf("model list:\n%s", r.stdout)
	}
	ms := decode[[]api.LoadedModel](t, cli(t, sock, "model", "list", "--json").ok(t).stdout)
	if len(ms) != 1 || ms[0].Name != "tiny" || ms[0].Info.NLayer != 2 {
		t.Fatalf("model list --json: %+v", ms)
	}

	// The streamed text is the result's text; --json gives the result.
	res := decode[api.GenerateResult](t, cli(t, sock, "generate", "tiny", "hello", "world", "--max-tokens", "16", "--json").ok(t).stdout)
	if len(res.Tokens) != 16 || res.Text == "" {
		t.Fatalf("generate --json: %+v", res)
	}
	r = cli(t, sock, "generate", "tiny", "hello world", "--max-tokens", "16", "--stats").ok(t)
	if strings.TrimSuffix(r.stdout, "\n") != res.Text || !strings.Contains(r.stderr, "16 tokens") || !strings.Contains(r.stderr, "tokens/s") {
		t.Fatalf("streamed %q, want %q; stderr %s", r.stdout, res.Text, r.stderr)
	}
	r = cliIn(t, sock, "hello world\n", "generate", "tiny", "--max-tokens", "16", "--no-stream").ok(t)
	if strings.TrimSuffix(r.stdout, "\n") != res.Text {
		t.Fatalf("prompt from stdin: %q", r.stdout)
	}
	// By path: loaded on first use under its absolute path.
	r = cli(t, sock, "generate", "./tiny.gguf", "hello world", "--max-tokens", "16").ok(t)
	if strings.TrimSuffix(r.stdout, "\n") != res.Text {
		t.Fatalf("by path: %q", r.stdout)
	}
	cli(t, sock, "generate", "tiny", "--chat", "--system", "be brief", "hi", "--max-tokens", "4").ok(t)

	r = cli(t, sock, "generate", "nobody", "hi")
	if r.code != exitError || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("unknown model: %+v", r)
	}
	cli(t, sock, "model", "unload", "tiny").ok(t)
	r = cli(t, sock, "model", "unload", "tiny")
	if r.code != exitError || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("unload twice: %+v", r)
	}
}

func TestGenerateWithoutGPU(t *testing.T) {
	sock := startInferenceDaemon(t, false)
	// Nothing can be loaded, so nothing is: an empty list, not an error.
	r := cli(t, sock, "model", "list").ok(t)
	if !strings.Contains(r.stderr, "no models loaded") {
		t.Fatalf("model list without a GPU: %+v", r)
	}
	if js := cli(t, sock, "model", "list", "--json").ok(t); strings.TrimSpace(js.stdout) != "[]" {
		t.Fatalf("model list --json without a GPU: %+v", js)
	}
	// Loading says why not, and that --allow-cpu is the daemon's flag.
	r = cli(t, sock, "model", "load", filepath.Join(t.TempDir(), "x.gguf"))
	if r.code != exitError || !strings.Contains(r.stderr, "gpu_unavailable") || !strings.Contains(r.stderr, "make run ARGS=--allow-cpu") {
		t.Fatalf("without a GPU: %+v", r)
	}
	cli(t, sock, "ping").ok(t)
}

// `continuum model tiny PATH` writes a model llama.cpp loads; `generate
// --model PATH` loads it on first use with a progress bar, then streams; the
// inference event classes are listed.
func TestModelTinyAndGenerateFlag(t *testing.T) {
	sock := startInferenceDaemon(t, true)
	dir := t.TempDir()
	path := filepath.Join(dir, "demo.gguf")
	r := cli(t, sock, "model", "tiny", path).ok(t)
	if !strings.Contains(r.stdout, "wrote "+path) || !strings.Contains(r.stdout, "2 layers") || !strings.Contains(r.stderr, "continuum model load") {
		t.Fatalf("model tiny:\n%s\n%s", r.stdout, r.stderr)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The same flags give the same bytes; --json describes the file.
	again := filepath.Join(dir, "again.gguf")
	info := decode[map[string]any](t, cli(t, sock, "model", "tiny", again, "--json").ok(t).stdout)
	if got, _ := os.ReadFile(again); string(got) != string(want) || info["path"] != again || info["layers"] != float64(2) {
		t.Fatalf("model tiny again: %v", info)
	}
	if r := cli(t, sock, "model", "tiny", filepath.Join(dir, "bad.gguf"), "--embd", "60", "--heads", "8"); r.code != exitError || !strings.Contains(r.stderr, "Heads") {
		t.Fatalf("a bad shape: %+v", r)
	}

	r = cli(t, sock, "generate", "--model", path, "hello", "world", "--max-tokens", "12", "--stats").ok(t)
	if !strings.Contains(r.stderr, "loading "+path) || !strings.Contains(r.stderr, "100%") || !strings.Contains(r.stderr, "12 tokens") {
		t.Fatalf("generate --model (first use loads):\nstdout %q\nstderr %s", r.stdout, r.stderr)
	}
	res := decode[api.GenerateResult](t, cli(t, sock, "generate", "-m", path, "hello world", "--max-tokens", "12", "--json").ok(t).stdout)
	if strings.TrimSuffix(r.stdout, "\n") != res.Text || len(res.Tokens) != 12 {
		t.Fatalf("streamed %q, result %+v", r.stdout, res)
	}
	// Loaded now: no progress the second time.
	if r := cli(t, sock, "generate", "--model", path, "hello world", "--max-tokens", "4").ok(t); strings.Contains(r.stderr, "loading") {
		t.Fatalf("second use drew a progress bar: %s", r.stderr)
	}
	if r := cli(t, sock, "generate"); r.code != exitUsage || !strings.Contains(r.stderr, "--model") {
		t.Fatalf("no model: %+v", r)
	}

	r = cli(t, sock, "events", "list").ok(t)
	for _, class := range []string{api.EventInferenceTokens, api.EventInferenceLoadProgress} {
		if !strings.Contains(r.stdout, class) {
			t.Errorf("events list lacks %s:\n%s", class, r.stdout)
		}
	}
}

// `model load` draws the bar from the load's progress events.
func TestModelLoadProgressBar(t *testing.T) {
	sock := startInferenceDaemon(t, true)
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	cli(t, sock, "model", "tiny", path).ok(t)
	r := cli(t, sock, "model", "load", path, "--name", "tiny").ok(t)
	if !strings.Contains(r.stderr, "loading tiny [") || !strings.Contains(r.stderr, "] 100%") {
		t.Fatalf("no progress bar:\n%s", r.stderr)
	}
}

// withoutInference drops the lines of the inference and persona services' own event
// classes, which every daemon declares (inference.Classes, persona:responded), from a listing.
func withoutInference(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "inference:") && !strings.HasPrefix(l, "persona:") {
			out = append(out, l)
		}
	}
	return out
}

// withoutInferenceClasses is withoutInference for `events list --json`.
func withoutInferenceClasses(list []map[string]any) []map[string]any {
	var out []map[string]any
	for _, c := range list {
		if name, _ := c["name"].(string); !strings.HasPrefix(name, "inference:") && !strings.HasPrefix(name, "persona:") {
			out = append(out, c)
		}
	}
	return out
}

// The showcase: generate on an install that has not loaded the model runs
// on the peer that offers it, tokens streaming back through both daemons.
func TestGenerateOnThePeerThatHasTheModel(t *testing.T) {
	lib := os.Getenv(inference.EnvLibDir)
	if lib == "" {
		_, file, _, _ := runtime.Caller(0)
		lib = filepath.Join(filepath.Dir(file), "..", "..", ".cache", "llama", "cpu")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("llama.cpp libraries not found at %s: run `make llama-libs` or set %s", lib, inference.EnvLibDir)
	}
	start := func() string {
		dir, err := os.MkdirTemp("", "cgen")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		sock := filepath.Join(dir, "d.sock")
		d, err := daemon.Start(daemon.Config{
			Socket: sock, Kernel: kernel.Config{StateDir: filepath.Join(dir, "state")},
			Inference: inference.Options{LlamaLibDir: lib, AllowCPU: true, NThreads: 1, NCtx: 256},
			Grid:      grid.Options{ListenQUIC: "127.0.0.1:0"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d.Shutdown(ctx)
		})
		return sock
	}
	sa, sb := start(), start()
	token := strings.TrimSpace(cli(t, sa, "grid", "invite", "--circle", "household").ok(t).stdout)
	cli(t, sb, "grid", "join", token).ok(t)
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := gguf.WriteTinyModelFile(path, gguf.DefaultTinyConfig()); err != nil {
		t.Fatal(err)
	}
	cli(t, sb, "model", "load", path, "--name", "tiny").ok(t)
	local := decode[api.GenerateResult](t, cli(t, sb, "generate", "tiny", "hello world", "--max-tokens", "24", "--json").ok(t).stdout)
	waitFor(t, "a's index offers llm:tiny", func() bool {
		r := decode[api.RoutesResult](t, cli(t, sa, "grid", "routes", "--capability", "llm:tiny", "--json").ok(t).stdout)
		return len(r.Routes) == 1 && r.Routes[0].LinkUp && r.Routes[0].Command == api.MethodInferenceGenerate
	})
	// Streamed on a: every token's piece arrived as an event on a (the CLI
	// warns when it had to complete the text from the result).
	r := cli(t, sa, "generate", "--model", "tiny", "hello world", "--max-tokens", "24", "--stats").ok(t)
	if strings.TrimSuffix(r.stdout, "\n") != local.Text || strings.Contains(r.stderr, "lost") || !strings.Contains(r.stderr, "24 tokens") {
		t.Fatalf("remote generate printed %q (stderr %q), want %q as on b", r.stdout, r.stderr, local.Text)
	}
	// Not streamed (--json): no events to wait for, so no wait for them.
	began := time.Now()
	remote := decode[api.GenerateResult](t, cli(t, sa, "generate", "tiny", "hello world", "--max-tokens", "24", "--json").ok(t).stdout)
	if remote.Text != local.Text || len(remote.Tokens) != 24 || remote.Model != "tiny" {
		t.Errorf("remote --json: %+v", remote)
	}
	if took := time.Since(began); took > 900*time.Millisecond {
		t.Errorf("a remote generate without stream took %s (waiting for events that never come?)", took)
	}
	// Under contract (docs/CONTRACTS.md): b bids from its llm:tiny offer, runs
	// the generation, delivers a signed receipt; a verifies and pays.
	type contracted struct {
		Contract api.Contract       `json:"contract"`
		Result   api.GenerateResult `json:"result"`
	}
	cr := decode[contracted](t, cli(t, sa, "contracts", "propose", "inference/generate", "--capability", "llm:tiny", "--expiry", "300ms",
		"--params", `{"model":"tiny","prompt":"hello world","maxTokens":24}`, "-o", "json").ok(t).stdout)
	if cr.Contract.State != "paid" || cr.Result.Text != local.Text || len(cr.Contract.DeliveredAlloyHash) != 64 {
		t.Errorf("contracted generate: %s (%s), text %q, want %q", cr.Contract.State, cr.Contract.Verdict, cr.Result.Text, local.Text)
	}
	if show := cli(t, sa, "contracts", "show", cr.Contract.ContractID).ok(t).stdout; !strings.Contains(show, cr.Contract.DeliveredAlloyHash) || !strings.Contains(show, "verifies: passed") {
		t.Errorf("contracts show:\n%s", show)
	}
	// Once b unloads it, the offer goes (withdrawn) and a answers as before.
	cli(t, sb, "model", "unload", "tiny").ok(t)
	waitFor(t, "llm:tiny withdrawn from a's index", func() bool {
		r := decode[api.RoutesResult](t, cli(t, sa, "grid", "routes", "--capability", "llm:tiny", "--json").ok(t).stdout)
		return len(r.Routes) == 0
	})
	if r := cli(t, sa, "generate", "tiny", "hi"); r.code != exitError || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("after unload: %+v", r)
	}
}
