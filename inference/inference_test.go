package inference_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/llama/gguf"
)

const prompt = "hello world the quick brown fox"

// golden are the first greedy ids of the default tiny model after prompt
// (llama's TestGreedyDeterministic pins the same ids).
var golden = []int32{256, 203, 317, 535, 284, 504, 125, 390}

func TestLoadAndGreedyGenerate(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	_, c := startDaemon(t, opts)
	ctx := context.Background()
	path := writeModel(t, gguf.DefaultTinyConfig())

	progress := subscribe(t, c, api.EventInferenceLoadProgress)
	m := load(t, c, path, "tiny")
	if m.Name != "tiny" || m.Path != path || m.Info.NEmbd != 64 || m.Info.NLayer != 2 || m.Info.NCtxTrain != 512 ||
		m.Info.NVocab != len(gguf.TinyVocab(nil).Tokens) || m.Info.SizeBytes == 0 || m.Info.Description == "" || m.Info.OnGPU {
		t.Fatalf("load: %+v", m)
	}
	// Progress events end with 1 for this model.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for last := 0.0; last < 1; {
		ev, err := progress.Next(wctx)
		if err != nil {
			t.Fatalf("no final progress event: %v", err)
		}
		var p api.LoadProgressEvent
		if err := api.Assign(&p, ev.Payload); err != nil || p.Name != "tiny" || p.Progress < last || ev.Sender != "inference" {
			t.Fatalf("progress event %+v (%+v): %v", ev, p, err)
		}
		last = p.Progress
	}

	var runs []api.GenerateResult
	for range 2 {
		r, err := generate(ctx, c, api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 24})
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	a, b := runs[0], runs[1]
	if len(a.Tokens) != 24 || a.StopReason != "max_tokens" || a.PromptTokens != 7 || a.Model != "tiny" || a.RequestID == "" {
		t.Fatalf("result: %+v", a)
	}
	if !slices.Equal(a.Tokens[:8], golden) {
		t.Errorf("first tokens %v, golden %v", a.Tokens[:8], golden)
	}
	if !slices.Equal(a.Tokens, b.Tokens) || a.Text != b.Text || a.RequestID == b.RequestID {
		t.Fatalf("greedy runs differ:\n%+v\n%+v", a, b)
	}
	if a.TokensPerSec <= 0 || a.TimeToFirstTokenMs <= 0 {
		t.Errorf("timings: %+v", a)
	}

	// A conversation goes through the chat template.
	r, err := generate(ctx, c, api.GenerateParams{Model: "tiny", Messages: []api.ChatMessage{{Role: "user", Content: "hello world"}}, MaxTokens: 4})
	if err != nil || len(r.Tokens) != 4 || r.PromptTokens <= 3 {
		t.Fatalf("messages: %+v, %v", r, err)
	}
	// Seeded sampling repeats.
	seed := uint32(42)
	s1, err1 := generate(ctx, c, api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 16, Temperature: 1, TopP: 0.95, Seed: &seed})
	s2, err2 := generate(ctx, c, api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 16, Temperature: 1, TopP: 0.95, Seed: &seed})
	if err1 != nil || err2 != nil || !slices.Equal(s1.Tokens, s2.Tokens) {
		t.Fatalf("seeded runs: %v %v\n%v\n%v", err1, err2, s1.Tokens, s2.Tokens)
	}

	// commands/execute reaches the same method: its natural scope is grid,
	// and this install provides it, so it runs here.
	var viaExec api.GenerateResult
	if err := c.Execute(ctx, api.ExecuteParams{Command: api.MethodInferenceGenerate, Params: map[string]any{"model": "tiny", "prompt": prompt, "maxTokens": 8}}, &viaExec); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(viaExec.Tokens, golden) {
		t.Fatalf("via commands/execute: %+v", viaExec)
	}

	if ms := models(t, c); len(ms) != 1 || ms[0].Name != "tiny" || ms[0].Active != 0 {
		t.Fatalf("models: %+v", ms)
	}
	wantCode(t, c.Call(ctx, api.MethodInferenceLoad, api.LoadModelParams{Path: path, Name: "tiny"}, nil), api.CodeAlreadyExists, "tiny")
	if err := c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: "tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: "tiny"}, nil), api.CodeNotFound)
	_, err = generate(ctx, c, api.GenerateParams{Model: "tiny", Prompt: prompt})
	wantCode(t, err, api.CodeNotFound, "tiny")
	if ms := models(t, c); len(ms) != 0 {
		t.Fatalf("models after unload: %+v", ms)
	}
}

// A path works wherever a model is named: the first use loads it under its
// path, later uses find it by name or by path.
func TestGenerateByPath(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	_, c := startDaemon(t, opts)
	path := writeModel(t, gguf.DefaultTinyConfig())
	var wg sync.WaitGroup
	results := make([]api.GenerateResult, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = generate(context.Background(), c, api.GenerateParams{Model: path, Prompt: prompt, MaxTokens: 8})
		})
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || !slices.Equal(results[i].Tokens, golden) || results[i].Model != path {
			t.Fatalf("request %d: %+v %v", i, results[i], errs[i])
		}
	}
	ms := models(t, c)
	if len(ms) != 1 || ms[0].Name != path {
		t.Fatalf("models: %+v", ms)
	}
	// Loaded again under a name, the same file is a second model; the path
	// still finds the first.
	load(t, c, path, "named")
	if r, err := generate(context.Background(), c, api.GenerateParams{Model: filepath.Dir(path) + "//" + filepath.Base(path), Prompt: prompt, MaxTokens: 8}); err != nil || r.Model != path {
		t.Fatalf("by unclean path: %+v %v", r, err)
	}
}

func TestStreamingTokensInOrder(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	_, c := startDaemon(t, opts)
	load(t, c, writeModel(t, gguf.DefaultTinyConfig()), "tiny")
	sub := subscribe(t, c, api.EventInferenceTokens)

	for _, id := range []string{"req-1", ""} {
		r, err := generate(context.Background(), c, api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 64, Stream: true, RequestID: id})
		if err != nil {
			t.Fatal(err)
		}
		if id != "" && r.RequestID != id || r.RequestID == "" || len(r.Tokens) != 64 {
			t.Fatalf("result: %+v", r)
		}
		evs, raw := tokenEvents(t, sub, r.RequestID, len(r.Tokens)-1)
		var text strings.Builder
		for i, e := range evs {
			if e.Index != i || e.Token != r.Tokens[i] {
				t.Fatalf("event %d: %+v (tokens %v)", i, e, r.Tokens)
			}
			if raw[i].Sender == "" || raw[i].Sender == "inference" || raw[i].Class != api.EventInferenceTokens {
				t.Fatalf("event envelope: %+v", raw[i])
			}
			text.WriteString(e.Piece)
		}
		if text.String() != r.Text {
			t.Fatalf("pieces join to %q, text %q", text.String(), r.Text)
		}
	}
	if lag := sub.Lagged(); lag.Kernel != 0 || lag.Client != 0 {
		t.Fatalf("lagged: %+v", lag)
	}
	// Without stream, no events.
	if _, err := generate(context.Background(), c, api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 4, RequestID: "quiet"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if ev, err := sub.Next(ctx); err == nil {
		t.Fatalf("an event without stream: %+v", ev)
	}
}

func TestConcurrentRequests(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	d, c := startDaemon(t, opts)
	load(t, c, writeModel(t, gguf.DefaultTinyConfig()), "tiny")
	c2 := dial(t, d)
	var wg sync.WaitGroup
	results := make([]api.GenerateResult, 4)
	errs := make([]error, 4)
	for i := range results {
		cl := c
		if i%2 == 1 {
			cl = c2
		}
		wg.Go(func() {
			results[i], errs[i] = generate(context.Background(), cl, api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 48, Stream: i < 2})
		})
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || len(results[i].Tokens) != 48 || !slices.Equal(results[i].Tokens[:8], golden) || !slices.Equal(results[i].Tokens, results[0].Tokens) {
			t.Fatalf("request %d: %+v %v", i, results[i], errs[i])
		}
	}
}

// Cancelling the caller's context stops decoding: the generation ends long
// before maxTokens, and the model is free again.
func TestCancellationStopsEarly(t *testing.T) {
	_, c := startDaemon(t, cpuOpts(t))
	load(t, c, writeModel(t, longConfig()), "long")
	sub := subscribe(t, c, api.EventInferenceTokens)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := generate(ctx, c, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 4000, Stream: true, RequestID: "cancel-me"})
		done <- err
	}()
	tokenEvents(t, sub, "cancel-me", 0)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled generation succeeded")
	}
	waitIdle(t, c)
	n := countEvents(sub, "cancel-me")
	if n >= longRunTokens/2 {
		t.Fatalf("%d tokens were generated after cancel", n)
	}
	t.Logf("stopped after about %d of 4000 tokens", n+1)
	if r, err := generate(context.Background(), c, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 4}); err != nil || len(r.Tokens) != 4 {
		t.Fatalf("after cancel: %+v %v", r, err)
	}
}

// countEvents drains what s holds for request id.
func countEvents(s interface {
	Next(context.Context) (*api.Event, error)
}, id string) int {
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		ev, err := s.Next(ctx)
		cancel()
		if err != nil {
			return n
		}
		var te api.TokenEvent
		if api.Assign(&te, ev.Payload) == nil && te.RequestID == id {
			n++
		}
	}
}

// A client that disconnects mid-generation stops its generation and leaves
// the daemon serving.
func TestClientDisconnectMidGeneration(t *testing.T) {
	d, c := startDaemon(t, cpuOpts(t))
	load(t, c, writeModel(t, longConfig()), "long")
	watcher := subscribe(t, c, api.EventInferenceTokens)

	gone := dial(t, d)
	done := make(chan error, 1)
	go func() {
		_, err := generate(context.Background(), gone, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 4000, Stream: true, RequestID: "leaver"})
		done <- err
	}()
	tokenEvents(t, watcher, "leaver", 0)
	gone.Close()
	wantCode(t, <-done, api.CodeUnavailable)
	waitIdle(t, c)
	if n := countEvents(watcher, "leaver"); n >= longRunTokens/2 {
		t.Fatalf("the generation ran to the end (%d tokens) without its client", n)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, err := generate(context.Background(), c, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 8}); err != nil || len(r.Tokens) != 8 {
		t.Fatalf("after the disconnect: %+v %v", r, err)
	}
}

// With one context and a queue of one, a third request is refused while
// the first runs and the second waits; the waiting one then completes.
func TestQueueBound(t *testing.T) {
	opts := cpuOpts(t)
	opts.ContextsPerModel, opts.MaxQueued = 1, 1
	_, c := startDaemon(t, opts)
	load(t, c, writeModel(t, longConfig()), "long")
	sub := subscribe(t, c, api.EventInferenceTokens)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := generate(ctx, c, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 4000, Stream: true, RequestID: "hog"})
		first <- err
	}()
	tokenEvents(t, sub, "hog", 0)
	second := make(chan error, 1)
	go func() {
		r, err := generate(context.Background(), c, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 4})
		if err == nil && len(r.Tokens) != 4 {
			err = &api.Error{Code: api.CodeInternal, Message: "short result"}
		}
		second <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if ms := models(t, c); ms[0].Queued == 1 && ms[0].Active == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second request never queued: %+v", models(t, c))
		}
	}
	_, err := generate(context.Background(), c, api.GenerateParams{Model: "long", Prompt: prompt, MaxTokens: 4})
	wantCode(t, err, api.CodeResourceExhausted, "busy")
	cancel()
	<-first
	if err := <-second; err != nil {
		t.Fatalf("the queued request: %v", err)
	}
}

func TestErrors(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	_, c := startDaemon(t, opts)
	ctx := context.Background()
	dir := t.TempDir()
	good := writeModel(t, gguf.DefaultTinyConfig())
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	badMagic := filepath.Join(dir, "magic.gguf")
	os.WriteFile(badMagic, append([]byte("GGUX"), raw[4:]...), 0o644)
	truncated := filepath.Join(dir, "short.gguf")
	os.WriteFile(truncated, raw[:len(raw)/2], 0o644)
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	missing := filepath.Join(dir, "missing.gguf")

	loadErr := func(path string) error {
		return c.Call(ctx, api.MethodInferenceLoad, api.LoadModelParams{Path: path, Name: "x"}, nil)
	}
	wantCode(t, loadErr(missing), api.CodeNotFound, missing, "does not exist")
	wantCode(t, loadErr(badMagic), api.CodeInvalidArgument, "not a valid GGUF", "magic")
	wantCode(t, loadErr(truncated), api.CodeInvalidArgument, "not a valid GGUF")
	wantCode(t, loadErr(empty), api.CodeInvalidArgument, "not a valid GGUF")
	wantCode(t, loadErr("models/tiny.gguf"), api.CodeInvalidArgument, "not absolute")
	wantCode(t, c.Call(ctx, api.MethodInferenceLoad, map[string]any{"name": "x"}, nil), api.CodeInvalidArgument, "path")
	_, err = generate(ctx, c, api.GenerateParams{Model: missing, Prompt: prompt})
	wantCode(t, err, api.CodeNotFound, "does not exist")
	_, err = generate(ctx, c, api.GenerateParams{Model: truncated, Prompt: prompt})
	wantCode(t, err, api.CodeInvalidArgument)
	_, err = generate(ctx, c, api.GenerateParams{Model: "nobody", Prompt: prompt})
	wantCode(t, err, api.CodeNotFound, "nobody")
	if ms := models(t, c); len(ms) != 0 {
		t.Fatalf("failed loads left models: %+v", ms)
	}

	load(t, c, good, "tiny")
	_, err = generate(ctx, c, api.GenerateParams{Model: "tiny", Prompt: strings.Repeat("the quick brown fox ", 100)})
	wantCode(t, err, api.CodeInvalidArgument, "prompt is", "the context holds 256")
	if e := api.AsError(err); e.Data.(map[string]any)["reason"] != "prompt_too_long" {
		t.Errorf("data: %#v", e.Data)
	}
	for _, p := range []api.GenerateParams{
		{Model: "tiny"},
		{Model: "tiny", Prompt: prompt, Messages: []api.ChatMessage{{Role: "user", Content: "hi"}}},
		{Model: "tiny", Prompt: prompt, MaxTokens: -1},
		{Model: "tiny", Prompt: prompt, TopP: 2},
		{Model: "tiny", Prompt: prompt, Stop: make([]string, 17)},
	} {
		_, err := generate(ctx, c, p)
		wantCode(t, err, api.CodeInvalidArgument)
	}
	wantCode(t, c.Call(ctx, api.MethodInferenceGenerate, map[string]any{"prompt": prompt}, nil), api.CodeInvalidArgument, "model")
	wantCode(t, c.Call(ctx, api.MethodInferenceGenerate, map[string]any{"model": "tiny", "prompt": 7}, nil), api.CodeInvalidArgument, "prompt")
}

// Without a GPU and without AllowCPU, every inference method that would run
// llama.cpp answers gpu_unavailable with llama's explanation; listing the
// loaded models answers an empty list; the daemon serves the rest.
func TestGPUUnavailableWithoutAllowCPU(t *testing.T) {
	_, c := startDaemon(t, inference.Options{LlamaLibDir: libDir(t), NThreads: 1})
	ctx := context.Background()
	path := writeModel(t, gguf.DefaultTinyConfig())
	for _, call := range []struct {
		method string
		params any
	}{
		{api.MethodInferenceLoad, api.LoadModelParams{Path: path}},
		{api.MethodInferenceGenerate, api.GenerateParams{Model: path, Prompt: prompt}},
		{api.MethodInferenceUnload, api.NameParams{Name: "x"}},
	} {
		wantCode(t, c.Call(ctx, call.method, call.params, nil), api.CodeGPUUnavailable, "no GPU device", "devices found", "--allow-cpu", "make run ARGS=--allow-cpu")
	}
	var listed []api.LoadedModel
	if err := c.Call(ctx, api.MethodInferenceModels, nil, &listed); err != nil || len(listed) != 0 {
		t.Fatalf("models without a GPU: %v %#v (want an empty list)", err, listed)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListClasses(ctx); err != nil {
		t.Fatal(err)
	}
}

// Without the libraries the daemon starts, inference answers unavailable
// with the fix, and everything else works.
func TestLibrariesMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no-llama")
	_, c := startDaemon(t, inference.Options{LlamaLibDir: dir, AllowCPU: true})
	ctx := context.Background()
	for range 2 { // a later call tries again
		wantCode(t, c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: "x"}, nil), api.CodeUnavailable, dir, "make llama-libs")
	}
	if ms := models(t, c); len(ms) != 0 {
		t.Fatalf("models without libraries: %+v", ms)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range info.Methods {
		if strings.HasPrefix(m.Name, "inference/") {
			n++
			if m.Name == api.MethodInferenceGenerate && m.NaturalScope != api.ScopeGrid {
				t.Errorf("generate: %+v", m)
			}
		}
	}
	if n != 4 {
		t.Fatalf("kernel/info lists %d inference methods", n)
	}
}

func TestDefaultLibDir(t *testing.T) {
	t.Setenv(inference.EnvLibDir, "rel/dir")
	if got := inference.DefaultLibDir(); !filepath.IsAbs(got) || !strings.HasSuffix(got, "rel/dir") {
		t.Fatalf("from the environment: %q", got)
	}
	t.Setenv(inference.EnvLibDir, "")
	t.Chdir(t.TempDir())
	os.MkdirAll(filepath.Join(".cache", "llama", "cpu"), 0o755)
	wd, _ := os.Getwd()
	if got := inference.DefaultLibDir(); got != filepath.Join(wd, ".cache", "llama", "cpu") {
		t.Fatalf("from the working directory: %q", got)
	}
}

// Hosting the service declares its event classes (local, not broadcast,
// schema v1), so they are listed and their events carry the schema version;
// a restart on the same state declares them again without conflict.
func TestEventClassesDeclared(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	_, c := startDaemon(t, opts)
	ctx := context.Background()
	classes, err := c.ListClasses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]api.ClassConfig{}
	for _, cl := range classes {
		found[cl.Name] = cl
	}
	for _, name := range []string{api.EventInferenceTokens, api.EventInferenceLoadProgress} {
		cl, ok := found[name]
		if !ok {
			t.Fatalf("%s is not declared: %+v", name, classes)
		}
		if cl.Broadcast || cl.Channel != api.ChannelLocal || cl.SchemaVersion != inference.SchemaVersion || cl.OnUnknownSchema != api.SchemaFail || cl.Description == "" {
			t.Errorf("%s: %+v", name, cl)
		}
		got, err := c.GetClass(ctx, name)
		if err != nil || got == nil || got.SchemaVersion != inference.SchemaVersion {
			t.Errorf("events/get-class %s: %+v %v", name, got, err)
		}
	}

	progress := subscribe(t, c, api.EventInferenceLoadProgress)
	tokens := subscribe(t, c, api.EventInferenceTokens)
	load(t, c, writeModel(t, gguf.DefaultTinyConfig()), "tiny")
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev, err := progress.Next(wctx)
	if err != nil || ev.SchemaVersion != inference.SchemaVersion {
		t.Fatalf("load-progress event %+v: %v", ev, err)
	}
	r, err := generate(ctx, c, api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 4, Stream: true, RequestID: "schema"})
	if err != nil {
		t.Fatal(err)
	}
	_, evs := tokenEvents(t, tokens, "schema", len(r.Tokens)-1)
	for _, ev := range evs {
		if ev.SchemaVersion != inference.SchemaVersion || ev.Class != api.EventInferenceTokens {
			t.Fatalf("token event %+v", ev)
		}
	}
	// An emitter speaking another schema of the class is refused.
	_, err = c.Emit(ctx, api.EmitParams{Name: api.EventInferenceTokens, SchemaVersion: "v0", Payload: map[string]any{}})
	wantCode(t, err, api.CodeSchemaMismatch)
}

// A second daemon on the same state directory (the classes are persisted)
// starts and declares the same classes again.
func TestEventClassesRedeclaredOnRestart(t *testing.T) {
	kc := kernelConfig(t)
	for range 2 {
		sockDir, err := os.MkdirTemp("", "inf")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(sockDir)
		d, err := daemon.Start(daemon.Config{Socket: filepath.Join(sockDir, "d.sock"), Inference: cpuOpts(t), Kernel: kc})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := client.Dial(context.Background(), d.SocketPath())
		if err != nil {
			t.Fatal(err)
		}
		got, err := cl.GetClass(context.Background(), api.EventInferenceTokens)
		cl.Close()
		if err != nil || got == nil || got.SchemaVersion != inference.SchemaVersion {
			t.Fatalf("after restart: %+v %v", got, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := d.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}
