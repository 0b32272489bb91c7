package alloy

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./alloy -run Golden -update once)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed:\ngot  %s\nwant %s", name, got, want)
	}
}

// TestGoldenVectors pins the canonical bytes, the alloy hash, a stage's
// signed PAE bytes and its signature: deterministic keys, fixed times.
func TestGoldenVectors(t *testing.T) {
	a := chain(t)
	b := marshal(t, a)
	golden(t, "chain.json", b)
	h, err := a.Hash()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "chain.hash", []byte(h+"\n"))
	body, err := stageBody(a.Header(), a.Stages[0])
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "stage0.pae", PAE(PayloadStage, body))
	golden(t, "manifest.hash", []byte(a.Stages[1].OutputHash+"\n"))
	if !bytes.HasPrefix(PAE(PayloadStage, body), []byte("DSSEv1 24 continuum/alloy-stage/v1 ")) {
		t.Fatalf("PAE prefix: %q", PAE(PayloadStage, body)[:40])
	}
	// The stored golden alloy opens, and its hash is the file's sha256.
	if _, err := Open(b); err != nil {
		t.Fatal(err)
	}
	if HashBytes(b) != h {
		t.Fatal("hash is not the sha256 of the canonical bytes")
	}
	// encoding/json would escape < > &; the canonical bytes do not.
	if !bytes.Contains(b, []byte(`"<held-out & fair>"`)) {
		t.Fatalf("HTML characters escaped in %s", b)
	}
}

func TestRoundTrip(t *testing.T) {
	a := chain(t)
	if err := a.SetProof(Proof{TDD: []Assertion{{Name: "score", Stage: "eval", Fixture: a.Stages[2].OutputHash}}, Authorship: Authorship{Methodology: SHA256Hex([]byte("method v1"))}}, author); err != nil {
		t.Fatal(err)
	}
	b := marshal(t, a)
	back, err := Open(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(t, back), b) {
		t.Fatal("round trip changed the bytes")
	}
	// Whitespace and member order do not matter: Open canonicalizes.
	loose := edit(t, b, func(map[string]any) {})
	loose = bytes.ReplaceAll(loose, []byte(","), []byte(",\n  "))
	if _, err := Open(loose); err != nil {
		t.Fatalf("reformatted alloy: %v", err)
	}
	if back.Stages[1].Executor != trainer.PeerID() || back.Proof.Authorship.Signer != author.PeerID() {
		t.Fatalf("signers: %+v", back)
	}
}

// wantStage asserts err is a *StageError for stage index i whose message
// holds every part.
func wantStage(t *testing.T, err error, i int, parts ...string) {
	t.Helper()
	var se *StageError
	if !errors.As(err, &se) || se.Index != i {
		t.Fatalf("want a StageError for stage %d, got %v", i, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%q lacks %q", err, p)
		}
	}
}

func TestTamper(t *testing.T) {
	good := marshal(t, chain(t))
	cases := []struct {
		name  string
		bytes func() []byte
		stage int
		parts []string
	}{
		{"changed output hash", func() []byte {
			return edit(t, good, func(m map[string]any) { stageMap(m, 1)["outputHash"] = SHA256Hex([]byte("other")) })
		}, 1, []string{"stage 1 (train)", "signature does not verify"}},
		{"changed requested config", func() []byte {
			return edit(t, good, func(m map[string]any) {
				stageMap(m, 0)["config"].(map[string]any)["requested"].(map[string]any)["dedupe"] = false
			})
		}, 0, []string{"stage 0 (dataset)", "signature"}},
		{"changed header type", func() []byte {
			return edit(t, good, func(m map[string]any) { m["type"] = 3 })
		}, 0, []string{"stage 0 (dataset)", "signature"}},
		{"forged stage: other key, same executor", func() []byte {
			a := chain(t)
			s := a.Stages[2]
			a.Stages = a.Stages[:2]
			if err := a.AddStage(s, seedSigner("mallory")); err != nil {
				t.Fatal(err)
			}
			return edit(t, marshal(t, a), func(m map[string]any) { stageMap(m, 2)["executor"] = evalutor.PeerID() })
		}, 2, []string{"stage 2 (eval)", "signature does not verify for executor " + evalutor.PeerID()}},
		{"forged stage: resigned middle stage", func() []byte {
			// Mallory replaces the train stage with her own, validly
			// signed: the next stage's prevHash no longer matches.
			a := chain(t)
			fake := &Alloy{Type: a.Type, Domains: a.Domains, Stages: a.Stages[:1:1]}
			s := a.Stages[1]
			s.Config.Requested = map[string]any{"rank": 64}
			if err := fake.AddStage(s, seedSigner("mallory")); err != nil {
				t.Fatal(err)
			}
			fake.Stages = append(fake.Stages, a.Stages[2])
			return marshal(t, fake)
		}, 2, []string{"stage 2 (eval)", "prevHash", "not the hash of stage 1 (train)"}},
		{"reordered stages", func() []byte {
			return edit(t, good, func(m map[string]any) {
				st := m["stages"].([]any)
				st[1], st[2] = st[2], st[1]
			})
		}, 1, []string{"stage 1 (eval)", "reordered"}},
		{"removed stage", func() []byte {
			return edit(t, good, func(m map[string]any) {
				st := m["stages"].([]any)
				m["stages"] = []any{st[0], st[2]}
			})
		}, 1, []string{"stage 1 (eval)", "prevHash"}},
		{"broken link", func() []byte {
			a := chain(t)
			s := a.Stages[2]
			a.Stages = a.Stages[:2]
			s.InputHash = SHA256Hex([]byte("something else"))
			if err := a.AddStage(s, evalutor); err != nil {
				t.Fatal(err)
			}
			return marshal(t, a)
		}, 2, []string{"stage 2 (eval)", "broken link", "stage 1 (train)'s outputHash"}},
		{"first prevHash not zeros", func() []byte {
			a := chain(t)
			a.Stages[0].PrevHash = SHA256Hex(nil)
			body, _ := stageBody(a.Header(), a.Stages[0])
			a.Stages[0].Sig = sign(forger, PayloadStage, body)
			return marshal(t, a)
		}, 0, []string{"stage 0 (dataset)", "64 zeros"}},
		{"manifest that is not its output hash", func() []byte {
			a := &Alloy{Type: TypeDataset, Domains: []string{"d"}}
			if err := a.AddStage(Stage{Name: "files", InputHash: ZeroHash, OutputHash: SHA256Hex([]byte("x")), Outputs: trainManifest(), Config: Config{Requested: map[string]any{}}}, forger); err != nil {
				t.Fatal(err)
			}
			return marshal(t, a)
		}, 0, []string{"stage 0 (files)", "outputs manifest"}},
		{"tampered proof", func() []byte {
			a := chain(t)
			if err := a.SetProof(Proof{TDD: []Assertion{{Name: "score", Stage: "eval", Fixture: a.Stages[2].OutputHash}}, Authorship: Authorship{Methodology: SHA256Hex(nil)}}, author); err != nil {
				t.Fatal(err)
			}
			return edit(t, marshal(t, a), func(m map[string]any) {
				m["proof"].(map[string]any)["tdd"].([]any)[0].(map[string]any)["fixture"] = ZeroHash
			})
		}, -1, []string{"proof", "signature does not verify for signer " + author.PeerID()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(c.bytes())
			wantStage(t, err, c.stage, c.parts...)
			// Verify turns the same failure into a failed verdict.
			v, err := Verify(context.Background(), c.bytes(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Passed || !strings.Contains(v.Reason, c.parts[0]) || v.Checks[0].Kind != CheckChain {
				t.Fatalf("verdict %+v", v)
			}
		})
	}
}

func TestNotAnAlloy(t *testing.T) {
	good := marshal(t, chain(t))
	for name, b := range map[string][]byte{
		"empty":         nil,
		"array":         []byte(`[]`),
		"no stages":     []byte(`{"version":1}`),
		"zero stages":   []byte(`{"version":1,"stages":[]}`),
		"float":         bytes.Replace(good, []byte(`"minLength":16`), []byte(`"minLength":16.5`), 1),
		"duplicate key": bytes.Replace(good, []byte(`{"domains"`), []byte(`{"version":1,"domains"`), 1),
		"unknown field": edit(t, good, func(m map[string]any) { m["extra"] = 1 }),
		"version 2":     edit(t, good, func(m map[string]any) { m["version"] = 2 }),
		"stage not obj": edit(t, good, func(m map[string]any) { m["stages"] = []any{1} }),
		"too large":     bytes.Repeat([]byte(" "), MaxSize+1),
		"deep":          []byte(strings.Repeat("[", 100)),
	} {
		_, err := Open(b)
		var fe *FormatError
		var se *StageError
		if !errors.As(err, &fe) && !(name == "version 2" && errors.As(err, &se)) {
			t.Errorf("%s: want a FormatError, got %v", name, err)
		}
		if _, err := Verify(context.Background(), b, Options{}); err == nil && name != "version 2" {
			t.Errorf("%s: Verify returned no error", name)
		}
	}
}

func TestArtifacts(t *testing.T) {
	a := chain(t)
	if err := a.SetProof(Proof{TDD: []Assertion{{Name: "score", Stage: "eval", Fixture: SHA256Hex([]byte("score: 97"))}}, Authorship: Authorship{Methodology: SHA256Hex([]byte("m"))}}, author); err != nil {
		t.Fatal(err)
	}
	b := marshal(t, a)
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	for p, c := range trainFiles {
		write(t, filepath.Join(full, p), c)
	}
	sub := filepath.Join(dir, "sub")
	write(t, filepath.Join(sub, "adapter/weights.bin"), trainFiles["adapter/weights.bin"])
	write(t, filepath.Join(sub, "README"), trainFiles["README"])
	extra := filepath.Join(dir, "extra")
	for p, c := range trainFiles {
		write(t, filepath.Join(extra, p), c)
	}
	write(t, filepath.Join(extra, "stowaway"), "x")
	changed := filepath.Join(dir, "changed")
	for p, c := range trainFiles {
		write(t, filepath.Join(changed, p), c)
	}
	write(t, filepath.Join(changed, "README"), "trainee")
	score := filepath.Join(dir, "score.txt")
	write(t, score, "score: 97")
	wrong := filepath.Join(dir, "wrong.txt")
	write(t, wrong, "score: 12")

	ctx := context.Background()
	cases := []struct {
		name string
		arts []Artifact
		want string // "" passes
	}{
		{"all held", []Artifact{{Stage: "train", Path: full}, {Path: score}}, ""},
		{"bytes in memory", []Artifact{{Data: []byte("score: 97")}}, ""},
		{"missing artifact", nil, "stage 2 (eval): tdd score: missing artifact"},
		{"artifact file gone", []Artifact{{Path: filepath.Join(dir, "nope")}}, "stage 2 (eval): missing artifact"},
		{"different output", []Artifact{{Path: wrong}}, "stage 2 (eval): output hash " + Short(SHA256Hex([]byte("score: 97"))) + " does not match"},
		{"subset of multi-file output", []Artifact{{Stage: "train", Path: sub}, {Path: score}}, "stage 1 (train): subset of a multi-file output: " + sub + " holds 2 of its 3 files; missing adapter/config.json"},
		{"one file of a multi-file output", []Artifact{{Stage: "train", Path: filepath.Join(full, "README")}, {Path: score}}, "stage 1 (train): its output is 3 files"},
		{"extra file", []Artifact{{Stage: "train", Path: extra}, {Path: score}}, "stage 1 (train): " + extra + " holds files that are not in its output: stowaway"},
		{"changed file", []Artifact{{Stage: "train", Path: changed}, {Path: score}}, "stage 1 (train): file README"},
		{"unknown stage", []Artifact{{Stage: "deploy", Path: score}}, `stage "deploy"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Verify(ctx, b, Options{Artifacts: c.arts})
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if !v.Passed {
					t.Fatalf("failed: %s", v.Reason)
				}
				return
			}
			if v.Passed || !strings.Contains(v.Reason, c.want) {
				t.Fatalf("reason %q, want %q", v.Reason, c.want)
			}
		})
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExpectedConfig(t *testing.T) {
	b := marshal(t, chain(t))
	exact := map[string]any{"rank": 8, "lr": "0.0002", "epochs": 3}
	for _, c := range []struct {
		name   string
		expect map[string]map[string]any
		want   string
	}{
		{"match", map[string]map[string]any{"train": exact}, ""},
		{"unknown key", map[string]map[string]any{"train": {"rank": 8, "lr": "0.0002"}}, `stage 1 (train): config.requested has unknown key "epochs"`},
		{"missing key", map[string]map[string]any{"train": {"rank": 8, "lr": "0.0002", "epochs": 3, "dropout": "0.1"}}, `lacks key "dropout"`},
		{"different value", map[string]map[string]any{"train": {"rank": 16, "lr": "0.0002", "epochs": 3}}, `key "rank" is 8, expected 16`},
		{"no such stage", map[string]map[string]any{"deploy": {}}, `stage "deploy": expected`},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := Verify(context.Background(), b, Options{Expect: c.expect})
			if err != nil {
				t.Fatal(err)
			}
			if (c.want == "") != v.Passed || !strings.Contains(v.Reason, c.want) {
				t.Fatalf("passed %v, reason %q; want %q", v.Passed, v.Reason, c.want)
			}
		})
	}
}

// samples is a clock-free measurement: it returns the given values in turn.
func samples(vals ...int64) (MeasureFunc, *int) {
	calls := 0
	return func(_ context.Context, metric string) (int64, error) {
		if metric != "tokens_per_sec_milli" && metric != "latency_ms" {
			return 0, errors.New("unknown metric")
		}
		v := vals[calls%len(vals)]
		calls++
		return v, nil
	}, &calls
}

func TestVDDBand(t *testing.T) {
	a := chain(t)
	err := a.SetProof(Proof{
		VDD:               []Measurement{{Name: "speed", Metric: "tokens_per_sec_milli", N: 5, Min: 9000, Max: 11000}},
		NegativeBaselines: []Baseline{{Name: "latency", Metric: "latency_ms", N: 3, Max: 120}},
		Authorship:        Authorship{Methodology: SHA256Hex([]byte("bench method v2"))},
	}, author)
	if err != nil {
		t.Fatal(err)
	}
	b := marshal(t, a)
	ctx := context.Background()

	// One outlier does not move the median out of the band.
	m, calls := samples(10500, 9900, 30000, 10100, 9800, 100, 110, 90)
	v, err := Verify(ctx, b, Options{Measure: m})
	if err != nil || !v.Passed {
		t.Fatalf("%+v %v", v, err)
	}
	if *calls != 8 {
		t.Fatalf("%d measurements, want 5 + 3", *calls)
	}
	var vdd, base *Check
	for i := range v.Checks {
		switch v.Checks[i].Kind {
		case CheckVDD:
			vdd = &v.Checks[i]
		case CheckBaseline:
			base = &v.Checks[i]
		}
	}
	if vdd == nil || *vdd.Median != 10100 || vdd.N != 5 || len(vdd.Samples) != 5 || vdd.Samples[2] != 30000 || vdd.Band.Min != 9000 || vdd.Band.Max != 11000 {
		t.Fatalf("vdd check %+v", vdd)
	}
	if base == nil || *base.Median != 100 || base.Samples[0] != 100 {
		t.Fatalf("baseline check %+v", base)
	}

	// Below the band: fails with the median and band in the reason.
	m, _ = samples(8000, 8500, 12000, 8900, 8700)
	v, _ = Verify(ctx, b, Options{Measure: m})
	if v.Passed || !strings.Contains(v.Reason, "vdd speed: median 8700 of 5 runs") || !strings.Contains(v.Reason, "[9000, 11000]") {
		t.Fatalf("%+v", v)
	}
	// Over the negative baseline.
	m, _ = samples(10000, 10000, 10000, 10000, 10000, 130, 125, 90)
	v, _ = Verify(ctx, b, Options{Measure: m})
	if v.Passed || !strings.Contains(v.Reason, "negative_baselines latency: latency_ms is 125, over the baseline 120") {
		t.Fatalf("%+v", v)
	}
	// No measurement available.
	v, _ = Verify(ctx, b, Options{})
	if v.Passed || !strings.Contains(v.Reason, "cannot measure tokens_per_sec_milli") {
		t.Fatalf("%+v", v)
	}
	// A cancelled verification is an error, not a verdict.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Verify(cctx, b, Options{Measure: m}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want int64
	}{{[]int64{3}, 3}, {[]int64{5, 1, 3}, 3}, {[]int64{4, 1, 3, 2}, 2}, {[]int64{-5, 7}, -5}, {nil, 0}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSignedVerdict(t *testing.T) {
	b := marshal(t, chain(t))
	ver := seedSigner("verifier")
	v, err := Verify(context.Background(), b, Options{Artifacts: []Artifact{{Data: []byte("score: 97")}}, Signer: ver, Now: func() time.Time { return time.UnixMilli(1700000020000) }})
	if err != nil || !v.Passed {
		t.Fatalf("%+v %v", v, err)
	}
	if v.Verifier != ver.PeerID() || v.VerifiedAt != 1700000020000 || v.AlloyHash != HashBytes(b) || len(v.PolicyHash) != 64 {
		t.Fatalf("%+v", v)
	}
	vb, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := OpenVerdict(vb)
	if err != nil || !back.Passed || back.AlloyHash != v.AlloyHash {
		t.Fatalf("%+v %v", back, err)
	}
	flipped := bytes.Replace(vb, []byte(`"passed":true`), []byte(`"passed":false`), 1)
	if _, err := OpenVerdict(flipped); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Fatalf("tampered verdict: %v", err)
	}
	unsigned := *v
	unsigned.Sig = ""
	ub, _ := unsigned.Marshal()
	if _, err := OpenVerdict(ub); err == nil {
		t.Fatal("unsigned verdict opened")
	}
	// Another policy, another policy hash.
	v2, _ := Verify(context.Background(), b, Options{Expect: map[string]map[string]any{"eval": {"suite": "<held-out & fair>"}}})
	if v2.PolicyHash == v.PolicyHash || !v2.Passed {
		t.Fatalf("policy hash %s for both, %+v", v.PolicyHash, v2)
	}
}

func TestPeerIDs(t *testing.T) {
	id := author.PeerID()
	pub, err := PublicKeyOf(id)
	if err != nil || PeerIDOf(pub) != id || len(id) != 53 {
		t.Fatalf("%s: %v", id, err)
	}
	// The last character carries 4 unused bits: a non-zero one spells
	// the same key a second way and is refused.
	alt := id[:52] + string("abcdefghijklmnopqrstuvwxyz234567"[strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", id[52])^1])
	for _, bad := range []string{"", "x" + id[1:], id[:40], alt, strings.ToUpper(id)} {
		if _, err := PublicKeyOf(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTypes(t *testing.T) {
	if TypeEvaluation.String() != "0x06 evaluation" || Type(0x42).Known() || Type(0x42).String() != "0x42 unknown" {
		t.Fatal(TypeEvaluation.String(), Type(0x42).String())
	}
	a := &Alloy{Type: TypeCustom, Domains: []string{"x"}}
	if err := a.AddStage(Stage{Name: "s", InputHash: ZeroHash, OutputHash: ZeroHash}, author); err != nil {
		t.Fatal(err)
	}
	_, err := Open(marshal(t, a))
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("custom without schema: %v", err)
	}
	a = &Alloy{Type: TypeCustom, Schema: "acme/report/v3", Domains: []string{"x"}}
	if err := a.AddStage(Stage{Name: "s", InputHash: ZeroHash, OutputHash: ZeroHash}, author); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(marshal(t, a)); err != nil {
		t.Fatal(err)
	}
	// A float in a config cannot be encoded at all.
	a = &Alloy{Type: TypeDataset, Domains: []string{"x"}}
	if err := a.AddStage(Stage{Name: "s", InputHash: ZeroHash, OutputHash: ZeroHash, Config: Config{Requested: map[string]any{"lr": 0.1}}}, author); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Fatalf("float config: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	a := chain(f)
	b := marshal(f, a)
	f.Add(b)
	f.Add(edit(f, b, func(m map[string]any) { m["type"] = 9 }))
	f.Add([]byte(`{"version":1,"type":6,"domains":["x"],"stages":[{"name":"s","sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Open(data)
		if err != nil {
			var fe *FormatError
			var se *StageError
			if !errors.As(err, &fe) && !errors.As(err, &se) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		// What opens re-encodes to bytes that open to the same hash.
		out, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Open(out)
		if err != nil {
			t.Fatal(err)
		}
		h1, _ := a.Hash()
		h2, _ := again.Hash()
		if h1 != h2 {
			t.Fatal("hash changed on re-open")
		}
	})
}
