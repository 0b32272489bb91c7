package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// libFolder makes a folder with the llama.cpp library names doctor looks for.
func libFolder(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDoctorHealthy: a running daemon and a complete library folder give no
// fail line and exit 0; the missing GPU backend is a warn with its fix.
func TestDoctorHealthy(t *testing.T) {
	sock := startDaemon(t)
	libs := libFolder(t, "libllama.so", "libggml.so", "libggml-base.so", "libggml-cpu.so")
	r := cli(t, sock, "doctor", "--llama-lib-dir", libs, "--state-dir", privateTemp(t)).ok(t)
	for _, want := range []string{"ok    socket folder", "ok    socket file", "ok    daemon", "ok    llama.cpp libs", "warn  GPU backend", "make llama-libs-cuda"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "fail") {
		t.Errorf("doctor failed a check on a healthy set-up:\n%s", r.stdout)
	}
}

// TestDoctorBroken: missing libraries and a socket others can open are each
// named with the fix, and doctor exits non-zero.
func TestDoctorBroken(t *testing.T) {
	sock := startDaemon(t)
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	libs := libFolder(t, "libggml-base.so") // libllama and libggml missing
	state := privateTemp(t)
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	r := cli(t, sock, "doctor", "--llama-lib-dir", libs, "--state-dir", state)
	if r.code == 0 {
		t.Fatalf("doctor exit 0 on a broken set-up:\n%s", r.stdout)
	}
	for _, want := range []string{
		"fail  socket file", "mode 0666", "chmod 600 " + sock,
		"fail  llama.cpp libs", "libllama*.so*", "libggml.*", "fix: make llama-libs",
		"fail  state folder", "chmod 700 " + state,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}

	// No daemon, no library folder: both fail with their fixes.
	dir, err := os.MkdirTemp("", "cdoc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	r = cli(t, filepath.Join(dir, "none.sock"), "doctor", "--llama-lib-dir", filepath.Join(dir, "nolibs"), "--state-dir", dir)
	if r.code == 0 {
		t.Fatalf("doctor exit 0 with no daemon:\n%s", r.stdout)
	}
	for _, want := range []string{"fail  daemon", "systemctl --user start continuumd.socket", "fail  llama.cpp libs", "no folder " + filepath.Join(dir, "nolibs")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// privateTemp is a fresh 0700 folder (t.TempDir is 0755, which doctor fails).
func privateTemp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdoc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
