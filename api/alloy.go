package api

// Wire types of the alloy/* methods (DESIGN §9, docs/ALLOY.md). An alloy
// travels as its JSON object (a map), exactly the document docs/ALLOY.md
// specifies, or as that document's text in a string. It is left untyped on
// purpose: signatures cover every field, so a client passes an alloy on as
// it got it, and the daemon checks it from those very values.

// AlloyArtifact is bytes the verifier should hash for a stage's output.
type AlloyArtifact struct {
	Stage string `msgpack:"stage,omitempty" json:"stage,omitempty" desc:"the stage whose output it is; default the last stage"`
	Path  string `msgpack:"path,omitempty" json:"path,omitempty" desc:"absolute path on the daemon's machine of a file, or of a folder holding a multi-file output"`
	Data  []byte `msgpack:"data" json:"data" desc:"the output's bytes (possibly empty), when no path is given; nil otherwise"`
}

// AlloyVerifyParams are the params of alloy/verify.
type AlloyVerifyParams struct {
	Alloy     any                       `msgpack:"alloy" json:"alloy" api:"required" desc:"the alloy: its JSON object, or its JSON text as a string"`
	Artifacts []AlloyArtifact           `msgpack:"artifacts,omitempty" json:"artifacts,omitempty" desc:"artifacts to hash and compare with their stages' outputHash"`
	Expect    map[string]map[string]any `msgpack:"expect,omitempty" json:"expect,omitempty" desc:"stage name to the requested config expected of it: exact match, an unknown key fails"`
}

// AlloyBand is an inclusive integer range.
type AlloyBand struct {
	Min int64 `msgpack:"min" json:"min" desc:"lowest value allowed"`
	Max int64 `msgpack:"max" json:"max" desc:"highest value allowed"`
}

// AlloyCheck is one check of a verdict.
type AlloyCheck struct {
	Kind    string     `msgpack:"kind" json:"kind" desc:"chain, config, artifact, tdd, vdd, negative_baselines or authorship"`
	Name    string     `msgpack:"name" json:"name" desc:"the check's name (a proof entry's name)"`
	Stage   string     `msgpack:"stage,omitempty" json:"stage,omitempty" desc:"the stage it is about"`
	Metric  string     `msgpack:"metric,omitempty" json:"metric,omitempty" desc:"the metric measured"`
	Passed  bool       `msgpack:"passed" json:"passed" desc:"whether it held"`
	Reason  string     `msgpack:"reason,omitempty" json:"reason,omitempty" desc:"why not, naming the stage"`
	N       int        `msgpack:"n,omitempty" json:"n,omitempty" desc:"runs of the measurement"`
	Median  *int64     `msgpack:"median,omitempty" json:"median,omitempty" desc:"median of the samples (the lower middle one for even n)"`
	Band    *AlloyBand `msgpack:"band,omitempty" json:"band,omitempty" desc:"the tolerance band"`
	Samples []int64    `msgpack:"samples,omitempty" json:"samples,omitempty" desc:"raw samples, in measurement order"`
}

// AlloyVerdict answers alloy/verify: the verifier's signed verdict. Its
// canonical JSON (field names as here) is what sig covers (docs/ALLOY.md).
type AlloyVerdict struct {
	AlloyHash  string       `msgpack:"alloyHash" json:"alloyHash" desc:"sha256 of the alloy's canonical bytes"`
	PolicyHash string       `msgpack:"policyHash" json:"policyHash" desc:"sha256 of the policy judged against: the proof contract and the expected configs"`
	Passed     bool         `msgpack:"passed" json:"passed" desc:"every check held"`
	Reason     string       `msgpack:"reason,omitempty" json:"reason,omitempty" desc:"the first failing check's reason"`
	Checks     []AlloyCheck `msgpack:"checks" json:"checks" desc:"what was checked"`
	Verifier   string       `msgpack:"verifier,omitempty" json:"verifier,omitempty" desc:"peer id of the install that signed the verdict"`
	VerifiedAt int64        `msgpack:"verifiedAt" json:"verifiedAt" desc:"unix milliseconds"`
	Sig        string       `msgpack:"sig,omitempty" json:"sig,omitempty" desc:"base64 Ed25519 signature of the verifier"`
	Stored     bool         `msgpack:"stored" json:"stored" desc:"the alloy's chain held and it is now stored (alloy/get finds it by alloyHash); not covered by sig"`
}

// AlloyHashParams name an alloy by its hash.
type AlloyHashParams struct {
	Hash string `msgpack:"hash" json:"hash" api:"required" desc:"the alloy hash (64 hex digits), or a unique prefix of at least 8"`
}

// AlloyListParams are the params of alloy/list.
type AlloyListParams struct {
	Limit int `msgpack:"limit,omitempty" json:"limit,omitempty" desc:"most entries, newest first (default 100, at most 1000)"`
}

// AlloySummary describes a stored alloy.
type AlloySummary struct {
	Hash     string   `msgpack:"hash" json:"hash" desc:"the alloy hash"`
	Type     int      `msgpack:"type" json:"type" desc:"the type byte (6: evaluation and inference runs)"`
	TypeName string   `msgpack:"typeName" json:"typeName" desc:"the type, in words"`
	Domains  []string `msgpack:"domains" json:"domains" desc:"its domains"`
	Stages   int      `msgpack:"stages" json:"stages" desc:"stage count"`
	Last     string   `msgpack:"last" json:"last" desc:"the last stage's name"`
	Executor string   `msgpack:"executor" json:"executor" desc:"the last stage's executor"`
	EndedAt  int64    `msgpack:"endedAt" json:"endedAt" desc:"the last stage's endedAt, unix milliseconds"`
	StoredAt int64    `msgpack:"storedAt" json:"storedAt" desc:"when this install stored it, unix milliseconds"`
}

// AlloyEntry answers alloy/get.
type AlloyEntry struct {
	Summary AlloySummary `msgpack:"summary" json:"summary" desc:"what alloy/list says of it"`
	Alloy   any          `msgpack:"alloy" json:"alloy" desc:"the alloy's JSON object"`
}
