// Command gen writes the TypeScript and Python client shims from the Go API
// types in package api: the params and result of every method in api.Methods,
// the event envelope, the enums in api.Enums and the error catalogue. Go is the
// one source of truth; the output is checked in and nobody edits it by hand.
// It also writes docs/METHODS.md, the method reference, from the same types.
// It reads the types' fields through api.WireFields, the one reading of the
// struct tags that the params decoder and kernel/info's schemas share.
//
//	go run ./gen            # rewrite the generated files under the repository root
//	go run ./gen -check     # regenerate into a temp dir; exit 1 naming stale files
//	                        # (and a stale dashboard bundle, see dashboard.go)
//	go run ./gen -dashboard-sum  # record the dashboard bundle's sums (scripts/build-dashboard.sh runs it)
//
// The files it owns are the keys of Generate's result; everything else under bindings/ (the
// transports, the client runtime, the tests) is written by hand and imports the
// generated modules.
package main

//go:generate go run . -root ..

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	root := flag.String("root", ".", "repository root the bindings/ paths are relative to")
	check := flag.Bool("check", false, "do not write: compare the generated files with what is on disk and fail naming the stale ones")
	dashSum := flag.Bool("dashboard-sum", false, "write dashboard/bundle.sum for the dashboard bundle as built (scripts/build-dashboard.sh runs it)")
	flag.Parse()

	if *dashSum {
		b, err := DashboardSum(*root)
		if err == nil {
			err = os.WriteFile(filepath.Join(*root, filepath.FromSlash(dashboardSumFile)), b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(2)
		}
		return
	}

	files, err := Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
	if *check {
		stale := Stale(*root, files)
		if len(stale) > 0 {
			fmt.Fprintln(os.Stderr, "gen: generated client files are stale (run `go run ./gen` or `make gen` and commit the result):")
			for _, s := range stale {
				fmt.Fprintln(os.Stderr, "  "+s)
			}
			os.Exit(1)
		}
		if d := StaleDashboard(*root); d != "" {
			fmt.Fprintln(os.Stderr, "gen: the dashboard bundle is stale (run `make dashboard` or scripts/build-dashboard.sh and commit the result): "+d)
			os.Exit(1)
		}
		return
	}
	if err := Write(*root, files); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
}

// Generate renders every generated file, keyed by its path relative to the
// repository root.
func Generate() (map[string][]byte, error) {
	m := newModel()
	files := map[string][]byte{}
	ts, err := renderTSTypes(m)
	if err != nil {
		return nil, err
	}
	files["bindings/typescript/src/gen/types.ts"] = ts
	files["bindings/typescript/src/gen/client.ts"] = renderTSClient(m)
	files["bindings/python/continuum_client/_generated.py"] = renderPython(m)
	files["docs/METHODS.md"] = renderMethodsMarkdown()
	return files, nil
}

// Write stores files under root, creating folders, and leaves unchanged files
// untouched so their timestamps stay.
func Write(root string, files map[string][]byte) error {
	for _, name := range sortedKeys(files) {
		path := filepath.Join(root, filepath.FromSlash(name))
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, files[name]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Stale names each generated file whose checked-in copy under root is missing
// or differs from what the generator writes now.
func Stale(root string, files map[string][]byte) []string {
	var stale []string
	for _, name := range sortedKeys(files) {
		old, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		switch {
		case err != nil:
			stale = append(stale, name+" (missing)")
		case !bytes.Equal(old, files[name]):
			stale = append(stale, name+" (differs)")
		}
	}
	// Folders that hold only generated files must hold nothing else.
	for _, dir := range generatedDirs {
		entries, _ := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
		for _, e := range entries {
			if name := dir + "/" + e.Name(); files[name] == nil {
				stale = append(stale, name+" (no longer generated; delete it)")
			}
		}
	}
	return stale
}

// generatedDirs are the folders whose every file the generator writes.
var generatedDirs = []string{"bindings/typescript/src/gen"}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
