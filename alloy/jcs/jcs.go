// Package jcs is the JSON Canonicalization Scheme of RFC 8785: it parses JSON
// text and writes the one canonical byte string of the same value, the bytes
// that alloys hash and sign.
//
// What it promises:
//
//   - Canonicalize accepts exactly the I-JSON of RFC 7493: valid UTF-8, no
//     duplicate member names, no lone surrogates in \u escapes, numbers that
//     are finite IEEE 754 doubles. Anything else is an error, never a guess.
//   - The output follows RFC 8785: members sorted by their names' UTF-16 code
//     units, no insignificant whitespace, strings with the minimal escapes
//     (only ", \, and control characters; < > & and non-ASCII are written as
//     they are), numbers in ECMAScript Number.prototype.toString form. The
//     RFC's own examples are golden vectors in testdata.
//   - With Options.IntegersOnly every number must be an integer literal
//     (no fraction, no exponent) within ±(2^53-1), the range in which every
//     JSON implementation reads the same value; alloys use this mode so no
//     float ever reaches hashed bytes.
//   - Nesting deeper than MaxDepth is refused, so hostile input cannot
//     exhaust the stack.
package jcs

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects.
const MaxDepth = 64

// MaxSafeInteger is 2^53-1, the largest integer IntegersOnly accepts.
const MaxSafeInteger = 1<<53 - 1

// Options adjust what Parse accepts.
type Options struct {
	// IntegersOnly refuses any number that is not an integer literal in
	// ±MaxSafeInteger.
	IntegersOnly bool
}

// Number is a JSON number as it was written in the input. Parse checks it;
// Append writes its canonical form.
type Number string

// Value is what Parse returns: nil, bool, string, Number, []any, or
// map[string]any (whose values are Values again).
type Value = any

// SyntaxError says where and why the input is not accepted JSON.
type SyntaxError struct {
	Offset int // byte offset in the input
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("jcs: at byte %d: %s", e.Offset, e.Msg) }

// Canonicalize parses data and returns its canonical bytes.
func Canonicalize(data []byte, opts Options) ([]byte, error) {
	v, err := Parse(data, opts)
	if err != nil {
		return nil, err
	}
	return Append(nil, v)
}

// Parse reads one JSON value (surrounding whitespace allowed, nothing after).
func Parse(data []byte, opts Options) (Value, error) {
	p := &parser{data: data, opts: opts}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.data) {
		return nil, p.fail("data after the JSON value")
	}
	return v, nil
}

type parser struct {
	data []byte
	i    int
	opts Options
}

func (p *parser) fail(format string, args ...any) error {
	return &SyntaxError{Offset: p.i, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if p.i >= len(p.data) {
		return nil, p.fail("unexpected end of input")
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.string()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	default:
		return nil, p.fail("unexpected character %q", c)
	}
}

func (p *parser) literal(word string) bool {
	if bytes.HasPrefix(p.data[p.i:], []byte(word)) {
		p.i += len(word)
		return true
	}
	return false
}

func (p *parser) object(depth int) (Value, error) {
	if depth > MaxDepth {
		return nil, p.fail("nesting deeper than %d", MaxDepth)
	}
	p.i++ // {
	m := map[string]any{}
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return m, nil
	}
	for {
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, p.fail("want a member name")
		}
		at := p.i
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, &SyntaxError{Offset: at, Msg: fmt.Sprintf("duplicate member name %q", k)}
		}
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, p.fail("want ':' after a member name")
		}
		p.i++
		p.space()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.space()
		if p.i >= len(p.data) {
			return nil, p.fail("unexpected end of input in an object")
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, nil
		default:
			return nil, p.fail("want ',' or '}' in an object")
		}
	}
}

func (p *parser) array(depth int) (Value, error) {
	if depth > MaxDepth {
		return nil, p.fail("nesting deeper than %d", MaxDepth)
	}
	p.i++ // [
	a := []any{}
	p.space()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		p.space()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.space()
		if p.i >= len(p.data) {
			return nil, p.fail("unexpected end of input in an array")
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, p.fail("want ',' or ']' in an array")
		}
	}
}

func (p *parser) string() (string, error) {
	p.i++ // "
	var b strings.Builder
	for {
		if p.i >= len(p.data) {
			return "", p.fail("unterminated string")
		}
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < 0x20:
			return "", p.fail("control character %#x in a string", c)
		case c == '\\':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			p.i++
		default:
			r, n := utf8.DecodeRune(p.data[p.i:])
			if r == utf8.RuneError && n <= 1 {
				return "", p.fail("invalid UTF-8")
			}
			b.WriteRune(r)
			p.i += n
		}
	}
}

func (p *parser) escape(b *strings.Builder) error {
	if p.i+1 >= len(p.data) {
		return p.fail("unterminated escape")
	}
	c := p.data[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		b.WriteByte(c)
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(r) {
			if r >= 0xDC00 || !bytes.HasPrefix(p.data[p.i:], []byte(`\u`)) {
				return p.fail("lone surrogate \\u%04x", r)
			}
			p.i += 2
			r2, err := p.hex4()
			if err != nil {
				return err
			}
			r = utf16.DecodeRune(r, r2)
			if r == utf8.RuneError {
				return p.fail("lone surrogate")
			}
		}
		b.WriteRune(r)
	default:
		return p.fail("unknown escape \\%c", c)
	}
	return nil
}

func (p *parser) hex4() (rune, error) {
	if p.i+4 > len(p.data) {
		return 0, p.fail("short \\u escape")
	}
	n, err := strconv.ParseUint(string(p.data[p.i:p.i+4]), 16, 16)
	if err != nil {
		return 0, p.fail("bad \\u escape")
	}
	p.i += 4
	return rune(n), nil
}

func (p *parser) number() (Value, error) {
	start := p.i
	if p.data[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if n := digits(); n == 0 {
		return nil, p.fail("want digits in a number")
	} else if n > 1 && p.data[intStart] == '0' {
		return nil, &SyntaxError{Offset: intStart, Msg: "leading zero in a number"}
	}
	integer := true
	if p.i < len(p.data) && p.data[p.i] == '.' {
		integer = false
		p.i++
		if digits() == 0 {
			return nil, p.fail("want digits after '.'")
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		integer = false
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.fail("want digits in an exponent")
		}
	}
	lit := string(p.data[start:p.i])
	if p.opts.IntegersOnly {
		if !integer {
			return nil, &SyntaxError{Offset: start, Msg: fmt.Sprintf("number %s is not an integer (hashed data holds integers, strings or decimal strings, never floats)", lit)}
		}
		if n, err := strconv.ParseInt(lit, 10, 64); err != nil || n > MaxSafeInteger || n < -MaxSafeInteger {
			return nil, &SyntaxError{Offset: start, Msg: fmt.Sprintf("integer %s is outside ±(2^53-1)", lit)}
		}
		return Number(lit), nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, &SyntaxError{Offset: start, Msg: fmt.Sprintf("number %s is not a finite double", lit)}
	}
	return Number(lit), nil
}

// Append writes the canonical form of v (a Value as Parse returns it; also
// json.Number, int, int64, uint64 within ±MaxSafeInteger and float64) to
// dst.
func Append(dst []byte, v Value) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if v {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		return AppendString(dst, v)
	case json.Number:
		return Append(dst, Number(v))
	case Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, fmt.Errorf("jcs: number %q: %w", string(v), err)
		}
		return AppendFloat(dst, f)
	case int:
		return appendInt(dst, int64(v))
	case int64:
		return appendInt(dst, v)
	case uint64:
		if v > MaxSafeInteger {
			return nil, fmt.Errorf("jcs: integer %d is outside ±(2^53-1)", v)
		}
		return strconv.AppendUint(dst, v, 10), nil
	case float64:
		return AppendFloat(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = Append(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendString(dst, k); err != nil {
				return nil, err
			}
			dst = append(dst, ':')
			if dst, err = Append(dst, v[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	default:
		return nil, fmt.Errorf("jcs: cannot encode %T", v)
	}
}

func appendInt(dst []byte, n int64) ([]byte, error) {
	if n > MaxSafeInteger || n < -MaxSafeInteger {
		return nil, fmt.Errorf("jcs: integer %d is outside ±(2^53-1)", n)
	}
	return strconv.AppendInt(dst, n, 10), nil
}

// compareUTF16 orders member names by their UTF-16 code units (RFC 8785
// §3.2.3), which differs from byte order for characters above U+FFFF. It
// walks both strings rune by rune without allocating: at the first rune that
// differs, the runes' UTF-16 encodings decide.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ha, la := units(ra)
			hb, lb := units(rb)
			if c := cmp.Compare(ha, hb); c != 0 {
				return c
			}
			return cmp.Compare(la, lb)
		}
		a, b = a[na:], b[nb:]
	}
	return cmp.Compare(len(a), len(b))
}

// units is r's first UTF-16 code unit and its second (0 for one unit).
func units(r rune) (uint16, uint16) {
	if r < 0x10000 {
		return uint16(r), 0
	}
	hi, lo := utf16.EncodeRune(r)
	return uint16(hi), uint16(lo)
}

// ErrInvalidUTF8 is returned for a string that is not valid UTF-8.
var ErrInvalidUTF8 = errors.New("jcs: string is not valid UTF-8")

// AppendString writes s as a canonical JSON string (RFC 8785 §3.2.2.2).
func AppendString(dst []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, ErrInvalidUTF8
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20:
			dst = append(dst, c)
		case c == '\b':
			dst = append(dst, `\b`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\f':
			dst = append(dst, `\f`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		default:
			dst = append(dst, `\u00`...)
			dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xF])
		}
	}
	return append(dst, '"'), nil
}

// AppendFloat writes f as ECMAScript's Number.prototype.toString does
// (RFC 8785 §3.2.2.3). NaN and infinities are errors.
func AppendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("jcs: %v has no JSON form", f)
	}
	if f == 0 { // also -0
		return append(dst, '0'), nil
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits and exponent: "d.ddde±x".
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	k := len(digits)
	n := x + 1 // value = 0.digits × 10^n
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, "0."...)
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst, nil
}
