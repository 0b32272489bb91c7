package alloy

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"testing"
)

// seedSigner is a deterministic key for golden vectors: the seed is the
// sha256 of label.
func seedSigner(label string) KeySigner {
	seed := sha256.Sum256([]byte(label))
	return KeySigner(ed25519.NewKeyFromSeed(seed[:]))
}

var (
	forger   = seedSigner("forger")
	trainer  = seedSigner("trainer")
	evalutor = seedSigner("evaluator")
	author   = seedSigner("author")
)

// trainFiles are the files of the train stage's multi-file output.
var trainFiles = map[string]string{
	"adapter/weights.bin": "weights",
	"adapter/config.json": `{"rank":8}`,
	"README":              "trained",
}

func trainManifest() []ManifestEntry {
	var m []ManifestEntry
	for p, c := range trainFiles {
		m = append(m, ManifestEntry{Path: p, Size: int64(len(c)), SHA256: SHA256Hex([]byte(c))})
	}
	return m
}

// chain builds the golden three-stage alloy: a dataset, an adapter trained
// on it (three files), and an evaluation whose output is "score: 97".
func chain(t testing.TB) *Alloy {
	t.Helper()
	a := &Alloy{Type: TypeAdapterTrain, Domains: []string{"training", "eval"}}
	add := func(s Stage, by Signer) {
		t.Helper()
		if err := a.AddStage(s, by); err != nil {
			t.Fatal(err)
		}
	}
	add(Stage{Name: "dataset", InputHash: SHA256Hex([]byte("raw corpus")), OutputHash: SHA256Hex([]byte("clean corpus")),
		Config:    Config{Requested: map[string]any{"dedupe": true, "minLength": 16}, Chosen: map[string]any{"rows": 1200}},
		StartedAt: 1700000000000, EndedAt: 1700000001000}, forger)
	add(Stage{Name: "train", Outputs: trainManifest(),
		Config:    Config{Requested: map[string]any{"rank": 8, "lr": "0.0002", "epochs": 3}, Chosen: map[string]any{"seed": 7}},
		StartedAt: 1700000002000, EndedAt: 1700000009000}, trainer)
	add(Stage{Name: "eval", OutputHash: SHA256Hex([]byte("score: 97")),
		Config:    Config{Requested: map[string]any{"suite": "<held-out & fair>"}},
		StartedAt: 1700000010000, EndedAt: 1700000011000}, evalutor)
	return a
}

func marshal(t testing.TB, a *Alloy) []byte {
	t.Helper()
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit decodes canonical alloy bytes into generic JSON, lets fn change it,
// and encodes it again.
func edit(t testing.TB, b []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stageMap(m map[string]any, i int) map[string]any {
	return m["stages"].([]any)[i].(map[string]any)
}
