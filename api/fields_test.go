package api

import (
	"reflect"
	"testing"
)

// WireFields is the one reading of the struct tags: the decoder, the schemas
// and gen/ all see exactly these fields.
func TestWireFields(t *testing.T) {
	type inner struct{}
	type sample struct {
		Plain     string
		Named     int      `msgpack:"named"`
		Opt       []string `msgpack:"opt,omitempty" desc:"optional list"`
		Req       inner    `msgpack:"req" api:"required"`
		Skipped   bool     `msgpack:"-"`
		unexposed int
		OptNoName int `msgpack:",omitempty"`
	}
	got := WireFields(reflect.TypeFor[sample]())
	want := []WireField{
		{Index: 0, GoName: "Plain", Name: "Plain", Type: reflect.TypeFor[string]()},
		{Index: 1, GoName: "Named", Name: "named", Type: reflect.TypeFor[int]()},
		{Index: 2, GoName: "Opt", Name: "opt", Type: reflect.TypeFor[[]string](), OmitEmpty: true, Desc: "optional list"},
		{Index: 3, GoName: "Req", Name: "req", Type: reflect.TypeFor[inner](), Required: true},
		{Index: 6, GoName: "OptNoName", Name: "OptNoName", Type: reflect.TypeFor[int](), OmitEmpty: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// The decoder and the schema read the same fields.
	var s sample
	if err := Assign(&s, map[string]any{"Plain": "p", "named": 3, "req": map[string]any{}, "Skipped": true}); err != nil {
		t.Fatal(err)
	}
	if s.Plain != "p" || s.Named != 3 || s.Skipped {
		t.Fatalf("decoded %+v", s)
	}
	if err := Assign(&s, map[string]any{"Plain": "p"}); CodeOf(err) != CodeInvalidArgument {
		t.Fatalf("missing required field: %v", err)
	}
	sch := Describe(reflect.TypeFor[sample]())
	var names []string
	for _, f := range sch.Fields {
		names = append(names, f.Name)
	}
	if !reflect.DeepEqual(names, []string{"Plain", "named", "opt", "req", "OptNoName"}) || !sch.Fields[3].Required || sch.Fields[2].Description != "optional list" {
		t.Fatalf("schema fields %+v", sch.Fields)
	}
}
