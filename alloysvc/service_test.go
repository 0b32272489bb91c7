package alloysvc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/continuum-grid/continuum/alloy"
	"github.com/continuum-grid/continuum/alloysvc"
	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/daemon"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/kernel"
	bolt "go.etcd.io/bbolt"
)

// startDaemon runs continuumd in-process on a temp socket and state dir.
func startDaemon(t *testing.T) *daemon.Daemon {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "alloy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	d, err := daemon.Start(daemon.Config{Socket: filepath.Join(sockDir, "d.sock"), Kernel: kernel.Config{StateDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d
}

func dial(t *testing.T, d *daemon.Daemon) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), d.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func signer(label string) alloy.KeySigner {
	seed := sha256.Sum256([]byte(label))
	return alloy.KeySigner(ed25519.NewKeyFromSeed(seed[:]))
}

// twoStage is a dataset alloy: a cleaning stage, then a split whose output
// is the two files of dir.
func twoStage(t *testing.T, dir string) ([]byte, *alloy.Alloy) {
	t.Helper()
	for name, content := range map[string]string{"train.jsonl": "{\"x\":1}\n", "test.jsonl": "{\"x\":2}\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := alloy.HashDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := &alloy.Alloy{Type: alloy.TypeDataset, Domains: []string{"data"}}
	if err := a.AddStage(alloy.Stage{Name: "clean", InputHash: alloy.SHA256Hex([]byte("raw")), OutputHash: alloy.SHA256Hex([]byte("clean")),
		Config: alloy.Config{Requested: map[string]any{"lang": "en"}}, StartedAt: 1000, EndedAt: 2000}, signer("a")); err != nil {
		t.Fatal(err)
	}
	if err := a.AddStage(alloy.Stage{Name: "split", Outputs: m, Config: alloy.Config{Requested: map[string]any{"ratio": "0.9"}}, StartedAt: 3000, EndedAt: 4000}, signer("b")); err != nil {
		t.Fatal(err)
	}
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b, a
}

// asObject is the alloy as a client holds it after JSON: a generic map.
func asObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func wantCode(t *testing.T, err error, code api.Code, parts ...string) {
	t.Helper()
	if !errors.Is(err, &api.Error{Code: code}) {
		t.Fatalf("want %s, got %v", code, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%q lacks %q", err, p)
		}
	}
}

func TestVerifyStoreGetList(t *testing.T) {
	d := startDaemon(t)
	c := dial(t, d)
	ctx := context.Background()
	dir := t.TempDir()
	b, a := twoStage(t, dir)
	hash, _ := a.Hash()

	// As an object and as text: both pass with the whole output held.
	for _, form := range []any{asObject(t, b), string(b)} {
		var v api.AlloyVerdict
		if err := c.Call(ctx, api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: form, Artifacts: []api.AlloyArtifact{{Path: dir}}}, &v); err != nil {
			t.Fatal(err)
		}
		if !v.Passed || !v.Stored || v.AlloyHash != hash || v.Verifier != d.Kernel().Identity().PeerID() {
			t.Fatalf("verdict %+v", v)
		}
		// The wire verdict is the library's: its signature checks out.
		vb, _ := json.Marshal(v)
		var m map[string]any
		_ = json.Unmarshal(vb, &m)
		delete(m, "stored")
		vb, _ = json.Marshal(m)
		if _, err := alloy.OpenVerdict(vb); err != nil {
			t.Fatalf("the verdict's signature: %v", err)
		}
	}

	// A subset of the split's files fails, naming the stage.
	sub := t.TempDir()
	os.WriteFile(filepath.Join(sub, "train.jsonl"), []byte("{\"x\":1}\n"), 0o644)
	var v api.AlloyVerdict
	if err := c.Call(ctx, api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: string(b), Artifacts: []api.AlloyArtifact{{Stage: "split", Path: sub}}}, &v); err != nil {
		t.Fatal(err)
	}
	if v.Passed || !strings.Contains(v.Reason, "stage 1 (split): subset of a multi-file output") || !strings.Contains(v.Reason, "missing test.jsonl") {
		t.Fatalf("subset verdict %+v", v)
	}

	// A tampered copy fails on the stage's signature and is not stored.
	obj := asObject(t, b)
	obj["stages"].([]any)[0].(map[string]any)["endedAt"] = 2500
	if err := c.Call(ctx, api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: obj}, &v); err != nil {
		t.Fatal(err)
	}
	if v.Passed || v.Stored || !strings.Contains(v.Reason, "stage 0 (clean): signature does not verify") {
		t.Fatalf("tampered verdict %+v", v)
	}

	var e api.AlloyEntry
	if err := c.Call(ctx, api.MethodAlloyGet, api.AlloyHashParams{Hash: hash[:10]}, &e); err != nil {
		t.Fatal(err)
	}
	if e.Summary.Hash != hash || e.Summary.Stages != 2 || e.Summary.Last != "split" || e.Summary.Type != 3 || e.Summary.TypeName != "0x03 dataset" || e.Summary.StoredAt == 0 {
		t.Fatalf("get: %+v", e.Summary)
	}
	// What alloy/get returns verifies again, as it came.
	if err := c.Call(ctx, api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: e.Alloy}, &v); err != nil || !v.Passed || v.AlloyHash != hash {
		t.Fatalf("re-verify of alloy/get: %+v %v", v, err)
	}
	var list []api.AlloySummary
	if err := c.Call(ctx, api.MethodAlloyList, nil, &list); err != nil || len(list) != 1 || list[0].Hash != hash {
		t.Fatalf("list: %+v %v", list, err)
	}
	wantCode(t, c.Call(ctx, api.MethodAlloyGet, api.AlloyHashParams{Hash: strings.Repeat("0", 64)}, nil), api.CodeNotFound)
	wantCode(t, c.Call(ctx, api.MethodAlloyGet, api.AlloyHashParams{Hash: "abc"}, nil), api.CodeInvalidArgument, "hash")
	wantCode(t, c.Call(ctx, api.MethodAlloyGet, api.AlloyHashParams{Hash: "zzzzzzzzzz"}, nil), api.CodeInvalidArgument, "hash")
	wantCode(t, c.Call(ctx, api.MethodAlloyList, api.AlloyListParams{Limit: -1}, nil), api.CodeInvalidArgument, "limit")

	// Stored in the kernel's bbolt file, in the alloy bucket, across a restart.
	err := d.Kernel().DB().View(func(tx *bolt.Tx) error {
		if tx.Bucket(alloysvc.Bucket).Get([]byte(hash)) == nil {
			return errors.New("not in the bucket")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	d := startDaemon(t)
	c := dial(t, d)
	ctx := context.Background()
	b, _ := twoStage(t, t.TempDir())
	withFloat := strings.Replace(string(b), `"startedAt":1000`, `"startedAt":1000.5`, 1)
	for _, tc := range []struct {
		name   string
		params any
		parts  []string
	}{
		{"missing alloy", map[string]any{}, []string{"alloy"}},
		{"alloy a number", map[string]any{"alloy": 7}, []string{"alloy"}},
		{"alloy binary", map[string]any{"alloy": []byte("{}")}, []string{"alloy"}},
		{"not JSON", api.AlloyVerifyParams{Alloy: "{nope"}, []string{"alloy"}},
		{"a float", api.AlloyVerifyParams{Alloy: withFloat}, []string{"not an integer"}},
		{"binary inside", map[string]any{"alloy": map[string]any{"stages": []any{[]byte{1}}}}, []string{"binary"}},
		{"artifacts wrong type", map[string]any{"alloy": string(b), "artifacts": "x"}, []string{"artifacts"}},
		{"relative artifact", api.AlloyVerifyParams{Alloy: string(b), Artifacts: []api.AlloyArtifact{{Path: "out.bin"}}}, []string{"not absolute"}},
		{"empty artifact", api.AlloyVerifyParams{Alloy: string(b), Artifacts: []api.AlloyArtifact{{Stage: "split"}}}, []string{"path or data"}},
		{"path and data", api.AlloyVerifyParams{Alloy: string(b), Artifacts: []api.AlloyArtifact{{Path: "/x", Data: []byte("y")}}}, []string{"not both"}},
		{"too many artifacts", api.AlloyVerifyParams{Alloy: string(b), Artifacts: make([]api.AlloyArtifact, alloysvc.MaxArtifacts+1)}, []string{"limit"}},
		{"oversized", api.AlloyVerifyParams{Alloy: strings.Repeat(" ", alloy.MaxSize+1)}, []string{"limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Call(ctx, api.MethodAlloyVerify, tc.params, nil)
			if tc.name == "oversized" && errors.Is(err, &api.Error{Code: api.CodeMessageTooLarge}) {
				return // the transport's limit came first
			}
			wantCode(t, err, api.CodeInvalidArgument, tc.parts...)
		})
	}
	// The daemon still serves.
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// A caller that goes away mid-verification stops the hashing of its
// artifact at the next read; the daemon serves everyone else meanwhile.
func TestCallerVanishesMidVerify(t *testing.T) {
	d := startDaemon(t)
	fifo := filepath.Join(t.TempDir(), "artifact")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	a := &alloy.Alloy{Type: alloy.TypeDelivery, Domains: []string{"d"}}
	if err := a.AddStage(alloy.Stage{Name: "deliver", InputHash: alloy.ZeroHash, OutputHash: alloy.ZeroHash}, signer("a")); err != nil {
		t.Fatal(err)
	}
	b, _ := a.Marshal()

	gone := dial(t, d)
	done := make(chan error, 1)
	go func() {
		done <- gone.Call(context.Background(), api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: string(b), Artifacts: []api.AlloyArtifact{{Path: fifo}}}, nil)
	}()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once the daemon opened it
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	chunk := make([]byte, 64<<10)
	if _, err := w.Write(chunk); err != nil {
		t.Fatal(err)
	}
	gone.Close()
	<-done

	other := dial(t, d)
	if _, err := other.Ping(context.Background()); err != nil {
		t.Fatalf("another client: %v", err)
	}
	// The daemon closes its end once it sees the call is cancelled: writes
	// fail with EPIPE instead of blocking forever.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := w.Write(chunk)
		if errors.Is(err, syscall.EPIPE) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon is still reading the artifact of a caller that went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A proof contract over the socket: tdd passes with the bytes held and fails
// without them; a vdd fails honestly, since the daemon has no measurements.
func TestProofContractOverTheSocket(t *testing.T) {
	d := startDaemon(t)
	c := dial(t, d)
	ctx := context.Background()
	report := []byte("accuracy: 0.97 <ok>")
	mk := func(vdd bool) string {
		a := &alloy.Alloy{Type: alloy.TypeEvaluation, Domains: []string{"eval"}}
		if err := a.AddStage(alloy.Stage{Name: "eval", InputHash: alloy.ZeroHash, OutputHash: alloy.SHA256Hex(report)}, signer("evaluator")); err != nil {
			t.Fatal(err)
		}
		p := alloy.Proof{TDD: []alloy.Assertion{{Name: "report", Stage: "eval", Fixture: alloy.SHA256Hex(report)}}, Authorship: alloy.Authorship{Methodology: alloy.SHA256Hex([]byte("eval method v1"))}}
		if vdd {
			p.VDD = []alloy.Measurement{{Name: "speed", Metric: "tokens_per_sec_milli", N: 3, Min: 1, Max: 2}}
		}
		if err := a.SetProof(p, signer("author")); err != nil {
			t.Fatal(err)
		}
		b, _ := a.Marshal()
		return string(b)
	}
	var v api.AlloyVerdict
	if err := c.Call(ctx, api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: mk(false), Artifacts: []api.AlloyArtifact{{Data: report}}}, &v); err != nil || !v.Passed {
		t.Fatalf("tdd with the bytes: %+v %v", v, err)
	}
	kinds := map[string]bool{}
	for _, c := range v.Checks {
		kinds[c.Kind] = c.Passed
	}
	if !kinds["tdd"] || !kinds["authorship"] || !kinds["artifact"] {
		t.Fatalf("checks %+v", v.Checks)
	}
	if err := c.Call(ctx, api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: mk(false)}, &v); err != nil || v.Passed || !strings.Contains(v.Reason, "stage 0 (eval): tdd report: missing artifact") {
		t.Fatalf("tdd without the bytes: %+v %v", v, err)
	}
	if err := c.Call(ctx, api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: mk(true), Artifacts: []api.AlloyArtifact{{Data: report}}}, &v); err != nil || v.Passed || !strings.Contains(v.Reason, "vdd speed: this verifier cannot measure tokens_per_sec_milli") {
		t.Fatalf("vdd on the daemon: %+v %v", v, err)
	}
}

// Stored alloys are entities in the kernel's file: they outlive the daemon.
func TestStoredAcrossRestart(t *testing.T) {
	state := t.TempDir()
	sockDir, err := os.MkdirTemp("", "alloy")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	b, a := twoStage(t, t.TempDir())
	hash, _ := a.Hash()
	ctx := context.Background()
	for round := range 2 {
		d, err := daemon.Start(daemon.Config{Socket: filepath.Join(sockDir, "d.sock"), Kernel: kernel.Config{StateDir: state}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, d.SocketPath())
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			var v api.AlloyVerdict
			if err := c.Call(ctx, api.MethodAlloyVerify, api.AlloyVerifyParams{Alloy: string(b)}, &v); err != nil || !v.Stored {
				t.Fatalf("verify: %+v %v", v, err)
			}
		} else {
			var e api.AlloyEntry
			if err := c.Call(ctx, api.MethodAlloyGet, api.AlloyHashParams{Hash: hash}, &e); err != nil || e.Summary.Hash != hash {
				t.Fatalf("after a restart: %+v %v", e.Summary, err)
			}
		}
		c.Close()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = d.Shutdown(sctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}
