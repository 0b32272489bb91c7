package alloy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
// 100 Ed25519 verifications, typed decode, links.
func BenchmarkVerify100(b *testing.B) {
	data := longChain(b, 100)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		v, err := Verify(context.Background(), data, Options{})
		if err != nil || !v.Passed {
			b.Fatal(v, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/stage")
}

// BenchmarkArtifact1GiB verifies an alloy whose output is a 1 GiB file,
// and runs sha256sum on the same file in the same run as the floor. The
// file is $ALLOY_BENCH_FILE when set, else made once in the temp folder
// (alloy-bench-1g.bin, kept for the next run). Both read it warm from the
// page cache: the first sub-benchmark iteration of each warms it.
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
	b.Run("alloy", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			v, err := Verify(context.Background(), data, Options{Artifacts: []Artifact{{Path: path}}})
			if err != nil || !v.Passed {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("sha256sum", func(b *testing.B) {
		if _, err := exec.LookPath("sha256sum"); err != nil {
			b.Skip("no sha256sum")
		}
		b.SetBytes(st.Size())
		for b.Loop() {
			out, err := exec.Command("sha256sum", path).Output()
			if err != nil || !strings.HasPrefix(string(out), sum) {
				b.Fatalf("sha256sum: %s %v", out, err)
			}
		}
	})
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
