package wire

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Every writer matches the msgpack library's smallest encoding (compact
// integers) at each size boundary, so bytes written here read everywhere.
func TestWritersMatchTheLibrary(t *testing.T) {
	lib := func(f func(e *msgpack.Encoder) error) []byte {
		var buf bytes.Buffer
		e := msgpack.NewEncoder(&buf)
		e.UseCompactInts(true)
		if err := f(e); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	check := func(what string, got, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: wrote %x, the library %x", what, got, want)
		}
	}
	for _, u := range []uint64{0, 1, 127, 128, 255, 256, math.MaxUint16, math.MaxUint16 + 1, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		check("uint", AppendUint(nil, u), lib(func(e *msgpack.Encoder) error { return e.EncodeUint(u) }))
	}
	for _, i := range []int64{0, 5, -1, -32, -33, -128, -129, math.MinInt16, math.MinInt16 - 1, math.MinInt32, math.MinInt32 - 1, math.MinInt64, math.MaxInt64} {
		check("int", AppendInt(nil, i), lib(func(e *msgpack.Encoder) error { return e.EncodeInt(i) }))
	}
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("s", n)
		check("str", AppendStr(nil, s), lib(func(e *msgpack.Encoder) error { return e.EncodeString(s) }))
		bin := []byte(s)
		check("bin", AppendBin(nil, bin), lib(func(e *msgpack.Encoder) error { return e.EncodeBytes(bin) }))
		check("array", AppendArrayHeader(nil, n), lib(func(e *msgpack.Encoder) error { return e.EncodeArrayLen(n) }))
		check("map", AppendMapHeader(nil, n), lib(func(e *msgpack.Encoder) error { return e.EncodeMapLen(n) }))
		check("ext", AppendExt(nil, 7, bin), lib(func(e *msgpack.Encoder) error {
			if err := e.EncodeExtHeader(7, n); err != nil {
				return err
			}
			_, err := e.Writer().Write(bin)
			return err
		}))
	}
	check("nil", AppendNil(nil), lib(func(e *msgpack.Encoder) error { return e.EncodeNil() }))
	check("bin or nil", AppendBinOrNil(nil, nil), []byte{0xc0})
	check("empty bin", AppendBinOrNil(nil, []byte{}), []byte{0xc4, 0})
	check("float", AppendFloat64(nil, 1.5), lib(func(e *msgpack.Encoder) error { return e.EncodeFloat64(1.5) }))
}

// Skip steps over exactly one value, refuses what the bytes cannot hold,
// and bounds nesting.
func TestSkip(t *testing.T) {
	good := AppendStr(AppendMapHeader(AppendArrayHeader(nil, 2), 1), "k")
	good = AppendBin(good, []byte("vv"))
	good = AppendExt(good, 3, []byte{1, 2, 3})
	if end, err := Skip(append(good, 0x01), 0, MaxDepth); err != nil || end != len(good) {
		t.Fatalf("Skip = %d, %v; want %d", end, err, len(good))
	}
	deep := func(n int) []byte { return append(bytes.Repeat([]byte{0x91}, n), 0x00) }
	for name, tc := range map[string]struct {
		b         []byte
		truncated bool
	}{
		"empty":               {nil, true},
		"reserved":            {[]byte{0xc1}, false},
		"cut string":          {[]byte{0xa5, 'a'}, true},
		"cut length":          {[]byte{0xdb, 0x00}, true},
		"huge bin32":          {[]byte{0xc6, 0xff, 0xff, 0xff, 0xff}, true},
		"huge map32":          {[]byte{0xdf, 0xff, 0xff, 0xff, 0xff}, true},
		"cut array":           {[]byte{0x92, 0x01}, true},
		"too deep":            {deep(MaxDepth + 1), false},
		"reserved in a value": {[]byte{0x81, 0xa1, 'x', 0xc1}, false},
	} {
		_, err := Skip(tc.b, 0, MaxDepth)
		se, ok := err.(*SyntaxError)
		if !ok || se.Truncated != tc.truncated {
			t.Errorf("%s: %v (truncated %v)", name, err, tc.truncated)
		}
	}
	if _, err := Skip(deep(MaxDepth), 0, MaxDepth); err != nil {
		t.Fatalf("nesting at the bound: %v", err)
	}
}
