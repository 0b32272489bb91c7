package jcs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestGoldenFiles canonicalizes every testdata/*.in.json and compares it
// byte for byte with the matching .out.json (the RFC's examples among them).
func TestGoldenFiles(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.json")
	if err != nil || len(ins) < 3 {
		t.Fatalf("golden inputs: %v %v", ins, err)
	}
	for _, in := range ins {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(in, ".in.json") + ".out.json")
			if err != nil {
				t.Fatal(err)
			}
			got, err := Canonicalize(src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			// Canonical bytes are a fixed point.
			again, err := Canonicalize(got, Options{})
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("not idempotent: %s, %v", again, err)
			}
		})
	}
}

// TestNumbersAppendixB checks the RFC's table of doubles.
func TestNumbersAppendixB(t *testing.T) {
	f, err := os.Open("testdata/rfc8785-appendix-b.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		bits, want, _ := strings.Cut(line, " ")
		raw, err := hex.DecodeString(bits)
		if err != nil {
			t.Fatal(err)
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(raw))
		got, err := AppendFloat(nil, v)
		if err != nil || string(got) != want {
			t.Errorf("%s: got %s (%v), want %s", bits, got, err, want)
		}
		// And through the parser: the canonical text reads back as the same double.
		back, err := Canonicalize([]byte(want), Options{})
		if err != nil || string(back) != want {
			t.Errorf("%s: re-canonicalized to %s (%v)", want, back, err)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d vectors", n)
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := AppendFloat(nil, bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestRefused(t *testing.T) {
	for _, c := range []struct{ in, why string }{
		{`{"a":1,"a":2}`, "duplicate"},
		{`"\ud800"`, "lone surrogate"},
		{`"\udc00x"`, "lone surrogate"},
		{"\"\xff\"", "UTF-8"},
		{"\"a\x01\"", "control character"},
		{`01`, "leading zero"},
		{`1e400`, "finite"},
		{`[1,]`, "unexpected"},
		{`{"a" 1}`, "':'"},
		{`[1] x`, "after"},
		{`"abc`, "unterminated"},
		{`tru`, "unexpected"},
		{strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), "nesting"},
		{``, "end of input"},
	} {
		_, err := Canonicalize([]byte(c.in), Options{})
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%q: %v, want a SyntaxError about %q", c.in, err, c.why)
		}
	}
}

func TestIntegersOnly(t *testing.T) {
	ok := `{"n":[0,-1,9007199254740991,-9007199254740991]}`
	if got, err := Canonicalize([]byte(ok), Options{IntegersOnly: true}); err != nil || string(got) != ok {
		t.Fatalf("%s: %v", got, err)
	}
	for _, in := range []string{`1.5`, `1e3`, `1.0`, `9007199254740992`, `-9007199254740992`, `[{"a":0.1}]`} {
		if _, err := Canonicalize([]byte(in), Options{IntegersOnly: true}); err == nil {
			t.Errorf("%s accepted with IntegersOnly", in)
		}
	}
}

func TestAppendGoValues(t *testing.T) {
	got, err := Append(nil, map[string]any{"z": int64(3), "a": []any{"<&>", true, nil, 2}, "é": uint64(7)})
	if err != nil || string(got) != `{"a":["<&>",true,null,2],"z":3,"é":7}` {
		t.Fatalf("%s %v", got, err)
	}
	if _, err := Append(nil, int64(1<<53)); err == nil {
		t.Error("2^53 accepted")
	}
	if _, err := Append(nil, struct{}{}); err == nil {
		t.Error("a struct accepted")
	}
	if _, err := AppendString(nil, "\xff"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x"]}`, `"\u20ac"`, `[null,true,false]`, `{"\ud83d\ude00":1e30}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Canonicalize(data, Options{})
		if err != nil {
			return
		}
		again, err := Canonicalize(out, Options{})
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("canonical form %q is not a fixed point: %q %v", out, again, err)
		}
	})
}

// TestCompareUTF16 checks the allocation-free order against the plain
// definition (encode both, compare the code units) on names that differ in
// every way that matters: ASCII, BMP above the surrogates, supplementary.
func TestCompareUTF16(t *testing.T) {
	names := []string{"", "a", "ab", "b", "\u00f6", "\u20ac", "\ufb33", "\U0001F600", "\U0001F601", "a\U0001F600", "a\uffff", "\ue000", "\U00010000"}
	for _, x := range names {
		for _, y := range names {
			x, y := unquote(t, x), unquote(t, y)
			want := slices.Compare(utf16.Encode([]rune(x)), utf16.Encode([]rune(y)))
			if got := compareUTF16(x, y); got != want {
				t.Errorf("compareUTF16(%q, %q) = %d, want %d", x, y, got, want)
			}
		}
	}
}

func unquote(t *testing.T, s string) string {
	t.Helper()
	u, err := strconv.Unquote(`"` + s + `"`)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
