package gguf

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
)

// TinyConfig shapes a tiny llama model. Zero fields take the defaults of
// [DefaultTinyConfig].
type TinyConfig struct {
	Layers        int // block count; default 2
	Embd          int // embedding width; default 64
	Heads         int // attention heads; default 4 (must divide Embd)
	HeadsKV       int // key/value heads; default Heads (must divide Heads)
	FF            int // feed-forward width; default 128
	ContextLength int // llama.context_length; default 512
	// Seed drives the weights: the same config and seed give the same bytes.
	Seed uint64
	// Words are the vocabulary's words; nil takes a built-in list of about
	// 150 common English words.
	Words []string
	// ChatTemplate, when set, is stored as tokenizer.chat_template.
	ChatTemplate string
	// Name is general.name; default "continuum-tiny".
	Name string
}

// DefaultTinyConfig is the 2-layer, 64-wide model (about 0.5 MB) that tests use.
func DefaultTinyConfig() TinyConfig {
	return TinyConfig{Layers: 2, Embd: 64, Heads: 4, FF: 128, ContextLength: 512, Seed: 1, Name: "continuum-tiny"}
}

// BenchTinyConfig is the benchmark model: big enough that decoding
// dominates (8 layers, 256 wide, about 35 MB of F32), small enough to write
// in well under a second. BenchmarkGenerate and the node-llama-cpp
// comparison (bench/node-llama, bench/cmd/writemodel) use it, so both measure the same file.
func BenchTinyConfig() TinyConfig {
	return TinyConfig{Layers: 8, Embd: 256, Heads: 8, FF: 1024, ContextLength: 2048, Seed: 1, Name: "continuum-bench"}
}

func (c TinyConfig) withDefaults() TinyConfig {
	d := DefaultTinyConfig()
	if c.Layers == 0 {
		c.Layers = d.Layers
	}
	if c.Embd == 0 {
		c.Embd = d.Embd
	}
	if c.Heads == 0 {
		c.Heads = d.Heads
	}
	if c.HeadsKV == 0 {
		c.HeadsKV = c.Heads
	}
	if c.FF == 0 {
		c.FF = d.FF
	}
	if c.ContextLength == 0 {
		c.ContextLength = d.ContextLength
	}
	if c.Words == nil {
		c.Words = englishWords
	}
	if c.Name == "" {
		c.Name = d.Name
	}
	return c
}

func (c TinyConfig) check() error {
	switch {
	case c.Layers < 1 || c.Layers > 256:
		return fmt.Errorf("gguf: tiny model: Layers %d out of 1..256", c.Layers)
	case c.Embd < 8 || c.Embd > 8192:
		return fmt.Errorf("gguf: tiny model: Embd %d out of 8..8192", c.Embd)
	case c.Heads < 1 || c.Embd%c.Heads != 0:
		return fmt.Errorf("gguf: tiny model: Heads %d must divide Embd %d", c.Heads, c.Embd)
	case (c.Embd/c.Heads)%2 != 0:
		return fmt.Errorf("gguf: tiny model: head size %d must be even (RoPE)", c.Embd/c.Heads)
	case c.HeadsKV < 1 || c.Heads%c.HeadsKV != 0:
		return fmt.Errorf("gguf: tiny model: HeadsKV %d must divide Heads %d", c.HeadsKV, c.Heads)
	case c.FF < 1 || c.FF > 65536:
		return fmt.Errorf("gguf: tiny model: FF %d out of 1..65536", c.FF)
	case c.ContextLength < 8:
		return fmt.Errorf("gguf: tiny model: ContextLength %d below 8", c.ContextLength)
	}
	return nil
}

// Token types, as llama.cpp numbers them (llama_token_type).
const (
	tokNormal  = 1
	tokUnknown = 2
	tokControl = 3
	tokByte    = 6
)

// Vocab is a SentencePiece-style vocabulary as the tiny model stores it.
type Vocab struct {
	Tokens []string
	Scores []float32
	Types  []int32
}

// Token ids fixed by [TinyVocab].
const (
	TinyUnk = 0
	TinyBOS = 1
	TinyEOS = 2
)

// TinyVocab builds the vocabulary: <unk>, <s>, </s>, the 256 byte tokens
// <0x00>..<0xFF>, a few punctuation pieces, "▁", then for every word each
// "▁"-prefixed prefix of it ("▁t", "▁th", "▁the"). Every prefix must exist
// because SentencePiece merging only joins two pieces whose concatenation is
// in the vocabulary. Text that no piece covers falls back to byte tokens.
// Scores favour longer pieces so merges always prefer whole words.
// A nil words takes the built-in list.
func TinyVocab(words []string) Vocab {
	if words == nil {
		words = englishWords
	}
	var v Vocab
	add := func(s string, score float32, typ int32) {
		v.Tokens = append(v.Tokens, s)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", 0, tokUnknown)
	add("<s>", 0, tokControl)
	add("</s>", 0, tokControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 0, tokByte)
	}
	seen := map[string]bool{}
	piece := func(s string) {
		if seen[s] {
			return
		}
		seen[s] = true
		add(s, -1000+float32(len([]rune(s))), tokNormal)
	}
	for _, p := range []string{"▁", ".", ",", "!", "?", "'", "\n"} {
		piece(p)
	}
	for _, w := range words {
		r := []rune("▁" + w)
		for i := 2; i <= len(r); i++ {
			piece(string(r[:i]))
		}
	}
	return v
}

// WriteTinyModelFile writes a tiny model to path (atomically: a temporary
// file in the same folder, then a rename).
func WriteTinyModelFile(path string, cfg TinyConfig) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tiny-*.gguf")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := WriteTinyModel(f, cfg); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes it 0600
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteTinyModel writes a llama-architecture GGUF v3 model with seeded random
// F32 weights to w.
func WriteTinyModel(w io.Writer, cfg TinyConfig) error {
	gw, err := TinyModel(cfg)
	if err != nil {
		return err
	}
	_, err = gw.WriteTo(w)
	return err
}

// TinyModel returns a [Writer] holding the tiny model, so a caller (a test)
// can add to it before writing.
func TinyModel(cfg TinyConfig) (*Writer, error) {
	c := cfg.withDefaults()
	if err := c.check(); err != nil {
		return nil, err
	}
	voc := TinyVocab(c.Words)
	nv := uint64(len(voc.Tokens))
	headDim := c.Embd / c.Heads
	embd, ff, kv := uint64(c.Embd), uint64(c.FF), uint64(headDim*c.HeadsKV)

	w := NewWriter()
	w.AddString("general.architecture", "llama")
	w.AddString("general.name", c.Name)
	w.AddUint32("general.file_type", 0) // all F32
	w.AddUint32("llama.context_length", uint32(c.ContextLength))
	w.AddUint32("llama.embedding_length", uint32(c.Embd))
	w.AddUint32("llama.block_count", uint32(c.Layers))
	w.AddUint32("llama.feed_forward_length", uint32(c.FF))
	w.AddUint32("llama.attention.head_count", uint32(c.Heads))
	w.AddUint32("llama.attention.head_count_kv", uint32(c.HeadsKV))
	w.AddUint32("llama.rope.dimension_count", uint32(headDim))
	w.AddFloat32("llama.rope.freq_base", 10000)
	w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5)
	w.AddUint32("llama.vocab_size", uint32(nv))
	w.AddString("tokenizer.ggml.model", "llama")
	w.AddStringArray("tokenizer.ggml.tokens", voc.Tokens)
	w.AddFloat32Array("tokenizer.ggml.scores", voc.Scores)
	w.AddInt32Array("tokenizer.ggml.token_type", voc.Types)
	w.AddUint32("tokenizer.ggml.unknown_token_id", TinyUnk)
	w.AddUint32("tokenizer.ggml.bos_token_id", TinyBOS)
	w.AddUint32("tokenizer.ggml.eos_token_id", TinyEOS)
	w.AddBool("tokenizer.ggml.add_bos_token", true)
	w.AddBool("tokenizer.ggml.add_eos_token", false)
	if c.ChatTemplate != "" {
		w.AddString("tokenizer.chat_template", c.ChatTemplate)
	}

	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	// Uniform weights scaled by 1/sqrt(fan-in) keep activations of a random
	// network in range, so logits differ between tokens and greedy decoding
	// does not collapse into one repeated token at once.
	mat := func(in, out uint64) []float32 {
		s := float32(math.Sqrt(3 / float64(in)))
		m := make([]float32, in*out)
		for i := range m {
			m[i] = (rng.Float32()*2 - 1) * s
		}
		return m
	}
	ones := func(n uint64) []float32 {
		m := make([]float32, n)
		for i := range m {
			m[i] = 1
		}
		return m
	}
	w.AddTensorF32("token_embd.weight", []uint64{embd, nv}, mat(1, embd*nv))
	w.AddTensorF32("output_norm.weight", []uint64{embd}, ones(embd))
	w.AddTensorF32("output.weight", []uint64{embd, nv}, mat(embd, nv))
	for l := range c.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		w.AddTensorF32(p+"attn_norm.weight", []uint64{embd}, ones(embd))
		w.AddTensorF32(p+"attn_q.weight", []uint64{embd, embd}, mat(embd, embd))
		w.AddTensorF32(p+"attn_k.weight", []uint64{embd, kv}, mat(embd, kv))
		w.AddTensorF32(p+"attn_v.weight", []uint64{embd, kv}, mat(embd, kv))
		w.AddTensorF32(p+"attn_output.weight", []uint64{embd, embd}, mat(embd, embd))
		w.AddTensorF32(p+"ffn_norm.weight", []uint64{embd}, ones(embd))
		w.AddTensorF32(p+"ffn_gate.weight", []uint64{embd, ff}, mat(embd, ff))
		w.AddTensorF32(p+"ffn_up.weight", []uint64{embd, ff}, mat(embd, ff))
		w.AddTensorF32(p+"ffn_down.weight", []uint64{ff, embd}, mat(ff, embd))
	}
	return w, nil
}

// RemoveTensor drops a tensor by name (for tests that need a broken model).
func (w *Writer) RemoveTensor(name string) bool {
	i := slices.IndexFunc(w.tensors, func(t tensor) bool { return t.name == name })
	if i < 0 {
		return false
	}
	w.tensors = slices.Delete(w.tensors, i, i+1)
	return true
}

// englishWords seeds the tiny vocabulary.
var englishWords = []string{
	"the", "be", "to", "of", "and", "a", "in", "that", "have", "i",
	"it", "for", "not", "on", "with", "he", "as", "you", "do", "at",
	"this", "but", "his", "by", "from", "they", "we", "say", "her", "she",
	"or", "an", "will", "my", "one", "all", "would", "there", "their", "what",
	"so", "up", "out", "if", "about", "who", "get", "which", "go", "me",
	"when", "make", "can", "like", "time", "no", "just", "him", "know", "take",
	"people", "into", "year", "your", "good", "some", "could", "them", "see", "other",
	"than", "then", "now", "look", "only", "come", "its", "over", "think", "also",
	"back", "after", "use", "two", "how", "our", "work", "first", "well", "way",
	"even", "new", "want", "because", "any", "these", "give", "day", "most", "us",
	"hello", "world", "model", "token", "grid", "node", "signal", "river", "light", "stone",
	"quick", "brown", "fox", "jumps", "lazy", "dog", "red", "blue", "green", "small",
	"large", "water", "fire", "earth", "air", "city", "road", "house", "tree", "bird",
	"Hello", "The", "A", "It", "We", "They", "What", "How", "Why", "Yes",
}
