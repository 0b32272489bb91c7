package inference_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/llama"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// reason is the llama code an error carries in its data.
func reason(err error) any {
	if e := api.AsError(err); e != nil {
		if d, ok := e.Data.(map[string]any); ok {
			return d["reason"]
		}
	}
	return nil
}

// A GGUF whose header is valid but whose tensors llama.cpp refuses (a wrong
// shape, a missing tensor) is invalid_argument / model_load_failed naming
// the tensor, through load and through generate by path; the daemon goes on
// serving and loads a good model afterwards.
func TestWrongTensorsThroughTheDaemon(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	_, c := startDaemon(t, opts)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, edit func(w *gguf.Writer)) string {
		w, err := gguf.TinyModel(gguf.DefaultTinyConfig())
		if err != nil {
			t.Fatal(err)
		}
		edit(w)
		var b bytes.Buffer
		if _, err := w.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shape := write("shape.gguf", func(w *gguf.Writer) {
		w.RemoveTensor("blk.0.attn_q.weight")
		w.AddTensorF32("blk.0.attn_q.weight", []uint64{64, 32}, make([]float32, 64*32))
	})
	missing := write("missing.gguf", func(w *gguf.Writer) { w.RemoveTensor("blk.1.ffn_up.weight") })
	for path, tensor := range map[string]string{shape: "blk.0.attn_q.weight", missing: "blk.1.ffn_up.weight"} {
		err := c.Call(ctx, api.MethodInferenceLoad, api.LoadModelParams{Path: path, Name: "bad"}, nil)
		wantCode(t, err, api.CodeInvalidArgument, tensor)
		if reason(err) != string(llama.CodeModelLoad) {
			t.Errorf("%s: reason %v", path, reason(err))
		}
		_, err = generate(ctx, c, api.GenerateParams{Model: path, Prompt: prompt})
		wantCode(t, err, api.CodeInvalidArgument, tensor)
	}
	if ms := models(t, c); len(ms) != 0 {
		t.Fatalf("refused models are listed: %+v", ms)
	}
	load(t, c, writeModel(t, gguf.DefaultTinyConfig()), "bad") // the name is free again
	if r, err := generate(ctx, c, api.GenerateParams{Model: "bad", Prompt: prompt, MaxTokens: 4}); err != nil || len(r.Tokens) != 4 {
		t.Fatalf("after the refusals: %+v %v", r, err)
	}
}

// A model is named by its path wherever a name is taken: unload finds a
// model loaded under another name by its path.
func TestUnloadByPath(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	_, c := startDaemon(t, opts)
	ctx := context.Background()
	path := writeModel(t, gguf.DefaultTinyConfig())
	load(t, c, path, "tiny")
	if err := c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: path + "/../" + filepath.Base(path)}, nil); err != nil {
		t.Fatal(err)
	}
	if ms := models(t, c); len(ms) != 0 {
		t.Fatalf("still loaded: %+v", ms)
	}
	wantCode(t, c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: path}, nil), api.CodeNotFound, path)
}

// Libraries of another llama.cpp version: a copy of the pinned build whose
// llama_version() string is patched, so it loads but reports 0.4.9-dev. The
// daemon starts, every inference method answers unavailable with reason
// llama_abi_mismatch naming the version found and the one needed, and keeps
// answering so (llama.cpp loads once per process), while the rest serves.
// llama.cpp can be loaded only once per process, so the daemon runs in a
// child copy of this test binary.
func TestWrongVersionLibraries(t *testing.T) {
	if os.Getenv(childEnv) == "wrong-version" {
		wrongVersionChild(t)
		return
	}
	src := libDir(t)
	dir := t.TempDir()
	for _, f := range []string{"libggml-base.so", "libggml.v0.4.0.so", "libllama.v0.4.0.so"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "libllama.v0.4.0.so" {
			if bytes.Count(b, []byte(llama.PinnedLlamaVersion+"\x00")) != 1 {
				t.Fatalf("%s does not hold its version string once", f)
			}
			b = bytes.Replace(b, []byte(llama.PinnedLlamaVersion+"\x00"), []byte("0.4.9-dev\x00"), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWrongVersionLibraries$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=wrong-version", "WRONG_DIR="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "RESULT ok") {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	_, result, _ := strings.Cut(out.String(), "RESULT ok: ")
	t.Log(strings.SplitN(result, "\n", 2)[0])
}

const childEnv = "CONTINUUM_INFERENCE_TEST_CHILD"

func wrongVersionChild(t *testing.T) {
	dir := os.Getenv("WRONG_DIR")
	_, c := startDaemon(t, inference.Options{LlamaLibDir: dir, AllowCPU: true, NThreads: 1})
	ctx := context.Background()
	var err error
	for range 2 {
		err = c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: "x"}, nil)
		wantCode(t, err, api.CodeUnavailable, "0.4.9-dev", llama.PinnedLlamaVersion, "make llama-libs")
		if reason(err) != string(llama.CodeABIMismatch) {
			t.Fatalf("reason %v in %v", reason(err), err)
		}
	}
	msg := err.Error()
	_, err = generate(ctx, c, api.GenerateParams{Model: "/nowhere.gguf", Prompt: prompt})
	wantCode(t, err, api.CodeUnavailable, "0.4.9-dev")
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	io.WriteString(os.Stdout, "RESULT ok: "+msg+"\n")
}

// Requests beyond the pool wait in arrival order: with one context busy,
// three queued requests run first come, first served.
func TestQueuedInArrivalOrder(t *testing.T) {
	opts := cpuOpts(t)
	opts.ContextsPerModel, opts.MaxQueued = 1, 3
	_, c := startDaemon(t, opts)
	load(t, c, writeModel(t, longConfig()), "long")
	sub := subscribe(t, c, api.EventInferenceTokens)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hog := make(chan error, 1)
	go func() {
		_, err := generate(ctx, c, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 4000, Stream: true, RequestID: "hog"})
		hog <- err
	}()
	tokenEvents(t, sub, "hog", 0)
	done := make(chan error, 3)
	for i, id := range []string{"a", "b", "c"} {
		go func() {
			_, err := generate(context.Background(), c, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 4, Stream: true, RequestID: id})
			done <- err
		}()
		waitQueued(t, c, i+1)
	}
	cancel()
	<-hog
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The order the daemon served them in is the order of their token
	// events (one context: one generation after the other); the replies'
	// order would also depend on how the client's goroutines are scheduled.
	var got []string
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	for len(got) < 3 {
		ev, err := sub.Next(wctx)
		if err != nil {
			t.Fatalf("served so far %v: %v", got, err)
		}
		var te api.TokenEvent
		if api.Assign(&te, ev.Payload) == nil && te.RequestID != "hog" && te.Index == 0 {
			got = append(got, te.RequestID)
		}
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("served in order %v", got)
	}
}

// waitQueued waits until the first model has n requests waiting.
func waitQueued(t *testing.T, c interface {
	Call(context.Context, string, any, any) error
}, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ms []api.LoadedModel
		if err := c.Call(context.Background(), api.MethodInferenceModels, nil, &ms); err != nil {
			t.Fatal(err)
		}
		if len(ms) > 0 && ms[0].Queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %d queued: %+v", n, ms)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// The library file names can be given; a named file that is not in the
// folder is unavailable / llama_library_not_found naming it, and is looked
// for again on the next call. Naming the real files works.
func TestLibraryFileNames(t *testing.T) {
	opts := cpuOpts(t)
	opts.LlamaFile = "libllama.v9.so"
	_, c := startDaemon(t, opts)
	ctx := context.Background()
	for range 2 {
		err := c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: "x"}, nil)
		wantCode(t, err, api.CodeUnavailable, "libllama.v9.so", "make llama-libs")
		if reason(err) != string(llama.CodeLibraryNotFound) {
			t.Fatalf("reason %v in %v", reason(err), err)
		}
	}

	opts = cpuOpts(t)
	opts.LlamaFile, opts.GGMLFile, opts.GGMLBaseFile = "libllama.v0.4.0.so", "libggml.v0.4.0.so", "libggml-base.so"
	opts.NCtx = 256
	_, c = startDaemon(t, opts)
	load(t, c, writeModel(t, gguf.DefaultTinyConfig()), "tiny")
	if r, err := generate(ctx, c, api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 4}); err != nil || len(r.Tokens) != 4 {
		t.Fatalf("with named files: %+v %v", r, err)
	}
}
