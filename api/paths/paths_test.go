package paths

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestSocket(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/4242")
	if got := Socket(); got != "/run/user/4242/continuum/continuumd.sock" {
		t.Fatalf("got %s", got)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	got := Socket()
	run := "/run/user/" + strconv.Itoa(os.Getuid())
	if CheckPrivate(run) == nil {
		if got != run+"/continuum/continuumd.sock" {
			t.Fatalf("got %s", got)
		}
	} else if got != filepath.Join(tmp, "continuum-"+strconv.Itoa(os.Getuid()), SocketName) {
		t.Fatalf("got %s", got)
	}
}

func TestStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/x/state")
	if got := StateDir(); got != "/x/state/continuum" {
		t.Fatalf("got %s", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/someone")
	if got := StateDir(); got != "/home/someone/.local/state/continuum" {
		t.Fatalf("got %s", got)
	}
}

func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrivate(dir); err != nil {
		t.Fatalf("a 0700 folder of ours: %v", err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrivate(dir); err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("a 0750 folder: %v", err)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrivate(file); err == nil {
		t.Fatal("a file passed as a folder")
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := CheckPrivate(link); err == nil {
		t.Fatal("a symlink passed as a folder")
	}
}
