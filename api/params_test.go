package api

import (
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func enc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeParamsNamesTheField(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string // message substring; "" = ok
	}{
		{"ok", map[string]any{"durable": "d", "seq": 3}, ""},
		{"missing required", map[string]any{"durable": "d"}, `field "seq" is required`},
		{"nil counts as missing", map[string]any{"durable": "d", "seq": nil}, `field "seq" is required`},
		{"wrong type", map[string]any{"durable": "d", "seq": "three"}, `field "seq" has the wrong type: expected non-negative integer, got string`},
		{"wrong type string", map[string]any{"durable": 5, "seq": 1}, `field "durable" has the wrong type: expected string, got integer`},
		{"not a map", []any{1, 2}, "params must be a map, got array"},
		{"non-string key", map[int]any{1: "x"}, "keys must be strings"},
		{"negative unsigned", map[string]any{"durable": "d", "seq": -1}, `field "seq" must not be negative, got -1`},
		{"negative int64 unsigned", map[string]any{"durable": "d", "seq": int64(-1 << 40)}, `must not be negative`},
		{"float for integer", map[string]any{"durable": "d", "seq": 1.5}, `field "seq" has the wrong type`},
		{"unknown keys skipped", map[string]any{"durable": "d", "seq": 1, "extra": map[string]any{"deep": []any{1}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p AckParams
			err := DecodeParams(enc(t, tc.in), &p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.Durable != "d" {
					t.Fatalf("decoded %+v", p)
				}
				return
			}
			if CodeOf(err) != CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid_argument with %q", err, tc.want)
			}
		})
	}
}

func TestDecodeParamsKeepsAnyRaw(t *testing.T) {
	raw := enc(t, map[string]any{"name": "chat:posted", "payload": map[string]any{"roomId": "r1", "n": 1}})
	var p EmitParams
	if err := DecodeParams(raw, &p); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Payload.(msgpack.RawMessage); !ok {
		t.Fatalf("payload is %T, want raw msgpack", p.Payload)
	}
	if m := AsMap(p.Payload); m["roomId"] != "r1" {
		t.Fatalf("AsMap = %v", m)
	}
	var empty EmitParams
	if err := DecodeParams(nil, &empty); CodeOf(err) != CodeInvalidArgument {
		t.Fatalf("empty params for a method with a required field: %v", err)
	}
}

func TestAssign(t *testing.T) {
	in := ClassConfig{Name: "a:b", SchemaVersion: "v1"}
	var out ClassConfig
	if err := Assign(&out, &in); err != nil || out != in {
		t.Fatalf("pointer assign: %v %+v", err, out)
	}
	var fromMap ClassConfig
	if err := Assign(&fromMap, map[string]any{"name": "a:b", "schemaVersion": "v1"}); err != nil || fromMap != in {
		t.Fatalf("map assign: %v %+v", err, fromMap)
	}
	var fromRaw ClassConfig
	if err := Assign(&fromRaw, msgpack.RawMessage(enc(t, in))); err != nil || fromRaw != in {
		t.Fatalf("raw assign: %v %+v", err, fromRaw)
	}
}

func TestFromWire(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want From
		bad  bool
	}{
		{"now", From{}, false}, {"start", FromStart, false}, {uint64(42), FromSeq(42), false}, {"17", FromSeq(17), false},
		{"later", From{}, true}, {int64(-1), From{}, true}, {true, From{}, true},
	} {
		var p SubscribeParams
		err := DecodeParams(enc(t, map[string]any{"pattern": "*", "from": tc.in}), &p)
		if tc.bad {
			if CodeOf(err) != CodeInvalidArgument {
				t.Errorf("from %v: want invalid_argument, got %v", tc.in, err)
			}
			continue
		}
		if err != nil || p.From != tc.want {
			t.Errorf("from %v: got %+v, %v", tc.in, p.From, err)
		}
	}
	b := enc(t, SubscribeParams{Pattern: "*", From: FromSeq(9)})
	var back SubscribeParams
	if err := msgpack.Unmarshal(b, &back); err != nil || back.From != FromSeq(9) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestDescribeMethods(t *testing.T) {
	for _, m := range Methods {
		info := m.Info()
		if info.Params == nil || info.Params.Type == "" {
			t.Errorf("%s: params not described", m.Name)
		}
		if m.Kind == KindRequest && info.Result == nil {
			t.Errorf("%s: result not described", m.Name)
		}
	}
	s := Describe(typeOf[ClassConfig]())
	if s.Type != "object" || s.Fields[0].Name != "name" || !s.Fields[0].Required || s.Fields[2].Schema.Enum == nil {
		t.Fatalf("ClassConfig schema: %+v", s)
	}
}

func TestDecodeParamsIntegerRanges(t *testing.T) {
	type narrow struct {
		Small uint8   `msgpack:"small"`
		Mid   int32   `msgpack:"mid"`
		Opt   *uint16 `msgpack:"opt"`
		Big   int64   `msgpack:"big"`
	}
	cases := []struct {
		name string
		in   map[string]any
		want string // "" = ok
	}{
		{"fits", map[string]any{"small": 255, "mid": -5, "opt": 7, "big": int64(-1 << 62)}, ""},
		{"signed code holding a positive number", map[string]any{"small": int8(3)}, ""},
		{"uint8 overflow", map[string]any{"small": 300}, `field "small" is out of range: 300 does not fit in 8 bits`},
		{"int32 overflow", map[string]any{"mid": int64(1) << 40}, `field "mid" is out of range`},
		{"int32 underflow", map[string]any{"mid": int64(-1) << 40}, `field "mid" is out of range`},
		{"int64 from a too big uint64", map[string]any{"big": uint64(1) << 63}, `field "big" is out of range`},
		{"negative pointer to unsigned", map[string]any{"opt": -2}, `field "opt" must not be negative`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p narrow
			err := DecodeParams(enc(t, tc.in), &p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if CodeOf(err) != CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid_argument with %q", err, tc.want)
			}
		})
	}
	var p narrow
	if err := DecodeParams(enc(t, map[string]any{"small": 255, "mid": -5, "opt": 7, "big": int64(-1 << 62)}), &p); err != nil ||
		p.Small != 255 || p.Mid != -5 || p.Opt == nil || *p.Opt != 7 || p.Big != -1<<62 {
		t.Fatalf("decoded %+v (%v)", p, err)
	}
}

// A wrong value inside a nested params struct is named by its path, not by
// the field that holds the struct; a good nested struct decodes as before.
func TestDecodeParamsNamesANestedField(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]any
		want string
	}{
		{"wrong nested type", map[string]any{"command": "c", "scope": map[string]any{"target": "grid", "policy": 7}}, `field "scope.policy" has the wrong type: expected string, got integer`},
		{"scope not a map", map[string]any{"command": "c", "scope": "grid"}, `field "scope" has the wrong type: expected map, got string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p ExecuteParams
			err := DecodeParams(enc(t, tc.in), &p)
			if CodeOf(err) != CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid_argument with %q", err, tc.want)
			}
		})
	}
	var p ExecuteParams
	if err := DecodeParams(enc(t, map[string]any{"command": "c", "scope": map[string]any{"target": "grid", "policy": "cheapest", "extra": 1}}), &p); err != nil {
		t.Fatal(err)
	}
	if p.Scope == nil || p.Scope.Target != "grid" || p.Scope.Policy != "cheapest" {
		t.Fatalf("decoded scope %+v", p.Scope)
	}
}
