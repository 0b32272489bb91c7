package alloy

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/continuum-grid/continuum/alloy/jcs"
)

// FormatError says the input is not an alloy (or not a verdict): bad JSON,
// a float, a wrong shape, an unknown field, an unsupported version.
type FormatError struct{ Msg string }

func (e *FormatError) Error() string { return "alloy: " + e.Msg }

func formatErr(format string, args ...any) error {
	return &FormatError{Msg: fmt.Sprintf(format, args...)}
}

// StageError says why a chain does not hold, naming the stage by its index
// (0-based) and name. Index is -1 for the proof contract (Name "proof").
type StageError struct {
	Index int
	Name  string
	Err   error
}

func (e *StageError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%s: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("stage %d (%s): %v", e.Index, e.Name, e.Err)
}

func (e *StageError) Unwrap() error { return e.Err }

func stageErr(i int, name string, format string, args ...any) error {
	return &StageError{Index: i, Name: name, Err: fmt.Errorf(format, args...)}
}

// Open checks an encoded alloy and returns it decoded. Signatures come
// first: the bytes are parsed only as far as generic JSON (RFC 8785,
// integers only), every stage's signature (and the proof's) is checked over
// its canonical bytes, and only then are fields decoded and the chain's
// links, hashes and manifests checked. Input that is not an alloy is a
// *FormatError; a chain that does not hold is a *StageError.
func Open(data []byte) (*Alloy, error) {
	if len(data) > MaxSize {
		return nil, formatErr("%d bytes is over the %d-byte limit", len(data), MaxSize)
	}
	v, err := jcs.Parse(data, jcs.Options{IntegersOnly: true})
	if err != nil {
		return nil, formatErr("%v", err)
	}
	canon, err := jcs.Append(nil, v)
	if err != nil {
		return nil, formatErr("%v", err)
	}
	return openParsed(v, canon)
}

// openParsed is Open after the parse: v is the generic value, canon its
// canonical bytes.
func openParsed(v any, canon []byte) (*Alloy, error) {
	top, ok := v.(map[string]any)
	if !ok {
		return nil, formatErr("an alloy is a JSON object")
	}
	stages, ok := top["stages"].([]any)
	if !ok {
		return nil, formatErr(`field "stages" is missing or not an array`)
	}
	if len(stages) == 0 || len(stages) > MaxStages {
		return nil, formatErr("an alloy has 1 to %d stages, this one %d", MaxStages, len(stages))
	}
	hdr := map[string]any{"version": top["version"], "type": top["type"], "domains": top["domains"]}
	if s, ok := top["schema"]; ok {
		hdr["schema"] = s
	}
	// Verify before parse. Each stage's hash (the next prevHash) comes from
	// the same generic values; the round trip below makes sure the typed
	// stage encodes to exactly these bytes.
	hashes := make([]string, len(stages))
	for i, sv := range stages {
		sm, ok := sv.(map[string]any)
		if !ok {
			return nil, formatErr("stage %d is not an object", i)
		}
		name, _ := sm["name"].(string)
		if err := verifyGeneric(sm, sm["executor"], "executor", hdr, "stage", PayloadStage); err != nil {
			return nil, &StageError{Index: i, Name: short(name), Err: err}
		}
		b, err := jcs.Append(nil, sm)
		if err != nil {
			return nil, formatErr("stage %d: %v", i, err)
		}
		hashes[i] = sha256Hex(b)
	}
	if pv, ok := top["proof"]; ok {
		pm, ok := pv.(map[string]any)
		if !ok {
			return nil, formatErr(`field "proof" is not an object`)
		}
		au, _ := pm["authorship"].(map[string]any)
		if err := verifyGeneric(pm, au["signer"], "signer", hdr, "proof", PayloadProof); err != nil {
			return nil, &StageError{Index: -1, Name: "proof", Err: err}
		}
	}

	// Only now: typed fields.
	a := new(Alloy)
	if err := decodeStrict(canon, a); err != nil {
		return nil, formatErr("%v", err)
	}
	if again, err := a.Marshal(); err != nil || !bytes.Equal(again, canon) {
		return nil, formatErr("fields are not in their canonical shape (a null for a list, an empty field that should be left out, an out-of-range value)")
	}
	if err := a.check(hashes); err != nil {
		return nil, err
	}
	return a, nil
}

// verifyGeneric checks the sig of the generic record m, signed by the peer
// id signer (the record's role says which field named it: "executor" or
// "signer"), over {"header": hdr, key: m without sig}.
func verifyGeneric(m map[string]any, signer any, role string, hdr map[string]any, key, typ string) error {
	id, ok := signer.(string)
	if !ok {
		return fmt.Errorf("no %s peer id", role)
	}
	sig, ok := m["sig"].(string)
	if !ok {
		return errors.New(`field "sig" is missing or not a string`)
	}
	rest := make(map[string]any, len(m))
	for k, x := range m {
		if k != "sig" {
			rest[k] = x
		}
	}
	body, err := jcs.Append(nil, map[string]any{"header": hdr, key: rest})
	if err != nil {
		return err
	}
	if err := verifySig(id, sig, typ, body); err != nil {
		if errors.Is(err, errBadSig) {
			return fmt.Errorf("signature does not verify for %s %s (the record was changed after signing, or signed by another key)", role, short(id))
		}
		return err
	}
	return nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec.Decode(v)
}

// check is everything after the signatures: header, stages, links,
// manifests, proof items. hashes are the stages' StageHash values.
func (a *Alloy) check(hashes []string) error {
	if a.Version != Version {
		return formatErr("version %d is not supported (this verifier reads version %d)", a.Version, Version)
	}
	if !a.Type.Known() {
		return formatErr("type %s is not defined", a.Type)
	}
	if (a.Type == TypeCustom) != (a.Schema != "") {
		return formatErr("a schema is named by, and only by, a custom (0xFF) alloy")
	}
	if len(a.Domains) == 0 {
		return formatErr("an alloy names at least one domain")
	}
	for _, d := range a.Domains {
		if d == "" || len(d) > MaxNameLen {
			return formatErr("a domain is 1 to %d bytes", MaxNameLen)
		}
	}
	names := map[string]int{}
	for i := range a.Stages {
		s := &a.Stages[i]
		if s.Name == "" || len(s.Name) > MaxNameLen {
			return stageErr(i, short(s.Name), "a stage name is 1 to %d bytes", MaxNameLen)
		}
		if j, dup := names[s.Name]; dup {
			return stageErr(i, s.Name, "the name is also stage %d's", j)
		}
		names[s.Name] = i
		for _, h := range []struct{ field, v string }{{"prevHash", s.PrevHash}, {"inputHash", s.InputHash}, {"outputHash", s.OutputHash}} {
			if !isHash(h.v) {
				return stageErr(i, s.Name, "%s %q is not 64 lowercase hex digits", h.field, short(h.v))
			}
		}
		want := ZeroHash
		if i > 0 {
			want = hashes[i-1]
		}
		if s.PrevHash != want {
			if i == 0 {
				return stageErr(i, s.Name, "the first stage's prevHash must be 64 zeros, not %s", Short(s.PrevHash))
			}
			return stageErr(i, s.Name, "prevHash %s is not the hash of stage %d (%s), %s: stages removed, inserted or reordered", Short(s.PrevHash), i-1, a.Stages[i-1].Name, Short(want))
		}
		if i > 0 && s.InputHash != a.Stages[i-1].OutputHash {
			return stageErr(i, s.Name, "broken link: inputHash %s is not stage %d (%s)'s outputHash %s", Short(s.InputHash), i-1, a.Stages[i-1].Name, Short(a.Stages[i-1].OutputHash))
		}
		if s.StartedAt < 0 || s.EndedAt < s.StartedAt {
			return stageErr(i, s.Name, "endedAt %d is before startedAt %d", s.EndedAt, s.StartedAt)
		}
		if s.Config.Requested == nil {
			return stageErr(i, s.Name, "config.requested is missing")
		}
		if len(s.Outputs) > 0 {
			if err := checkManifest(s.Outputs); err != nil {
				return stageErr(i, s.Name, "outputs: %v", err)
			}
			if h, _ := ManifestHash(s.Outputs); h != s.OutputHash {
				return stageErr(i, s.Name, "outputHash %s is not the hash of its outputs manifest, %s", Short(s.OutputHash), Short(h))
			}
		}
	}
	if p := a.Proof; p != nil {
		if err := p.check(names); err != nil {
			return &StageError{Index: -1, Name: "proof", Err: err}
		}
	}
	return nil
}

func (p *Proof) check(stages map[string]int) error {
	if !isHash(p.Authorship.Methodology) {
		return errors.New("authorship.methodology is not a sha256 hex digest")
	}
	if len(p.TDD) > MaxProofItem || len(p.VDD) > MaxProofItem || len(p.NegativeBaselines) > MaxProofItem {
		return fmt.Errorf("more than %d entries in a proof list", MaxProofItem)
	}
	var names []string
	for _, t := range p.TDD {
		if _, ok := stages[t.Stage]; !ok {
			return fmt.Errorf("tdd %q asserts on stage %q, which the alloy does not have", short(t.Name), short(t.Stage))
		}
		if !isHash(t.Fixture) {
			return fmt.Errorf("tdd %q: fixture is not a sha256 hex digest", short(t.Name))
		}
		names = append(names, t.Name)
	}
	for _, m := range p.VDD {
		if m.N < 1 || m.N > 1000 || m.Min > m.Max || m.Metric == "" || len(m.Metric) > MaxNameLen {
			return fmt.Errorf("vdd %q: n is 1 to 1000, min ≤ max, and a metric is named", short(m.Name))
		}
		names = append(names, m.Name)
	}
	for _, b := range p.NegativeBaselines {
		if b.N < 0 || b.N > 1000 || b.Metric == "" || len(b.Metric) > MaxNameLen {
			return fmt.Errorf("negative_baselines %q: n is 0 to 1000 and a metric is named", short(b.Name))
		}
		names = append(names, b.Name)
	}
	for _, n := range names {
		if n == "" || len(n) > MaxNameLen {
			return fmt.Errorf("a proof entry's name is 1 to %d bytes", MaxNameLen)
		}
	}
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return fmt.Errorf("two proof entries are named %q", short(names[i]))
		}
	}
	return nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Short is a hash cut to 12 digits and "…", for messages and displays.
func Short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// toMap turns a struct into the generic map its JSON form decodes to.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("alloy: encode: %w", err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("alloy: encode: %w", err)
	}
	return m, nil
}
