package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Input: how command-line text becomes msgpack values.
//
// JSON (--json) is decoded with numbers kept exact: a number written without
// a fraction or exponent becomes an int64 (or a uint64 above the int64 range),
// so integers stay integers on the wire; any other number is a float64.
//
// A --param key=value value is JSON when it parses as JSON (numbers, true,
// false, null, "quoted strings", objects, arrays) and the literal string
// otherwise. So name=ada is the string "ada", n=3 the integer 3, ok=true a
// boolean, tags='["a","b"]' an array, and zip='"007"' the string "007".

const paramSyntaxHelp = `A --param value is JSON where it parses as JSON (n=3 is an integer, x=1.5 a
float, ok=true a boolean, v=null nil, tags='["a","b"]' an array) and a string
otherwise (name=ada); quote it as JSON to force a string: zip='"007"'.
Integers stay integers on the wire. --param keys are added to (and override)
the --json object.`

// decodeJSON decodes one JSON value with integers kept as integers.
func decodeJSON(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty JSON")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return fromJSON(v)
}

// fromJSON converts json.Number inside v to int64, uint64 or float64.
func fromJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i, nil
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return u, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", s)
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case []any:
		for i, e := range x {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	}
	return v, nil
}

// paramValue parses the value of one --param: JSON where it parses, else the
// string itself.
func paramValue(s string) any {
	if s == "" {
		return ""
	}
	if strings.ContainsRune("-0123456789{[\"tfn", rune(s[0])) {
		if v, err := decodeJSON(s); err == nil {
			return v
		}
	}
	return s
}

// buildMap combines an optional JSON document (--json, "-" reads stdin) with
// --param key=value pairs into one value. With no pairs the JSON may be any
// value; with pairs it must be an object, and the pairs are set on it. flag
// names the JSON flag in error messages. With neither, the result is nil.
func buildMap(path, flagName, jsonText string, pairs []string, stdin io.Reader) (any, error) {
	var base any
	if jsonText != "" {
		if jsonText == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading %s from stdin: %w", flagName, err)
			}
			jsonText = string(b)
		}
		v, err := decodeJSON(jsonText)
		if err != nil {
			return nil, usagef(path, "%s is not valid JSON: %v", flagName, err)
		}
		base = v
	}
	if len(pairs) == 0 {
		return base, nil
	}
	m, ok := base.(map[string]any)
	if base != nil && !ok {
		return nil, usagef(path, "--param needs %s to be a JSON object, not %s", flagName, jsonKind(base))
	}
	if m == nil {
		m = map[string]any{}
	}
	for _, p := range pairs {
		k, v, found := strings.Cut(p, "=")
		if !found {
			return nil, usagef(path, "--param %q: want key=value", p)
		}
		if k == "" {
			return nil, usagef(path, "--param %q: the key is empty", p)
		}
		m[k] = paramValue(v)
	}
	return m, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

// Output: how msgpack values become JSON.
//
// Maps become JSON objects (keys that are not strings are written as their
// JSON text), byte strings become base64 strings (as encoding/json writes
// []byte), NaN and infinities become the strings "NaN", "+Inf" and "-Inf".

// decodeMsgpack decodes raw msgpack into plain values with string map keys.
func decodeMsgpack(raw []byte) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	dec.UseLooseInterfaceDecoding(true)
	dec.SetMapDecoder(decodeStringMap)
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, fmt.Errorf("decoding the daemon's reply: %w", err)
	}
	return v, nil
}

func decodeStringMap(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, err
	}
	m := make(map[string]any, min(n, 1024))
	for i := 0; i < n; i++ {
		k, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		v, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		m[keyString(k)] = v
	}
	return m, nil
}

func keyString(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	if b, err := json.Marshal(plain(k)); err == nil {
		return string(b)
	}
	return fmt.Sprint(k)
}

// plain turns a decoded msgpack value into one encoding/json writes as
// documented above. Structs (the typed results) are left to their json tags.
func plain(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64, uint64, int, int8, int16, int32, uint, uint8, uint16, uint32:
		return x
	case float64:
		return plainFloat(x)
	case float32:
		return plainFloat(float64(x))
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case msgpack.RawMessage:
		d, err := decodeMsgpack(x)
		if err != nil {
			return "<undecodable msgpack: " + err.Error() + ">"
		}
		return plain(d)
	case api.RawParams:
		return plain(msgpack.RawMessage(x))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[keyString(k)] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case api.Event:
		return plainEvent(&x)
	case *api.Event:
		if x == nil {
			return nil
		}
		return plainEvent(x)
	}
	return v
}

func plainFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// plainEvent copies an event with its payload made plain.
func plainEvent(ev *api.Event) *api.Event {
	c := *ev
	c.Payload = plain(ev.Payload)
	return &c
}

// marshalJSON writes v as JSON (compact, or indented by two spaces), with
// msgpack values made plain and no HTML escaping.
func marshalJSON(v any, indent bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(plain(v)); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// sortedKeys returns m's keys in order (for stable text output).
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
