package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
)

func TestSenderLabel(t *testing.T) {
	for _, tc := range []struct {
		entry api.ChatEntry
		want  string
	}{
		{api.ChatEntry{Sender: "continuum:4242/c6"}, "continuum:4242"},
		{api.ChatEntry{Sender: "python3:977/c2"}, "python3:977"},
		{api.ChatEntry{Sender: "ws/c9"}, "ws"},
		{api.ChatEntry{Sender: "c3"}, "c3"},
		{api.ChatEntry{}, "?"},
		{api.ChatEntry{Sender: "cpersonaid", Persona: "helper"}, "[persona] helper"},
		{api.ChatEntry{Sender: "cpersonaid", Persona: "he\x1b[2Jlper"}, "[persona] he[2Jlper"},
		{api.ChatEntry{Sender: "evil\x1b[2J/c1"}, "evil[2J"},
	} {
		if got := senderLabel(tc.entry); got != tc.want {
			t.Errorf("senderLabel(%+v) = %q, want %q", tc.entry, got, tc.want)
		}
	}
	// The header marks a persona only on an event it signed as its own
	// origin: a client setting it on its own emit stays a client.
	spoof := api.ChatEntryOf(&api.Event{Sender: "node:1/c2", Origin: "cinstall", Headers: map[string]string{api.HeaderPersona: "ada"}})
	real := api.ChatEntryOf(&api.Event{Sender: "cpersona", Origin: "cpersona", Headers: map[string]string{api.HeaderPersona: "ada"}})
	if spoof.Persona != "" || real.Persona != "ada" {
		t.Errorf("persona from the header: spoofed %q, signed %q", spoof.Persona, real.Persona)
	}
	if got := terminalSafe("a\x1b]0;title\x07b\n\tc\r"); got != "a]0;titleb\n\tc" {
		t.Errorf("terminalSafe: %q", got)
	}
}

// Lines from a pipe are sent; the history shows on open, --send posts one
// message, --json prints entries, /quit ends without sending what follows.
func TestChatPipedAndSend(t *testing.T) {
	sock := startDaemon(t)
	r := cli(t, sock, "chat", "general", "--send", "first words").ok(t)
	if !strings.HasPrefix(r.stdout, "sent ") || !strings.Contains(r.stdout, "to general (seq 1)") {
		t.Errorf("--send: %q", r.stdout)
	}
	id := strings.Fields(r.stdout)[1]
	cli(t, sock, "chat", "general", "--send", "an answer", "--reply-to", id).ok(t)
	r = cliIn(t, sock, "from a pipe\n\n  \nline two\r\n/quit\nnever sent\n", "chat", "general").ok(t)
	if !strings.Contains(r.stdout, ": first words\n") || !strings.Contains(r.stdout, ": an answer") || !strings.Contains(r.stdout, " (to ") || !strings.Contains(r.stderr, "2 earlier messages") {
		t.Errorf("history on open:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
	r = cliIn(t, sock, "", "chat", "general", "--json").ok(t)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		m := decode[api.ChatEntry](t, l)
		got = append(got, m.Text)
		if m.Sender == "" || m.ID == "" || m.Seq == 0 || m.Lamport == 0 || m.TS == 0 {
			t.Errorf("entry lacks a field: %+v", m)
		}
	}
	if strings.Join(got, "|") != "first words|an answer|from a pipe|line two" {
		t.Errorf("transcript: %q", got)
	}
	r = cliIn(t, sock, "", "chat", "general", "--history", "1").ok(t)
	if strings.Contains(r.stdout, "from a pipe") || !strings.Contains(r.stdout, "line two") || !strings.Contains(r.stderr, "older ones") {
		t.Errorf("--history 1:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
	// A line the daemon refuses is reported and the session goes on.
	r = cliIn(t, sock, strings.Repeat("x", api.MaxChatTextLen+1)+"\nafter the long one\n", "chat", "general", "--history", "0").ok(t)
	if !strings.Contains(r.stderr, "not sent: invalid_argument") {
		t.Errorf("an oversized line: %s", r.stderr)
	}
	r = cliIn(t, sock, "", "chat", "general", "--history", "1").ok(t)
	if !strings.Contains(r.stdout, "after the long one") {
		t.Errorf("the line after a refused one was not sent: %s", r.stdout)
	}
}

func TestChatUsageAndErrors(t *testing.T) {
	sock := startDaemon(t)
	for _, args := range [][]string{
		{"chat"},
		{"chat", "a", "b"},
		{"chat", " "},
		{"chat", strings.Repeat("r", api.MaxChannelLen+1)},
		{"chat", "bad\x01room"},
		{"chat", "general", "--history", "501"},
		{"chat", "general", "--history", "-1"},
		{"chat", "general", "--reply-to", "x"},
	} {
		if r := cli(t, sock, args...); r.code != exitUsage {
			t.Errorf("%q: exit %d, stderr %s", args, r.code, r.stderr)
		}
	}
	r := cli(t, sock, "chat", "general", "--send", "   ")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "error: invalid_argument: ") {
		t.Errorf("--send of a blank text: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, filepath.Join(t.TempDir(), "none.sock"), "chat", "general")
	if r.code != exitError || !strings.Contains(r.stderr, "is continuumd running?") {
		t.Errorf("no daemon: exit %d, stderr %q", r.code, r.stderr)
	}
}

// With --no-reconnect, a session whose daemon stops ends with unavailable
// instead of hanging.
func TestChatEndsWhenDaemonStops(t *testing.T) {
	sock, d := startDaemonHandle(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"chat", "general", "--no-reconnect", "--socket", sock}, pr, &out, &errb)
	}()
	waitFor(t, "the session to open", func() bool { return strings.Contains(errb.String(), "earlier messages") })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != exitError || !strings.Contains(errb.String(), "unavailable") {
			t.Errorf("exit %d, stderr %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the chat session outlived its daemon")
	}
}

// A session outlives a daemon restart: it says so, comes back, and shows
// what was posted after the last message it had shown, including what came
// while it was reconnecting.
func TestChatReconnects(t *testing.T) {
	r := newRestartable(t)
	cli(t, r.sock, "chat", "general", "--send", "before the restart").ok(t)
	pr, pw := io.Pipe()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"chat", "general", "--socket", r.sock}, pr, &out, &errb)
	}()
	waitFor(t, "the session to open", func() bool { return strings.Contains(out.String(), "before the restart") })
	r.stop(t)
	waitFor(t, "the session to notice", func() bool { return strings.Contains(errb.String(), "reconnecting") })
	r.start(t)
	cli(t, r.sock, "chat", "general", "--send", "after the restart").ok(t)
	waitFor(t, "the session to reconnect", func() bool { return strings.Contains(errb.String(), "reconnected") })
	waitFor(t, "the message posted across the restart", func() bool { return strings.Contains(out.String(), "after the restart") })
	if _, err := io.WriteString(pw, "typed after reconnecting\n/quit\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, stderr %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end on /quit")
	}
	if n := strings.Count(out.String(), "before the restart"); n != 1 {
		t.Errorf("a message shown %d times after the reconnect:\n%s", n, out.String())
	}
	res := cliIn(t, r.sock, "", "chat", "general", "--history", "1").ok(t)
	if !strings.Contains(res.stdout, "typed after reconnecting") {
		t.Errorf("the line typed after reconnecting was not sent: %s", res.stdout)
	}
}

var (
	cliBuildOnce sync.Once
	cliBin       string
	cliBuildErr  error
	cliBuildOut  []byte
)

// cliBinary builds this command once per test run: tmux runs a program, not
// a function.
func cliBinary(t *testing.T) string {
	t.Helper()
	cliBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ctmcli")
		if err != nil {
			cliBuildErr = err
			return
		}
		cliBin = filepath.Join(dir, "continuum")
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		cliBuildOut, cliBuildErr = exec.Command(goBin, "build", "-o", cliBin, ".").CombinedOutput()
	})
	if cliBuildErr != nil {
		t.Fatalf("build continuum: %v\n%s", cliBuildErr, cliBuildOut)
	}
	return cliBin
}

// tmuxServer is a private tmux server (its own socket) for one test.
type tmuxServer struct {
	t    *testing.T
	sock string
}

func newTmux(t *testing.T) *tmuxServer {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (scripts/deps.sh installs it): the interactive chat test needs a terminal to type in")
	}
	dir, err := os.MkdirTemp("", "ctmux")
	if err != nil {
		t.Fatal(err)
	}
	s := &tmuxServer{t: t, sock: filepath.Join(dir, "tmux.sock")}
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-S", s.sock, "kill-server").Run()
		os.RemoveAll(dir)
	})
	return s
}

func (s *tmuxServer) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// open starts a session running command in a wide window.
func (s *tmuxServer) open(name, command string) {
	s.run("new-session", "-d", "-s", name, "-x", "200", "-y", "50", command)
}

func (s *tmuxServer) screen(name string) string {
	return s.run("capture-pane", "-p", "-t", name)
}

// waitScreen waits until the session's screen shows want.
func (s *tmuxServer) waitScreen(name, want string) string {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		sc := s.screen(name)
		if strings.Contains(sc, want) {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("session %s never showed %q; its screen:\n%s", name, want, sc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two `continuum chat general` sessions in real terminals against a real
// daemon: both show the history on open, a line typed in one appears in
// the other (and as "you" in its own), and /quit and Ctrl-D leave cleanly.
func TestChatInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and drives it through tmux")
	}
	tm := newTmux(t)
	bin := cliBinary(t)
	sock, _ := startDaemonHandle(t)
	cli(t, sock, "chat", "general", "--send", "welcome to general").ok(t)
	cli(t, sock, "chat", "random", "--send", "not this room").ok(t)

	status := t.TempDir()
	session := func(name string) {
		// The exit status lands in a file: the pane is gone once the
		// command ends.
		tm.open(name, fmt.Sprintf("%s --socket %s chat general; echo $? > %s", bin, sock, filepath.Join(status, name)))
	}
	session("one")
	session("two")
	for _, s := range []string{"one", "two"} {
		sc := tm.waitScreen(s, "welcome to general")
		if strings.Contains(sc, "not this room") {
			t.Errorf("session %s shows another room's message:\n%s", s, sc)
		}
		tm.waitScreen(s, "/quit or Ctrl-D to leave")
	}

	tm.run("send-keys", "-t", "one", "-l", "hello from one")
	tm.run("send-keys", "-t", "one", "Enter")
	sc := tm.waitScreen("two", "hello from one")
	if !strings.Contains(sc, "continuum:") {
		t.Errorf("session two does not say who spoke:\n%s", sc)
	}
	tm.waitScreen("one", "you: hello from one")

	tm.run("send-keys", "-t", "two", "-l", "and hello from two")
	tm.run("send-keys", "-t", "two", "Enter")
	tm.waitScreen("one", "and hello from two")
	tm.waitScreen("two", "you: and hello from two")

	// A third session opened now shows the whole exchange as history.
	tm.open("three", fmt.Sprintf("%s --socket %s chat general; echo $? > %s", bin, sock, filepath.Join(status, "three")))
	sc = tm.waitScreen("three", "and hello from two")
	if !strings.Contains(sc, "hello from one") || !strings.Contains(sc, "welcome to general") || strings.Contains(sc, "you:") {
		t.Errorf("session three's history:\n%s", sc)
	}

	tm.run("send-keys", "-t", "one", "-l", "/quit")
	tm.run("send-keys", "-t", "one", "Enter")
	tm.run("send-keys", "-t", "two", "C-d")
	tm.run("send-keys", "-t", "three", "C-c")
	for _, s := range []string{"one", "two", "three"} {
		waitFor(t, "session "+s+" to exit", func() bool {
			b, err := os.ReadFile(filepath.Join(status, s))
			return err == nil && len(b) > 0
		})
		if b, _ := os.ReadFile(filepath.Join(status, s)); strings.TrimSpace(string(b)) != "0" {
			t.Errorf("session %s exited with %s", s, b)
		}
	}
	// /quit sent nothing: the transcript is the three messages.
	r := cliIn(t, sock, "", "chat", "general", "--json").ok(t)
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n") + 1; n != 3 {
		t.Errorf("transcript after the sessions has %d messages:\n%s", n, r.stdout)
	}
}

// A message in both the history and the live part prints once; once the
// live part is past the history, nothing more is remembered.
func TestChatViewPrintsEachMessageOnce(t *testing.T) {
	var out syncBuffer
	v := newChatView(&env{stdout: &out, stderr: io.Discard, output: "text"}, "general")
	hist := []api.ChatEntry{{ID: "a", Seq: 1, Text: "one", Sender: "x/c1"}, {ID: "b", Seq: 2, Text: "two", Sender: "y/c2"}}
	v.histMax = 2
	for _, m := range hist {
		if err := v.show(m); err != nil {
			t.Fatal(err)
		}
	}
	v.sent("c")
	for _, m := range []api.ChatEntry{hist[1], {ID: "c", Seq: 3, Text: "three", Sender: "me/c9", ReplyTo: "b"}} {
		if err := v.show(m); err != nil {
			t.Fatal(err)
		}
	}
	if v.seen != nil {
		t.Error("seen outlived the overlap")
	}
	if got := out.String(); strings.Count(got, "two") != 1 || !strings.Contains(got, "you (to y): three") {
		t.Errorf("printed:\n%s", got)
	}
}
