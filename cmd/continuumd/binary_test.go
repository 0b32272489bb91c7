package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/ipc/client"
)

// The tests that run the real binary share one build of it.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// daemonBinary builds continuumd once per test run and returns its path.
func daemonBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the continuumd binary")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "ctmdbin"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "continuumd")
		// The go of the running toolchain, whatever PATH says.
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		buildOut, buildErr = exec.Command(goBin, "build", "-o", buildBin, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build continuumd: %v\n%s", buildErr, buildOut)
	}
	return buildBin
}

// lockedBuffer collects a child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a running continuumd.
type proc struct {
	cmd  *exec.Cmd
	sock string
	logs *lockedBuffer
	done chan error
}

// startBinary runs continuumd on sock and stateDir with extra flags and waits
// until a client can connect; it returns the process and a connected client.
func startBinary(t *testing.T, bin, sock, stateDir string, extra ...string) (*proc, *client.Client) {
	t.Helper()
	p := &proc{sock: sock, logs: &lockedBuffer{}, done: make(chan error, 1)}
	args := append([]string{"--socket", sock, "--state-dir", stateDir}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		c, err := client.Dial(ctx, sock)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return p, c
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("continuumd exited at start: %v\n%s", err, p.logs.String())
		case <-ctx.Done():
			t.Fatalf("continuumd did not come up: %v\n%s", err, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, p.logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("continuumd did not stop\n%s", p.logs.String())
	}
}
