package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

// The persona group: the persona/* methods (docs/PERSONAS.md) as
// subcommands. A persona is named by its id or its name everywhere.
var personaGroup = &group{
	name:    "persona",
	summary: "create and manage the daemon's AI personas (their own keys, rooms and loop)",
	commands: []*command{
		personaCreateCommand,
		personaListCommand,
		personaGetCommand,
		personaUpdateCommand,
		personaDeleteCommand,
		personaStatusCommand,
	},
}

// personaParamFlags are the loop-tuning flags create and update share.
type personaParamFlags struct {
	maxTokens, contextTokens, perMinute, breakerErrors, breakerOpenMs *int
	temperature                                                       *float64
	mentionsOnly, asleep                                              *bool
}

func addPersonaParamFlags(fs *flag.FlagSet) personaParamFlags {
	return personaParamFlags{
		maxTokens:     fs.Int("max-tokens", 0, "most tokens of one reply (default 64)"),
		contextTokens: fs.Int("context-tokens", 0, "token budget of prompt and transcript (default 384)"),
		perMinute:     fs.Int("max-replies-per-minute", 0, "replies per room in any 60 s (default 6)"),
		breakerErrors: fs.Int("breaker-errors", 0, "consecutive failures that open the circuit breaker (default 5)"),
		breakerOpenMs: fs.Int("breaker-open-ms", 0, "how long an open breaker pauses it, ms (default 30000)"),
		temperature:   fs.Float64("temperature", 0, "sampling temperature (0: greedy)"),
		mentionsOnly:  fs.Bool("mentions-only", false, "answer only messages that mention it (@name)"),
		asleep:        fs.Bool("asleep", false, "read the rooms but answer nothing"),
	}
}

func (f personaParamFlags) params() api.PersonaParams {
	return api.PersonaParams{
		MaxTokens: *f.maxTokens, ContextTokens: *f.contextTokens, MaxRepliesPerMinute: *f.perMinute,
		BreakerErrors: *f.breakerErrors, BreakerOpenMs: *f.breakerOpenMs, Temperature: *f.temperature,
		MentionsOnly: *f.mentionsOnly, Asleep: *f.asleep,
	}
}

// changed reports whether any loop-tuning flag was given (update replaces
// the params as a whole, starting from the persona's current ones).
func (f personaParamFlags) changed(fs *flag.FlagSet) bool {
	for _, n := range []string{"max-tokens", "context-tokens", "max-replies-per-minute", "breaker-errors", "breaker-open-ms", "temperature", "mentions-only", "asleep"} {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

// merge applies the flags that were given over p.
func (f personaParamFlags) merge(fs *flag.FlagSet, p api.PersonaParams) api.PersonaParams {
	set := f.params()
	for n, apply := range map[string]func(){
		"max-tokens":             func() { p.MaxTokens = set.MaxTokens },
		"context-tokens":         func() { p.ContextTokens = set.ContextTokens },
		"max-replies-per-minute": func() { p.MaxRepliesPerMinute = set.MaxRepliesPerMinute },
		"breaker-errors":         func() { p.BreakerErrors = set.BreakerErrors },
		"breaker-open-ms":        func() { p.BreakerOpenMs = set.BreakerOpenMs },
		"temperature":            func() { p.Temperature = set.Temperature },
		"mentions-only":          func() { p.MentionsOnly = set.MentionsOnly },
		"asleep":                 func() { p.Asleep = set.Asleep },
	} {
		if fs.Changed(n) {
			apply()
		}
	}
	return p
}

var personaCreateCommand = &command{
	name:    "create",
	args:    "NAME",
	summary: "create a persona on a model, in rooms; it answers what passes its gates",
	help: `Calls persona/create: the persona gets an Ed25519 key of its own (in the
state folder, 0600), so what it posts is signed as itself. It reads its
rooms from now on and answers messages that mention it (@NAME) or ask a
question, within its rate limit. Generation runs through commands/execute
inference/generate, so the model must be loaded (continuum model load) here
or offered by a trusted peer. See docs/PERSONAS.md.`,
	example: `continuum persona create ada --model tiny --room general --role "a helpful assistant"
continuum persona create bob --model tiny --room general --room dev --mentions-only`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		model := fs.String("model", "", "a loaded model's name or a GGUF path (required)")
		rooms := fs.StringArray("room", nil, "a room to read and answer in (repeatable; required)")
		role := fs.String("role", "", "a short description of its part")
		prompt := fs.String("system-prompt", "", "the system turn (default names the persona and its role)")
		pf := addPersonaParamFlags(fs)
		return func(ctx context.Context, e *env, args []string) error {
			if *model == "" {
				return usagef("persona create", "--model is required (a loaded model's name: continuum model list)")
			}
			if len(*rooms) == 0 {
				return usagef("persona create", "--room is required (at least one)")
			}
			req := api.PersonaCreateParams{Name: args[0], Role: *role, Model: *model, SystemPrompt: *prompt, Rooms: *rooms, Params: pf.params()}
			var p api.Persona
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodPersonaCreate, req, &p)
			}); err != nil {
				return err
			}
			return printPersona(e, p)
		}
	},
}

var personaListCommand = &command{
	name:    "list",
	summary: "list the personas: name, id, model, rooms",
	help:    `Calls persona/list, sorted by name.`,
	example: "continuum persona list\ncontinuum persona list --json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			var ps []api.Persona
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodPersonaList, api.Empty{}, &ps)
			}); err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, ps, false)
			}
			rows := make([][]string, 0, len(ps))
			for _, p := range ps {
				rows = append(rows, []string{p.Name, shortID(p.ID), p.Model, strings.Join(p.Rooms, ","), orDash(p.Role)})
			}
			return table(e.stdout, []string{"NAME", "ID", "MODEL", "ROOMS", "ROLE"}, rows)
		}
	},
}

var personaGetCommand = &command{
	name:    "get",
	args:    "NAME|ID",
	summary: "print one persona",
	help:    `Calls persona/get.`,
	example: "continuum persona get ada",
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			var p api.Persona
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodPersonaGet, api.PersonaRefParams{ID: args[0]}, &p)
			}); err != nil {
				return err
			}
			return printPersona(e, p)
		}
	},
}

var personaUpdateCommand = &command{
	name:    "update",
	args:    "NAME|ID",
	summary: "change a persona's name, role, model, prompt, rooms or loop params",
	help: `Calls persona/update with what the flags name; the rest stays. --room
(repeatable) replaces the set of rooms. Loop flags change only the params
they name. The loop picks the change up at its next message.`,
	example: "continuum persona update ada --asleep\ncontinuum persona update ada --room general --room dev --max-tokens 32",
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		name := fs.String("name", "", "a new name")
		model := fs.String("model", "", "a new model")
		role := fs.String("role", "", "a new role")
		prompt := fs.String("system-prompt", "", "a new system prompt")
		rooms := fs.StringArray("room", nil, "the new set of rooms (repeatable)")
		pf := addPersonaParamFlags(fs)
		return func(ctx context.Context, e *env, args []string) error {
			req := api.PersonaUpdateParams{ID: args[0], Rooms: *rooms}
			if fs.Changed("name") {
				req.Name = name
			}
			if fs.Changed("model") {
				req.Model = model
			}
			if fs.Changed("role") {
				req.Role = role
			}
			if fs.Changed("system-prompt") {
				req.SystemPrompt = prompt
			}
			var p api.Persona
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				if pf.changed(fs) {
					var cur api.Persona
					if err := c.Call(ctx, api.MethodPersonaGet, api.PersonaRefParams{ID: args[0]}, &cur); err != nil {
						return err
					}
					merged := pf.merge(fs, cur.Params)
					req.Params = &merged
				}
				return c.Call(ctx, api.MethodPersonaUpdate, req, &p)
			}); err != nil {
				return err
			}
			return printPersona(e, p)
		}
	},
}

var personaDeleteCommand = &command{
	name:    "delete",
	args:    "NAME|ID",
	summary: "delete a persona: its loop stops, its key and cursors go; what it posted stays",
	help:    `Calls persona/delete.`,
	example: "continuum persona delete ada",
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodPersonaDelete, api.PersonaRefParams{ID: args[0]}, nil)
			}); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "deleted persona %s\n", args[0])
			return nil
		}
	},
}

var personaStatusCommand = &command{
	name:    "status",
	args:    "[NAME|ID]",
	summary: "each persona's loop: state, queue, answered, skipped, last error, breaker",
	help:    `Calls persona/status for one persona or, without an argument, every one.`,
	example: "continuum persona status\ncontinuum persona status ada --json",
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			req := api.PersonaStatusParams{}
			if len(args) == 1 {
				req.ID = args[0]
			}
			var ss []api.PersonaStatus
			if err := e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				return c.Call(ctx, api.MethodPersonaStatus, req, &ss)
			}); err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, ss, false)
			}
			rows := make([][]string, 0, len(ss))
			for _, s := range ss {
				rows = append(rows, []string{s.Name, s.State, strconv.Itoa(s.Queued), strconv.FormatUint(s.Answered, 10),
					skippedText(s.Skipped), strconv.FormatUint(s.Failed, 10), s.Breaker.State, orDash(s.LastError)})
			}
			return table(e.stdout, []string{"NAME", "STATE", "QUEUED", "ANSWERED", "SKIPPED", "FAILED", "BREAKER", "LAST ERROR"}, rows)
		}
	},
}

// skippedText is the skipped counts as "gate=n,…", sorted by gate.
func skippedText(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.FormatUint(m[k], 10))
	}
	return strings.Join(parts, ",")
}

func printPersona(e *env, p api.Persona) error {
	if e.jsonOut() {
		return printJSON(e.stdout, p, false)
	}
	return fields(e.stdout,
		"name", p.Name,
		"id", p.ID,
		"role", orDash(p.Role),
		"model", p.Model,
		"rooms", strings.Join(p.Rooms, ", "),
		"system prompt", orDash(p.SystemPrompt),
		"params", compactJSON(p.Params),
	)
}
