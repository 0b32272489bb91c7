package alloy

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// longChain is an alloy of n stages, each signed.
func longChain(b *testing.B, n int) []byte {
	b.Helper()
	a := &Alloy{Type: TypeModelForge, Domains: []string{"bench"}}
	for i := range n {
		s := Stage{Name: fmt.Sprintf("stage-%03d", i), OutputHash: SHA256Hex([]byte{byte(i)}),
			Config:    Config{Requested: map[string]any{"step": i, "lr": "0.0001"}, Chosen: map[string]any{"seed": i * 7}},
			StartedAt: int64(1700000000000 + i), EndedAt: int64(1700000000001 + i)}
		if i == 0 {
			s.InputHash = ZeroHash
		}
		if err := a.AddStage(s, trainer); err != nil {
			b.Fatal(err)
		}
	}
	out, err := a.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkHash100 is the alloy hash of a 100-stage alloy: decode, encode
// canonically, sha256.
func BenchmarkHash100(b *testing.B) {
	data := longChain(b, 100)
	a, err := Open(data)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Hash(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify100 is Verify of a 100-stage alloy from its bytes: parse,
// 100 Ed25519 verifications, typed decode, links. Its floor, in the same
// run: the 100 Ed25519 verifications alone, over the very PAE bytes.
func BenchmarkVerify100(b *testing.B) {
	data := longChain(b, 100)
	b.Run("alloy", func(b *testing.B) {
		for b.Loop() {
			v, err := Verify(context.Background(), data, Options{})
			if err != nil || !v.Passed {
				b.Fatal(v, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/stage")
	})
	b.Run("ed25519-floor", func(b *testing.B) {
		a, err := Open(data)
		if err != nil {
			b.Fatal(err)
		}
		pub := ed25519.PrivateKey(trainer).Public().(ed25519.PublicKey)
		msgs := make([][]byte, len(a.Stages))
		sigs := make([][]byte, len(a.Stages))
		for i, s := range a.Stages {
			body, _ := stageBody(a.Header(), s)
			msgs[i] = PAE(PayloadStage, body)
			sigs[i], _ = base64.StdEncoding.DecodeString(s.Sig)
		}
		for b.Loop() {
			for i := range msgs {
				if !ed25519.Verify(pub, msgs[i], sigs[i]) {
					b.Fatal("bad signature")
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/stage")
	})
}

// BenchmarkArtifact1GiB verifies an alloy whose output is a 1 GiB file
// against the peers on the same file in the same run: coreutils sha256sum
// (the floor the issue names) and OpenSSL's sha256 (which, like Go's, uses
// the CPU's SHA extensions). Each iteration runs all three in an order that
// rotates, so load on a shared machine falls on each alike; the figures are
// MB/s per side and the ratios. The file is $ALLOY_BENCH_FILE when set, else
// made once in the temp folder (alloy-bench-1g.bin, kept for the next run);
// it is read warm from the page cache.
func BenchmarkArtifact1GiB(b *testing.B) {
	path := os.Getenv("ALLOY_BENCH_FILE")
	if path == "" {
		path = filepath.Join(os.TempDir(), "alloy-bench-1g.bin")
		if st, err := os.Stat(path); err != nil || st.Size() != 1<<30 {
			makeFile(b, path, 1<<30)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	_, sum, err := HashFile(path)
	if err != nil {
		b.Fatal(err)
	}
	a := &Alloy{Type: TypeDelivery, Domains: []string{"bench"}}
	if err := a.AddStage(Stage{Name: "deliver", InputHash: ZeroHash, OutputHash: sum}, trainer); err != nil {
		b.Fatal(err)
	}
	data, _ := a.Marshal()
	type side struct {
		name string
		run  func() error
		took time.Duration
	}
	peer := func(name string, args ...string) *side {
		if _, err := exec.LookPath(name); err != nil {
			return nil
		}
		return &side{name: name, run: func() error {
			out, err := exec.Command(name, args...).Output()
			if err != nil || !strings.HasPrefix(string(out), sum) {
				return fmt.Errorf("%s: %s %v", name, out, err)
			}
			return nil
		}}
	}
	sides := []*side{{name: "alloy", run: func() error {
		v, err := Verify(context.Background(), data, Options{Artifacts: []Artifact{{Path: path}}})
		if err == nil && !v.Passed {
			err = errors.New(v.Reason)
		}
		return err
	}}}
	for _, p := range []*side{peer("sha256sum", path), peer("openssl", "dgst", "-sha256", "-r", path)} {
		if p != nil {
			sides = append(sides, p)
		}
	}
	round := 0
	for b.Loop() {
		for i := range sides {
			s := sides[(round+i)%len(sides)]
			t0 := time.Now()
			if err := s.run(); err != nil {
				b.Fatal(err)
			}
			s.took += time.Since(t0)
		}
		round++
	}
	mbs := func(s *side) float64 { return float64(st.Size()) * float64(round) / s.took.Seconds() / 1e6 }
	for _, s := range sides {
		b.ReportMetric(mbs(s), s.name+"_MB/s")
		if s != sides[0] {
			b.ReportMetric(mbs(sides[0])/mbs(s), "x_"+s.name)
		}
	}
}

func makeFile(b *testing.B, path string, size int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*31 + i>>8)
	}
	for n := int64(0); n < size; n += int64(len(buf)) {
		buf[0] = byte(n >> 20) // no two blocks alike
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}
