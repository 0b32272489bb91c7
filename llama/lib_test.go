package llama

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/llama/gguf"
)

func TestCheckABI(t *testing.T) {
	if err := CheckABI(PinnedABI); err != nil {
		t.Fatalf("pinned versions rejected: %v", err)
	}
	for _, found := range []ABIVersions{
		{Llama: "0.5.0-dev", GGML: PinnedGGMLVersion, GGMLCommit: PinnedGGMLCommit},
		{Llama: PinnedLlamaVersion, GGML: "0.24.0", GGMLCommit: PinnedGGMLCommit},
		{Llama: PinnedLlamaVersion, GGML: PinnedGGMLVersion, GGMLCommit: "abcdef0"},
		{},
	} {
		err := CheckABI(found)
		if !errors.Is(err, ErrABIMismatch) {
			t.Fatalf("%v: err = %v", found, err)
		}
		msg := err.Error()
		for _, want := range []string{found.String(), PinnedABI.String(), "make llama-libs"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
	}
}

func TestLayouts(t *testing.T) {
	if err := checkLayouts(); err != nil {
		t.Fatal(err)
	}
	lib(t)
	// Defaults read through the mirrors land in the right fields only if
	// the layout matches the library's.
	mp := c.llamaModelDefaultParams()
	if mp.NGPULayers != -1 || mp.SplitMode != 1 || mp.LoadMode != -1 || mp.LazyMode != 1 || !mp.UseExtraBufts || mp.VocabOnly || mp.Devices != 0 {
		t.Errorf("model defaults: %+v", mp)
	}
	cp := c.llamaContextDefaultParams()
	if cp.NCtx != 512 || cp.NBatch != 2048 || cp.NUBatch != 512 || cp.NSeqMax != 1 || cp.YarnExtFactor != -1 ||
		cp.TypeK != 1 || cp.TypeV != 1 || !cp.OffloadKQV || cp.Embeddings || cp.Samplers != 0 || cp.CtxOther != 0 {
		t.Errorf("context defaults: %+v", cp)
	}
}

func TestTypeSizesMatchGGML(t *testing.T) {
	lib(t)
	for _, typ := range gguf.KnownTensorTypes() {
		be, bb, _ := gguf.TypeSize(typ)
		if got := c.ggmlBlckSize(int32(typ)); got != be {
			t.Errorf("type %d: block size %d, ggml says %d", typ, be, got)
		}
		if got := c.ggmlTypeSize(int32(typ)); got != uint64(bb) {
			t.Errorf("type %d: block bytes %d, ggml says %d", typ, bb, got)
		}
	}
}

func TestLoadSameDirTwice(t *testing.T) {
	l := lib(t)
	again, err := Load(LibraryOptions{Dir: libDir(t) + "/."})
	if err != nil || again != l {
		t.Fatalf("second Load: %p %v, want %p", again, err, l)
	}
	if l.Versions() != PinnedABI {
		t.Errorf("versions %v", l.Versions())
	}
}

func TestLoadOtherDirRefused(t *testing.T) {
	lib(t)
	other := t.TempDir()
	for _, f := range []string{"libggml-base.so", "libggml.v0.4.0.so", "libllama.v0.4.0.so"} {
		if err := os.WriteFile(filepath.Join(other, f), []byte("not a library"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Load(LibraryOptions{Dir: other})
	if !errors.Is(err, ErrAlreadyLoaded) || !strings.Contains(err.Error(), other) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadMissingDir(t *testing.T) {
	for _, dir := range []string{"", filepath.Join(t.TempDir(), "nope"), t.TempDir()} {
		_, err := Load(LibraryOptions{Dir: dir})
		if !errors.Is(err, ErrLibraryNotFound) {
			t.Fatalf("%q: err = %v", dir, err)
		}
		if !strings.Contains(err.Error(), "make llama-libs") {
			t.Errorf("%q: message %q does not say how to fix it", dir, err)
		}
	}
	// A named file that is not there.
	_, err := Load(LibraryOptions{Dir: libDir(t), LlamaFile: "libllama.v9.so"})
	if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "libllama.v9.so") {
		t.Fatalf("err = %v", err)
	}
}

// Scenarios that need a process where nothing is loaded yet run in a child
// copy of the test binary.
const childEnv = "CONTINUUM_LLAMA_TEST_CHILD"

func runChild(t *testing.T, scenario string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+scenario)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", scenario, err, out)
	}
	return string(out)
}

func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("runs only as a child process")
	case "fake-libs":
		dir := os.Getenv("FAKE_DIR")
		_, err := Load(LibraryOptions{Dir: dir})
		if !errors.Is(err, ErrLibraryLoad) || !strings.Contains(err.Error(), "cannot open") {
			t.Fatalf("err = %v", err)
		}
		t.Logf("RESULT %v", err)
	case "cuda":
		var logs bytes.Buffer
		l, err := Load(LibraryOptions{Dir: os.Getenv("CUDA_DIR"), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.GPUs()) > 0 {
			t.Logf("RESULT has-gpu %v", l.GPUs())
			return
		}
		err = l.RequireGPU(false)
		if !errors.Is(err, ErrGPUUnavailable) {
			t.Fatalf("err = %v", err)
		}
		t.Logf("RESULT %v", err)
	}
}

func TestLoadFakeLibraries(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"libggml-base.so", "libggml.v0.4.0.so", "libllama.v0.4.0.so"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("\x7fELF but not really"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := runChild(t, "fake-libs", "FAKE_DIR="+dir)
	if !strings.Contains(out, "RESULT llama_library_load: cannot open "+filepath.Join(dir, "libggml-base.so")) {
		t.Fatalf("child output:\n%s", out)
	}
}

// With the CUDA build present but no CUDA runtime on the machine, the
// gpu_unavailable message names the missing library.
func TestGPUUnavailableExplainsCUDA(t *testing.T) {
	dir := filepath.Join(libDir(t), "..", "cuda")
	if _, err := os.Stat(filepath.Join(dir, "libggml-cuda.so")); err != nil {
		t.Skip("no CUDA build at", dir, "(make llama-libs-cuda)")
	}
	out := runChild(t, "cuda", "CUDA_DIR="+dir)
	if strings.Contains(out, "RESULT has-gpu") {
		t.Skip("this machine has a working GPU")
	}
	for _, want := range []string{"gpu_unavailable", "libggml-cuda.so", "failed to load", "libcudart.so.13", "--allow-cpu"} {
		if !strings.Contains(out, want) {
			t.Errorf("message lacks %q:\n%s", want, out)
		}
	}
}

func TestRequireGPUOnCPUBuild(t *testing.T) {
	l := lib(t)
	if len(l.GPUs()) > 0 {
		t.Skip("machine has a GPU")
	}
	devs := l.Devices()
	if len(devs) == 0 || devs[0].Type != DeviceCPU || devs[0].MemoryTotal == 0 {
		t.Fatalf("devices: %v", devs)
	}
	err := l.RequireGPU(false)
	if !errors.Is(err, ErrGPUUnavailable) {
		t.Fatalf("err = %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != "gpu_unavailable" {
		t.Fatalf("not a gpu_unavailable *Error: %#v", err)
	}
	for _, want := range []string{devs[0].Name + " (CPU", "CPU-only build", "make llama-libs-cuda", "libcudart.so.13", "--allow-cpu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if err := l.RequireGPU(true); err != nil {
		t.Errorf("allowCPU: %v", err)
	}
	// Model loading applies the rule before touching the file's contents.
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := gguf.WriteTinyModelFile(path, gguf.TinyConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.LoadModel(context.Background(), path, ModelOptions{}); !errors.Is(err, ErrGPUUnavailable) {
		t.Errorf("LoadModel without AllowCPU: %v", err)
	}
}

func TestFitHeuristic(t *testing.T) {
	info := gguf.Info{TensorBytes: 1 << 30, FileSize: 1<<30 + 4096}
	if got, want := modelDeviceBytes(info), uint64(1<<30+(1<<30)/10+64<<20); got != want {
		t.Errorf("need %d, want %d", got, want)
	}
	mi := ModelInfo{NEmbd: 4096, NHead: 32, NHeadKV: 8, NLayer: 32}
	// 2 (K,V) * 2 bytes * 32 layers * 4096 tokens * 1024 wide = 512 MiB.
	if got := kvBytes(mi, 4096); got != 512<<20 {
		t.Errorf("kv %d", got)
	}
}

func TestLogRouting(t *testing.T) {
	l := lib(t)
	var buf bytes.Buffer
	l.SetLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer l.SetLogger(nil)
	tinyModel(t, gguf.TinyConfig{})
	out := buf.String()
	if !strings.Contains(out, "source=llama.cpp") || !strings.Contains(out, "llama_model_loader") {
		t.Fatalf("no llama.cpp lines routed:\n%.2000s", out)
	}
}
