package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// The README tour: a persona on the tiny model answers a hello that
// mentions it (random tokens, a real generation), the chat shows it as a
// persona, and persona status counts the answer. Then the other verbs, and
// usage errors.
func TestPersonaTour(t *testing.T) {
	sock := startInferenceDaemon(t, true)
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := gguf.WriteTinyModelFile(path, gguf.DefaultTinyConfig()); err != nil {
		t.Fatal(err)
	}
	cli(t, sock, "model", "load", path, "--name", "tiny").ok(t)

	r := cli(t, sock, "persona", "create", "ada", "--model", "tiny", "--room", "general", "--role", "a helper",
		"--max-tokens", "4", "--context-tokens", "160").ok(t)
	if !strings.Contains(r.stdout, "ada") || !strings.Contains(r.stdout, "general") {
		t.Fatalf("persona create:\n%s", r.stdout)
	}
	ada := decode[api.Persona](t, cli(t, sock, "persona", "get", "ada", "--json").ok(t).stdout)
	if ada.Name != "ada" || ada.Model != "tiny" || ada.Params.MaxTokens != 4 {
		t.Fatalf("persona get --json: %+v", ada)
	}
	if r := cli(t, sock, "persona", "list").ok(t); !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, "ada") {
		t.Errorf("persona list:\n%s", r.stdout)
	}

	cli(t, sock, "chat", "general", "--send", "hello @ada").ok(t)
	var h string
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(h, "[persona] ada") {
		if time.Now().After(deadline) {
			t.Fatalf("no answer from ada; chat:\n%s\nstatus:\n%s", h, cli(t, sock, "persona", "status").stdout)
		}
		time.Sleep(200 * time.Millisecond)
		h = cli(t, sock, "chat", "general", "--history", "10").ok(t).stdout
	}
	st := decode[[]api.PersonaStatus](t, cli(t, sock, "persona", "status", "ada", "--json").ok(t).stdout)
	if len(st) != 1 || st[0].Answered != 1 || st[0].State != api.PersonaRunning || st[0].Breaker.State != api.BreakerClosed {
		t.Errorf("persona status --json: %+v", st)
	}
	if r := cli(t, sock, "persona", "status").ok(t); !strings.Contains(r.stdout, "ANSWERED") || !strings.Contains(r.stdout, "running") {
		t.Errorf("persona status:\n%s", r.stdout)
	}

	// update changes only what its flags name.
	up := decode[api.Persona](t, cli(t, sock, "persona", "update", "ada", "--asleep", "--role", "asleep now", "--json").ok(t).stdout)
	if !up.Params.Asleep || up.Role != "asleep now" || up.Params.MaxTokens != 4 || up.Model != "tiny" {
		t.Errorf("persona update: %+v", up)
	}

	// Usage errors are exit 2 and name the flag; an unknown persona is not_found.
	if r := cli(t, sock, "persona", "create", "bob", "--room", "general"); r.code != exitUsage || !strings.Contains(r.stderr, "--model") {
		t.Errorf("create without --model: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := cli(t, sock, "persona", "create", "bob", "--model", "tiny"); r.code != exitUsage || !strings.Contains(r.stderr, "--room") {
		t.Errorf("create without --room: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := cli(t, sock, "persona", "get", "nobody"); r.code != exitError || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("get nobody: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := cli(t, sock, "persona", "create", "bad name!", "--model", "tiny", "--room", "general"); r.code != exitError || !strings.Contains(r.stderr, "invalid_argument") {
		t.Errorf("create with a bad name: exit %d, stderr %q", r.code, r.stderr)
	}

	cli(t, sock, "persona", "delete", "ada").ok(t)
	if r := cli(t, sock, "persona", "list", "--json").ok(t); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("persona list after delete: %s", r.stdout)
	}
}
