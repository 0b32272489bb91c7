package main

import (
	"fmt"
	"strings"

	"github.com/continuum-grid/continuum/api"
)

// renderMethodsMarkdown renders the method table and the error catalogue as
// docs/METHODS.md, so the docs come from the same Go types as kernel/info and
// the generated clients, and `go run ./gen -check` finds them stale too.
func renderMethodsMarkdown() []byte {
	var b strings.Builder
	b.WriteString("# Method reference\n\n")
	b.WriteString("Generated from `api.Methods` by `go run ./gen` (`make gen`); do not edit by hand.\n")
	b.WriteString("`kernel/info` returns the same descriptions at run time.\n\n")
	for _, kind := range []string{api.KindRequest, api.KindCallback, api.KindNotification} {
		switch kind {
		case api.KindRequest:
			b.WriteString("## Requests (client → kernel)\n\n")
		case api.KindCallback:
			b.WriteString("## Requests the kernel sends to a client\n\n")
		case api.KindNotification:
			b.WriteString("## Notifications\n\n")
		}
		for _, m := range api.Methods {
			if m.Kind != kind {
				continue
			}
			info := m.Info()
			fmt.Fprintf(&b, "### `%s`\n\n%s\n\nNatural scope: `%s`.\n\n", m.Name, m.Description, m.NaturalScope)
			b.WriteString("Params:\n\n")
			writeSchema(&b, info.Params)
			if info.Result != nil {
				b.WriteString("\nResult:\n\n")
				writeSchema(&b, info.Result)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("## Error codes\n\n| code | meaning |\n| --- | --- |\n")
	for _, c := range api.Catalogue {
		fmt.Fprintf(&b, "| `%s` | %s |\n", c.Code, c.Description)
	}
	return []byte(b.String())
}

func writeSchema(b *strings.Builder, s *api.Schema) {
	if s.Type != "object" || s.Ref {
		fmt.Fprintf(b, "- %s\n", schemaType(s))
		return
	}
	if len(s.Fields) == 0 {
		b.WriteString("- `{}` (empty map)\n")
		return
	}
	b.WriteString("| field | type | required | description |\n| --- | --- | --- | --- |\n")
	for _, f := range s.Fields {
		req := ""
		if f.Required {
			req = "yes"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", f.Name, schemaType(f.Schema), req, strings.ReplaceAll(f.Description, "|", "\\|"))
	}
}

func schemaType(s *api.Schema) string {
	var t string
	switch s.Type {
	case "object":
		t = "`" + s.Name + "`"
		if s.Name == "" {
			t = "map"
		}
	case "array":
		t = "array of " + schemaType(s.Items)
	case "map":
		t = "map of string to " + schemaType(s.Items)
	case "string":
		t = "string"
		if len(s.Enum) > 0 && len(s.Enum) <= 6 {
			t = "`" + strings.Join(s.Enum, "` \\| `") + "`"
		}
	case "from":
		t = "`\"now\"` \\| `\"start\"` \\| seq"
	default:
		t = s.Type
	}
	if s.Nullable && s.Type != "any" {
		t += " or nil"
	}
	return t
}
