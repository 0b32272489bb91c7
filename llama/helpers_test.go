package llama

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/continuum-grid/continuum/llama/gguf"
)

// libDir is where the tests find the libraries: $CONTINUUM_LLAMA_LIB_DIR,
// else <repo>/.cache/llama/cpu (what `make llama-libs` fills). Tests never
// download.
func libDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("CONTINUUM_LLAMA_LIB_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", ".cache", "llama", "cpu")
}

var (
	testLibOnce sync.Once
	testLib     *Library
	testLibErr  error
)

// lib loads the CPU libraries once for the test binary.
func lib(t testing.TB) *Library {
	t.Helper()
	dir := libDir(t)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("llama.cpp libraries not found at %s (%v): run `make llama-libs` (or scripts/fetch-llama-libs.sh), or set CONTINUUM_LLAMA_LIB_DIR", dir, err)
	}
	testLibOnce.Do(func() { testLib, testLibErr = Load(LibraryOptions{Dir: dir}) })
	if testLibErr != nil {
		t.Fatal(testLibErr)
	}
	return testLib
}

// tinyModel writes a tiny model into a temp dir and loads it on the CPU.
func tinyModel(t testing.TB, cfg gguf.TinyConfig) *Model {
	t.Helper()
	l := lib(t)
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := gguf.WriteTinyModelFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	m, err := l.LoadModel(context.Background(), path, ModelOptions{AllowCPU: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newCtx(t testing.TB, m *Model, nCtx int) *Context {
	t.Helper()
	cx, err := m.NewContext(ContextOptions{NCtx: nCtx, NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cx.Close() })
	return cx
}
