package api

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Params is a method's params map as it arrived: raw msgpack from a socket
// (RawParams) or a Go value from an in-process caller (ValueParams). Decode fills
// a params struct and reports a wrong type or a missing required field as
// invalid_argument naming the field.
type Params interface {
	Decode(dst any) error
}

// RawParams is the msgpack encoding of a params map (the single element of the
// params array); empty means an empty map.
type RawParams []byte

// Decode implements Params.
func (p RawParams) Decode(dst any) error { return DecodeParams(p, dst) }

// ValueParams carries params as a Go value, so the in-process path skips
// serialization when the caller already built the struct the handler wants.
type ValueParams struct{ V any }

// Decode implements Params.
func (p ValueParams) Decode(dst any) error { return Assign(dst, p.V) }

// Assign stores v into the pointer dst: directly when the types match, by
// decoding when v is raw msgpack, and by a msgpack round trip otherwise (so a
// map[string]any fills a struct the way it would over the wire).
func Assign(dst any, v any) error {
	if raw, ok := v.(msgpack.RawMessage); ok {
		return DecodeParams(raw, dst)
	}
	if raw, ok := v.(RawParams); ok {
		return DecodeParams(raw, dst)
	}
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return fmt.Errorf("api: Assign needs a non-nil pointer, got %T", dst)
	}
	target := dv.Elem()
	if v == nil {
		target.SetZero()
		return nil
	}
	sv := reflect.ValueOf(v)
	if sv.Type().AssignableTo(target.Type()) {
		target.Set(sv)
		return nil
	}
	if sv.Kind() == reflect.Pointer && !sv.IsNil() && sv.Elem().Type().AssignableTo(target.Type()) {
		target.Set(sv.Elem())
		return nil
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		return Errorf(CodeInvalidArgument, "params: %v", err)
	}
	return DecodeParams(b, dst)
}

// field is one decodable field of a params struct.
type field struct {
	index    int
	name     string
	required bool
	isAny    bool
}

type structInfo struct {
	byName   map[string]*field
	required []*field
}

var structCache sync.Map // reflect.Type -> *structInfo

// infoOf indexes t's wire fields (WireFields) by name for the decoder.
func infoOf(t reflect.Type) *structInfo {
	if v, ok := structCache.Load(t); ok {
		return v.(*structInfo)
	}
	si := &structInfo{byName: map[string]*field{}}
	for _, wf := range WireFields(t) {
		f := &field{index: wf.Index, name: wf.Name, required: wf.Required, isAny: wf.Type.Kind() == reflect.Interface}
		si.byName[f.name] = f
		if f.required {
			si.required = append(si.required, f)
		}
	}
	structCache.Store(t, si)
	return si
}

// DecodeParams decodes a msgpack params map into dst, one field at a time, so
// that an error names the field: a value of the wrong type, a required field
// that is absent, or params that are not a map are all invalid_argument.
// Unknown keys are skipped (newer clients may send more). Fields of interface
// type keep their raw msgpack (msgpack.RawMessage), to be forwarded undecoded.
func DecodeParams(b []byte, dst any) error {
	if fast, ok := dst.(paramsDecoder); ok {
		return fast.decodeParams(b)
	}
	dv := reflect.ValueOf(dst)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return fmt.Errorf("api: DecodeParams needs a non-nil pointer, got %T", dst)
	}
	target := dv.Elem()
	if target.Kind() != reflect.Struct {
		if len(b) == 0 {
			target.SetZero()
			return nil
		}
		if target.Kind() == reflect.Interface {
			target.Set(reflect.ValueOf(msgpack.RawMessage(b)))
			return nil
		}
		if err := msgpack.Unmarshal(b, dst); err != nil {
			return Errorf(CodeInvalidArgument, "params: %v", err)
		}
		return nil
	}
	return decodeStruct(b, target, "", true)
}

// decodeStruct decodes the params map b into the struct target. path
// prefixes the field names in errors ("scope." for a field of scope);
// required says whether missing required fields are an error.
func decodeStruct(b []byte, target reflect.Value, path string, required bool) error {
	si := infoOf(target.Type())
	check := func(seen []*field) error {
		if !required {
			return nil
		}
		return checkRequired(si, seen, path)
	}
	if len(b) == 0 {
		return check(nil)
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(b))
	c, err := dec.PeekCode()
	if err != nil {
		return Errorf(CodeInvalidArgument, "params: %v", err)
	}
	if c == msgpcode.Nil {
		return check(nil)
	}
	if !isMapCode(c) {
		if path != "" {
			return Errorf(CodeInvalidArgument, "field %q has the wrong type: expected map, got %s", path[:len(path)-1], WireType(c))
		}
		return Errorf(CodeInvalidArgument, "params must be a map, got %s", WireType(c))
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return Errorf(CodeInvalidArgument, "params: %v", err)
	}
	var seen []*field
	if len(si.required) > 0 {
		seen = make([]*field, 0, len(si.required))
	}
	for i := 0; i < n; i++ {
		kc, err := dec.PeekCode()
		if err != nil {
			return Errorf(CodeInvalidArgument, "params: %v", err)
		}
		if !msgpcode.IsString(kc) {
			return Errorf(CodeInvalidArgument, "params keys must be strings, got %s", WireType(kc))
		}
		key, err := dec.DecodeString()
		if err != nil {
			return Errorf(CodeInvalidArgument, "params: %v", err)
		}
		name := path + key
		f := si.byName[key]
		if f == nil {
			if err := dec.Skip(); err != nil {
				return Errorf(CodeInvalidArgument, "field %q: %v", name, err)
			}
			continue
		}
		fv := target.Field(f.index)
		vc, err := dec.PeekCode()
		if err != nil {
			return Errorf(CodeInvalidArgument, "field %q: %v", name, err)
		}
		switch {
		case f.isAny:
			raw, err := dec.DecodeRaw()
			if err != nil {
				return Errorf(CodeInvalidArgument, "field %q: %v", name, err)
			}
			if vc != msgpcode.Nil {
				fv.Set(reflect.ValueOf(raw))
			}
		case isIntCode(vc) && isIntKind(fv.Type()):
			if err := decodeInt(dec, name, fv); err != nil {
				return err
			}
		case isMapCode(vc) && plainStruct(fv.Type()):
			// A nested params struct: decoded as before, but a wrong
			// value inside it is named by its own path ("scope.policy"),
			// not by the field that holds it.
			raw, err := dec.DecodeRaw()
			if err != nil {
				return Errorf(CodeInvalidArgument, "field %q: %v", name, err)
			}
			if err := msgpack.Unmarshal(raw, fv.Addr().Interface()); err != nil {
				st := fv.Type()
				if st.Kind() == reflect.Pointer {
					st = st.Elem()
				}
				if derr := decodeStruct(raw, reflect.New(st).Elem(), name+".", false); derr != nil {
					return derr
				}
				return Errorf(CodeInvalidArgument, "field %q has the wrong type: expected %s, got %s", name, goTypeName(fv.Type()), WireType(vc))
			}
		default:
			if err := dec.DecodeValue(fv); err != nil {
				return Errorf(CodeInvalidArgument, "field %q has the wrong type: expected %s, got %s", name, goTypeName(fv.Type()), WireType(vc))
			}
		}
		if f.required && vc != msgpcode.Nil {
			seen = append(seen, f)
		}
	}
	return check(seen)
}

func isMapCode(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

var (
	customDecoder = reflect.TypeFor[msgpack.CustomDecoder]()
	unmarshaler   = reflect.TypeFor[msgpack.Unmarshaler]()
)

// plainStruct reports whether t (or what it points to) is a struct that
// msgpack decodes field by field, so decodeStruct can name a bad field in
// it; types with their own decoding are left to it.
func plainStruct(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	p := reflect.PointerTo(t)
	return !p.Implements(customDecoder) && !p.Implements(unmarshaler) && !t.Implements(customDecoder) && !t.Implements(unmarshaler)
}

func isIntCode(c byte) bool {
	return msgpcode.IsFixedNum(c) || c >= msgpcode.Uint8 && c <= msgpcode.Int64
}

func isIntKind(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// decodeInt decodes an integer into an integer field, refusing what the
// field cannot hold: the msgpack decoder would turn -1 into 2^64-1 for an
// unsigned field, and cut 300 to 44 for a uint8, silently.
func decodeInt(dec *msgpack.Decoder, key string, fv reflect.Value) error {
	c, _ := dec.PeekCode()
	negative := msgpcode.IsFixedNum(c) && int8(c) < 0 || c >= msgpcode.Int8 && c <= msgpcode.Int64
	var (
		n   int64
		u   uint64
		err error
	)
	if negative {
		n, err = dec.DecodeInt64()
		negative = n < 0 // Int8..Int64 may hold a non-negative number too
		u = uint64(n)
	} else {
		u, err = dec.DecodeUint64()
	}
	if err != nil {
		return Errorf(CodeInvalidArgument, "field %q: %v", key, err)
	}
	if fv.Kind() == reflect.Pointer {
		fv.Set(reflect.New(fv.Type().Elem()))
		fv = fv.Elem()
	}
	switch fv.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if negative {
			return Errorf(CodeInvalidArgument, "field %q must not be negative, got %d", key, n)
		}
		if fv.OverflowUint(u) {
			return Errorf(CodeInvalidArgument, "field %q is out of range: %d does not fit in %d bits", key, u, fv.Type().Bits())
		}
		fv.SetUint(u)
	default:
		if negative {
			n = int64(u)
		} else if u > 1<<63-1 {
			return Errorf(CodeInvalidArgument, "field %q is out of range: %d does not fit in %d bits", key, u, fv.Type().Bits())
		} else {
			n = int64(u)
		}
		if fv.OverflowInt(n) {
			return Errorf(CodeInvalidArgument, "field %q is out of range: %d does not fit in %d bits", key, n, fv.Type().Bits())
		}
		fv.SetInt(n)
	}
	return nil
}

func checkRequired(si *structInfo, seen []*field, path string) error {
outer:
	for _, r := range si.required {
		for _, s := range seen {
			if s == r {
				continue outer
			}
		}
		return Errorf(CodeInvalidArgument, "field %q is required", path+r.name)
	}
	return nil
}

// WireType names the msgpack type that starts with code c, for error messages.
func WireType(c byte) string {
	switch {
	case c == msgpcode.Nil:
		return "nil"
	case c == msgpcode.True || c == msgpcode.False:
		return "boolean"
	case msgpcode.IsFixedNum(c), c >= msgpcode.Uint8 && c <= msgpcode.Int64:
		return "integer"
	case c == msgpcode.Float || c == msgpcode.Double:
		return "float"
	case msgpcode.IsString(c):
		return "string"
	case msgpcode.IsBin(c):
		return "binary"
	case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
		return "array"
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
		return "map"
	case msgpcode.IsExt(c):
		return "extension"
	}
	return fmt.Sprintf("unknown type 0x%02x", c)
}

func goTypeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "binary"
		}
		return "array"
	case reflect.Map, reflect.Struct:
		if t == reflect.TypeOf(From{}) {
			return `"now", "start" or a seq`
		}
		return "map"
	}
	return t.String()
}
