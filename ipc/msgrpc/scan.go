package msgrpc

import "github.com/continuum-grid/continuum/api"

// scanState is where scan stopped inside a message: at pos, the start of the
// next element (the stack of open containers is Reader.stack), or, once the
// message is whole, its end.
type scanState struct {
	pos   int
	depth int
	owed  uint64 // elements announced by open containers, not yet started
}

// scanError is a *ProtocolError found by scan, with how many bytes the
// incremental walk would have read before it: the msgid is read from those
// and no further, and the Reader consumes as many.
type scanError struct {
	*ProtocolError
	consumed int
}

// scan walks the message at the start of b in place, from st on. It is walk,
// object, length and payload over a slice: the same checks in the same order,
// with "the bytes are not in b yet" where the incremental walk would wait on
// the stream. It returns need 0 when the message is whole, as b[:st.pos];
// need > 0 when the element at st.pos is not whole in b, need being how many
// bytes of the message must be at hand for the walk to get further; or the
// error the incremental walk would give.
//
// Only whole elements are committed to st and the stack, so a walk resumed
// with more bytes (or handed to walk) starts cleanly at an element's first byte.
func (r *Reader) scan(b []byte, st *scanState) (need int, _ *scanError) {
	p, depth, owed := st.pos, st.depth, st.owed
	limit := uint64(r.max)
	// fits is Reader.fits with have = q, the bytes of the message before the
	// ones a header is about to declare.
	fits := func(q int, o, n uint64) *scanError {
		if n > limit || uint64(q)+o+n > limit { // limit <= MaxInt64
			return &scanError{r.tooLarge(n, uint64(q)), q}
		}
		return nil
	}
	for {
		// Fast path for the bulk of a message: a short scalar (fixint,
		// nil, a bool, a fixstr) inside a container, whole in b and
		// within every bound the general path below checks (with owed >=
		// 1 here, p+owed+n <= limit implies both of its size checks). Any
		// other element, or one that would fail a check, takes the general
		// path, which gives the same result and the same error.
		if depth > 0 && p < len(b) {
			c := b[p]
			n := -1
			switch {
			case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
				n = 0
			case c&0xe0 == 0xa0: // fixstr
				n = int(c & 0x1f)
			}
			if n >= 0 && p+1+n <= len(b) && uint64(p)+owed+uint64(n) <= limit {
				r.stack[depth-1]--
				owed--
				p += 1 + n
				for depth > 0 && r.stack[depth-1] == 0 {
					depth--
				}
				if depth == 0 {
					st.pos = p
					return 0, nil
				}
				continue
			}
		}
		if p >= len(b) {
			st.pos, st.depth, st.owed = p, depth, owed
			return p + 1, nil
		}
		if p > 0 && uint64(p)+1 > limit { // readByte's check
			return 0, &scanError{protoErr(api.CodeMessageTooLarge, "message exceeds the %d byte limit", r.max), p}
		}
		o := owed // owed once this element has started
		if depth > 0 {
			o--
		}
		c := b[p]
		q := p + 1      // just past what is read of this element so far
		var n uint64    // payload bytes after the header
		var elems int64 // elements of a container; -1 for anything else
		var size int    // bytes of a length field
		elems = -1
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			elems = 2 * int64(c&0x0f)
		case c <= 0x9f: // fixarray
			elems = int64(c & 0x0f)
		case c <= 0xbf: // fixstr
			n = uint64(c & 0x1f)
		case c == 0xc0 || c == 0xc2 || c == 0xc3: // nil, false, true
		case c == 0xc1:
			return 0, &scanError{protoErr(api.CodeProtocolError, "reserved type code 0xc1"), q}
		case c == 0xc4 || c == 0xd9: // bin8, str8
			size = 1
		case c == 0xc5 || c == 0xda: // bin16, str16
			size = 2
		case c == 0xc6 || c == 0xdb: // bin32, str32
			size = 4
		case c <= 0xc9: // ext8/16/32: length, then a type byte, then data
			size = 1 << (c - 0xc7)
		case c <= 0xcb: // float32, float64
			n = 4 << (c - 0xca)
		case c <= 0xcf: // uint8..uint64
			n = 1 << (c - 0xcc)
		case c <= 0xd3: // int8..int64
			n = 1 << (c - 0xd0)
		case c <= 0xd8: // fixext1..16: a type byte, then data
			n = 1 + (1 << (c - 0xd4))
		case c <= 0xdd: // array16, array32
			size = 2 << (c - 0xdc)
		default: // map16, map32
			size = 2 << (c - 0xde)
		}
		if size > 0 {
			if err := fits(q, o, uint64(size)); err != nil {
				return 0, err
			}
			if len(b)-q < size {
				st.pos, st.depth, st.owed = p, depth, owed
				return q + size, nil
			}
			var v uint64
			for _, x := range b[q : q+size] {
				v = v<<8 | uint64(x)
			}
			q += size
			switch {
			case c >= 0xdc && c <= 0xdd:
				elems = int64(v)
			case c >= 0xde:
				elems = 2 * int64(v)
			case c >= 0xc7 && c <= 0xc9:
				n = v + 1
			default:
				n = v
			}
		}
		if n > 0 {
			if err := fits(q, o, n); err != nil {
				return 0, err
			}
			if uint64(len(b)-q) < n {
				st.pos, st.depth, st.owed = p, depth, owed
				return q + int(n), nil // n fits the budget, so this is no overflow
			}
			q += int(n)
		}
		// The element is whole: commit it.
		if depth > 0 {
			r.stack[depth-1]--
		}
		owed = o
		if elems >= 0 {
			if err := fits(q, o, uint64(elems)); err != nil {
				return 0, err
			}
			if elems > 0 {
				if depth == MaxDepth {
					return 0, &scanError{protoErr(api.CodeProtocolError, "nesting deeper than %d levels", MaxDepth), q}
				}
				r.stack[depth] = uint64(elems)
				depth++
				owed += uint64(elems)
			}
		}
		for depth > 0 && r.stack[depth-1] == 0 {
			depth--
		}
		p = q
		if depth == 0 {
			st.pos = p
			return 0, nil
		}
	}
}
