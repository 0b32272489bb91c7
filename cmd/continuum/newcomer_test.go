package main

import (
	"strings"
	"testing"
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
