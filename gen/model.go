package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"

	"github.com/continuum-grid/continuum/api"
)

// model is what the renderers need, read once from package api by reflection.
type model struct {
	groups  []*group         // request methods by group, in api.Methods order
	others  []api.MethodSpec // notifications and callbacks
	structs []reflect.Type   // every named struct reachable from the methods, first seen first
	enums   []reflect.Type   // named string types with allowed values, by name
}

type group struct {
	wire    string // "events"
	methods []*method
}

type method struct {
	spec api.MethodSpec
	wire string // "declare-class"
}

// special methods are backed by the hand-written runtime instead of a plain
// call: the generated method delegates to a runtime hook of this name.
var special = map[string]string{
	api.MethodSubscribe: "subscribe",
}

// wire types the generator never emits as data types: api.Error is the typed
// error of each shim, and api.From is a union written by hand.
var (
	typeError = reflect.TypeFor[api.Error]()
	typeFrom  = reflect.TypeFor[api.From]()
	typeEmpty = reflect.TypeFor[api.Empty]()
)

func newModel() *model {
	m := &model{}
	byName := map[string]*group{}
	seen := map[reflect.Type]bool{}
	for _, spec := range api.Methods {
		m.collect(spec.Params, seen)
		m.collect(spec.Result, seen)
		if spec.Kind != api.KindRequest {
			m.others = append(m.others, spec)
			continue
		}
		gname, mname, ok := strings.Cut(spec.Name, "/")
		if !ok {
			panic(fmt.Sprintf("gen: method %q is not group/name", spec.Name))
		}
		g := byName[gname]
		if g == nil {
			g = &group{wire: gname}
			byName[gname] = g
			m.groups = append(m.groups, g)
		}
		g.methods = append(g.methods, &method{spec: spec, wire: mname})
	}
	// The envelope and the class config are part of the API even where no
	// method names them directly.
	m.collect(reflect.TypeFor[api.Event](), seen)
	m.collect(reflect.TypeFor[api.ClassConfig](), seen)
	for t := range api.Enums {
		m.enums = append(m.enums, t)
	}
	sort.Slice(m.enums, func(i, j int) bool { return m.enums[i].Name() < m.enums[j].Name() })
	return m
}

// collect walks t depth-first and records every named struct once.
func (m *model) collect(t reflect.Type, seen map[reflect.Type]bool) {
	if t == nil {
		return
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		m.collect(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] || t == typeError || t == typeFrom {
			return
		}
		seen[t] = true
		m.structs = append(m.structs, t)
		for _, f := range api.WireFields(t) {
			m.collect(f.Type, seen)
		}
	}
}

// nullable reports whether a value of t may arrive as nil.
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

// --- names ---

// words splits "name-with-dashes", "camelCase" and "snake_case" into lower-case words.
func words(s string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == '-' || r == '_' || r == '/' || r == ' ' || r == ':':
			flush()
		case unicode.IsUpper(r):
			// a new word starts at an upper-case letter that follows a lower-case
			// one, or that ends a run of capitals followed by lower case (IDFor -> id, for)
			if len(cur) > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) ||
				(i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				flush()
			}
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	return out
}

func camel(s string) string {
	ws := words(s)
	for i := 1; i < len(ws); i++ {
		ws[i] = strings.ToUpper(ws[i][:1]) + ws[i][1:]
	}
	return strings.Join(ws, "")
}

func pascal(s string) string {
	c := camel(s)
	if c == "" {
		return c
	}
	return strings.ToUpper(c[:1]) + c[1:]
}

func snake(s string) string { return strings.Join(words(s), "_") }

func upperSnake(s string) string { return strings.ToUpper(snake(s)) }

var pyKeywords = map[string]bool{
	"False": true, "None": true, "True": true, "and": true, "as": true, "assert": true, "async": true,
	"await": true, "break": true, "class": true, "continue": true, "def": true, "del": true, "elif": true,
	"else": true, "except": true, "finally": true, "for": true, "from": true, "global": true, "if": true,
	"import": true, "in": true, "is": true, "lambda": true, "nonlocal": true, "not": true, "or": true,
	"pass": true, "raise": true, "return": true, "try": true, "while": true, "with": true, "yield": true,
	"self": true,
}

// pyName is the snake_case Python identifier of a wire name; keywords get a
// trailing underscore (from -> from_).
func pyName(wire string) string {
	s := snake(wire)
	if pyKeywords[s] {
		s += "_"
	}
	return s
}

// errorClass is the class name of a code's error: not_found -> NotFoundError.
func errorClass(code api.Code) string { return pascal(string(code)) + "Error" }
