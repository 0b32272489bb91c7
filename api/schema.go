package api

import "reflect"

// Schema describes a params or result type in kernel/info, so that any language
// can generate a client from a running daemon (as nvim_get_api_info does).
type Schema struct {
	// Type is one of object, array, map, string, integer, unsigned, number,
	// boolean, binary, any, or from (a string "now"/"start" or an unsigned seq).
	Type     string   `msgpack:"type" json:"type"`
	Name     string   `msgpack:"name,omitempty" json:"name,omitempty"`         // Go type name of an object or named string
	Nullable bool     `msgpack:"nullable,omitempty" json:"nullable,omitempty"` // may be nil
	Fields   []Field  `msgpack:"fields,omitempty" json:"fields,omitempty"`     // object fields, in declaration order
	Items    *Schema  `msgpack:"items,omitempty" json:"items,omitempty"`       // array elements, map values
	Enum     []string `msgpack:"enum,omitempty" json:"enum,omitempty"`         // allowed values of a string
	// Ref marks a reference to the object Name described further up, for
	// recursive types (a Schema holds Schemas).
	Ref bool `msgpack:"ref,omitempty" json:"ref,omitempty"`
}

// Field is one field of an object schema.
type Field struct {
	Name        string  `msgpack:"name" json:"name"`
	Required    bool    `msgpack:"required,omitempty" json:"required,omitempty"`
	Description string  `msgpack:"description,omitempty" json:"description,omitempty"`
	Schema      *Schema `msgpack:"schema" json:"schema"`
}

// Enums lists the allowed values of named string types, for schemas and shims.
var Enums = map[reflect.Type][]string{
	typeOf[ChannelStrategy](): {"local", "global", "byRoomId", "byPeerId", "custom"},
	typeOf[OnUnknownSchema](): {"fail", "warn"},
	typeOf[Scope]():           {"local", "environment", "grid"},
	typeOf[Code]():            catalogueNames(),
}

func catalogueNames() []string {
	out := make([]string, len(Catalogue))
	for i, c := range Catalogue {
		out[i] = string(c.Code)
	}
	return out
}

// Describe builds the schema of a Go type from its msgpack tags, desc tags and
// api:"required" markers.
func Describe(t reflect.Type) *Schema {
	return describe(t, map[reflect.Type]bool{})
}

func describe(t reflect.Type, visiting map[reflect.Type]bool) *Schema {
	if t == nil {
		return nil
	}
	switch {
	case t == typeOf[From]():
		return &Schema{Type: "from", Name: "From"}
	case t.Kind() == reflect.Interface:
		return &Schema{Type: "any", Nullable: true}
	case t.Kind() == reflect.Pointer:
		s := *describe(t.Elem(), visiting)
		s.Nullable = true
		return &s
	}
	switch t.Kind() {
	case reflect.String:
		s := &Schema{Type: "string"}
		if t.Name() != "string" {
			s.Name = t.Name()
		}
		s.Enum = Enums[t]
		return s
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &Schema{Type: "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Schema{Type: "unsigned"}
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &Schema{Type: "binary", Nullable: t.Kind() == reflect.Slice}
		}
		return &Schema{Type: "array", Items: describe(t.Elem(), visiting), Nullable: t.Kind() == reflect.Slice}
	case reflect.Map:
		return &Schema{Type: "map", Items: describe(t.Elem(), visiting), Nullable: true}
	case reflect.Struct:
		if visiting[t] {
			return &Schema{Type: "object", Name: t.Name(), Ref: true}
		}
		visiting[t] = true
		defer delete(visiting, t)
		s := &Schema{Type: "object", Name: t.Name()}
		for _, f := range WireFields(t) {
			s.Fields = append(s.Fields, Field{
				Name:        f.Name,
				Required:    f.Required,
				Description: f.Desc,
				Schema:      describe(f.Type, visiting),
			})
		}
		return s
	}
	return &Schema{Type: "any", Nullable: true}
}

// Info returns the MethodInfo of a spec, as kernel/info lists it.
func (m MethodSpec) Info() MethodInfo {
	return MethodInfo{
		Name:         m.Name,
		NaturalScope: m.NaturalScope,
		Description:  m.Description,
		Kind:         m.Kind,
		Params:       Describe(m.Params),
		Result:       Describe(m.Result),
	}
}
