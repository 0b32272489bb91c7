package airc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/vmihailenco/msgpack/v5"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json (then copy the new hex into docs/CANONICAL.md)")

type goldenFile struct {
	Comment   string         `json:"comment"`
	Seed      string         `json:"seed"`
	PublicKey string         `json:"publicKey"`
	PeerID    string         `json:"peerId"`
	Vectors   []goldenVector `json:"vectors"`
}

type goldenVector struct {
	Name      string `json:"name"`
	Canonical string `json:"canonical"` // hex of the canonical encoding (without the domain prefix)
	Hash      string `json:"hash"`      // hex SHA-256 of SigningDomain + canonical
	Sig       string `json:"sig"`       // hex Ed25519 signature of SigningDomain + canonical
}

func goldenSeed() []byte {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seed
}

// goldenEvents are the inputs of the vectors, also listed in docs/CANONICAL.md.
func goldenEvents(origin string) []api.Event {
	first := api.Event{
		ID: "01HZX3V4Q2J8K9M0N1P2R3S4T5", Class: "chat:posted", Channel: "room-42",
		Origin: origin, OriginSeq: 1, Prev: make([]byte, 32), Sender: "persona:ada",
		Lamport: 7, TS: 1700000000123, SchemaVersion: "v1",
		Headers: map[string]string{"trace": "abc", "b": "2", "a": "1"},
		Payload: map[string]any{
			"roomId": "room-42",
			"text":   "héllo, wörld",
			"n":      -3,
			"big":    int64(1) << 40,
			"f":      1.5,
			"list":   []any{1, "two", nil, true, false},
			"bin":    []byte{1, 2, 3},
			"nested": map[string]any{"z": 1, "aa": 2},
		},
	}
	second := api.Event{
		ID: "01HZX3V4Q2J8K9M0N1P2R3S4T6", Class: "contract:bid", Channel: "global",
		Origin: origin, OriginSeq: 2, Sender: "cli",
		Lamport: 9007199254740991, TS: -1, SchemaVersion: "v1",
		Payload: map[string]any{
			"contractId": "k1", "bidAmount": 0.1, "maxLatencyMs": 300,
			"min": int64(math.MinInt64), "max": uint64(math.MaxUint64), "f32": float32(0.25),
			"neg": -33, "u16": 65535, "empty": map[string]any{},
		},
	}
	h, _ := HashOf(&first)
	second.Prev = h[:]
	third := api.Event{
		ID: "x", Class: "presence:peer-manifest", Channel: "global", Origin: origin,
		OriginSeq: 3, Prev: nil, Sender: "", Lamport: 1, TS: 0, SchemaVersion: "",
		Payload: nil,
	}
	h2, _ := HashOf(&second)
	third.Prev = h2[:]
	return []api.Event{first, second, third}
}

var goldenNames = []string{"first event of a chain", "second event: chained prev, integer edges", "nil payload, empty strings"}

func TestGoldenVectors(t *testing.T) {
	id, err := identity.FromSeed(goldenSeed())
	if err != nil {
		t.Fatal(err)
	}
	got := goldenFile{
		Comment:   "continuum/event/v1 canonical encoding vectors; inputs in docs/CANONICAL.md and kernel/airc/canonical_test.go",
		Seed:      hex.EncodeToString(goldenSeed()),
		PublicKey: hex.EncodeToString(id.PublicKey()),
		PeerID:    id.PeerID(),
	}
	for i, ev := range goldenEvents(id.PeerID()) {
		c, err := Canonical(&ev)
		if err != nil {
			t.Fatal(err)
		}
		h, err := HashOf(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := SignEvent(id, &ev); err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyEvent(&ev); err != nil {
			t.Fatal(err)
		}
		got.Vectors = append(got.Vectors, goldenVector{goldenNames[i], hex.EncodeToString(c), hex.EncodeToString(h[:]), hex.EncodeToString(ev.Sig)})
	}
	path := filepath.Join("testdata", "golden.json")
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want goldenFile
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if want.PeerID != got.PeerID || want.PublicKey != got.PublicKey {
		t.Fatalf("key changed: %s / %s, want %s / %s", got.PeerID, got.PublicKey, want.PeerID, want.PublicKey)
	}
	if len(want.Vectors) != len(got.Vectors) {
		t.Fatalf("%d vectors, golden has %d", len(got.Vectors), len(want.Vectors))
	}
	for i := range want.Vectors {
		if got.Vectors[i] != want.Vectors[i] {
			t.Errorf("vector %q changed — the canonical encoding is a wire contract:\n got  %+v\n want %+v", want.Vectors[i].Name, got.Vectors[i], want.Vectors[i])
		}
	}
	// The spec must carry the same bytes, so other implementations check
	// themselves against what this one does.
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "CANONICAL.md"))
	if err != nil {
		t.Fatalf("docs/CANONICAL.md: %v", err)
	}
	flat := regexp.MustCompile(`\s+`).ReplaceAllString(string(doc), "")
	for _, v := range want.Vectors {
		for _, h := range []string{v.Canonical, v.Hash, v.Sig} {
			if !strings.Contains(flat, h) {
				t.Errorf("docs/CANONICAL.md lacks %s… of vector %q", h[:16], v.Name)
			}
		}
	}
	if !strings.Contains(flat, want.PeerID) {
		t.Error("docs/CANONICAL.md lacks the golden peer id")
	}
}

// rawPayload hand-encodes the first golden payload the way a sloppy client
// might: every integer as int64, keys unsorted, 1.5 as float32.
func rawPayload(t *testing.T) msgpack.RawMessage {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.EncodeMapLen(8))
	for _, kv := range []struct {
		k string
		f func() error
	}{
		{"text", func() error { return e.EncodeString("héllo, wörld") }},
		{"roomId", func() error { return e.EncodeString("room-42") }},
		{"n", func() error { return e.EncodeInt64(-3) }},
		{"big", func() error { return e.EncodeUint64(1 << 40) }},
		{"f", func() error { return e.EncodeFloat32(1.5) }},
		{"list", func() error {
			must(e.EncodeArrayLen(5))
			must(e.EncodeInt64(1))
			must(e.EncodeString("two"))
			must(e.EncodeNil())
			must(e.EncodeBool(true))
			return e.EncodeBool(false)
		}},
		{"nested", func() error {
			must(e.EncodeMapLen(2))
			must(e.EncodeString("aa"))
			must(e.EncodeUint64(2))
			must(e.EncodeString("z"))
			return e.EncodeInt32(1)
		}},
		{"bin", func() error { return e.EncodeBytes([]byte{1, 2, 3}) }},
	} {
		must(e.EncodeString(kv.k))
		must(kv.f())
	}
	return buf.Bytes()
}

func TestRawAndGoValuesAgree(t *testing.T) {
	id, _ := identity.FromSeed(goldenSeed())
	ev := goldenEvents(id.PeerID())[0]
	fromGo, err := Canonical(&ev)
	if err != nil {
		t.Fatal(err)
	}
	ev.Payload = rawPayload(t)
	fromRaw, err := Canonical(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromGo, fromRaw) {
		t.Fatalf("socket and in-process paths differ:\n go  %x\n raw %x", fromGo, fromRaw)
	}
	// Canonical payloads are fixed points.
	p, _ := CanonicalPayload(ev.Payload)
	q, _ := CanonicalPayload(msgpack.RawMessage(p))
	if !bytes.Equal(p, q) {
		t.Fatal("canonicalizing a canonical payload changed it")
	}
	// nil and empty headers encode the same.
	a := api.Event{ID: "a", Prev: make([]byte, 32)}
	b := a
	b.Headers = map[string]string{}
	ca, _ := Canonical(&a)
	cb, _ := Canonical(&b)
	if !bytes.Equal(ca, cb) {
		t.Fatal("nil and empty headers differ")
	}
}

func TestCanonicalIntegers(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{0, "00"}, {127, "7f"}, {128, "cc80"}, {255, "ccff"}, {256, "cd0100"}, {65535, "cdffff"},
		{65536, "ce00010000"}, {int64(1) << 32, "cf0000000100000000"}, {uint64(math.MaxUint64), "cfffffffffffffffff"},
		{-1, "ff"}, {-32, "e0"}, {-33, "d0df"}, {-128, "d080"}, {-129, "d1ff7f"}, {-32768, "d18000"},
		{-32769, "d2ffff7fff"}, {int64(math.MinInt32) - 1, "d3ffffffff7fffffff"},
		{int8(5), "05"}, {uint16(5), "05"}, {int64(-1), "ff"},
		{1.5, "cb3ff8000000000000"}, {float32(1.5), "cb3ff8000000000000"}, {math.NaN(), "cb7ff8000000000000"},
		{"", "a0"}, {strings.Repeat("x", 32), "d920" + strings.Repeat("78", 32)},
		{[]byte{}, "c400"}, {nil, "c0"}, {true, "c3"}, {[]any{}, "90"}, {map[string]any{}, "80"},
		// keys are ordered by their encodings: the shorter string first
		{map[string]any{"b": 1, "aa": 2, "a": 3}, "83a16103a16201a2616102"},
		{map[int]int{-1: 0, 1: 0}, "820100ff00"},
	}
	for _, tc := range cases {
		got, err := CanonicalPayload(tc.v)
		if err != nil {
			t.Errorf("%#v: %v", tc.v, err)
			continue
		}
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("%#v: got %x, want %s", tc.v, got, tc.want)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	cases := map[string][]byte{
		"empty":           {},
		"truncated str":   {0xa5, 'a'},
		"reserved c1":     {0xc1},
		"trailing":        {0x01, 0x02},
		"invalid utf8":    {0xa1, 0xff},
		"duplicate key":   {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02},
		"dup after canon": {0x82, 0x01, 0xc0, 0xcc, 0x01, 0xc0}, // 1 and uint8 1 are the same key
		"huge array":      {0xdd, 0xff, 0xff, 0xff, 0xff},
		"huge map":        {0xdf, 0xff, 0xff, 0xff, 0xff},
		"huge bin":        {0xc6, 0xff, 0xff, 0xff, 0xff},
		"too deep":        bytes.Repeat([]byte{0x91}, MaxDepth+2),
	}
	for name, raw := range cases {
		if _, err := CanonicalPayload(msgpack.RawMessage(raw)); err == nil {
			t.Errorf("%s: accepted %x", name, raw)
		}
	}
	if _, err := Canonical(&api.Event{Prev: make([]byte, 31)}); err == nil {
		t.Error("31-byte prev accepted")
	}
	if _, err := Canonical(&api.Event{Prev: make([]byte, 32), Class: string([]byte{0xff})}); err == nil {
		t.Error("invalid UTF-8 class accepted")
	}
}

// FuzzCanonicalPayload checks the transcoder never panics, that its output
// is a fixed point, and that the msgpack library can read it.
func FuzzCanonicalPayload(f *testing.F) {
	id, _ := identity.FromSeed(goldenSeed())
	for _, ev := range goldenEvents(id.PeerID()) {
		p, _ := CanonicalPayload(ev.Payload)
		f.Add(p)
	}
	f.Add([]byte{0xc7, 0x01, 0x05, 0xaa})
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := CanonicalPayload(msgpack.RawMessage(raw))
		if err != nil {
			return
		}
		q, err := CanonicalPayload(msgpack.RawMessage(p))
		if err != nil || !bytes.Equal(p, q) {
			t.Fatalf("not a fixed point: %x -> %x -> %x (%v)", raw, p, q, err)
		}
		r := bytes.NewReader(p)
		if err := msgpack.NewDecoder(r).Skip(); err != nil || r.Len() != 0 {
			t.Fatalf("canonical output %x is not one msgpack value: %v", p, err)
		}
	})
}
