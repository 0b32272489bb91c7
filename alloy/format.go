package alloy

import "fmt"

// Version is the format version this package writes and reads.
const Version = 1

// Type is the kind of transformation an alloy records (DESIGN §9).
type Type uint8

// Alloy types.
const (
	TypeModelForge     Type = 0x01
	TypeAdapterTrain   Type = 0x02
	TypeDataset        Type = 0x03
	TypeComputeReceipt Type = 0x04
	TypeDelivery       Type = 0x05
	TypeEvaluation     Type = 0x06 // evaluation and inference runs
	TypeVisionEncoder  Type = 0x07
	TypeAudioEncoder   Type = 0x08
	TypeCustom         Type = 0xFF // Alloy.Schema names the schema
)

var typeNames = map[Type]string{
	TypeModelForge:     "model forge",
	TypeAdapterTrain:   "adapter training",
	TypeDataset:        "dataset",
	TypeComputeReceipt: "compute receipt",
	TypeDelivery:       "delivery",
	TypeEvaluation:     "evaluation",
	TypeVisionEncoder:  "vision encoder",
	TypeAudioEncoder:   "audio encoder",
	TypeCustom:         "custom",
}

// Known reports whether t is one of the defined types.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return fmt.Sprintf("0x%02X %s", uint8(t), n)
	}
	return fmt.Sprintf("0x%02X unknown", uint8(t))
}

// ZeroHash is the prevHash of the first stage: 64 zero hex digits.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Limits of what Open accepts.
const (
	MaxSize      = 16 << 20 // bytes of one encoded alloy
	MaxStages    = 4096
	MaxNameLen   = 256 // stage, domain, check and metric names
	MaxOutputs   = 1 << 16
	MaxProofItem = 1024 // entries of each proof list
)

// Alloy is a chain of custody. Its JSON form is specified in docs/ALLOY.md;
// Marshal writes its canonical bytes and Hash their sha256.
type Alloy struct {
	Version int      `json:"version"`
	Type    Type     `json:"type"`
	Schema  string   `json:"schema,omitempty"` // required for TypeCustom
	Domains []string `json:"domains"`
	Stages  []Stage  `json:"stages"`
	Proof   *Proof   `json:"proof,omitempty"`
}

// Header is the part of an alloy every stage signature and the proof
// signature bind to, so a stage cannot be moved into another alloy.
type Header struct {
	Version int      `json:"version"`
	Type    Type     `json:"type"`
	Schema  string   `json:"schema,omitempty"`
	Domains []string `json:"domains"`
}

// Header returns a's header.
func (a *Alloy) Header() Header {
	return Header{Version: a.Version, Type: a.Type, Schema: a.Schema, Domains: a.Domains}
}

// Stage is one step of the chain.
type Stage struct {
	Name      string `json:"name"`
	PrevHash  string `json:"prevHash"`  // StageHash of the stage before; ZeroHash for the first
	InputHash string `json:"inputHash"` // the stage before's OutputHash (the first: its input's hash)
	Config    Config `json:"config"`
	// OutputHash is the sha256 of the output file, or for a multi-file
	// output the ManifestHash of Outputs.
	OutputHash string          `json:"outputHash"`
	Outputs    []ManifestEntry `json:"outputs,omitempty"`
	Executor   string          `json:"executor"`  // peer id of the signer
	StartedAt  int64           `json:"startedAt"` // unix milliseconds
	EndedAt    int64           `json:"endedAt"`
	Sig        string          `json:"sig"` // base64 Ed25519 over the stage's PAE bytes
}

// Config is what a stage was asked to do and what it chose. Requested must
// match the verifier's expectation exactly (an unknown key fails); Chosen is
// informational (seeds picked, rates measured). Values are JSON without
// floats: integers, strings (decimal strings for fractions), booleans,
// arrays and objects of those.
type Config struct {
	Requested map[string]any `json:"requested"`
	Chosen    map[string]any `json:"chosen,omitempty"`
}

// ManifestEntry is one file of a multi-file output.
type ManifestEntry struct {
	Path   string `json:"path"` // slash-separated, relative, clean
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Proof is a proof contract: what a verifier re-runs, and who wrote it.
type Proof struct {
	TDD               []Assertion   `json:"tdd,omitempty"`
	VDD               []Measurement `json:"vdd,omitempty"`
	NegativeBaselines []Baseline    `json:"negativeBaselines,omitempty"`
	Authorship        Authorship    `json:"authorship"`
	Sig               string        `json:"sig"` // base64 Ed25519 by Authorship.Signer
}

// Assertion (tdd): the artifact the verifier holds for Stage's output hashes
// to Fixture (and so does the stage's outputHash).
type Assertion struct {
	Name    string `json:"name"`
	Stage   string `json:"stage"`
	Fixture string `json:"fixture"`
}

// Measurement (vdd): Metric measured N times; the median (the lower middle
// sample when N is even) must lie in [Min, Max]. Values are integers in the
// unit the metric's name says (for example tokens_per_sec_milli).
type Measurement struct {
	Name   string `json:"name"`
	Metric string `json:"metric"`
	N      int    `json:"n"`
	Min    int64  `json:"min"`
	Max    int64  `json:"max"`
}

// Baseline (negative_baselines): Metric, measured N times (1 when N is 0),
// must not exceed Max at its median.
type Baseline struct {
	Name   string `json:"name"`
	Metric string `json:"metric"`
	N      int    `json:"n,omitempty"`
	Max    int64  `json:"max"`
}

// Authorship says who wrote the proof contract and after which methodology.
type Authorship struct {
	Signer      string `json:"signer"`      // peer id; its key signs the proof
	Methodology string `json:"methodology"` // sha256 hex of the methodology document
}
