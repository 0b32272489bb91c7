package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The dashboard (package dashboard) embeds a JavaScript bundle that esbuild
// builds from TypeScript: its own sources and the generated client. Building
// it needs npm, which `go run ./gen -check` must not; so the build script
// (scripts/build-dashboard.sh) records the sha256 of every input and of the
// bundle in dashboardSumFile, and -check recomputes them. An input edited
// without rebuilding, a client regenerated without rebuilding, or a bundle
// edited by hand all show as a stale dashboard. bindings/test.sh rebuilds the
// bundle itself and compares the bytes, which also proves the build is
// reproducible.
const (
	dashboardSumFile = "dashboard/bundle.sum"
	dashboardBundle  = "dashboard/assets/dashboard.js"
)

// dashboardInputs lists, relative to root and sorted, the files the bundle
// is built from.
func dashboardInputs(root string) ([]string, error) {
	files := []string{
		"bindings/typescript/package-lock.json",
		"dashboard/tsconfig.json",
		"scripts/build-dashboard.sh",
	}
	for _, dir := range []string{"dashboard/web", "bindings/typescript/src"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ts") {
				return err
			}
			rel, err := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	return files, nil
}

// DashboardSum renders dashboardSumFile for the files under root as they are.
func DashboardSum(root string) ([]byte, error) {
	inputs, err := dashboardInputs(root)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# sha256 of what dashboard/assets/dashboard.js is built from, then of the bundle.\n")
	b.WriteString("# Written by scripts/build-dashboard.sh (make dashboard); checked by go run ./gen -check.\n")
	for _, name := range append(inputs, dashboardBundle) {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	return b.Bytes(), nil
}

// StaleDashboard says what is stale about the dashboard bundle under root,
// naming the files whose sums differ, or "" when it is current. A tree
// without a dashboard/ folder has nothing to check.
func StaleDashboard(root string) string {
	if _, err := os.Stat(filepath.Join(root, "dashboard")); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	now, err := DashboardSum(root)
	if err != nil {
		return err.Error()
	}
	old, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dashboardSumFile)))
	if err != nil {
		return dashboardSumFile + " is missing"
	}
	if bytes.Equal(old, now) {
		return ""
	}
	recorded := map[string]string{}
	for _, line := range strings.Split(string(old), "\n") {
		if sum, name, ok := strings.Cut(line, "  "); ok && !strings.HasPrefix(line, "#") {
			recorded[name] = sum
		}
	}
	var diff []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(now), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		seen[name] = true
		switch r, had := recorded[name]; {
		case !had:
			diff = append(diff, name+" (new)")
		case r != sum:
			diff = append(diff, name+" (changed)")
		}
	}
	for name := range recorded {
		if !seen[name] {
			diff = append(diff, name+" (gone)")
		}
	}
	sort.Strings(diff)
	if len(diff) == 0 {
		diff = []string{dashboardSumFile + " (edited)"}
	}
	return strings.Join(diff, ", ")
}
