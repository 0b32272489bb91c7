package llama

import (
	"bytes"
	"unicode/utf8"
)

// textStream turns the byte pieces of sampled tokens into valid UTF-8 text
// and per-token pieces, and applies stop strings. It is pure (no llama.cpp),
// so its rules are tested directly:
//
//   - Pieces are bytes. A multibyte character split across tokens is held
//     until the token that completes it; the character belongs to that
//     token's piece. Bytes that can never be valid UTF-8 become U+FFFD, one
//     per byte. An incomplete sequence left at the end becomes one U+FFFD.
//   - Stop strings match the text. Text that could be the start of a stop
//     string is held back (its tokens are delivered late) so that no piece
//     of a stop string is ever streamed. On a match the text ends where the
//     stop string starts: a token straddling that point is delivered with
//     its piece cut there; tokens after it are dropped.
//   - The concatenation of the delivered pieces always equals the text.
type textStream struct {
	stops   [][]byte
	carry   []byte // undecided bytes: an incomplete UTF-8 sequence
	text    []byte // decided text, valid UTF-8
	pending []pendingToken
	sent    int // text offset up to which pieces were delivered
	stopped bool
}

type pendingToken struct {
	index int
	id    int32
	end   int // text offset where this token's piece ends
}

func newTextStream(stops []string) *textStream {
	s := &textStream{}
	for _, st := range stops {
		if st != "" {
			s.stops = append(s.stops, []byte(st))
		}
	}
	return s
}

// add appends one token's bytes and returns the tokens now ready to be
// delivered; stop reports that a stop string matched (the stream is done).
func (s *textStream) add(index int, id int32, piece []byte) (ready []Token, stop bool) {
	if s.stopped {
		return nil, true
	}
	old := len(s.text)
	s.carry = append(s.carry, piece...)
	s.decode()
	s.pending = append(s.pending, pendingToken{index: index, id: id, end: len(s.text)})

	if at := s.findStop(old); at >= 0 {
		s.text = s.text[:at]
		s.carry = nil
		s.stopped = true
		return s.deliver(at, true), true
	}
	return s.deliver(len(s.text)-s.heldBack(), len(s.carry) == 0), false
}

// finish flushes what is left at the end of generation.
func (s *textStream) finish() []Token {
	if s.stopped {
		return nil
	}
	s.stopped = true
	if len(s.carry) > 0 {
		s.text = utf8.AppendRune(s.text, utf8.RuneError)
		s.carry = nil
		if n := len(s.pending); n > 0 {
			s.pending[n-1].end = len(s.text)
		}
	}
	return s.deliver(len(s.text), true)
}

func (s *textStream) decode() {
	c := s.carry
	for len(c) > 0 {
		r, size := utf8.DecodeRune(c)
		if r == utf8.RuneError && size <= 1 {
			if !utf8.FullRune(c) {
				break // a valid start that needs more bytes
			}
			s.text = utf8.AppendRune(s.text, utf8.RuneError)
			c = c[1:]
			continue
		}
		s.text = append(s.text, c[:size]...)
		c = c[size:]
	}
	s.carry = append(s.carry[:0:0], c...)
}

// findStop returns where the earliest stop string starts, or -1. Only
// matches that end after old (the text length before the last token) are new.
func (s *textStream) findStop(old int) int {
	best := -1
	for _, st := range s.stops {
		from := max(0, old-len(st)+1)
		if i := bytes.Index(s.text[from:], st); i >= 0 && (best < 0 || from+i < best) {
			best = from + i
		}
	}
	return best
}

// heldBack is the length of the longest suffix of the text that is a proper
// prefix of a stop string.
func (s *textStream) heldBack() int {
	held := 0
	for _, st := range s.stops {
		for k := min(len(st)-1, len(s.text)); k > held; k-- {
			if bytes.HasSuffix(s.text, st[:k]) {
				held = k
				break
			}
		}
	}
	return held
}

// deliver returns the pending tokens whose pieces end at or before limit.
// With cut set, a token straddling limit is delivered cut at limit and the
// rest are dropped (a stop string matched, or the end). Without lastOK the
// last pending token is kept: it owns bytes still undecided.
func (s *textStream) deliver(limit int, lastOK bool) []Token {
	var out []Token
	i := 0
	for ; i < len(s.pending); i++ {
		p := s.pending[i]
		if !lastOK && i == len(s.pending)-1 {
			break
		}
		end := p.end
		if end > limit {
			if !s.stopped || s.sent >= limit {
				break
			}
			end = limit
		}
		out = append(out, Token{Index: p.index, ID: p.id, Piece: string(s.text[s.sent:end])})
		s.sent = end
	}
	if s.stopped {
		s.pending = nil
	} else {
		s.pending = append(s.pending[:0], s.pending[i:]...)
	}
	return out
}
