// Package wire is the one home of hand-written MessagePack: the writers and
// the one bounded in-buffer walker. It imports nothing of the project.
//
// Writers (Append*): the bytes of every value the project encodes by hand
// (the event envelope in api, the signing form in kernel/airc) come from
// them. Each appends to a slice and returns it, never fails, and writes the
// smallest encoding the msgpack spec allows (so equal values always get
// equal bytes, which the signed and stored forms rely on).
//
// Reading (Skip, Length, ArrayHeader, Uint): Skip checks and steps over one
// value in a buffer without allocating and without trusting a length
// header beyond the bytes at hand, with nesting bounded by MaxDepth; ipc's
// message parser and api's envelope reader use it. The one other walker is
// ipc/msgrpc's stream framer, which must find a message's end on a stream
// that may stop mid-value and resume later (see ipc/msgrpc/frame.go); the
// signing form's transcoder in kernel/airc rewrites rather than walks.
package wire

import (
	"encoding/binary"
	"math"
)

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendUint appends an unsigned integer: positive fixint, uint8, uint16,
// uint32 or uint64, whichever is smallest.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= math.MaxInt8:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

// AppendInt appends a signed integer: a non-negative one as AppendUint
// does, a negative one as negative fixint, int8, int16, int32 or int64.
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return AppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

// AppendFloat64 appends a float64 (always 0xcb: msgpack has no smaller
// exact form for every value).
func AppendFloat64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(v))
}

// AppendStrHeader appends the header of a string of n bytes.
func AppendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
}

// AppendStr appends a string.
func AppendStr(b []byte, s string) []byte { return append(AppendStrHeader(b, len(s)), s...) }

// AppendBin appends binary data (an empty or nil slice as an empty bin).
func AppendBin(b []byte, v []byte) []byte {
	switch n := len(v); {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, v...)
}

// AppendBinOrNil is AppendBin, except that a nil slice is written as nil
// (the envelope's prev and sig: absent on local events).
func AppendBinOrNil(b []byte, v []byte) []byte {
	if v == nil {
		return AppendNil(b)
	}
	return AppendBin(b, v)
}

// AppendArrayHeader appends the header of an array of n elements.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

// AppendMapHeader appends the header of a map of n entries.
func AppendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

// AppendExt appends an extension value of type typ: fixext 1/2/4/8/16 when
// data has one of those sizes, ext 8/16/32 otherwise.
func AppendExt(b []byte, typ byte, data []byte) []byte {
	switch n := len(data); n {
	case 1:
		b = append(b, 0xd4)
	case 2:
		b = append(b, 0xd5)
	case 4:
		b = append(b, 0xd6)
	case 8:
		b = append(b, 0xd7)
	case 16:
		b = append(b, 0xd8)
	default:
		switch {
		case n <= math.MaxUint8:
			b = append(b, 0xc7, byte(n))
		case n <= math.MaxUint16:
			b = binary.BigEndian.AppendUint16(append(b, 0xc8), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xc9), uint32(n))
		}
	}
	return append(append(b, typ), data...)
}
