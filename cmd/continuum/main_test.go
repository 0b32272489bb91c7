package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/kernel"
)

// startDaemon runs continuumd in-process on a fresh socket and state dir and
// returns the socket path.
func startDaemon(t *testing.T) string {
	t.Helper()
	sock, _ := startDaemonHandle(t)
	return sock
}

func startDaemonHandle(t *testing.T) (string, *daemon.Daemon) {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir() can be long.
	sockDir, err := os.MkdirTemp("", "ccli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "d.sock")
	d, err := daemon.Start(daemon.Config{Socket: sock, Kernel: kernel.Config{StateDir: t.TempDir()}})
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return sock, d
}

// syncBuffer is a bytes.Buffer safe to write from one goroutine and read
// from another.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type result struct {
	code           int
	stdout, stderr string
}

// cli runs the CLI against sock and returns what it printed.
func cli(t *testing.T, sock string, args ...string) result {
	t.Helper()
	return cliIn(t, sock, "", args...)
}

func cliIn(t *testing.T, sock, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	if sock != "" {
		args = append(args, "--socket", sock)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// ok fails the test unless r exited 0.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

// background runs a long-lived subcommand (tail, serve) until the returned
// stop function is called; stop returns its exit status.
func background(t *testing.T, sock string, args ...string) (stdout, stderr *syncBuffer, stop func() int) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	args = append(args, "--socket", sock)
	go func() { done <- run(ctx, args, strings.NewReader(""), stdout, stderr) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("%v did not stop after cancel", args)
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stdout, stderr, stop
}

// waitFor polls until cond holds or fails the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON (%v): %q", err, s)
	}
	return v
}

func TestInfoAndPing(t *testing.T) {
	sock := startDaemon(t)
	r := cli(t, sock, "info").ok(t)
	for _, want := range []string{"version:", "protocol:", "events/emit", "commands/execute", sock} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info output lacks %q:\n%s", want, r.stdout)
		}
	}
	info := decode[map[string]any](t, cli(t, sock, "info", "--json").ok(t).stdout)
	if methods, _ := info["methods"].([]any); len(methods) == 0 {
		t.Errorf("info --json has no methods: %v", info)
	}
	// Global flags may also come before the subcommand.
	r = cli(t, "", "--socket", sock, "--json", "info").ok(t)
	decode[map[string]any](t, r.stdout)

	r = cli(t, sock, "ping").ok(t)
	if !strings.HasPrefix(r.stdout, "pong from "+sock) {
		t.Errorf("ping: %q", r.stdout)
	}
	line := decode[map[string]any](t, cli(t, sock, "ping", "--json").ok(t).stdout)
	if _, ok := line["rttMicros"]; !ok {
		t.Errorf("ping --json: %v", line)
	}
}

func TestDeclareListGet(t *testing.T) {
	sock := startDaemon(t)
	r := cli(t, sock, "events", "declare", "forum:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId", "--description", "a chat message").ok(t)
	if !strings.Contains(r.stdout, "declared forum:posted") || !strings.Contains(r.stdout, "byRoomId") {
		t.Errorf("declare output: %s", r.stdout)
	}
	cli(t, sock, "events", "declare", "ui:clicked", "--schema-version", "v1", "--on-unknown-schema", "warn").ok(t)
	// The same contract again is a no-op.
	cli(t, sock, "events", "declare", "forum:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)

	r = cli(t, sock, "events", "list").ok(t)
	// chat:posted is the daemon's own (package chat), listed first.
	lines := withoutInference(strings.Split(strings.TrimSpace(r.stdout), "\n"))
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "chat:posted") || !strings.HasPrefix(lines[2], "forum:posted") || !strings.HasPrefix(lines[3], "ui:clicked") {
		t.Errorf("events list:\n%s", r.stdout)
	}
	list := withoutInferenceClasses(decode[[]map[string]any](t, cli(t, sock, "events", "list", "--json").ok(t).stdout))
	if len(list) != 3 || list[1]["name"] != "forum:posted" || list[1]["channel"] != "byRoomId" || list[1]["broadcast"] != true {
		t.Errorf("events list --json: %v", list)
	}

	got := decode[map[string]any](t, cli(t, sock, "events", "get", "forum:posted", "--json").ok(t).stdout)
	if got["schemaVersion"] != "v1" || got["description"] != "a chat message" || got["onUnknownSchema"] != "fail" {
		t.Errorf("events get --json: %v", got)
	}
	r = cli(t, sock, "events", "get", "ui:clicked").ok(t)
	if !strings.Contains(r.stdout, "warn") {
		t.Errorf("events get: %s", r.stdout)
	}

	r = cli(t, sock, "events", "declare", "forum:posted", "--schema-version", "v2", "--broadcast", "--channel", "byRoomId")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: conflicting_redeclaration: ") || !strings.Contains(r.stderr, "forum:posted") {
		t.Errorf("conflicting redeclare: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, sock, "events", "declare", "bad:one", "--schema-version", "v1", "--broadcast")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: invalid_argument: ") {
		t.Errorf("broadcast without channel: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, sock, "events", "get", "no:such")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: not_found: ") {
		t.Errorf("get undeclared: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestEmitAndTail(t *testing.T) {
	sock := startDaemon(t)
	cli(t, sock, "events", "declare", "chat:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)

	text, textErr, stopText := background(t, sock, "events", "tail", "chat:*")
	js, jsErr, stopJSON := background(t, sock, "events", "tail", "*", "--json")
	waitFor(t, "the tails to subscribe", func() bool {
		return strings.Contains(textErr.String(), "watching") && strings.Contains(jsErr.String(), "watching")
	})

	r := cli(t, sock, "events", "emit", "chat:posted", "--json", `{"roomId":"general","text":"hello","n":3,"big":18446744073709551615}`, "--id", "m1").ok(t)
	if !strings.HasPrefix(r.stdout, "emitted m1 on channel general") {
		t.Errorf("emit: %q", r.stdout)
	}
	res := decode[map[string]any](t, cli(t, sock, "events", "emit", "ui:clicked", "--param", "button=ok", "-o", "json").ok(t).stdout)
	if res["id"] == "" || res["channel"] != "" {
		t.Errorf("emit --json of an undeclared class: %v", res)
	}

	waitFor(t, "the text tail to print the event", func() bool { return strings.Contains(text.String(), "hello") })
	waitFor(t, "the JSON tail to print both events", func() bool { return strings.Count(js.String(), "\n") >= 2 })
	if code := stopText(); code != 0 {
		t.Errorf("tail exit %d; stderr %s", code, textErr.String())
	}
	if code := stopJSON(); code != 0 {
		t.Errorf("tail --json exit %d; stderr %s", code, jsErr.String())
	}

	line := text.String()
	for _, want := range []string{"chat:posted", "general", `"text":"hello"`, `"n":3`} {
		if !strings.Contains(line, want) {
			t.Errorf("tail line lacks %q: %q", want, line)
		}
	}
	if strings.Contains(line, "ui:clicked") {
		t.Errorf("tail chat:* printed ui:clicked: %q", line)
	}
	evLines := strings.Split(strings.TrimSpace(js.String()), "\n")
	first := decode[map[string]any](t, evLines[0])
	if first["class"] != "chat:posted" || first["id"] != "m1" || first["channel"] != "general" {
		t.Errorf("tail --json event: %v", first)
	}
	// Integers stay integers end to end, even above int64.
	if !strings.Contains(evLines[0], `"n":3,`) && !strings.Contains(evLines[0], `"n":3}`) || !strings.Contains(evLines[0], `"big":18446744073709551615`) {
		t.Errorf("integers changed on the way: %s", evLines[0])
	}
	second := decode[map[string]any](t, evLines[1])
	if second["class"] != "ui:clicked" || second["payload"].(map[string]any)["button"] != "ok" {
		t.Errorf("tail --json second event: %v", second)
	}
}

func TestExec(t *testing.T) {
	sock := startDaemon(t)
	cli(t, sock, "events", "declare", "forum:posted", "--schema-version", "v1").ok(t)

	list := withoutInferenceClasses(decode[[]map[string]any](t, cli(t, sock, "exec", "events/list-classes").ok(t).stdout))
	if len(list) != 2 || list[0]["name"] != "chat:posted" || list[1]["name"] != "forum:posted" {
		t.Errorf("exec events/list-classes: %v", list)
	}
	got := decode[map[string]any](t, cli(t, sock, "exec", "events/get-class", "--param", "name=forum:posted").ok(t).stdout)
	if got["schemaVersion"] != "v1" {
		t.Errorf("exec --param: %v", got)
	}
	r := cli(t, sock, "exec", "events/get-class", "--json", `{"name":"forum:posted"}`, "--output", "json").ok(t)
	if strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Errorf("--output json should be one line: %q", r.stdout)
	}
	decode[map[string]any](t, r.stdout)
	r = cliIn(t, sock, `{"name":"forum:posted"}`, "exec", "events/get-class", "--json", "-").ok(t)
	decode[map[string]any](t, r.stdout)
	r = cli(t, sock, "exec", "events/get-class", "--param", "name=no:such").ok(t)
	if strings.TrimSpace(r.stdout) != "null" {
		t.Errorf("get-class of an undeclared class: %q", r.stdout)
	}

	r = cli(t, sock, "exec", "no/such-command")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: unknown_method: ") {
		t.Errorf("exec unknown: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, sock, "exec", "events/get-class", "--param", "name=5")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: invalid_argument: ") {
		t.Errorf("exec with a wrongly typed param: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestServeAndExec(t *testing.T) {
	sock := startDaemon(t)
	out, errOut, stop := background(t, sock, "commands", "serve", "demo/echo", "--description", "echo the params")
	waitFor(t, "serve to register", func() bool { return strings.Contains(errOut.String(), "serving demo/echo") })

	got := decode[map[string]any](t, cli(t, sock, "exec", "demo/echo", "--param", "text=hi", "--param", "n=3", "--param", "f=1.5", "--param", `tags=["a"]`).ok(t).stdout)
	want := map[string]any{"text": "hi", "n": float64(3), "f": 1.5, "tags": []any{"a"}}
	if b1, b2 := compactJSON(got), compactJSON(want); b1 != b2 {
		t.Errorf("echo: got %s, want %s", b1, b2)
	}
	waitFor(t, "serve to print the call", func() bool { return strings.Contains(out.String(), `"text":"hi"`) })
	if !strings.Contains(out.String(), "demo/echo") {
		t.Errorf("serve output: %q", out.String())
	}

	r := cli(t, sock, "commands", "list").ok(t)
	if !strings.Contains(r.stdout, "demo/echo") || !strings.Contains(r.stdout, "echo the params") || !strings.Contains(r.stdout, "events/emit") {
		t.Errorf("commands list:\n%s", r.stdout)
	}
	cmds := decode[[]map[string]any](t, cli(t, sock, "commands", "list", "--json").ok(t).stdout)
	found := false
	for _, c := range cmds {
		if c["name"] == "demo/echo" && c["naturalScope"] == "environment" {
			found = true
		}
	}
	if !found {
		t.Errorf("commands list --json lacks demo/echo: %v", cmds)
	}

	// A fixed reply, from a second provider of another name.
	_, errOut2, _ := background(t, sock, "commands", "serve", "demo/fixed", "--reply-json", `{"ok":true,"n":7}`, "--json")
	waitFor(t, "the second serve to register", func() bool { return strings.Contains(errOut2.String(), "serving demo/fixed") })
	r = cli(t, sock, "exec", "demo/fixed", "-o", "json").ok(t)
	if strings.TrimSpace(r.stdout) != `{"n":7,"ok":true}` {
		t.Errorf("fixed reply: %q", r.stdout)
	}

	// A second provider of the same name is refused.
	r = cli(t, sock, "commands", "serve", "demo/echo")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: already_exists: ") {
		t.Errorf("duplicate serve: exit %d, stderr %q", r.code, r.stderr)
	}

	if code := stop(); code != 0 {
		t.Errorf("serve exit %d: %s", code, errOut.String())
	}
	waitFor(t, "the command to go away with its provider", func() bool {
		r := cli(t, sock, "exec", "demo/echo")
		return r.code == 1 && strings.Contains(r.stderr, "unknown_method")
	})
}

func TestUsageErrors(t *testing.T) {
	sock := startDaemon(t)
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no subcommand", nil, "no subcommand"},
		{"unknown subcommand", []string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{"group without subcommand", []string{"events"}, "needs a subcommand"},
		{"unknown group subcommand", []string{"events", "explode"}, `unknown subcommand "events explode"`},
		{"missing name", []string{"events", "declare", "--schema-version", "v1"}, "missing argument"},
		{"missing schema version", []string{"events", "declare", "a:b"}, "--schema-version is required"},
		{"extra argument", []string{"info", "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"info", "--bogus"}, "unknown flag: --bogus"},
		{"param without =", []string{"exec", "x/y", "--param", "novalue"}, "want key=value"},
		{"bad JSON", []string{"exec", "x/y", "--json", "{bad"}, "not valid JSON"},
		{"params on a non-object", []string{"exec", "x/y", "--json", "[1]", "--param", "a=1"}, "JSON object"},
		{"bad output", []string{"info", "--output", "yaml"}, "want text or json"},
		{"echo and reply", []string{"commands", "serve", "a/b", "--echo", "--reply-json", "1"}, "exclude each other"},
		{"bad from", []string{"events", "tail", "--from", "yesterday"}, "--from"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, sock, tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "--help") {
				t.Errorf("stderr %q lacks %q and a --help hint", r.stderr, tc.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"help", "events"}, {"help", "events", "emit"}, {"events", "--help"},
		{"events", "emit", "--help"}, {"exec", "-h"}, {"commands", "serve", "--help"},
	} {
		r := cli(t, "", args...)
		if r.code != 0 || r.stdout == "" || r.stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	// Every subcommand documents itself with an example, and shows --socket.
	for _, g := range groups {
		for _, c := range g.commands {
			args := append(strings.Fields(commandPath(g, c)), "--help")
			r := cli(t, "", args...)
			for _, want := range []string{"Usage: continuum " + commandPath(g, c), "Example:", "--socket", "--timeout"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("%v lacks %q:\n%s", args, want, r.stdout)
				}
			}
		}
	}
}

func TestDaemonNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"info"}, {"events", "tail"}, {"commands", "serve", "a/b"}} {
		r := cli(t, sock, args...)
		if r.code != 1 {
			t.Errorf("%v: exit %d, want 1", args, r.code)
		}
		if !strings.Contains(r.stderr, "is continuumd running? start it with make run") || !strings.Contains(r.stderr, sock) {
			t.Errorf("%v: stderr %q", args, r.stderr)
		}
	}
}

func TestExecDeadline(t *testing.T) {
	sock := startDaemon(t)
	_, errOut, stop := background(t, sock, "commands", "serve", "demo/slow", "--delay", "1m")
	waitFor(t, "serve to register", func() bool { return strings.Contains(errOut.String(), "serving demo/slow") })
	start := time.Now()
	r := cli(t, sock, "exec", "demo/slow", "--timeout", "200ms")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: deadline_exceeded: ") {
		t.Errorf("exec past its deadline: exit %d, stderr %q", r.code, r.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("exec took %v with --timeout 200ms", d)
	}
	// The provider hears that the caller gave up.
	waitFor(t, "the provider to see the cancellation", func() bool { return strings.Contains(errOut.String(), "call cancelled") })
	if code := stop(); code != 0 {
		t.Errorf("serve exit %d", code)
	}
}

// With --no-reconnect, tails and serve exit when the daemon goes.
func TestStreamsEndWhenDaemonStops(t *testing.T) {
	sock, d := startDaemonHandle(t)
	_, errOut, stop := background(t, sock, "events", "tail", "--no-reconnect")
	_, logErr, stopLog := background(t, sock, "log", "tail", "--channel", "general", "--no-reconnect")
	_, serveErr, stopServe := background(t, sock, "commands", "serve", "demo/echo", "--no-reconnect")
	waitFor(t, "tails and serve to start", func() bool {
		return strings.Contains(errOut.String(), "watching") && strings.Contains(serveErr.String(), "serving") && strings.Contains(logErr.String(), "following")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tail to report the lost connection", func() bool { return strings.Contains(errOut.String(), "error: unavailable: lost the connection") })
	if code := stop(); code != 1 {
		t.Errorf("tail exit %d after the daemon stopped, want 1; stderr %q", code, errOut.String())
	}
	waitFor(t, "log tail to report the lost connection", func() bool { return strings.Contains(logErr.String(), "error: unavailable: lost the connection") })
	if code := stopLog(); code != 1 {
		t.Errorf("log tail exit %d after the daemon stopped, want 1; stderr %q", code, logErr.String())
	}
	waitFor(t, "serve to report the lost connection", func() bool { return strings.Contains(serveErr.String(), "error: unavailable: lost the connection") })
	if code := stopServe(); code != 1 {
		t.Errorf("serve exit %d after the daemon stopped, want 1; stderr %q", code, serveErr.String())
	}
}

// serve outlives a daemon restart: it says so, registers the command again
// once the daemon is back, and answers calls made after that. With
// --no-reconnect it exits with unavailable instead.
func TestServeReconnects(t *testing.T) {
	defer func(old struct{ first, max time.Duration }) { backoff = old }(backoff)
	backoff.first, backoff.max = 20*time.Millisecond, 100*time.Millisecond
	r := newRestartable(t)
	_, errOut, stop := background(t, r.sock, "commands", "serve", "demo/echo")
	waitFor(t, "serve to register", func() bool { return strings.Contains(errOut.String(), "serving demo/echo on") })
	cli(t, r.sock, "exec", "demo/echo", "--param", "text=before").ok(t)

	r.stop(t)
	waitFor(t, "serve to notice", func() bool { return strings.Contains(errOut.String(), "registering demo/echo again") })
	r.start(t)
	waitFor(t, "serve to register again", func() bool { return strings.Contains(errOut.String(), "serving demo/echo again") })
	res := cli(t, r.sock, "exec", "demo/echo", "--param", "text=after", "-o", "json").ok(t)
	if strings.TrimSpace(res.stdout) != `{"text":"after"}` {
		t.Errorf("echo after the restart: %q", res.stdout)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exit %d after Ctrl-C, stderr %s", code, errOut.String())
	}

	_, errOut2, stop2 := background(t, r.sock, "commands", "serve", "demo/once", "--no-reconnect")
	waitFor(t, "the second serve to register", func() bool { return strings.Contains(errOut2.String(), "serving demo/once") })
	r.stop(t)
	waitFor(t, "--no-reconnect to give up", func() bool { return strings.Contains(errOut2.String(), "unavailable") })
	if code := stop2(); code != exitError {
		t.Errorf("--no-reconnect exit %d, want %d; stderr %s", code, exitError, errOut2.String())
	}
}
