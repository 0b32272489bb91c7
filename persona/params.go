package persona

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// Defaults of api.PersonaParams' zero fields.
const (
	defaultMaxTokens      = 64
	defaultContextTokens  = 384
	defaultRepliesPerMin  = 6
	defaultBreakerErrors  = 5
	defaultBreakerOpen    = 30 * time.Second
	bytesPerToken         = 1 // a byte counts as a token: an upper bound for byte-fallback tokenizers (docs/PERSONAS.md)
	defaultGenerateTimout = 2 * time.Minute
)

func maxTokens(p *api.PersonaParams) int     { return orDefault(p.MaxTokens, defaultMaxTokens) }
func contextTokens(p *api.PersonaParams) int { return orDefault(p.ContextTokens, defaultContextTokens) }
func repliesPerMin(p *api.PersonaParams) int {
	return orDefault(p.MaxRepliesPerMinute, defaultRepliesPerMin)
}
func breakerErrors(p *api.PersonaParams) int { return orDefault(p.BreakerErrors, defaultBreakerErrors) }
func breakerOpen(p *api.PersonaParams) time.Duration {
	if p.BreakerOpenMs == 0 {
		return defaultBreakerOpen
	}
	return time.Duration(p.BreakerOpenMs) * time.Millisecond
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func invalid(format string, args ...any) error {
	return api.Errorf(api.CodeInvalidArgument, format, args...)
}

func checkPersonaName(name string) error {
	if name == "" {
		return invalid("field \"name\" is empty")
	}
	if len(name) > api.MaxPersonaNameLen {
		return invalid("field \"name\" is %d bytes long, over the limit of %d bytes", len(name), api.MaxPersonaNameLen)
	}
	for _, r := range name {
		if !(r < 0x80 && (isNameRune(r) || r == '.')) {
			return invalid("field \"name\" holds %q: a name is letters, digits, '-', '_' and '.' (ASCII), so it can be mentioned as @name", r)
		}
	}
	return nil
}

func checkText(field, s string, max int, required bool) error {
	if strings.TrimSpace(s) == "" {
		if required {
			return invalid("field %q is blank", field)
		}
		return nil
	}
	if len(s) > max {
		return invalid("field %q is %d bytes long, over the limit of %d bytes", field, len(s), max)
	}
	return nil
}

func checkRooms(rooms []string) error {
	if len(rooms) == 0 {
		return invalid("field \"rooms\" is empty: a persona reads at least one room")
	}
	if len(rooms) > api.MaxPersonaRooms {
		return invalid("field \"rooms\" has %d entries, over the limit of %d", len(rooms), api.MaxPersonaRooms)
	}
	seen := map[string]bool{}
	for i, r := range rooms {
		field := fmt.Sprintf("rooms[%d]", i)
		if strings.TrimSpace(r) == "" {
			return invalid("field %q is blank", field)
		}
		if err := api.CheckName(field, r, api.MaxChannelLen); err != nil {
			return err
		}
		if seen[r] {
			return invalid("field %q repeats room %q", field, r)
		}
		seen[r] = true
	}
	return nil
}

func checkParams(p *api.PersonaParams) error {
	type bound struct {
		field string
		v     int
		max   int
	}
	for _, b := range []bound{
		{"params.maxTokens", p.MaxTokens, api.MaxPersonaTokens},
		{"params.contextTokens", p.ContextTokens, api.MaxPersonaContext},
		{"params.maxRepliesPerMinute", p.MaxRepliesPerMinute, api.MaxPersonaRepliesPerMinute},
		{"params.breakerErrors", p.BreakerErrors, 1000},
		{"params.breakerOpenMs", p.BreakerOpenMs, api.MaxPersonaBreakerOpen},
	} {
		if b.v < 0 || b.v > b.max {
			return invalid("field %q is %d, outside 0..%d (0 for the default)", b.field, b.v, b.max)
		}
	}
	if math.IsNaN(p.Temperature) || p.Temperature < 0 || p.Temperature > 2 {
		return invalid("field \"params.temperature\" is %v, outside 0..2", p.Temperature)
	}
	return nil
}

// checkPersona checks a whole entity before it is stored.
func checkPersona(p *api.Persona) error {
	if err := checkPersonaName(p.Name); err != nil {
		return err
	}
	if err := checkText("role", p.Role, api.MaxPersonaRoleLen, false); err != nil {
		return err
	}
	if err := checkText("model", p.Model, api.MaxPersonaModelLen, true); err != nil {
		return err
	}
	if err := checkText("systemPrompt", p.SystemPrompt, api.MaxPersonaPromptLen, false); err != nil {
		return err
	}
	if err := checkRooms(p.Rooms); err != nil {
		return err
	}
	return checkParams(&p.Params)
}
