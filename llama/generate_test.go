package llama

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/continuum-grid/continuum/llama/gguf"
)

const testPrompt = "hello world the quick brown fox"

func gen(t *testing.T, cx *Context, req GenerateRequest) (GenerateResult, []Token) {
	t.Helper()
	var toks []Token
	res, err := cx.Generate(context.Background(), req, func(tk Token) error {
		toks = append(toks, tk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, toks
}

func TestModelInfo(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	info := m.Info()
	want := len(gguf.TinyVocab(nil).Tokens)
	if info.NEmbd != 64 || info.NLayer != 2 || info.NHead != 4 || info.NHeadKV != 4 || info.NCtxTrain != 512 || info.NVocab != want {
		t.Errorf("info: %+v (want vocab %d)", info, want)
	}
	if !strings.HasPrefix(info.Description, "llama") || info.SizeBytes == 0 || info.NParams == 0 || info.OnGPU {
		t.Errorf("info: %+v", info)
	}
	if info.SizeBytes != uint64(info.GGUF.TensorBytes) {
		t.Errorf("llama size %d, gguf tensor bytes %d", info.SizeBytes, info.GGUF.TensorBytes)
	}
}

func TestTokenize(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	v := gguf.TinyVocab(nil)
	id := func(s string) int32 { return int32(slices.Index(v.Tokens, s)) }
	got, err := m.Tokenize("hello world", true, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{gguf.TinyBOS, id("▁hello"), id("▁world")}
	if !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}
	// A character no piece covers falls back to its UTF-8 bytes.
	got, _ = m.Tokenize("é", false, false)
	want = []int32{id("▁"), id("<0xC3>"), id("<0xA9>")}
	if !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}
	if p := string(m.TokenPiece(id("▁world"))); p != " world" {
		t.Errorf("piece %q", p)
	}
}

// Greedy decoding is deterministic: the same ids on every run and every
// context. The golden ids pin tokenization, the sampler and the decode path
// together; they come from the pinned library on x86-64 and could in
// principle differ on a CPU whose ggml variant rounds differently.
func TestGreedyDeterministic(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx1, cx2 := newCtx(t, m, 256), newCtx(t, m, 256)
	req := GenerateRequest{Prompt: testPrompt, MaxTokens: 24}
	a, _ := gen(t, cx1, req)
	b, _ := gen(t, cx1, req)
	c2, _ := gen(t, cx2, req)
	if len(a.Tokens) != 24 || a.StopReason != StopMaxTokens || a.PromptTokens != 7 {
		t.Fatalf("result: %+v", a)
	}
	if !slices.Equal(a.Tokens, b.Tokens) || !slices.Equal(a.Tokens, c2.Tokens) || a.Text != b.Text || a.Text != c2.Text {
		t.Fatalf("greedy runs differ:\n%v\n%v\n%v", a.Tokens, b.Tokens, c2.Tokens)
	}
	golden := []int32{256, 203, 317, 535, 284, 504, 125, 390}
	if !slices.Equal(a.Tokens[:8], golden) {
		t.Errorf("first tokens %v, golden %v", a.Tokens[:8], golden)
	}
	if a.TokensPerSec <= 0 || a.TimeToFirstTokenMs <= 0 {
		t.Errorf("timings: %+v", a)
	}
}

func TestSamplingSeeded(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx := newCtx(t, m, 256)
	req := GenerateRequest{Prompt: testPrompt, MaxTokens: 32, Temperature: 1, TopP: 0.95, Seed: 42}
	a, _ := gen(t, cx, req)
	b, _ := gen(t, cx, req)
	req.Seed = 43
	d, _ := gen(t, cx, req)
	g, _ := gen(t, cx, GenerateRequest{Prompt: testPrompt, MaxTokens: 32})
	if !slices.Equal(a.Tokens, b.Tokens) {
		t.Fatalf("same seed differs:\n%v\n%v", a.Tokens, b.Tokens)
	}
	if slices.Equal(a.Tokens, d.Tokens) || slices.Equal(a.Tokens, g.Tokens) {
		t.Fatalf("seed or temperature ignored:\n%v\n%v\n%v", a.Tokens, d.Tokens, g.Tokens)
	}
}

func TestStreamingMatchesResult(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx := newCtx(t, m, 256)
	res, toks := gen(t, cx, GenerateRequest{Prompt: testPrompt, MaxTokens: 100})
	if len(toks) != len(res.Tokens) || len(toks) != 100 {
		t.Fatalf("streamed %d, result %d", len(toks), len(res.Tokens))
	}
	var text strings.Builder
	for i, tk := range toks {
		if tk.Index != i || tk.ID != res.Tokens[i] {
			t.Fatalf("token %d: %+v, result id %d", i, tk, res.Tokens[i])
		}
		if !utf8.ValidString(tk.Piece) {
			t.Fatalf("piece %d invalid UTF-8: %q", i, tk.Piece)
		}
		text.WriteString(tk.Piece)
	}
	if text.String() != res.Text || !utf8.ValidString(res.Text) {
		t.Fatalf("streamed text %q\nresult text %q", text.String(), res.Text)
	}
	// The text is the detokenized ids with invalid sequences replaced.
	var raw []byte
	for _, id := range res.Tokens {
		raw = append(raw, m.TokenPiece(id)...)
	}
	if want := strings.ToValidUTF8(string(raw), "\uFFFD"); strings.ReplaceAll(res.Text, "\uFFFD", "") != strings.ReplaceAll(want, "\uFFFD", "") {
		t.Fatalf("text %q\nraw   %q", res.Text, want)
	}
}

func TestConcurrentGenerations(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx1, cx2 := newCtx(t, m, 256), newCtx(t, m, 256)
	req := GenerateRequest{Prompt: testPrompt, MaxTokens: 64}
	want, _ := gen(t, cx1, req)
	var wg sync.WaitGroup
	results := make([]GenerateResult, 4)
	errs := make([]error, 4)
	for i, cx := range []*Context{cx1, cx2, cx1, cx2} { // two per context: also queueing
		wg.Go(func() {
			results[i], errs[i] = cx.Generate(context.Background(), req, nil)
		})
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || !slices.Equal(results[i].Tokens, want.Tokens) {
			t.Errorf("run %d: %v %v", i, errs[i], results[i].Tokens)
		}
	}
}

func TestCancellation(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx := newCtx(t, m, 512)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	res, err := cx.Generate(ctx, GenerateRequest{Prompt: testPrompt, MaxTokens: 400}, func(Token) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || res.StopReason != StopCancelled {
		t.Fatalf("err %v, reason %q", err, res.StopReason)
	}
	if len(res.Tokens) < 3 || len(res.Tokens) > 4 {
		t.Fatalf("%d tokens after cancelling at the third", len(res.Tokens))
	}
	// Already cancelled: nothing runs.
	res, err = cx.Generate(ctx, GenerateRequest{Prompt: testPrompt}, nil)
	if !errors.Is(err, context.Canceled) || len(res.Tokens) != 0 {
		t.Fatalf("pre-cancelled: %v %+v", err, res)
	}
	// The context is usable afterwards.
	if r, err := cx.Generate(context.Background(), GenerateRequest{Prompt: testPrompt, MaxTokens: 4}, nil); err != nil || len(r.Tokens) != 4 {
		t.Fatalf("after cancel: %v %+v", err, r)
	}
	// A callback error stops generation and is returned.
	boom := errors.New("client went away")
	r, err := cx.Generate(context.Background(), GenerateRequest{Prompt: testPrompt, MaxTokens: 50}, func(tk Token) error {
		if tk.Index == 1 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || len(r.Tokens) != 2 || r.StopReason != StopCallback {
		t.Fatalf("callback error: %v %+v", err, r)
	}
}

func TestPromptTooLong(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx := newCtx(t, m, 32)
	n := cx.NCtx() // llama.cpp rounds the context up (to 256 here)
	if n < 32 {
		t.Fatalf("NCtx %d", n)
	}
	long := strings.Repeat("the quick brown fox ", n/4+10)
	toks, _ := m.Tokenize(long, true, false)
	_, err := cx.Generate(context.Background(), GenerateRequest{Prompt: long}, nil)
	if !errors.Is(err, ErrPromptTooLong) || !strings.Contains(err.Error(), fmt.Sprintf("%d tokens", len(toks))) || !strings.Contains(err.Error(), fmt.Sprintf("holds %d", n)) {
		t.Fatalf("err = %v", err)
	}
	// Exactly full also leaves no room.
	full := strings.TrimSpace(strings.Repeat("the ", n-1)) // n tokens with BOS
	if _, err := cx.Generate(context.Background(), GenerateRequest{Prompt: full}, nil); !errors.Is(err, ErrPromptTooLong) {
		t.Fatalf("full context: %v", err)
	}
}

func TestContextFull(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx := newCtx(t, m, 16)
	n := cx.NCtx()
	res, _ := gen(t, cx, GenerateRequest{Prompt: testPrompt, MaxTokens: 2 * n})
	// 7 prompt tokens; n-7 more are decoded, and the one sampled from the
	// last position is still returned.
	if res.StopReason != StopContextFull || len(res.Tokens) != n-7+1 {
		t.Fatalf("%+v", res)
	}
}

func TestStopStrings(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx := newCtx(t, m, 256)
	base, toks := gen(t, cx, GenerateRequest{Prompt: testPrompt, MaxTokens: 24})
	// Stop at a word that spans a token boundary in the middle of the output.
	var before strings.Builder
	for _, tk := range toks[:5] {
		before.WriteString(tk.Piece)
	}
	stop := toks[5].Piece + toks[6].Piece
	at := strings.Index(base.Text, stop)
	if at != before.Len() || toks[5].Piece == "" || toks[6].Piece == "" {
		t.Fatalf("bad fixture: %q in %q", stop, base.Text)
	}
	res, streamed := gen(t, cx, GenerateRequest{Prompt: testPrompt, MaxTokens: 24, Stop: []string{"never appears", stop}})
	if res.StopReason != StopString || res.Text != base.Text[:at] {
		t.Fatalf("stop %q: reason %q text %q, want %q", stop, res.StopReason, res.Text, base.Text[:at])
	}
	var text strings.Builder
	for _, tk := range streamed {
		text.WriteString(tk.Piece)
	}
	if text.String() != res.Text || len(res.Tokens) != len(streamed) {
		t.Fatalf("streamed %q, result %q", text.String(), res.Text)
	}
	if !slices.Equal(res.Tokens, base.Tokens[:len(res.Tokens)]) {
		t.Fatalf("tokens %v not a prefix of %v", res.Tokens, base.Tokens)
	}
}

const chatMLTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

func TestChatMessages(t *testing.T) {
	msgs := []ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello world"}}
	wantChatML := "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n"

	withTmpl := tinyModel(t, gguf.TinyConfig{ChatTemplate: chatMLTemplate})
	without := tinyModel(t, gguf.TinyConfig{})
	llama2 := tinyModel(t, gguf.TinyConfig{ChatTemplate: "{% for message in messages %}[INST] {{ message['content'] }} [/INST]{% endfor %}"})
	for name, m := range map[string]*Model{"chatml": withTmpl, "fallback": without} {
		got, err := m.ApplyChatTemplate(msgs, true)
		if err != nil || got != wantChatML {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	got, err := llama2.ApplyChatTemplate(msgs, true)
	if err != nil || !strings.Contains(got, "[INST]") || !strings.Contains(got, "hello world") || strings.Contains(got, "im_start") {
		t.Errorf("llama2: %q %v", got, err)
	}

	cx := newCtx(t, withTmpl, 256)
	res, _ := gen(t, cx, GenerateRequest{Messages: msgs, MaxTokens: 8})
	want, _ := withTmpl.Tokenize(wantChatML, true, true)
	if res.PromptTokens != len(want) || len(res.Tokens) != 8 {
		t.Fatalf("prompt tokens %d, want %d; %+v", res.PromptTokens, len(want), res)
	}
	// The same text as a raw prompt gives the same tokens: the template is
	// the only difference between the two request forms.
	raw, _ := gen(t, cx, GenerateRequest{Prompt: wantChatML, MaxTokens: 8})
	if !slices.Equal(raw.Tokens, res.Tokens) {
		t.Errorf("messages %v, prompt %v", res.Tokens, raw.Tokens)
	}
}

func TestInvalidRequests(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx := newCtx(t, m, 64)
	for _, req := range []GenerateRequest{
		{},
		{Prompt: "x", Messages: []ChatMessage{{Role: "user", Content: "y"}}},
		{Prompt: "x", MaxTokens: -1},
		{Prompt: "x", TopP: 1.5},
		{Prompt: "x", Stop: []string{strings.Repeat("s", 257)}},
	} {
		if _, err := cx.Generate(context.Background(), req, nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: %v", req, err)
		}
	}
}

func TestClose(t *testing.T) {
	m := tinyModel(t, gguf.DefaultTinyConfig())
	cx, err := m.NewContext(ContextOptions{NCtx: 64, NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cx.Generate(context.Background(), GenerateRequest{Prompt: "x"}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("generate on closed: %v", err)
	}
	if _, err := m.NewContext(ContextOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("context on closed: %v", err)
	}
	if _, err := m.Tokenize("x", true, false); !errors.Is(err, ErrClosed) {
		t.Errorf("tokenize on closed: %v", err)
	}
	if err := m.Close(); err != nil || cx.Close() != nil {
		t.Error("second Close failed")
	}
}

func TestLoadProgressAndAbort(t *testing.T) {
	l := lib(t)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := gguf.WriteTinyModelFile(path, gguf.TinyConfig{}); err != nil {
		t.Fatal(err)
	}
	var seen []float32
	m, err := l.LoadModel(context.Background(), path, ModelOptions{AllowCPU: true, OnProgress: func(p float32) bool {
		seen = append(seen, p)
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if len(seen) == 0 || seen[len(seen)-1] != 1 {
		t.Fatalf("progress %v", seen)
	}
	_, err = l.LoadModel(context.Background(), path, ModelOptions{AllowCPU: true, OnProgress: func(float32) bool { return false }})
	if !errors.Is(err, ErrModelLoad) {
		t.Fatalf("aborted load: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.LoadModel(ctx, path, ModelOptions{AllowCPU: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled load: %v", err)
	}
}

func TestBadModels(t *testing.T) {
	l := lib(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	if err := gguf.WriteTinyModelFile(good, gguf.TinyConfig{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeModel := func(name string, edit func(w *gguf.Writer)) string {
		w, err := gguf.TinyModel(gguf.TinyConfig{})
		if err != nil {
			t.Fatal(err)
		}
		edit(w)
		p := filepath.Join(dir, name)
		f, _ := os.Create(p)
		defer f.Close()
		if _, err := w.WriteTo(f); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badMagic := append([]byte("GGML"), data[4:]...)
	cases := []struct {
		name  string
		path  string
		code  error
		cause error
		msg   string
	}{
		{"missing", filepath.Join(dir, "nope.gguf"), ErrModelInvalid, os.ErrNotExist, "does not exist"},
		{"bad magic", write("magic.gguf", badMagic), ErrModelInvalid, gguf.ErrBadMagic, "GGML"},
		{"truncated", write("trunc.gguf", data[:len(data)/2]), ErrModelInvalid, gguf.ErrTruncated, "truncated"},
		{"empty", write("empty.gguf", nil), ErrModelInvalid, gguf.ErrTruncated, "truncated"},
		{"wrong tensor shape", writeModel("shape.gguf", func(w *gguf.Writer) {
			w.RemoveTensor("blk.0.attn_q.weight")
			w.AddTensorF32("blk.0.attn_q.weight", []uint64{64, 32}, make([]float32, 64*32))
		}), ErrModelLoad, nil, "blk.0.attn_q.weight"},
		{"missing tensor", writeModel("missing.gguf", func(w *gguf.Writer) {
			w.RemoveTensor("blk.1.ffn_up.weight")
		}), ErrModelLoad, nil, "blk.1.ffn_up.weight"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := l.LoadModel(context.Background(), c.path, ModelOptions{AllowCPU: true})
			if !errors.Is(err, c.code) {
				t.Fatalf("err = %v, want %v", err, c.code)
			}
			if c.cause != nil && !errors.Is(err, c.cause) {
				t.Errorf("err = %v, want cause %v", err, c.cause)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q lacks %q", err, c.msg)
			}
		})
	}
}
