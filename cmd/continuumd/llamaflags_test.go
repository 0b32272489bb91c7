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
	"github.com/continuum-grid/continuum/inference"
)

// --llama-file names the library file the daemon loads: a name that is not
// in the folder makes inference unavailable with that name in the message,
// while the daemon keeps serving.
func TestLlamaFileFlag(t *testing.T) {
	bin := daemonBinary(t)
	dir, err := os.MkdirTemp("", "ctmllama")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	libDir := os.Getenv(inference.EnvLibDir)
	if libDir == "" {
		_, file, _, _ := runtime.Caller(0)
		libDir = filepath.Join(filepath.Dir(file), "..", "..", ".cache", "llama", "cpu")
	}
	if _, err := os.Stat(filepath.Join(libDir, "libggml-base.so")); err != nil {
		t.Fatalf("llama.cpp libraries not found at %s: run `make llama-libs`, or set %s", libDir, inference.EnvLibDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p, c := startBinary(t, bin, filepath.Join(dir, "d.sock"), filepath.Join(dir, "state"),
		"--llama-lib-dir", libDir, "--llama-file", "libllama.v9.so", "--allow-cpu")
	// Unload goes through the library first (list does not: it answers
	// what is loaded, which needs no library).
	err = c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: "x"}, nil)
	if api.CodeOf(err) != api.CodeUnavailable || !strings.Contains(err.Error(), "libllama.v9.so") {
		t.Fatalf("inference/unload with --llama-file libllama.v9.so: %v", err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("the daemon stopped serving: %v", err)
	}
	p.stop(t)

	// The names the CPU package really has load.
	_, c = startBinary(t, bin, filepath.Join(dir, "d2.sock"), filepath.Join(dir, "state2"),
		"--llama-lib-dir", libDir, "--llama-file", "libllama.v0.4.0.so", "--ggml-file", "libggml.v0.4.0.so",
		"--ggml-base-file", "libggml-base.so", "--allow-cpu")
	if err := c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: "x"}, nil); api.CodeOf(err) != api.CodeNotFound {
		t.Fatalf("inference/unload with the package's file names: %v (want not_found: the library loaded)", err)
	}
}
