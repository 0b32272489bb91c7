package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/llama/gguf"
)

// `continuum generate --json` includes the run's alloy; `continuum alloy
// verify` passes the saved result and fails an edited copy; `alloy show`
// prints the chain and `alloy list` lists it.
func TestAlloyVerifyGenerateResult(t *testing.T) {
	sock := startInferenceDaemon(t, true)
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny.gguf")
	if err := gguf.WriteTinyModelFile(model, gguf.DefaultTinyConfig()); err != nil {
		t.Fatal(err)
	}
	cli(t, sock, "model", "load", model, "--name", "tiny").ok(t)
	out := cli(t, sock, "generate", "tiny", "hello world", "--max-tokens", "8", "--json").ok(t).stdout
	res := decode[map[string]any](t, out)
	a, ok := res["alloy"].(map[string]any)
	if !ok || a["type"] != float64(6) {
		t.Fatalf("generate --json has no alloy object: %.300s", out)
	}
	run := filepath.Join(dir, "run.json")
	if err := os.WriteFile(run, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}

	r := cli(t, sock, "alloy", "verify", run).ok(t)
	if !strings.HasPrefix(r.stdout, "PASSED  alloy ") || !strings.Contains(r.stdout, "chain") {
		t.Fatalf("verify:\n%s", r.stdout)
	}
	hash := strings.Fields(strings.SplitN(r.stdout, "\n", 2)[0])[2]

	// With the output: as text, and as a file.
	text := res["text"].(string)
	cli(t, sock, "alloy", "verify", run, "--text", text).ok(t)
	outFile := filepath.Join(dir, "out.txt")
	os.WriteFile(outFile, []byte(text), 0o644)
	cli(t, sock, "alloy", "verify", run, "--artifact", "generate="+outFile).ok(t)
	r = cli(t, sock, "alloy", "verify", run, "--text", text+" and more")
	if r.code != exitError || !strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stderr, "stage 0 (generate): output hash") {
		t.Fatalf("another output: %+v", r)
	}

	// An edited copy: one requested parameter changed.
	edited := strings.Replace(out, `"maxTokens": 8`, `"maxTokens": 80`, 1)
	if edited == out {
		t.Fatalf("no maxTokens in %s", out)
	}
	bad := filepath.Join(dir, "edited.json")
	os.WriteFile(bad, []byte(edited), 0o644)
	r = cli(t, sock, "alloy", "verify", bad)
	if r.code != exitError || !strings.Contains(r.stderr, "stage 0 (generate): signature does not verify") {
		t.Fatalf("edited copy: %+v", r)
	}
	v := decode[api.AlloyVerdict](t, cli(t, sock, "alloy", "verify", bad, "--json").stdout)
	if v.Passed || v.Checks[0].Kind != "chain" {
		t.Fatalf("edited copy --json: %+v", v)
	}
	// Not an alloy at all.
	os.WriteFile(bad, []byte(`{"text":"hi"}`), 0o644)
	if r := cli(t, sock, "alloy", "verify", bad); r.code != exitUsage || !strings.Contains(r.stderr, "holds no alloy") {
		t.Fatalf("no alloy: %+v", r)
	}
	os.WriteFile(bad, []byte(`{"stages":[], "version": 1.5}`), 0o644)
	if r := cli(t, sock, "alloy", "verify", bad); r.code != exitError || !strings.Contains(r.stderr, "invalid_argument") {
		t.Fatalf("a float: %+v", r)
	}

	// show: the readable chain; --json is the alloy, which verifies.
	r = cli(t, sock, "alloy", "show", hash[:12]).ok(t)
	for _, want := range []string{hash, "0x06 evaluation", "inference", "generate", "EXECUTOR", "requested:", "maxTokens=8", "chosen:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	shown := filepath.Join(dir, "shown.json")
	os.WriteFile(shown, []byte(cli(t, sock, "alloy", "show", hash, "--json").ok(t).stdout), 0o644)
	cli(t, sock, "alloy", "verify", shown, "--text", text).ok(t)
	if r := cli(t, sock, "alloy", "show", "00000000"); r.code != exitError || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("show unknown: %+v", r)
	}

	r = cli(t, sock, "alloy", "list").ok(t)
	if !strings.Contains(r.stdout, hash[:12]) || !strings.Contains(r.stdout, "generate") {
		t.Fatalf("list:\n%s", r.stdout)
	}
}
