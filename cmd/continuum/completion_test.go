package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// complete sources the bash script and returns what it offers for words
// (the last one being completed).
func complete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellWord(w)
	}
	prog := "source " + shellWord(script) + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
		itoa(len(words)-1) + "\n_continuum\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	out, err := exec.Command("bash", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCompletionBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"completion", "bash"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	script := filepath.Join(t.TempDir(), "c.bash")
	if err := os.WriteFile(script, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := exec.Command("bash", "-c", "source "+shellWord(script)+" && complete -p continuum").CombinedOutput()
	if err != nil || !strings.Contains(string(reg), "-F _continuum continuum") {
		t.Fatalf("complete -p continuum: %v %s", err, reg)
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"continuum", "ev"}, "events"},
		{[]string{"continuum", "e"}, "exec events"},
		{[]string{"continuum", "co"}, "completion commands contracts"},
		{[]string{"continuum", "events", "e"}, "emit"},
		{[]string{"continuum", "grid", ""}, groupWords("grid")},
		{[]string{"continuum", "--socket", "/tmp/s", "events", "emit", "--sch"}, "--schema-version"},
		{[]string{"continuum", "--json", "ping", "--co"}, "--count"},
		{[]string{"continuum", "--socket", ""}, ""}, // a value: nothing of ours
		{[]string{"continuum", "ping", "--ti"}, "--timeout"},
		{[]string{"continuum", "sta"}, "status"},
		{[]string{"continuum", "status", "--js"}, "--json"},
	} {
		got := strings.Join(complete(t, script, tc.words...), " ")
		if got != tc.want {
			t.Errorf("%q: offered %q, want %q", tc.words, got, tc.want)
		}
	}
}

func groupWords(name string) string {
	for _, g := range groups {
		if g.name == name {
			return commandNamesSpaced(g)
		}
	}
	return ""
}

func commandNamesSpaced(g *group) string { return strings.ReplaceAll(commandNames(g), ", ", " ") }

func TestCompletionZshAndBadShell(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"completion", "zsh"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "bashcompinit") || !strings.Contains(out.String(), "complete -o default -F _continuum continuum") {
		t.Fatalf("zsh: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		script := filepath.Join(t.TempDir(), "c.zsh")
		os.WriteFile(script, out.Bytes(), 0o600)
		if b, err := exec.Command(zsh, "-c", "autoload -U compinit && compinit -u; source "+shellWord(script)+" && complete -p continuum").CombinedOutput(); err != nil {
			t.Fatalf("zsh: %v %s", err, b)
		}
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"completion", "fish"}, nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), `unknown shell "fish"`) {
		t.Fatalf("fish: exit %d: %s", code, errb.String())
	}
}
