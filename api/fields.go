package api

import (
	"reflect"
	"strings"
	"sync"
)

// WireField is one field of an API struct as it travels: what the params
// decoder, the schema of kernel/info and the binding generator (gen/) all
// read from the struct tags. The rules live here alone:
//
//   - only exported fields travel, and msgpack:"-" keeps one off the wire;
//   - the wire name is the msgpack tag's name, or the Go name without one;
//   - omitempty is the msgpack tag's option; api:"required" marks a field a
//     call must send; desc:"..." is its one-line description.
type WireField struct {
	Index     int    // in the struct, for reflect.Value.Field
	GoName    string // Go field name
	Name      string // wire name (camelCase key)
	Type      reflect.Type
	OmitEmpty bool
	Required  bool
	Desc      string
}

var wireFieldCache sync.Map // reflect.Type -> []WireField

// WireFields lists the fields of struct type t that travel, in declaration
// order. The slice is cached and shared: do not modify it.
func WireFields(t reflect.Type) []WireField {
	if v, ok := wireFieldCache.Load(t); ok {
		return v.([]WireField)
	}
	var out []WireField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("msgpack"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, WireField{
			Index:     i,
			GoName:    sf.Name,
			Name:      name,
			Type:      sf.Type,
			OmitEmpty: strings.Contains(","+opts+",", ",omitempty,"),
			Required:  sf.Tag.Get("api") == "required",
			Desc:      sf.Tag.Get("desc"),
		})
	}
	v, _ := wireFieldCache.LoadOrStore(t, out)
	return v.([]WireField)
}
