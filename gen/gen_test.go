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

// TestDashboardBundleIsCurrent fails when dashboard/assets/dashboard.js was
// not rebuilt after its sources or the TypeScript client changed.
func TestDashboardBundleIsCurrent(t *testing.T) {
	if d := StaleDashboard(".."); d != "" {
		t.Fatalf("the dashboard bundle is stale; run scripts/build-dashboard.sh (make dashboard) and commit: %s", d)
	}
}

// TestStaleDashboardNamesChanges copies the dashboard's inputs, bundle and
// sums into a temp tree, then edits, adds and removes files there.
func TestStaleDashboardNamesChanges(t *testing.T) {
	dir := t.TempDir()
	inputs, err := dashboardInputs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(inputs, dashboardBundle, dashboardSumFile) {
		b, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if d := StaleDashboard(dir); d != "" {
		t.Fatalf("a faithful copy is stale: %s", d)
	}
	edit := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("dashboard/web/tail.ts", "// edited\n")
	edit(dashboardBundle, "// by hand\n")
	edit("bindings/typescript/src/extra.ts", "export {};\n")
	os.Remove(filepath.Join(dir, "bindings/typescript/src/node.ts"))
	want := "bindings/typescript/src/extra.ts (new), bindings/typescript/src/node.ts (gone), dashboard/assets/dashboard.js (changed), dashboard/web/tail.ts (changed)"
	if d := StaleDashboard(dir); d != want {
		t.Fatalf("StaleDashboard = %q\nwant %q", d, want)
	}
	os.Remove(filepath.Join(dir, dashboardSumFile))
	if d := StaleDashboard(dir); !strings.Contains(d, "missing") {
		t.Fatalf("no sum file: %q", d)
	}
	if d := StaleDashboard(t.TempDir()); d != "" {
		t.Fatalf("a tree without dashboard/: %q", d)
	}
}
