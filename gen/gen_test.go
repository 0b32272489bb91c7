package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedFilesAreCurrent fails when the checked-in shims differ from
// what the generator writes from the current API types, naming the stale files.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if stale := Stale("..", files); len(stale) > 0 {
		t.Fatalf("generated client files are stale; run `go run ./gen` (or `make gen`) and commit:\n  %s", strings.Join(stale, "\n  "))
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		b, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		for name := range a {
			if string(a[name]) != string(b[name]) {
				t.Fatalf("%s differs between two runs", name)
			}
		}
	}
}

func TestStaleNamesFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{"a/x.ts": []byte("x"), "b/y.py": []byte("y")}
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	if s := Stale(dir, files); len(s) != 0 {
		t.Fatalf("fresh write reported stale: %v", s)
	}
	os.WriteFile(filepath.Join(dir, "a", "x.ts"), []byte("edited by hand"), 0o644)
	os.Remove(filepath.Join(dir, "b", "y.py"))
	got := strings.Join(Stale(dir, files), ",")
	if got != "a/x.ts (differs),b/y.py (missing)" {
		t.Fatalf("Stale = %q", got)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ in, camel, snake, py string }{
		{"declare-class", "declareClass", "declare_class", "declare_class"},
		{"list-classes", "listClasses", "list_classes", "list_classes"},
		{"schemaVersion", "schemaVersion", "schema_version", "schema_version"},
		{"peerId", "peerId", "peer_id", "peer_id"},
		{"from", "from", "from", "from_"},
		{"class", "class", "class", "class_"},
		{"minTrustCircle", "minTrustCircle", "min_trust_circle", "min_trust_circle"},
		{"protocol-error", "protocolError", "protocol_error", "protocol_error"},
		{"IDFor", "idFor", "id_for", "id_for"},
	} {
		if got := camel(c.in); got != c.camel {
			t.Errorf("camel(%q) = %q, want %q", c.in, got, c.camel)
		}
		if got := snake(c.in); got != c.snake {
			t.Errorf("snake(%q) = %q, want %q", c.in, got, c.snake)
		}
		if got := pyName(c.in); got != c.py {
			t.Errorf("pyName(%q) = %q, want %q", c.in, got, c.py)
		}
	}
	if got := errorClass("gpu_unavailable"); got != "GpuUnavailableError" {
		t.Errorf("errorClass = %q", got)
	}
}

// A field typescriptify cannot render (it writes "{[key: string]: }" for a
// map of maps, which tsc refuses) must not reach the generated types.
func TestTSFieldsHaveTypes(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(files["bindings/typescript/src/gen/types.ts"]), "\n") {
		if strings.Contains(line, ": }") || strings.HasSuffix(strings.TrimSpace(line), ": ;") {
			t.Errorf("types.ts:%d has a field without a type: %s", i+1, line)
		}
	}
}
