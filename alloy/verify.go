package alloy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/alloy/jcs"
)

// Artifact is bytes the verifier holds for a stage's output: a file, a
// directory (a multi-file output, hashed as a manifest), or bytes in memory.
type Artifact struct {
	Stage string // the stage whose output it is; "" means the last stage
	Path  string // a file or a directory; or
	Data  []byte // the bytes themselves, when Path is ""
}

// MeasureFunc runs one measurement of metric and returns its value in the
// metric's integer unit. Verify calls it N times for a vdd entry.
type MeasureFunc func(ctx context.Context, metric string) (int64, error)

// Options say what Verify holds and expects besides the alloy.
type Options struct {
	// Artifacts are hashed and compared with their stages' outputHash.
	Artifacts []Artifact
	// Expect maps a stage name to the requested config the verifier
	// expects: each key must be there with an equal value, and a key the
	// stage requested that is not expected fails as unknown.
	Expect map[string]map[string]any
	// Measure runs the proof's vdd and negative_baselines measurements;
	// nil fails them (this verifier cannot measure).
	Measure MeasureFunc
	// Signer signs the verdict; nil leaves it unsigned.
	Signer Signer
	// Now stamps the verdict; nil means time.Now.
	Now func() time.Time
}

// Check kinds, as a Verdict lists them.
const (
	CheckChain      = "chain"    // signatures, links, hashes, manifests (Open)
	CheckConfig     = "config"   // requested config against Options.Expect
	CheckArtifact   = "artifact" // a held artifact against its stage's outputHash
	CheckTDD        = "tdd"      // an assertion: output hash equals a fixture
	CheckVDD        = "vdd"      // a measurement's median within its band
	CheckBaseline   = "negative_baselines"
	CheckAuthorship = "authorship" // the proof's signer and methodology
)

// Verify opens the alloy in data and runs every check the options and its
// proof contract call for. The verdict says what passed; err is non-nil only
// for input that is not an alloy (a *FormatError) or a cancelled ctx.
func Verify(ctx context.Context, data []byte, opts Options) (*Verdict, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if len(data) > MaxSize {
		return nil, formatErr("%d bytes is over the %d-byte limit", len(data), MaxSize)
	}
	g, err := jcs.Parse(data, jcs.Options{IntegersOnly: true})
	if err != nil {
		return nil, formatErr("%v", err)
	}
	canon, err := jcs.Append(nil, g)
	if err != nil {
		return nil, formatErr("%v", err)
	}
	v := &Verdict{AlloyHash: HashBytes(canon), VerifiedAt: now().UnixMilli(), Checks: []Check{}}
	a, err := openParsed(g, canon)
	var se *StageError
	switch {
	case errors.As(err, &se):
		v.add(Check{Kind: CheckChain, Name: "chain", Stage: se.Name, Reason: err.Error()})
	case err != nil:
		return nil, err
	default:
		v.add(Check{Kind: CheckChain, Name: "chain", Passed: true})
	}
	if v.PolicyHash, err = policyHash(a, opts.Expect); err != nil {
		return nil, err
	}
	if a != nil {
		if err := a.runChecks(ctx, v, opts); err != nil {
			return nil, err
		}
	}
	v.Passed = true
	for _, c := range v.Checks {
		if !c.Passed {
			v.Passed = false
			v.Reason = c.Reason
			break
		}
	}
	if opts.Signer != nil {
		if err := v.Sign(opts.Signer); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// policyHash is the hash of what the verdict was judged against: the
// proof contract (null when none, or when the chain did not open) and the
// expected configs.
func policyHash(a *Alloy, expect map[string]map[string]any) (string, error) {
	var proof any
	if a != nil && a.Proof != nil {
		proof = a.Proof
	}
	if expect == nil {
		expect = map[string]map[string]any{}
	}
	b, err := canonical(map[string]any{"proof": proof, "expect": expect})
	if err != nil {
		return "", fmt.Errorf("alloy: policy: %w", err)
	}
	return sha256Hex(b), nil
}

func (v *Verdict) add(c Check) { v.Checks = append(v.Checks, c) }

func (a *Alloy) stageIndex(name string) int {
	return slices.IndexFunc(a.Stages, func(s Stage) bool { return s.Name == name })
}

func (a *Alloy) label(i int) string { return fmt.Sprintf("stage %d (%s)", i, a.Stages[i].Name) }

func (a *Alloy) runChecks(ctx context.Context, v *Verdict, opts Options) error {
	// Expected configs, in stage order so the first failure is the earliest.
	for i, s := range a.Stages {
		exp, ok := opts.Expect[s.Name]
		if !ok {
			continue
		}
		c := Check{Kind: CheckConfig, Name: "config", Stage: s.Name, Passed: true}
		if reason := compareConfig(s.Config.Requested, exp); reason != "" {
			c.Passed, c.Reason = false, a.label(i)+": config.requested "+reason
		}
		v.add(c)
	}
	for name := range opts.Expect {
		if a.stageIndex(name) < 0 {
			v.add(Check{Kind: CheckConfig, Name: "config", Stage: name, Reason: fmt.Sprintf("stage %q: expected, but the alloy has no such stage", short(name))})
		}
	}

	held := map[int]bool{}
	for _, art := range opts.Artifacts {
		i := len(a.Stages) - 1
		if art.Stage != "" {
			if i = a.stageIndex(art.Stage); i < 0 {
				v.add(Check{Kind: CheckArtifact, Name: "artifact", Stage: art.Stage, Reason: fmt.Sprintf("an artifact is for stage %q, which the alloy does not have", short(art.Stage))})
				continue
			}
		}
		c := Check{Kind: CheckArtifact, Name: "artifact", Stage: a.Stages[i].Name, Passed: true}
		if err := a.checkArtifact(ctx, i, art); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.Passed, c.Reason = false, a.label(i)+": "+err.Error()
		} else {
			held[i] = true
		}
		v.add(c)
	}

	p := a.Proof
	if p == nil {
		return nil
	}
	// Open verified the proof's signature by its author.
	v.add(Check{Kind: CheckAuthorship, Name: "authorship", Passed: true})
	for _, t := range p.TDD {
		i := a.stageIndex(t.Stage)
		c := Check{Kind: CheckTDD, Name: t.Name, Stage: t.Stage, Passed: true}
		switch {
		case a.Stages[i].OutputHash != t.Fixture:
			c.Passed, c.Reason = false, fmt.Sprintf("%s: tdd %s: output hash %s is not the fixture %s", a.label(i), t.Name, Short(a.Stages[i].OutputHash), Short(t.Fixture))
		case !held[i]:
			c.Passed, c.Reason = false, fmt.Sprintf("%s: tdd %s: missing artifact: the verifier holds no bytes of this stage's output (a claimed digest is not proof)", a.label(i), t.Name)
		}
		v.add(c)
	}
	for _, m := range p.VDD {
		c := Check{Kind: CheckVDD, Name: m.Name, Metric: m.Metric, N: m.N, Band: &Band{Min: m.Min, Max: m.Max}}
		if err := measure(ctx, opts.Measure, m.Metric, m.N, &c); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.Reason = fmt.Sprintf("vdd %s: %v", m.Name, err)
		} else if med := *c.Median; med < m.Min || med > m.Max {
			c.Reason = fmt.Sprintf("vdd %s: median %d of %d runs of %s is outside the band [%d, %d]", m.Name, med, m.N, m.Metric, m.Min, m.Max)
		} else {
			c.Passed = true
		}
		v.add(c)
	}
	for _, b := range p.NegativeBaselines {
		n := max(b.N, 1)
		c := Check{Kind: CheckBaseline, Name: b.Name, Metric: b.Metric, N: n, Band: &Band{Min: -jcs.MaxSafeInteger, Max: b.Max}}
		if err := measure(ctx, opts.Measure, b.Metric, n, &c); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.Reason = fmt.Sprintf("negative_baselines %s: %v", b.Name, err)
		} else if med := *c.Median; med > b.Max {
			c.Reason = fmt.Sprintf("negative_baselines %s: %s is %d, over the baseline %d", b.Name, b.Metric, med, b.Max)
		} else {
			c.Passed = true
		}
		v.add(c)
	}
	return nil
}

// measure fills c's samples and median from n runs.
func measure(ctx context.Context, fn MeasureFunc, metric string, n int, c *Check) error {
	if fn == nil {
		return fmt.Errorf("this verifier cannot measure %s", metric)
	}
	c.Samples = make([]int64, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		x, err := fn(ctx, metric)
		if err != nil {
			return fmt.Errorf("measuring %s: %w", metric, err)
		}
		c.Samples = append(c.Samples, x)
	}
	med := Median(c.Samples)
	c.Median = &med
	return nil
}

// Median is the middle of the sorted samples; for an even count the lower
// of the two middle ones, so the median is always a value that was measured.
func Median(samples []int64) int64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// checkArtifact hashes the artifact and compares it with stage i's output.
func (a *Alloy) checkArtifact(ctx context.Context, i int, art Artifact) error {
	s := &a.Stages[i]
	if art.Path == "" {
		if len(s.Outputs) > 0 {
			return fmt.Errorf("its output is %d files; one blob is a subset of a multi-file output", len(s.Outputs))
		}
		if got := SHA256Hex(art.Data); got != s.OutputHash {
			return fmt.Errorf("output hash %s does not match the artifact held, %s", Short(s.OutputHash), Short(got))
		}
		return nil
	}
	st, err := os.Stat(art.Path)
	if err != nil {
		return fmt.Errorf("missing artifact: %v", err)
	}
	if !st.IsDir() {
		if len(s.Outputs) > 0 {
			return fmt.Errorf("its output is %d files; the one file %s is a subset of a multi-file output", len(s.Outputs), art.Path)
		}
		_, got, err := hashFile(ctx, art.Path)
		if err != nil {
			return fmt.Errorf("missing artifact: %v", err)
		}
		if got != s.OutputHash {
			return fmt.Errorf("output hash %s does not match the artifact held (%s), %s", Short(s.OutputHash), art.Path, Short(got))
		}
		return nil
	}
	m, err := hashDir(ctx, art.Path)
	if err != nil {
		return fmt.Errorf("artifact %s: %v", art.Path, err)
	}
	if len(s.Outputs) > 0 {
		var missing, extra []string
		have := map[string]ManifestEntry{}
		for _, e := range m {
			have[e.Path] = e
		}
		want := map[string]bool{}
		for _, e := range s.Outputs {
			want[e.Path] = true
			if _, ok := have[e.Path]; !ok {
				missing = append(missing, e.Path)
			}
		}
		for _, e := range m {
			if !want[e.Path] {
				extra = append(extra, e.Path)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("subset of a multi-file output: %s holds %d of its %d files; missing %s", art.Path, len(s.Outputs)-len(missing), len(s.Outputs), list(missing))
		}
		if len(extra) > 0 {
			return fmt.Errorf("%s holds files that are not in its output: %s", art.Path, list(extra))
		}
		for _, e := range s.Outputs {
			if h := have[e.Path]; h.SHA256 != e.SHA256 || h.Size != e.Size {
				return fmt.Errorf("file %s: sha256 %s (%d bytes) does not match the artifact held, %s (%d bytes)", e.Path, Short(e.SHA256), e.Size, Short(h.SHA256), h.Size)
			}
		}
	}
	got, err := ManifestHash(m)
	if err != nil {
		return err
	}
	if got != s.OutputHash {
		return fmt.Errorf("output hash %s does not match the manifest of %s, %s", Short(s.OutputHash), art.Path, Short(got))
	}
	return nil
}

func list(paths []string) string {
	if len(paths) > 5 {
		return strings.Join(paths[:5], ", ") + fmt.Sprintf(" and %d more", len(paths)-5)
	}
	return strings.Join(paths, ", ")
}

// compareConfig returns why requested does not match expect ("" when it does).
func compareConfig(requested map[string]any, expect map[string]any) string {
	var keys []string
	for k := range requested {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := expect[k]; !ok {
			return fmt.Sprintf("has unknown key %q", short(k))
		}
	}
	keys = keys[:0]
	for k := range expect {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		got, ok := requested[k]
		if !ok {
			return fmt.Sprintf("lacks key %q", short(k))
		}
		g, err1 := canonical(got)
		w, err2 := canonical(expect[k])
		if err1 != nil || err2 != nil {
			return fmt.Sprintf("key %q cannot be compared: %v", short(k), errors.Join(err1, err2))
		}
		if string(g) != string(w) {
			return fmt.Sprintf("key %q is %s, expected %s", short(k), short(string(g)), short(string(w)))
		}
	}
	return ""
}
