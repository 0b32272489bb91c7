package llama

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func runStream(stops []string, pieces ...string) (text string, toks []Token, stopped bool) {
	s := newTextStream(stops)
	for i, p := range pieces {
		ready, stop := s.add(i, int32(100+i), []byte(p))
		toks = append(toks, ready...)
		if stop {
			stopped = true
			break
		}
	}
	toks = append(toks, s.finish()...)
	return string(s.text), toks, stopped
}

func TestTextStream(t *testing.T) {
	cases := []struct {
		name    string
		stops   []string
		pieces  []string
		text    string
		want    []string // pieces as delivered
		stopped bool
	}{
		{"plain", nil, []string{"he", "llo", " world"}, "hello world", []string{"he", "llo", " world"}, false},
		// é is C3 A9: the character belongs to the token that completes it.
		{"split rune", nil, []string{"caf", "\xc3", "\xa9!"}, "café!", []string{"caf", "", "é!"}, false},
		// A 4-byte emoji over three tokens.
		{"split emoji", nil, []string{"\xf0\x9f", "\x98", "\x80"}, "😀", []string{"", "", "😀"}, false},
		{"invalid bytes", nil, []string{"a\xff", "\xfeb"}, "a\uFFFD\uFFFDb", []string{"a\uFFFD", "\uFFFDb"}, false},
		// A lead byte followed by a non-continuation byte.
		{"broken sequence", nil, []string{"\xc3", "x"}, "\uFFFDx", []string{"", "\uFFFDx"}, false},
		{"incomplete at end", nil, []string{"ok", "\xe2\x82"}, "ok\uFFFD", []string{"ok", "\uFFFD"}, false},
		{"stop inside token", []string{"STOP"}, []string{"abc", "dSTOPe", "f"}, "abcd", []string{"abc", "d"}, true},
		{"stop across tokens", []string{"STOP"}, []string{"ab", "cST", "O", "Pxyz"}, "abc", []string{"ab", "c"}, true},
		// A token ending in "ST" is held back (whole) until it turns out not
		// to start a stop string.
		{"false alarm", []string{"STOP"}, []string{"aST", "x"}, "aSTx", []string{"aST", "x"}, false},
		{"prefix at end", []string{"STOP"}, []string{"aS", "T"}, "aST", []string{"aS", "T"}, false},
		{"stop at start", []string{"A"}, []string{"A", "b"}, "", nil, true},
		{"earliest of several", []string{"cd", "bc"}, []string{"a", "bcd"}, "a", []string{"a"}, true},
		{"empty stop ignored", []string{""}, []string{"a", "b"}, "ab", []string{"a", "b"}, false},
		{"stop after multibyte", []string{"é!"}, []string{"x\xc3", "\xa9!y"}, "x", []string{"x"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text, toks, stopped := runStream(c.stops, c.pieces...)
			var got []string
			var cat strings.Builder
			for i, tk := range toks {
				if tk.Index != i || tk.ID != int32(100+i) {
					t.Fatalf("token %d out of order: %+v", i, tk)
				}
				got = append(got, tk.Piece)
				cat.WriteString(tk.Piece)
			}
			if text != c.text || stopped != c.stopped {
				t.Fatalf("text %q stopped %v, want %q %v", text, stopped, c.text, c.stopped)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Fatalf("pieces %q, want %q", got, c.want)
			}
			if cat.String() != text || !utf8.ValidString(text) {
				t.Fatalf("pieces join to %q, text %q", cat.String(), text)
			}
		})
	}
}

func FuzzTextStream(f *testing.F) {
	f.Add([]byte("ab\xc3\xa9\xffSTOPx"), "STOP", uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, stop string, chunk uint8) {
		n := int(chunk%7) + 1
		var pieces []string
		for i := 0; i < len(data); i += n {
			pieces = append(pieces, string(data[i:min(i+n, len(data))]))
		}
		text, toks, _ := runStream([]string{stop}, pieces...)
		var cat strings.Builder
		for i, tk := range toks {
			if tk.Index != i {
				t.Fatalf("order: %d at %d", tk.Index, i)
			}
			cat.WriteString(tk.Piece)
		}
		if cat.String() != text || !utf8.ValidString(text) {
			t.Fatalf("pieces %q text %q", cat.String(), text)
		}
		if stop != "" && strings.Contains(text, stop) {
			t.Fatalf("stop %q in text %q", stop, text)
		}
	})
}
