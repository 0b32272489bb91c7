package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/kernel"
)

// A typo'd class: the CLI warns, naming the class it probably meant, and the
// JSON result says declared: false; --strict refuses it.
func TestEmitUndeclaredWarns(t *testing.T) {
	sock := startDaemon(t)
	cli(t, sock, "events", "declare", "chat:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)

	r := cli(t, sock, "events", "emit", "chat:postd", "--param", "roomId=general").ok(t)
	for _, want := range []string{`warning: class "chat:postd" is not declared`, "did you mean chat:posted?", "--strict"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %q", want, r.stderr)
		}
	}
	js := decode[map[string]any](t, cli(t, sock, "events", "emit", "chat:postd", "-o", "json").ok(t).stdout)
	if js["declared"] != false {
		t.Errorf("JSON result of an undeclared emit: %v", js)
	}

	// A declared class: no warning, declared: true.
	r = cli(t, sock, "events", "emit", "chat:posted", "--param", "roomId=general", "-o", "json").ok(t)
	if r.stderr != "" || decode[map[string]any](t, r.stdout)["declared"] != true {
		t.Errorf("declared emit: stdout %q stderr %q", r.stdout, r.stderr)
	}

	r = cli(t, sock, "events", "emit", "chat:postd", "--strict", "--param", "roomId=general")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "error: undeclared_class: ") || !strings.Contains(r.stderr, "did you mean chat:posted?") {
		t.Errorf("strict emit of an undeclared class: exit %d stderr %q", r.code, r.stderr)
	}
	cli(t, sock, "events", "emit", "chat:posted", "--strict", "--param", "roomId=general").ok(t)
}

// Typo'd subcommands and flags get the nearest real one.
func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"evnets", "list"}, "did you mean events?"},
		{[]string{"inof"}, "did you mean info?"},
		{[]string{"events", "emti", "a:b"}, "did you mean emit?"},
		{[]string{"log", "stat"}, "did you mean stats?"},
		{[]string{"events", "emit", "a:b", "--strcit"}, "did you mean --strict?"},
		{[]string{"info", "--sokcet", "x"}, "did you mean --socket?"},
		{[]string{"info", "-socket", "x"}, "did you mean --socket?"},
		{[]string{"--tiemout", "1s", "info"}, "did you mean --timeout?"},
	} {
		r := cli(t, "", tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// Nothing close: no suggestion.
	if r := cli(t, "", "frobnicate"); strings.Contains(r.stderr, "did you mean") {
		t.Errorf("suggested something for frobnicate: %q", r.stderr)
	}
}

func TestCloseness(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"emti", "emit"}, {"chat:postd", "chat:posted"}, {"lsit", "list"},
	} {
		if got := closest(tc.a, []string{"declare", tc.b, "zzz"}); got != tc.b {
			t.Errorf("closest(%q) = %q, want %q", tc.a, got, tc.b)
		}
	}
	if got := closest("x", []string{"info", "exec"}); got != "" {
		t.Errorf("closest(x) = %q", got)
	}
}

// Examples in --help name the binary as it was invoked, so that a checkout's
// bin/continuum prints lines that run as pasted.
func TestHelpExamplesNameTheBinary(t *testing.T) {
	defer func(old string) { progName = old }(progName)
	progName = invokedAs("bin/continuum")
	r := cli(t, "", "model", "tiny", "--help").ok(t)
	if !strings.Contains(r.stdout, "  bin/continuum model tiny /tmp/tiny.gguf && bin/continuum generate") {
		t.Errorf("examples: %s", r.stdout)
	}
	if invokedAs("continuum") != "continuum" || invokedAs("/tmp/go-build123/b001/exe/continuum") != "continuum" {
		t.Error("a PATH or go run invocation must print plain continuum")
	}
}

// restartable is a daemon on a fixed socket and state dir that a test can
// stop and start again, as a user restarting continuumd would.
type restartable struct {
	sock, state string
	d           *daemon.Daemon
}

func newRestartable(t *testing.T) *restartable {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "ccli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	r := &restartable{sock: filepath.Join(sockDir, "d.sock"), state: t.TempDir()}
	r.start(t)
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *restartable) start(t *testing.T) {
	t.Helper()
	d, err := daemon.Start(daemon.Config{Socket: r.sock, Kernel: kernel.Config{StateDir: r.state}})
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	r.d = d
}

func (r *restartable) stop(t *testing.T) {
	t.Helper()
	if r.d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.d.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	r.d = nil
}

// Tails print a header and aligned columns with meaningful senders, and
// survive a daemon restart: events tail watches again from then on, log tail
// goes on after the last event it printed and misses nothing logged while it
// was reconnecting.
func TestTailsHeaderAndReconnect(t *testing.T) {
	defer func(old struct{ first, max time.Duration }) { backoff = old }(backoff)
	backoff.first, backoff.max = 10*time.Millisecond, 50*time.Millisecond
	r := newRestartable(t)
	cli(t, r.sock, "events", "declare", "chat:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)

	live, liveErr, stopLive := background(t, r.sock, "events", "tail", "chat:*")
	logged, loggedErr, stopLogged := background(t, r.sock, "log", "tail", "--channel", "general")
	waitFor(t, "the tails to start", func() bool {
		return strings.Contains(liveErr.String(), "watching") && strings.Contains(loggedErr.String(), "following")
	})
	emit := func(text string) {
		cli(t, r.sock, "events", "emit", "chat:posted", "--param", "roomId=general", "--param", "text="+text).ok(t)
	}
	emit("before")
	waitFor(t, "both tails to print the first event", func() bool {
		return strings.Contains(live.String(), "before") && strings.Contains(logged.String(), "before")
	})

	r.stop(t)
	waitFor(t, "both tails to say they reconnect", func() bool {
		return strings.Contains(liveErr.String(), "reconnecting") && strings.Contains(loggedErr.String(), "reconnecting")
	})
	r.start(t)
	// Emitted at once: the log tail may not be back yet, and must still
	// print it (it resumes after its last seq).
	emit("while-reconnecting")
	waitFor(t, "the live tail to watch again", func() bool { return strings.Contains(liveErr.String(), "watching again") })
	emit("after")
	waitFor(t, "both tails to print the last event", func() bool {
		return strings.Contains(live.String(), "after") && strings.Contains(logged.String(), "after")
	})
	if code := stopLive(); code != 0 {
		t.Errorf("events tail exit %d: %s", code, liveErr.String())
	}
	if code := stopLogged(); code != 0 {
		t.Errorf("log tail exit %d: %s", code, loggedErr.String())
	}

	logLines := strings.Split(strings.TrimRight(logged.String(), "\n"), "\n")
	if len(logLines) != 4 || !strings.HasPrefix(logLines[0], "SEQ ") {
		t.Fatalf("log tail printed:\n%s", logged.String())
	}
	for i, text := range []string{"before", "while-reconnecting", "after"} {
		if !strings.Contains(logLines[i+1], `"text":"`+text+`"`) {
			t.Errorf("log tail line %d: %q, want %s", i+1, logLines[i+1], text)
		}
	}
	liveLines := strings.Split(strings.TrimRight(live.String(), "\n"), "\n")
	if !strings.HasPrefix(liveLines[0], "TIME ") || !strings.Contains(liveLines[len(liveLines)-1], "after") {
		t.Fatalf("events tail printed:\n%s", live.String())
	}
	// Columns line up under the header, and the sender names this
	// process (the CLI ran in it) rather than a bare connection number.
	for _, lines := range [][]string{logLines, liveLines} {
		col := strings.Index(lines[0], "SENDER")
		for _, l := range lines[1:] {
			if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
				t.Errorf("SENDER column at %d does not line up with %q", col, l)
				continue
			}
			sender, _, _ := strings.Cut(l[col:], " ")
			if !strings.Contains(sender, fmt.Sprintf(":%d/c", os.Getpid())) {
				t.Errorf("sender %q does not name the emitting process (pid %d)", sender, os.Getpid())
			}
		}
	}
}

// A durable log tail resumes from its acknowledged cursor after a restart:
// every event once, none twice.
func TestDurableLogTailAcrossRestart(t *testing.T) {
	defer func(old struct{ first, max time.Duration }) { backoff = old }(backoff)
	backoff.first, backoff.max = 10*time.Millisecond, 50*time.Millisecond
	r := newRestartable(t)
	cli(t, r.sock, "events", "declare", "chat:posted", "--schema-version", "v1", "--broadcast", "--channel", "byRoomId").ok(t)
	out, errOut, stop := background(t, r.sock, "log", "tail", "--channel", "general", "--durable", "notes", "--json")
	waitFor(t, "the tail to start", func() bool { return strings.Contains(errOut.String(), "following") })
	for _, text := range []string{"one", "two"} {
		cli(t, r.sock, "events", "emit", "chat:posted", "--param", "roomId=general", "--param", "text="+text).ok(t)
	}
	waitFor(t, "two events", func() bool { return strings.Count(out.String(), "\n") == 2 })
	r.stop(t)
	waitFor(t, "the tail to reconnect", func() bool { return strings.Contains(errOut.String(), "reconnecting") })
	r.start(t)
	cli(t, r.sock, "events", "emit", "chat:posted", "--param", "roomId=general", "--param", "text=three").ok(t)
	waitFor(t, "the third event", func() bool { return strings.Contains(out.String(), "three") })
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show up
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("durable tail printed:\n%s", out.String())
	}
	for i, text := range []string{"one", "two", "three"} {
		if !strings.Contains(lines[i], `"text":"`+text+`"`) {
			t.Fatalf("line %d %q, want %s", i, lines[i], text)
		}
	}
}
