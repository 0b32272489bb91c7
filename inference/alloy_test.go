package inference_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/alloy"
	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/inference"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel/identity"
	"github.com/continuum-grid/continuum/llama/gguf"
	"github.com/vmihailenco/msgpack/v5"
)

// alloyBytes re-encodes the alloy a result carries (a generic object off
// the wire) as JSON.
func alloyBytes(t *testing.T, v any) []byte {
	t.Helper()
	if raw, ok := v.(msgpack.RawMessage); ok {
		var x any
		if err := msgpack.Unmarshal(raw, &x); err != nil {
			t.Fatal(err)
		}
		v = x
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func verifyRun(t *testing.T, c *client.Client, run any, text string, expect map[string]any) api.AlloyVerdict {
	t.Helper()
	var v api.AlloyVerdict
	err := c.Call(context.Background(), api.MethodAlloyVerify, api.AlloyVerifyParams{
		Alloy:     run,
		Artifacts: []api.AlloyArtifact{{Data: []byte(text)}},
		Expect:    map[string]map[string]any{inference.StageGenerate: expect},
	}, &v)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A generation returns a 0x06 alloy signed by the install; a verifier that
// re-runs the same request (greedy, so deterministic) gets the same output
// hash and the alloy verifies; a re-run with another prompt does not, and
// the verdict names the output hash.
func TestGenerateAlloyRerunVerify(t *testing.T) {
	opts := cpuOpts(t)
	opts.NCtx = 256
	d, c := startDaemon(t, opts)
	ctx := context.Background()
	path := writeModel(t, gguf.DefaultTinyConfig())
	load(t, c, path, "tiny")

	params := api.GenerateParams{Model: "tiny", Prompt: prompt, MaxTokens: 16}
	first, err := generate(ctx, c, params)
	if err != nil {
		t.Fatal(err)
	}
	a, err := alloy.Open(alloyBytes(t, first.Alloy))
	if err != nil {
		t.Fatalf("the run's alloy (%T %.200s) does not open: %v", first.Alloy, alloyBytes(t, first.Alloy), err)
	}
	modelSHA, _, _ := fileSHA(t, path)
	st := a.Stages[0]
	if a.Type != alloy.TypeEvaluation || len(a.Stages) != 1 || a.Domains[0] != "inference" || st.Name != inference.StageGenerate {
		t.Fatalf("alloy %+v", a)
	}
	if st.Executor != d.Kernel().Identity().PeerID() || st.InputHash != alloy.SHA256Hex([]byte(prompt)) || st.OutputHash != alloy.SHA256Hex([]byte(first.Text)) {
		t.Fatalf("stage %+v", st)
	}
	if st.Config.Requested["model"] != modelSHA || st.Config.Chosen["model"] != "tiny" || st.Config.Chosen["sampler"] != "greedy" || st.Config.Chosen["tokensPerSec"] == "" {
		t.Fatalf("config %+v", st.Config)
	}
	if st.EndedAt < st.StartedAt || st.StartedAt == 0 {
		t.Fatalf("times %d..%d", st.StartedAt, st.EndedAt)
	}

	// Re-run: same request, same output; the alloy verifies against the
	// re-run's bytes and its requested config.
	again, err := generate(ctx, c, params)
	if err != nil {
		t.Fatal(err)
	}
	want := inference.RequestedConfig(params, modelSHA)
	v := verifyRun(t, c, first.Alloy, again.Text, want)
	if !v.Passed || v.Verifier != d.Kernel().Identity().PeerID() || v.Sig == "" || !v.Stored {
		t.Fatalf("re-run verdict: %+v", v)
	}
	h, _ := a.Hash()
	if v.AlloyHash != h {
		t.Fatalf("verdict for %s, alloy %s", v.AlloyHash, h)
	}

	// Another prompt gives another output: the verdict fails on the output hash.
	other := params
	other.Prompt = "zebra zebra zebra zebra"
	changed, err := generate(ctx, c, other)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Text == first.Text {
		t.Fatalf("the tiny model gave the same text for two prompts: %q", changed.Text)
	}
	v = verifyRun(t, c, first.Alloy, changed.Text, inference.RequestedConfig(other, modelSHA))
	if v.Passed || !strings.Contains(v.Reason, "stage 0 (generate): output hash "+alloy.Short(st.OutputHash)+" does not match") {
		t.Fatalf("changed prompt verdict: %+v", v)
	}
	// A re-run with other sampling parameters fails on the requested config.
	hot := params
	hot.MaxTokens = 8
	v = verifyRun(t, c, first.Alloy, first.Text, inference.RequestedConfig(hot, modelSHA))
	if v.Passed || !strings.Contains(v.Reason, `stage 0 (generate): config.requested key "maxTokens" is 16, expected 8`) {
		t.Fatalf("changed params verdict: %+v", v)
	}

	// Each run's alloy is stored: alloy/get finds the first by its hash.
	var got api.AlloyEntry
	if err := c.Call(ctx, api.MethodAlloyGet, api.AlloyHashParams{Hash: h}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Summary.Hash != h || got.Summary.Last != inference.StageGenerate || got.Summary.Type != 6 {
		t.Fatalf("alloy/get: %+v", got.Summary)
	}

	// A conversation's input hash is the canonical JSON of its messages.
	msgs := []api.ChatMessage{{Role: "user", Content: "hi <there> & you"}}
	r, err := generate(ctx, c, api.GenerateParams{Model: "tiny", Messages: msgs, MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	ma, err := alloy.Open(alloyBytes(t, r.Alloy))
	if err != nil {
		t.Fatal(err)
	}
	if ma.Stages[0].InputHash != alloy.SHA256Hex([]byte(`[{"content":"hi <there> & you","role":"user"}]`)) || ma.Stages[0].Config.Requested["input"] != "messages" {
		t.Fatalf("messages stage %+v", ma.Stages[0])
	}
}

func fileSHA(t *testing.T, path string) (string, int64, error) {
	t.Helper()
	n, sum, err := alloy.HashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum, n, nil
}

// The library's peer ids are the kernel's: alloy (standalone) re-implements
// the encoding, and this pins that the two agree.
func TestAlloyPeerIDsAreKernelPeerIDs(t *testing.T) {
	for range 8 {
		id, err := identity.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if got := alloy.PeerIDOf(id.PublicKey()); got != id.PeerID() {
			t.Fatalf("alloy %s, kernel %s", got, id.PeerID())
		}
		pub, err := alloy.PublicKeyOf(id.PeerID())
		if err != nil || !pub.Equal(id.PublicKey()) {
			t.Fatalf("%v", err)
		}
	}
}
