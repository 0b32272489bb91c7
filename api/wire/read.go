package wire

import "fmt"

// MaxDepth is the nesting bound every reader of the project applies: the
// stream framer in ipc/msgrpc, Skip here, and the canonical payload form.
const MaxDepth = 64

// SyntaxError is MessagePack that cannot be read: truncated (the input ends
// inside a value), a length or count the bytes cannot hold, nesting deeper
// than the bound, or the reserved code 0xc1.
type SyntaxError struct {
	Offset    int  // where in the input the problem was found
	Truncated bool // the input ended inside a value
	Msg       string
}

func (e *SyntaxError) Error() string { return e.Msg }

//go:noinline
func syntaxErr(offset int, truncated bool, format string, args ...any) *SyntaxError {
	return &SyntaxError{Offset: offset, Truncated: truncated, Msg: fmt.Sprintf(format, args...)}
}

// Skip returns the offset just past the one value that starts at b[p],
// checking its structure without allocating and without trusting any
// header: every length and count must lie within b (each element takes at
// least a byte, so a count the bytes cannot hold is refused before it is
// looped over), containers nest at most maxDepth levels, and 0xc1 is
// refused. It is the one in-buffer walker: ipc/msgrpc checks a message's
// structure with it, api steps over the values it does not decode.
func Skip(b []byte, p, maxDepth int) (int, error) {
	end, err := skip(b, p, maxDepth)
	if err != nil {
		return 0, err // a typed nil *SyntaxError must not become a non-nil error
	}
	return end, nil
}

func skip(b []byte, p, depthLeft int) (int, *SyntaxError) {
	if depthLeft < 0 {
		return 0, syntaxErr(p, false, "nesting deeper than %d levels", MaxDepth)
	}
	if p >= len(b) {
		return 0, syntaxErr(p, true, "truncated at byte %d", p)
	}
	c := b[p]
	var elems, n uint64
	switch {
	case c <= 0x7f || c >= 0xe0:
		return p + 1, nil
	case c >= 0x80 && c <= 0x8f:
		elems, p = 2*uint64(c&0x0f), p+1
	case c >= 0x90 && c <= 0x9f:
		elems, p = uint64(c&0x0f), p+1
	case c >= 0xa0 && c <= 0xbf:
		n, p = uint64(c&0x1f), p+1
	case c == 0xc0 || c == 0xc2 || c == 0xc3:
		return p + 1, nil
	case c == 0xc1:
		return 0, syntaxErr(p, false, "reserved type code 0xc1")
	case c == 0xc4 || c == 0xd9, c == 0xc5 || c == 0xda, c == 0xc6 || c == 0xdb:
		size := 1
		if c == 0xc5 || c == 0xda {
			size = 2
		} else if c == 0xc6 || c == 0xdb {
			size = 4
		}
		var ok bool
		if n, p, ok = Length(b, p+1, size); !ok {
			return 0, syntaxErr(p, true, "truncated in a length")
		}
	case c >= 0xc7 && c <= 0xc9:
		var ok bool
		if n, p, ok = Length(b, p+1, 1<<(c-0xc7)); !ok {
			return 0, syntaxErr(p, true, "truncated in a length")
		}
		n++ // the extension type byte
	case c == 0xca || c == 0xcb:
		n, p = 4<<(c-0xca), p+1
	case c >= 0xcc && c <= 0xcf:
		n, p = 1<<(c-0xcc), p+1
	case c >= 0xd0 && c <= 0xd3:
		n, p = 1<<(c-0xd0), p+1
	case c >= 0xd4 && c <= 0xd8:
		n, p = 1+(1<<(c-0xd4)), p+1
	case c == 0xdc || c == 0xdd:
		var ok bool
		if elems, p, ok = Length(b, p+1, 2<<(c-0xdc)); !ok {
			return 0, syntaxErr(p, true, "truncated in a length")
		}
	case c == 0xde || c == 0xdf:
		var ok bool
		if elems, p, ok = Length(b, p+1, 2<<(c-0xde)); !ok {
			return 0, syntaxErr(p, true, "truncated in a length")
		}
		elems *= 2
	}
	if n > 0 {
		if n > uint64(len(b)-p) {
			return 0, syntaxErr(p, true, "a length of %d overruns the input", n)
		}
		return p + int(n), nil
	}
	if elems > uint64(len(b)-p) {
		return 0, syntaxErr(p, true, "a count of %d elements overruns the input", elems)
	}
	for ; elems > 0; elems-- {
		var err *SyntaxError
		if p, err = skip(b, p, depthLeft-1); err != nil {
			return 0, err
		}
	}
	return p, nil
}

// Length reads the big-endian unsigned number of size bytes at b[p:] and
// returns it with the offset after it; false when b ends first.
func Length(b []byte, p, size int) (uint64, int, bool) {
	if p < 0 || len(b)-p < size {
		return 0, p, false
	}
	var n uint64
	for _, x := range b[p : p+size] {
		n = n<<8 | uint64(x)
	}
	return n, p + size, true
}

// ArrayHeader reads an array header at b[p:]: the element count and the
// offset of the first element; false when there is no array header there.
func ArrayHeader(b []byte, p int) (uint64, int, bool) {
	if p >= len(b) {
		return 0, p, false
	}
	switch c := b[p]; {
	case c >= 0x90 && c <= 0x9f:
		return uint64(c & 0x0f), p + 1, true
	case c == 0xdc:
		return Length(b, p+1, 2)
	case c == 0xdd:
		return Length(b, p+1, 4)
	}
	return 0, p, false
}

// IsMap reports whether c starts a map.
func IsMap(c byte) bool { return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf }

// Uint reads a non-negative integer at b[p:] in any of its encodings
// (signed ones included, when the value is not negative); false otherwise.
func Uint(b []byte, p int) (uint64, int, bool) {
	if p >= len(b) {
		return 0, p, false
	}
	switch c := b[p]; {
	case c <= 0x7f:
		return uint64(c), p + 1, true
	case c >= 0xcc && c <= 0xcf:
		return Length(b, p+1, 1<<(c-0xcc))
	case c >= 0xd0 && c <= 0xd3:
		size := 1 << (c - 0xd0)
		v, q, ok := Length(b, p+1, size)
		if !ok || v>>(8*size-1) != 0 { // negative
			return 0, p, false
		}
		return v, q, true
	}
	return 0, p, false
}
