package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
)

// build compiles the example once per test, as `go run ./examples/embedded`
// does, so the test runs the program a reader runs.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "embedded")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// start runs the example with args and TMPDIR=tmp and waits for its
// "serving SOCKET" line.
func start(t *testing.T, bin, tmp string, args ...string) (sock string, cmd *exec.Cmd) {
	t.Helper()
	cmd = exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, out)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("the example exited before serving: %s", stderr.String())
			}
			if _, after, found := strings.Cut(line, " serving "); found {
				return after, cmd
			}
		case <-deadline:
			t.Fatalf("no serving line; stderr: %s", stderr.String())
		}
	}
}

// greet does over the socket what the README's CLI lines do: it watches
// app:* and calls app/greet, and checks both the reply and the event.
func greet(t *testing.T, sock string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: "app:*"})
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := c.Execute(ctx, api.ExecuteParams{Command: "app/greet", Params: map[string]any{"name": "Ada"}}, &res); err != nil {
		t.Fatal(err)
	}
	if res["greeting"] != "hello, Ada" {
		t.Fatalf("app/greet answered %v", res)
	}
	ev, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Class != "app:greeted" || api.AsMap(ev.Payload)["greeting"] != "hello, Ada" {
		t.Fatalf("event %+v", ev)
	}
	// Bad input is a typed error, and the app keeps serving.
	err = c.Execute(ctx, api.ExecuteParams{Command: "app/greet", Params: map[string]any{}}, nil)
	if api.CodeOf(err) != api.CodeInvalidArgument {
		t.Fatalf("greet without a name: %v", err)
	}
}

func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after Ctrl-C: %v", err)
	}
}

func TestDefaultSocket(t *testing.T) {
	tmp := t.TempDir()
	sock, cmd := start(t, build(t), tmp)
	want := filepath.Join(tmp, "continuum-embedded-"+strconv.Itoa(os.Getuid()), "embedded.sock")
	if sock != want {
		t.Fatalf("serving %s, the README says %s", sock, want)
	}
	greet(t, sock)
	if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket folder: %v %v", fi.Mode(), err)
	}
	stop(t, cmd)
	// Its temporary state folder is gone.
	if left, _ := filepath.Glob(filepath.Join(tmp, "continuum-embedded-state-*")); len(left) != 0 {
		t.Fatalf("state left behind: %v", left)
	}
}

func TestSocketInItsOwnFolder(t *testing.T) {
	tmp := t.TempDir()
	want := filepath.Join(tmp, "my-app", "app.sock")
	sock, cmd := start(t, build(t), tmp, "--socket", want)
	if sock != want {
		t.Fatalf("serving %s, asked for %s", sock, want)
	}
	greet(t, sock)
	stop(t, cmd)
}

// A socket directly in a shared folder (as /tmp is) is refused with advice
// that works, never a chmod of the shared folder.
func TestSocketInSharedFolderAdvice(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(build(t), "--socket", filepath.Join(shared, "embedded.sock")).CombinedOutput()
	if err == nil {
		t.Fatalf("served in a shared folder: %s", out)
	}
	if strings.Contains(string(out), "chmod") && !strings.Contains(string(out), "never chmod") || !strings.Contains(string(out), "sub-folder") {
		t.Fatalf("advice: %s", out)
	}
	if fi, _ := os.Stat(shared); fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Fatalf("the shared folder was changed: %v", fi.Mode())
	}
}
