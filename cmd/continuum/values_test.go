package main

import (
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestParamValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"ada", "ada"},
		{"", ""},
		{"3", int64(3)},
		{"-3", int64(-3)},
		{"18446744073709551615", uint64(math.MaxUint64)},
		{"1.5", 1.5},
		{"1e3", 1000.0},
		{"007", "007"},
		{"+5", "+5"},
		{`"007"`, "007"},
		{"true", true},
		{"false", false},
		{"null", nil},
		{"nully", "nully"},
		{`["a",1]`, []any{"a", int64(1)}},
		{`{"x":{"y":2}}`, map[string]any{"x": map[string]any{"y": int64(2)}}},
		{"{not json", "{not json"},
		{"1 2", "1 2"},
		{"-", "-"},
	} {
		if got := paramValue(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("paramValue(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestBuildMap(t *testing.T) {
	got, err := buildMap("exec", "--json", `{"a":1,"b":"x"}`, []string{"b=y", "c=2", "d==e"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": int64(1), "b": "y", "c": int64(2), "d": "=e"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	if got, err := buildMap("exec", "--json", "", nil, nil); err != nil || got != nil {
		t.Errorf("nothing given: %v, %v", got, err)
	}
	if got, err := buildMap("exec", "--json", "42", nil, nil); err != nil || got != int64(42) {
		t.Errorf("scalar JSON: %v, %v", got, err)
	}
	for _, bad := range []struct {
		json  string
		pairs []string
	}{{"{", nil}, {"1 2", nil}, {"", []string{"=1"}}, {"", []string{"x"}}, {"[]", []string{"a=1"}}, {"1e999", nil}} {
		if _, err := buildMap("exec", "--json", bad.json, bad.pairs, nil); err == nil {
			t.Errorf("buildMap(%q, %q) succeeded", bad.json, bad.pairs)
		}
	}
}

func TestMsgpackToJSON(t *testing.T) {
	raw, err := msgpack.Marshal(map[any]any{
		"s":      "x",
		"i":      int8(-2),
		"u":      uint64(math.MaxUint64),
		"f":      0.5,
		"nan":    math.NaN(),
		"b":      []byte{1, 2, 3},
		"n":      nil,
		"l":      []any{true, map[string]any{"k": 1}},
		int64(7): "int key",
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeMsgpack(raw)
	if err != nil {
		t.Fatal(err)
	}
	got := compactJSON(v)
	want := `{"7":"int key","b":"AQID","f":0.5,"i":-2,"l":[true,{"k":1}],"n":null,"nan":"NaN","s":"x","u":18446744073709551615}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := compactJSON(msgpack.RawMessage(raw)); got != want {
		t.Errorf("RawMessage: got %s", got)
	}
	if _, err := decodeMsgpack([]byte{0xc1}); err == nil {
		t.Error("decoding 0xc1 succeeded")
	}
}
