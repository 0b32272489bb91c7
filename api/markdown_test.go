package api

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/METHODS.md")

// TestMethodsDoc keeps docs/METHODS.md in step with the Go types.
func TestMethodsDoc(t *testing.T) {
	const path = "../docs/METHODS.md"
	want := MethodsMarkdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s is stale: run go test ./api -run TestMethodsDoc -update", path)
	}
}
