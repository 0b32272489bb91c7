package api

import (
	"fmt"
	"strings"
)

// MethodsMarkdown renders the method table and the error catalogue as the
// reference section of docs/METHODS.md, so the docs come from the same Go
// types as kernel/info and the generated clients.
func MethodsMarkdown() string {
	var b strings.Builder
	b.WriteString("# Method reference\n\n")
	b.WriteString("Generated from `api.Methods` by `go test ./api -run TestMethodsDoc -update`; do not edit by hand.\n")
	b.WriteString("`kernel/info` returns the same descriptions at run time.\n\n")
	for _, kind := range []string{KindRequest, KindCallback, KindNotification} {
		switch kind {
		case KindRequest:
			b.WriteString("## Requests (client → kernel)\n\n")
		case KindCallback:
			b.WriteString("## Requests the kernel sends to a client\n\n")
		case KindNotification:
			b.WriteString("## Notifications\n\n")
		}
		for _, m := range Methods {
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
	for _, c := range Catalogue {
		fmt.Fprintf(&b, "| `%s` | %s |\n", c.Code, c.Description)
	}
	return b.String()
}

func writeSchema(b *strings.Builder, s *Schema) {
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

func schemaType(s *Schema) string {
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
