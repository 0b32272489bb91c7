package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMissingAndEmptyAreHouseholdOnly(t *testing.T) {
	dir := t.TempDir()
	p, path, found, err := Load(dir)
	if err != nil || found || path != filepath.Join(dir, FileName) {
		t.Fatalf("missing: %v %v %s", err, found, path)
	}
	for _, q := range []*Policy{p, mustParse(t, ""), mustParse(t, " \n\t")} {
		if !q.AllowsOutbound("household") || q.AllowsOutbound("trusted-orgs") || q.AllowsOutbound("public-mesh") {
			t.Errorf("outbound defaults %+v", q.Outbound)
		}
		if q.AcceptsInbound("household", "demo/echo") != "" || q.AcceptsInbound("extended", "demo/echo") != ReasonCircle {
			t.Errorf("inbound defaults %+v", q.Inbound)
		}
		if q.Inbound.MaxConcurrentJobs != DefaultMaxConcurrentJobs || q.Outbound.Strategy != Closest {
			t.Errorf("defaults %+v", q)
		}
		if !q.Replicates("global", "public-mesh") || !q.Replicates("room/x", "household") || q.Replicates("room/x", "extended") {
			t.Errorf("replicate defaults %+v", q.Replicate)
		}
	}
}

func mustParse(t *testing.T, s string) *Policy {
	t.Helper()
	p, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The example in docs/GRID.md parses and its tests pass.
func TestTheDocumentedExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/GRID.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	const open = "```json policy.json\n"
	i := strings.Index(doc, open)
	if i < 0 {
		t.Fatal("docs/GRID.md has no ```json policy.json block")
	}
	rest := doc[i+len(open):]
	example := rest[:strings.Index(rest, "```")]
	p := mustParse(t, example)
	if len(p.Tests) == 0 {
		t.Error("the example has no tests")
	}
	if !p.AllowsOutbound("trusted-orgs") || p.AcceptsInbound("public-mesh", "demo/echo") == "" {
		t.Errorf("example: %+v", p)
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"not json", `{`, "unexpected EOF"},
		{"unknown field", `{"inbund": {}}`, `unknown field "inbund"`},
		{"wrong type", `{"inbound": {"maxConcurrentJobs": "four"}}`, "maxConcurrentJobs"},
		{"bad circle", `{"outbound": {"circles": ["friends"]}}`, `outbound.circles: "friends"`},
		{"bad strategy", `{"outbound": {"strategy": "random"}}`, "outbound.strategy"},
		{"negative price", `{"outbound": {"maxPrice": -1}}`, "outbound.maxPrice"},
		{"too many jobs", `{"inbound": {"maxConcurrentJobs": 100000}}`, "inbound.maxConcurrentJobs"},
		{"negative ceiling", `{"inbound": {"loadCeiling": -0.5}}`, "inbound.loadCeiling"},
		{"bad version", `{"version": 2}`, "version"},
		{"replicate circle", `{"replicate": {"friends": ["*"]}}`, "replicate"},
		{"trailing", `{} {}`, "trailing"},
		{"test direction", `{"tests": [{"direction": "sideways", "circle": "household", "command": "a/b", "expect": "allow"}]}`, "tests[0].direction"},
		{"test expect", `{"tests": [{"direction": "inbound", "circle": "household", "command": "a/b", "expect": "maybe"}]}`, "tests[0].expect"},
		{"failing test", `{"inbound": {"circles": ["household"], "commands": ["demo/echo"]},
			"tests": [{"name": "only echo", "direction": "inbound", "circle": "household", "command": "demo/other", "expect": "allow"}]}`, "tests[0] (only echo)"},
	} {
		_, err := Parse([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}

func TestRules(t *testing.T) {
	p := mustParse(t, `{"outbound": {"circles": ["household", "extended"], "maxPrice": 2},
		"inbound": {"circles": ["household", "trusted-orgs"], "commands": ["demo/echo"]},
		"replicate": {"trusted-orgs": ["room/shared"]},
		"tests": [{"direction": "inbound", "circle": "trusted-orgs", "command": "demo/echo", "expect": "allow"},
		          {"direction": "inbound", "circle": "trusted-orgs", "command": "demo/rm", "expect": "deny"},
		          {"direction": "outbound", "circle": "extended", "command": "x/y", "expect": "allow"},
		          {"direction": "outbound", "circle": "trusted-orgs", "command": "x/y", "expect": "deny"}]}`)
	if p.AcceptsInbound("trusted-orgs", "demo/rm") != ReasonCommand || *p.Outbound.MaxPrice != 2 {
		t.Errorf("%+v", p)
	}
	if !p.Replicates("room/shared", "trusted-orgs") || p.Replicates("room/other", "trusted-orgs") || p.Replicates("room/shared", "household") {
		t.Errorf("replicate %+v", p.Replicate)
	}
}

func TestLoadReadsTheFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{"inbound": {"maxConcurrentJobs": 1}}`), 0o600)
	p, _, found, err := Load(dir)
	if err != nil || !found || p.Inbound.MaxConcurrentJobs != 1 {
		t.Fatalf("%+v %v %v", p, found, err)
	}
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{"inbound": 1}`), 0o600)
	if _, _, found, err := Load(dir); err == nil || !found {
		t.Fatalf("bad file: %v %v", found, err)
	}
}
