package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

var alloyGroup = &group{
	name:    "alloy",
	summary: "verify alloys (signed chains of custody) and show the ones the daemon stored",
	commands: []*command{
		alloyVerifyCommand,
		alloyShowCommand,
		alloyListCommand,
	},
}

// errVerifyFailed makes a failed verdict exit with status 1 after it is printed.
var errVerifyFailed = errors.New("alloy verification failed")

var alloyVerifyCommand = &command{
	name:    "verify",
	args:    "FILE",
	summary: "verify an alloy: signatures, links, hashes, and the artifacts given",
	help: `Calls alloy/verify with the alloy in FILE ("-" for stdin). FILE is an alloy's
JSON (docs/ALLOY.md) or any JSON object with the alloy in its "alloy" field,
such as the output of 'continuum generate --json', so a generation's result can
be verified as saved.

The daemon checks every stage's signature before anything else, then the
chain's links and hashes, then hashes each --artifact itself (a file, or a
folder for a multi-file output, which must be handed whole) and compares it
with the stage's outputHash; a claimed digest is never taken on trust. An
artifact is for the last stage unless written STAGE=PATH. Paths are made
absolute here; the daemon reads the files.

Prints the verdict (signed by the daemon's install) and exits 0 when it
passed, 1 when it failed, with the reason naming the stage. The call is
bounded by --timeout (10s): raise it for artifacts of many gigabytes.`,
	example: `continuum generate tiny "hello" --json > run.json
continuum alloy verify run.json
continuum alloy verify dataset.alloy.json --artifact split=./out/ --artifact ./report.pdf`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		arts := fs.StringArray("artifact", nil, "[STAGE=]PATH of an output to hash and compare (repeatable)")
		text := fs.String("text", "", "the last stage's output given as text (a generation's text), instead of a file")
		return func(ctx context.Context, e *env, args []string) error {
			doc, err := readAlloyFile(e, args[0])
			if err != nil {
				return err
			}
			p := api.AlloyVerifyParams{Alloy: string(doc)}
			for _, a := range *arts {
				art, err := parseArtifact(a)
				if err != nil {
					return usagef("alloy verify", "--artifact %q: %v", a, err)
				}
				p.Artifacts = append(p.Artifacts, art)
			}
			if fs.Changed("text") {
				p.Artifacts = append(p.Artifacts, api.AlloyArtifact{Data: []byte(*text)})
			}
			var v api.AlloyVerdict
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodAlloyVerify, p, &v)
			}); err != nil {
				return err
			}
			if e.jsonOut() {
				if err := printJSON(e.stdout, v, false); err != nil {
					return err
				}
			} else {
				printVerdict(e.stdout, v)
			}
			if !v.Passed {
				return fmt.Errorf("%w: %s", errVerifyFailed, v.Reason)
			}
			return nil
		}
	},
}

// readAlloyFile reads FILE and returns the alloy's JSON: the document
// itself, or its "alloy" field when it is a wrapper (a generate result).
func readAlloyFile(e *env, name string) ([]byte, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(e.stdin, 64<<20))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the alloy: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, usagef("alloy verify", "%s is not a JSON object: %v", name, err)
	}
	if _, ok := top["stages"]; ok {
		return b, nil
	}
	if inner, ok := top["alloy"]; ok && len(inner) > 0 && inner[0] == '{' {
		return inner, nil
	}
	return nil, usagef("alloy verify", "%s holds no alloy: no \"stages\" and no \"alloy\" object", name)
}

// parseArtifact reads [STAGE=]PATH. A "=" counts as the stage separator
// only when what precedes it has no slash, so a path may contain "=".
func parseArtifact(s string) (api.AlloyArtifact, error) {
	var a api.AlloyArtifact
	if stage, path, ok := strings.Cut(s, "="); ok && !strings.Contains(stage, "/") {
		a.Stage, s = stage, path
	}
	if s == "" {
		return a, errors.New("no path")
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return a, err
	}
	a.Path = abs
	return a, nil
}

func printVerdict(w io.Writer, v api.AlloyVerdict) {
	status := "PASSED"
	if !v.Passed {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%s  alloy %s\n", status, v.AlloyHash)
	if v.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", v.Reason)
	}
	var rows [][]string
	for _, c := range v.Checks {
		ok := "ok"
		if !c.Passed {
			ok = "FAIL"
		}
		detail := c.Reason
		if c.Median != nil && c.Band != nil {
			detail = fmt.Sprintf("median %d of %d in [%d, %d]; samples %v. %s", *c.Median, c.N, c.Band.Min, c.Band.Max, c.Samples, c.Reason)
		}
		rows = append(rows, []string{ok, c.Kind, c.Name, orDash(c.Stage), orDash(strings.TrimSpace(detail))})
	}
	table(w, []string{"", "CHECK", "NAME", "STAGE", "DETAIL"}, rows)
	fmt.Fprintf(w, "verified by %s at %s (policy %s, signed)\n", v.Verifier, time.UnixMilli(v.VerifiedAt).UTC().Format(time.RFC3339), shortHash(v.PolicyHash))
}

var alloyShowCommand = &command{
	name:    "show",
	args:    "HASH",
	summary: "show a stored alloy as a readable chain: stages, who, when, hashes",
	help: `Calls alloy/get. HASH is the alloy hash or a unique prefix of at least 8 hex
digits (alloy list shows them). Prints the header, then one row per stage with
its executor, start time, duration and short input, output and previous
hashes, then each stage's requested config. --json prints the alloy itself,
which 'continuum alloy verify' accepts.`,
	example: `continuum alloy show 3f2a9c1b
continuum alloy show 3f2a9c1b --json > run.alloy.json`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			var entry api.AlloyEntry
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodAlloyGet, api.AlloyHashParams{Hash: args[0]}, &entry)
			}); err != nil {
				return err
			}
			doc := plain(entry.Alloy)
			if e.jsonOut() {
				return printJSON(e.stdout, doc, false)
			}
			m, _ := doc.(map[string]any)
			return printChain(e.stdout, entry.Summary, m)
		}
	},
}

func printChain(w io.Writer, s api.AlloySummary, a map[string]any) error {
	fields(w,
		"alloy", s.Hash,
		"type", s.TypeName,
		"domains", strings.Join(s.Domains, ", "),
		"stages", fmt.Sprint(s.Stages),
		"stored", time.UnixMilli(s.StoredAt).UTC().Format(time.RFC3339),
	)
	fmt.Fprintln(w)
	stages, _ := a["stages"].([]any)
	var rows [][]string
	for i, x := range stages {
		st, _ := x.(map[string]any)
		start, end := num(st["startedAt"]), num(st["endedAt"])
		rows = append(rows, []string{
			fmt.Sprint(i), str(st["name"]), shortHash(str(st["executor"])),
			time.UnixMilli(start).UTC().Format("2006-01-02 15:04:05"), (time.Duration(end-start) * time.Millisecond).String(),
			shortHash(str(st["inputHash"])), shortHash(str(st["outputHash"])), shortHash(str(st["prevHash"])),
		})
	}
	table(w, []string{"#", "STAGE", "EXECUTOR", "STARTED (UTC)", "TOOK", "INPUT", "OUTPUT", "PREV"}, rows)
	for i, x := range stages {
		st, _ := x.(map[string]any)
		cfg, _ := st["config"].(map[string]any)
		fmt.Fprintf(w, "\nstage %d (%s)\n", i, str(st["name"]))
		for _, part := range []string{"requested", "chosen"} {
			if c, ok := cfg[part].(map[string]any); ok && len(c) > 0 {
				fmt.Fprintf(w, "  %-9s %s\n", part+":", kvLine(c))
			}
		}
		if outs, ok := st["outputs"].([]any); ok {
			fmt.Fprintf(w, "  outputs:  %d files\n", len(outs))
		}
	}
	if p, ok := a["proof"].(map[string]any); ok {
		au, _ := p["authorship"].(map[string]any)
		fmt.Fprintf(w, "\nproof by %s (methodology %s)\n", shortHash(str(au["signer"])), shortHash(str(au["methodology"])))
		for _, kind := range []string{"tdd", "vdd", "negativeBaselines"} {
			if l, ok := p[kind].([]any); ok {
				fmt.Fprintf(w, "  %s: %d\n", kind, len(l))
			}
		}
	}
	return nil
}

// kvLine writes a config map as key=value pairs in key order.
func kvLine(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := m[k]
		if s, ok := v.(string); ok && len(s) == 64 {
			v = shortHash(s)
		}
		fmt.Fprintf(&b, "%s=%s", k, compactJSON(v))
	}
	return b.String()
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	case float64:
		return int64(x)
	case json.Number:
		n, _ := x.Int64()
		return n
	}
	return 0
}

// shortHash cuts a hash or peer id to 12 characters for tables.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

var alloyListCommand = &command{
	name:    "list",
	summary: "list the alloys the daemon stored, newest first",
	help:    `Calls alloy/list. Each generation's alloy is stored, and so is every alloy whose chain held in alloy/verify.`,
	example: `continuum alloy list --limit 20`,
	minArgs: 0,
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		limit := fs.Int("limit", 0, "most entries (default 100)")
		return func(ctx context.Context, e *env, args []string) error {
			var list []api.AlloySummary
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodAlloyList, api.AlloyListParams{Limit: *limit}, &list)
			}); err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, list, false)
			}
			var rows [][]string
			for _, s := range list {
				rows = append(rows, []string{shortHash(s.Hash), s.TypeName, strings.Join(s.Domains, ","), fmt.Sprint(s.Stages), s.Last, shortHash(s.Executor), time.UnixMilli(s.StoredAt).UTC().Format(time.RFC3339)})
			}
			return table(e.stdout, []string{"HASH", "TYPE", "DOMAINS", "STAGES", "LAST", "EXECUTOR", "STORED (UTC)"}, rows)
		}
	},
}
