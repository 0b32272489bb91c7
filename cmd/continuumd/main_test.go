package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

func TestHelpShowsResolvedPaths(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/4242")
	t.Setenv("XDG_STATE_HOME", "/var/tmp/state-home")
	var out bytes.Buffer
	if err := run([]string{"--help"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/run/user/4242/continuum/continuumd.sock", "/var/tmp/state-home/continuum", "--max-message-size", "--log-format"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
	if err := run([]string{"--log-format", "xml"}, &out); err == nil {
		t.Fatal("bad --log-format accepted")
	}
}

// The real binary: serves, refuses a second daemon on the same socket, and
// drains on SIGTERM with exit status 0.
func TestBinarySignalsAndSecondDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir, err := os.MkdirTemp("", "ctmd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "continuumd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "d.sock")
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--socket", sock, "--state-dir", filepath.Join(dir, "state"))
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c *client.Client
	for {
		if c, err = client.Dial(ctx, sock); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("daemon did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.DeclareClass(ctx, api.ClassConfig{Name: "a:b", SchemaVersion: "v1"}); err != nil {
		t.Fatal(err)
	}

	second := exec.Command(bin, "--socket", sock, "--state-dir", filepath.Join(dir, "state2"))
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already listening") {
		t.Fatalf("second daemon: %v\n%s", err, out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not stop the daemon")
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Fatal("socket still answers after shutdown")
	}
	c.Close()

	// kill -9 leaves the socket file behind; the next daemon replaces the
	// stale file, and the state is kept.
	killed := exec.Command(bin, "--socket", sock, "--state-dir", filepath.Join(dir, "state"))
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	for {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatal("daemon did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	killed.Process.Kill()
	killed.Wait()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("expected a stale socket file after kill -9: %v", err)
	}
	cmd2 := exec.Command(bin, "--socket", sock, "--state-dir", filepath.Join(dir, "state"))
	cmd2.Stderr = &logs
	if err := cmd2.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd2.Process.Kill()
	for {
		if c, err = client.Dial(ctx, sock); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("restart: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	if got, err := c.GetClass(ctx, "a:b"); err != nil || got == nil {
		t.Fatalf("class lost across restart: %v %v", got, err)
	}
	cmd2.Process.Signal(syscall.SIGINT)
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
}
