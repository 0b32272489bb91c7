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
	check("true", AppendBool(nil, true), []byte{0xc3})
	check("float", AppendFloat64(nil, 1.5), lib(func(e *msgpack.Encoder) error { return e.EncodeFloat64(1.5) }))
}
