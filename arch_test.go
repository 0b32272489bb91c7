// Package arch_test holds the import rules of docs/ARCHITECTURE.md as a test,
// so that a change that breaks the one-way flow (socket → ipc → kernel → log →
// back) fails `make test` instead of being found in review.
package arch_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/continuum-grid/continuum"

// rule says which of the module's packages a tree may import. Imports from
// outside the module (stdlib, bbolt, msgpack) are not its business. A package
// is governed by the rule with the longest matching tree; tests of that
// package (in-package and _test packages alike) may also import testAllow.
type rule struct {
	tree      string
	allow     []string
	testAllow []string
	why       string
}

// anyButCmd is every tree but cmd/: no package imports a program.
var anyButCmd = []string{"alloy", "alloysvc", "api", "chat", "bindings", "daemon", "dashboard", "examples", "gen", "grid", "inference", "ipc", "kernel", "llama", "persona"}

var rules = []rule{
	{tree: ".", why: "the module root holds only this test"},
	{tree: "api", allow: []string{"api"},
		why: "api is the leaf every side shares (and gen reads): it imports nothing of the project"},
	{tree: "llama", allow: []string{"llama"},
		why: "llama binds llama.cpp and knows nothing of continuum; inference adapts it"},
	{tree: "alloy", allow: []string{"alloy"},
		why: "alloy is a standalone library (chain of custody, proofs, verification): it imports nothing of the project"},
	{tree: "alloysvc", allow: []string{"api", "kernel", "alloy", "alloysvc"}, testAllow: anyButCmd,
		why: "the alloy service hosts package alloy in the kernel (k.Host) and stores alloys in its bbolt file; it does not speak ipc"},
	{tree: "kernel", allow: []string{"api", "kernel"},
		why: "the kernel is behaviour without transport: it never imports ipc (or anything above it)"},
	{tree: "ipc", allow: []string{"api", "ipc"},
		why: "ipc moves api types over sockets and never imports the kernel; daemon joins the two"},
	{tree: "gen", allow: []string{"api", "gen"},
		why: "the bindings are generated from api alone"},
	{tree: "inference", allow: []string{"api", "kernel", "llama", "alloy", "inference"}, testAllow: anyButCmd,
		why: "inference is a service hosted in the kernel (k.Host) over llama, signing each run's alloy; it does not speak ipc"},
	{tree: "chat", allow: []string{"api", "kernel", "chat"}, testAllow: anyButCmd,
		why: "chat is a service hosted in the kernel (k.Host) over the airc log; it does not speak ipc"},
	{tree: "persona", allow: []string{"api", "kernel", "alloy", "persona"}, testAllow: anyButCmd,
		why: "personas are hosted in the kernel and reach inference only through commands/execute (so a generation can be routed to a peer): never llama/ or inference/"},
	{tree: "grid", allow: []string{"api", "kernel", "ipc/msgrpc", "grid"}, testAllow: anyButCmd,
		why: "the grid is hosted in the kernel and speaks msgrpc over QUIC; it needs no other part of ipc"},
	{tree: "grid/contract", allow: []string{"api", "kernel", "ipc/msgrpc", "grid", "alloy"}, testAllow: anyButCmd,
		why: "the contract service is grid, and signs and checks delivery receipts with the alloy library"},
	{tree: "dashboard", allow: []string{"dashboard"},
		why: "the dashboard is static files embedded for the WebSocket listener to serve; the page talks to the daemon like any client, so the Go side imports nothing of the project"},
	{tree: "daemon", allow: []string{"api", "kernel", "ipc", "inference", "alloysvc", "grid", "daemon", "llama", "chat", "dashboard", "persona"}, testAllow: anyButCmd,
		why: "daemon wires the kernel, its services and the listeners; nothing imports it but programs and tests"},
	{tree: "cmd/continuum", allow: []string{"api", "ipc/client", "ipc/unixsock", "kernel/airc", "llama/gguf"}, testAllow: anyButCmd,
		why: "the CLI is a client: it talks to the daemon through ipc/client; its one offline operation (log compact) is kernel/airc's"},
	{tree: "cmd", allow: anyButCmd, testAllow: anyButCmd,
		why: "programs may import any library, never each other"},
	{tree: "examples", allow: anyButCmd, testAllow: anyButCmd,
		why: "examples embed the project like any other program"},
}

// pkg is what `go list -json` says of a package, as far as the rules need.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: not the whole module", len(pkgs))
	}
	for _, p := range pkgs {
		for _, v := range check(p) {
			t.Error(v)
		}
	}
}

// check returns p's broken rules, one line each.
func check(p pkg) []string {
	rel, ok := relative(p.ImportPath)
	if !ok {
		return nil
	}
	r := ruleFor(rel)
	if r == nil {
		return []string{fmt.Sprintf("%s: no import rule covers this tree; add one to arch_test.go and docs/ARCHITECTURE.md", rel)}
	}
	var out []string
	seen := map[string]bool{}
	test := append(slices.Clone(p.TestImports), p.XTestImports...)
	for i, imp := range append(slices.Clone(p.Imports), test...) {
		dep, ok := relative(imp)
		if !ok || dep == rel || seen[dep] {
			continue
		}
		seen[dep] = true
		isTest := i >= len(p.Imports)
		if within(dep, r.allow) || (isTest && within(dep, r.testAllow)) {
			continue
		}
		kind := "imports"
		if isTest {
			kind = "tests import"
		}
		out = append(out, fmt.Sprintf("%s %s %s: %s", rel, kind, dep, r.why))
	}
	return out
}

// relative is path inside the module, or false for a path outside it.
func relative(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// under reports whether path is tree or inside it.
func under(path, tree string) bool {
	return path == tree || strings.HasPrefix(path, tree+"/")
}

func within(path string, trees []string) bool {
	return slices.ContainsFunc(trees, func(tree string) bool { return under(path, tree) })
}

func ruleFor(path string) *rule {
	var best *rule
	for i := range rules {
		if under(path, rules[i].tree) && (best == nil || len(rules[i].tree) > len(best.tree)) {
			best = &rules[i]
		}
	}
	return best
}

// listPackages asks the go command for every package of the module (the bench
// module is a module of its own and is not listed).
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestImportRulesCatch makes sure the checker itself fails on each kind of
// break the rules exist for, so that a checker bug cannot pass everything.
func TestImportRulesCatch(t *testing.T) {
	bad := []pkg{
		{ImportPath: module + "/kernel/airc", Imports: []string{module + "/ipc/msgrpc"}},
		{ImportPath: module + "/kernel", XTestImports: []string{module + "/ipc/client"}},
		{ImportPath: module + "/ipc/server", Imports: []string{module + "/kernel"}},
		{ImportPath: module + "/api", Imports: []string{module + "/kernel/identity"}},
		{ImportPath: module + "/llama", Imports: []string{module + "/api"}},
		{ImportPath: module + "/llama/bench/x", Imports: []string{module + "/ipc/client"}},
		{ImportPath: module + "/grid/link", Imports: []string{module + "/ipc/server"}},
		{ImportPath: module + "/cmd/continuum", Imports: []string{module + "/kernel/store"}},
		{ImportPath: module + "/newtree", Imports: nil},
		{ImportPath: module + "/alloy", Imports: []string{module + "/api"}},
		{ImportPath: module + "/alloy/jcs", Imports: []string{module + "/kernel/identity"}},
		{ImportPath: module + "/alloysvc", Imports: []string{module + "/ipc/server"}},
	}
	for _, p := range bad {
		if v := check(p); len(v) == 0 {
			t.Errorf("%s importing %v passed the rules", p.ImportPath, append(p.Imports, p.XTestImports...))
		}
	}
	good := []pkg{
		{ImportPath: module + "/kernel/airc", Imports: []string{module + "/api", module + "/kernel/identity", "go.etcd.io/bbolt"}},
		{ImportPath: module + "/grid/replicate", Imports: []string{module + "/ipc/msgrpc", module + "/kernel/airc"}, XTestImports: []string{module + "/daemon"}},
		{ImportPath: module + "/daemon", Imports: []string{module + "/ipc/server", module + "/kernel"}},
	}
	for _, p := range good {
		if v := check(p); len(v) != 0 {
			t.Errorf("allowed imports refused: %v", v)
		}
	}
}
