package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tinyBytes(t *testing.T, cfg TinyConfig) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteTinyModel(&b, cfg); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTinyModelParsesBack(t *testing.T) {
	cfg := DefaultTinyConfig()
	cfg.ChatTemplate = "{{ messages }}"
	data := tinyBytes(t, cfg)
	info, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 3 || info.Architecture != "llama" || info.Name != "continuum-tiny" {
		t.Fatalf("header: %+v", info)
	}
	wantTensors := 3 + 9*cfg.Layers
	if info.TensorCount != uint64(wantTensors) || len(info.Tensors) != wantTensors {
		t.Fatalf("tensors: %d, want %d", info.TensorCount, wantTensors)
	}
	if n, _ := info.Uint("llama.block_count"); n != 2 {
		t.Errorf("block_count %d", n)
	}
	if n, _ := info.Uint("llama.embedding_length"); n != 64 {
		t.Errorf("embedding_length %d", n)
	}
	if s, _ := info.String("tokenizer.chat_template"); s != "{{ messages }}" {
		t.Errorf("chat template %q", s)
	}
	voc := TinyVocab(englishWords)
	arr, ok := info.Metadata["tokenizer.ggml.tokens"].(ArrayInfo)
	if !ok || arr.Type != TypeString || arr.Len != uint64(len(voc.Tokens)) {
		t.Errorf("tokens array %+v, want %d strings", info.Metadata["tokenizer.ggml.tokens"], len(voc.Tokens))
	}
	// The data region ends exactly at the file's end: sizes and offsets agree.
	last := info.Tensors[len(info.Tensors)-1]
	if end := info.DataOffset + int64(last.Offset) + last.Size; end != int64(len(data)) {
		t.Errorf("last tensor ends at %d, file is %d bytes", end, len(data))
	}
	if info.Tensors[0].Name != "token_embd.weight" || info.Tensors[0].Dims[1] != uint64(len(voc.Tokens)) {
		t.Errorf("token_embd: %+v", info.Tensors[0])
	}
	if info.DataOffset%32 != 0 {
		t.Errorf("data offset %d unaligned", info.DataOffset)
	}
}

func TestTinyModelDeterministic(t *testing.T) {
	a := tinyBytes(t, TinyConfig{Seed: 7})
	b := tinyBytes(t, TinyConfig{Seed: 7})
	c := tinyBytes(t, TinyConfig{Seed: 8})
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, different bytes")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seed, same bytes")
	}
}

func TestTinyVocabPrefixes(t *testing.T) {
	v := TinyVocab([]string{"the", "there"})
	idx := map[string]int{}
	for i, s := range v.Tokens {
		if _, dup := idx[s]; dup {
			t.Fatalf("duplicate token %q", s)
		}
		idx[s] = i
	}
	for _, p := range []string{"▁t", "▁th", "▁the", "▁ther", "▁there", "<0x00>", "<0xFF>"} {
		if _, ok := idx[p]; !ok {
			t.Errorf("missing piece %q", p)
		}
	}
	if v.Tokens[TinyBOS] != "<s>" || v.Types[TinyBOS] != tokControl || v.Tokens[3] != "<0x00>" || v.Types[3] != tokByte {
		t.Errorf("fixed ids wrong: %q %d %q", v.Tokens[TinyBOS], v.Types[TinyBOS], v.Tokens[3])
	}
}

func TestTinyConfigRejected(t *testing.T) {
	for _, c := range []TinyConfig{{Embd: 64, Heads: 5}, {Layers: -1}, {Embd: 66, Heads: 22}, {HeadsKV: 3}} {
		if err := WriteTinyModel(&bytes.Buffer{}, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestValidateFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteTinyModelFile(p, TinyConfig{}); err != nil {
		t.Fatal(err)
	}
	info, err := Validate(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if info.FileSize != st.Size() || info.TensorBytes <= 0 || info.TensorBytes > st.Size() {
		t.Errorf("sizes: %+v", info)
	}
	if _, err := Validate(filepath.Join(t.TempDir(), "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Validate(t.TempDir()); err == nil {
		t.Error("a directory validated")
	}
}

func TestCorrupt(t *testing.T) {
	good := tinyBytes(t, TinyConfig{})
	info, err := Read(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	patch := func(off int, v []byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	// The first key is general.architecture: its length field is at 24, its
	// type tag after the 20-byte key.
	keyLen := int(binary.LittleEndian.Uint64(good[24:]))
	typeOff := 24 + 8 + keyLen

	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"bad magic", patch(0, []byte("GGML")), ErrBadMagic, `"GGML"`},
		{"empty", nil, ErrTruncated, "magic"},
		{"version 1", patch(4, u32(1)), ErrUnsupportedVersion, "version 1"},
		{"version 4", patch(4, u32(4)), ErrUnsupportedVersion, "version 4"},
		{"huge tensor count", patch(8, u64(1<<60)), ErrImplausible, "tensors"},
		{"tensor count past the end", patch(8, u64(1<<20)), ErrTruncated, "cannot fit"},
		{"huge kv count", patch(16, u64(1<<40)), ErrImplausible, "metadata"},
		{"huge key length", patch(24, u64(1<<62)), ErrImplausible, "metadata key"},
		{"unknown value type", patch(typeOff, u32(99)), ErrMalformed, "unknown value type"},
		{"truncated in header", good[:200], ErrTruncated, ""},
		{"truncated in metadata", good[:int(info.DataOffset)/2], ErrTruncated, ""},
		{"truncated tensor data", good[:len(good)-100], ErrTruncated, "blk.1.ffn_down.weight"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.data), int64(len(c.data)))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q lacks %q", err, c.msg)
			}
		})
	}
}

func TestWrongTensorShapeDetected(t *testing.T) {
	// A tensor whose declared shape is bigger than the data written for it
	// (the data of the last tensor then runs past the end of the file).
	w, err := TinyModel(TinyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w.tensors[len(w.tensors)-1].dims = []uint64{128, 65}
	w.tensors[len(w.tensors)-1].data = make([]float32, 128*65)
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()[:b.Len()-128*4] // the writer was honest; cut the extra row
	_, err = Read(bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	if err := WriteTinyModel(&b, TinyConfig{Layers: 1, Embd: 8, Heads: 2, FF: 8, Words: []string{"a"}}); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add(b.Bytes()[:64])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Read(bytes.NewReader(data), int64(len(data)))
	})
}
