package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/ipc/client"
)

// waitLog waits until the daemon's stderr holds want.
func waitLog(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the daemon's log:\n%s", want, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGHUPReloadsLogLevel: the binary starts at info (connections are
// logged at debug, so none show); --config is changed to debug and SIGHUP
// sent; the daemon says what it did, and the next connection is logged. A bad
// file on the next SIGHUP keeps the level and names the line.
func TestSIGHUPReloadsLogLevel(t *testing.T) {
	bin := daemonBinary(t)
	dir := privateDir(t)
	conf := filepath.Join(dir, "continuumd.conf")
	if err := os.WriteFile(conf, []byte("# test\nlog-level = info\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "d.sock")
	p, c := startBinary(t, bin, sock, filepath.Join(dir, "state"), "--log-level", "debug", "--config", conf)
	c.Close()
	if strings.Contains(p.logs.String(), "connection opened") {
		t.Fatalf("--config log-level = info did not win over --log-level debug:\n%s", p.logs.String())
	}

	if err := os.WriteFile(conf, []byte("log-level = debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, `msg="SIGHUP: settings reloaded"`)
	waitLog(t, p, "log_level=DEBUG was=INFO")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c2, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	waitLog(t, p, "connection opened")

	if err := os.WriteFile(conf, []byte("log-level = debug\nlog-levle = warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "SIGHUP: settings kept")
	waitLog(t, p, `continuumd.conf:2: unknown key \"log-levle\"`)
	p.stop(t)
}

// TestConfigBadAtStart: a --config file with a bad value stops the start
// with the line named.
func TestConfigBadAtStart(t *testing.T) {
	dir := privateDir(t)
	conf := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(conf, []byte("log-level = loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	err := run([]string{"--socket", filepath.Join(dir, "d.sock"), "--state-dir", dir, "--config", conf}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "c.conf:1: log-level \"loud\"") {
		t.Fatalf("run with a bad --config: %v", err)
	}
}
