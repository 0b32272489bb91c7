package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
)

var generateCommand = &command{
	name:    "generate",
	args:    "[MODEL] [PROMPT...]",
	summary: "generate text with a model, streaming tokens as they come",
	help: `Calls inference/generate and prints the text as it is generated: the CLI
subscribes to inference:tokens first, asks for stream: true, and writes each
token's piece as its event arrives. The model is --model, or else the first
argument: a loaded model's name (continuum model list) or a GGUF file, loaded
on first use (with a progress bar on stderr). The prompt is the remaining
arguments joined by spaces; "-" or none reads it from stdin.

A model name this install has not loaded, that a trusted peer offers
(llm:NAME in continuum grid routes), runs on the grid (always, with --grid):
the peer picked by the policy generates, and its
tokens stream back through both daemons as inference:tokens events here.

Temperature 0 (the default) is greedy decoding: the same prompt gives the same
text. --chat sends the prompt as a user message through the model's chat
template (chatml when it has none); --system adds a system message and implies
--chat. --stats prints token counts and speed on stderr.

--json prints the whole result (text, token ids, timings) as one JSON document
at the end instead of streaming. Generation is not bounded by --timeout (only
connecting is); --max-time bounds it and Ctrl-C stops it.`,
	example: `continuum generate --model llama "Write a haiku about sockets" --max-tokens 64
continuum generate llama "Write a haiku about sockets"
echo "hello" | continuum generate ./tiny.gguf --stats
continuum generate llama --system "Answer in one word" --chat "Capital of France?" --json`,
	minArgs: 0,
	maxArgs: -1,
	flags: func(fs *flag.FlagSet) action {
		model := fs.StringP("model", "m", "", "the model: a loaded model's name or a GGUF file (default: the first argument)")
		maxTokens := fs.Int("max-tokens", 0, "most tokens to generate (0: the daemon's default, 256)")
		temperature := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy and deterministic")
		topP := fs.Float64("top-p", 0, "nucleus sampling threshold in (0, 1); 0 disables it")
		seed := fs.Uint32("seed", 0, "sampler seed (default: random); only matters above temperature 0")
		stops := fs.StringArray("stop", nil, "stop string; the text ends before it (repeatable)")
		chat := fs.Bool("chat", false, "send the prompt as a user message through the chat template")
		system := fs.String("system", "", "system message (implies --chat)")
		noStream := fs.Bool("no-stream", false, "print the text once it is complete")
		stats := fs.Bool("stats", false, "print tokens, tokens/s and time to first token on stderr")
		maxTime := fs.Duration("max-time", 0, "stop generating after this long; 0 for no limit")
		onGrid := fs.Bool("grid", false, "run it on a peer that offers the model (default: when this install has not loaded it)")
		return func(ctx context.Context, e *env, args []string) error {
			if *model == "" {
				if len(args) == 0 {
					return usagef("generate", "no model: give --model NAME or the model as the first argument")
				}
				*model, args = args[0], args[1:]
			}
			prompt := strings.Join(args, " ")
			if len(args) == 0 || prompt == "-" {
				b, err := io.ReadAll(e.stdin)
				if err != nil {
					return fmt.Errorf("reading the prompt from stdin: %w", err)
				}
				prompt = strings.TrimRight(string(b), "\n")
			}
			if prompt == "" {
				return usagef("generate", "empty prompt: give it as arguments or on stdin")
			}
			p := api.GenerateParams{
				Model:       modelRef(*model),
				MaxTokens:   *maxTokens,
				Temperature: *temperature,
				TopP:        *topP,
				Stop:        *stops,
				Stream:      !*noStream && !e.jsonOut(),
				RequestID:   "cli-" + randomHex(8),
			}
			if fs.Changed("seed") {
				p.Seed = seed
			}
			if *chat || *system != "" {
				if *system != "" {
					p.Messages = append(p.Messages, api.ChatMessage{Role: "system", Content: *system})
				}
				p.Messages = append(p.Messages, api.ChatMessage{Role: "user", Content: prompt})
			} else {
				p.Prompt = prompt
			}

			c, err := e.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := withMaxTime(ctx, *maxTime)
			defer cancel()
			call := func(ctx context.Context, p api.GenerateParams, res *api.GenerateResult) error {
				return c.Call(ctx, api.MethodInferenceGenerate, p, res)
			}
			if *onGrid || (!filepath.IsAbs(p.Model) && !modelLoaded(ctx, c, p.Model) && gridOffers(ctx, c, "llm:"+p.Model)) {
				// Not here: a peer that offers llm:NAME runs it, and its
				// tokens come back through both daemons as events here.
				call = func(ctx context.Context, p api.GenerateParams, res *api.GenerateResult) error {
					return c.Execute(ctx, api.ExecuteParams{Command: api.MethodInferenceGenerate, Params: p,
						Scope: &api.ScopeParams{Target: api.ScopeGrid, Capability: "llm:" + p.Model}}, res)
				}
			}
			var res api.GenerateResult
			if p.Stream {
				res, err = streamGenerate(ctx, e, c, p, call)
			} else {
				err = call(ctx, p, &res)
			}
			if err != nil {
				return err
			}
			if e.jsonOut() {
				res.Alloy = plain(res.Alloy) // the alloy's JSON object, not its msgpack bytes
				return printJSON(e.stdout, res, false)
			}
			if !p.Stream {
				fmt.Fprint(e.stdout, res.Text)
			}
			if res.Text != "" && !strings.HasSuffix(res.Text, "\n") {
				fmt.Fprintln(e.stdout)
			}
			if *stats {
				fmt.Fprintf(e.stderr, "%d tokens (prompt %d), %.1f tokens/s, first token after %.1f ms, stopped: %s, model %s\n",
					len(res.Tokens), res.PromptTokens, res.TokensPerSec, res.TimeToFirstTokenMs, res.StopReason, res.Model)
			}
			return nil
		}
	},
}

// streamGenerate subscribes to inference:tokens, runs the generation, and
// writes each piece of this request as its event arrives. The reply can
// overtake the last events, so after it comes the pieces are awaited until
// every token's has been written (or a short grace period passes).
func streamGenerate(ctx context.Context, e *env, c *client.Client, p api.GenerateParams, call func(context.Context, api.GenerateParams, *api.GenerateResult) error) (api.GenerateResult, error) {
	// A file not loaded yet is loaded under its path before the first
	// token: then the load's progress events are wanted too, on the same
	// subscription, so that they arrive in order before the tokens.
	pattern := api.EventInferenceTokens
	var bar *loadBar
	if filepath.IsAbs(p.Model) {
		pattern = "inference:*"
		bar = newLoadBar(e, filepath.Clean(p.Model))
	}
	sub, err := c.Subscribe(ctx, api.SubscribeParams{Pattern: pattern})
	if err != nil {
		return api.GenerateResult{}, err
	}
	defer sub.Close(context.WithoutCancel(ctx))
	loaded := func(ok bool) {
		if bar != nil {
			bar.finish(ok)
		}
	}
	defer loaded(false)
	type reply struct {
		res api.GenerateResult
		err error
	}
	replies := make(chan reply, 1)
	go func() {
		var r reply
		r.err = call(ctx, p, &r.res)
		replies <- r
	}()
	var (
		written strings.Builder
		next    int
		res     *api.GenerateResult
		grace   <-chan time.Time
	)
	events := sub.Events()
loop:
	for res == nil || next < len(res.Tokens) {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Class == api.EventInferenceLoadProgress {
				if bar != nil {
					bar.event(*ev)
				}
				continue
			}
			var te api.TokenEvent
			if ev.Class != api.EventInferenceTokens || api.Assign(&te, ev.Payload) != nil || te.RequestID != p.RequestID || te.Index < next {
				continue
			}
			loaded(true)
			fmt.Fprint(e.stdout, te.Piece)
			written.WriteString(te.Piece)
			next = te.Index + 1
		case r := <-replies:
			if r.err != nil {
				return api.GenerateResult{}, r.err
			}
			res = &r.res
			grace = time.After(2 * time.Second)
		case <-grace:
			break loop
		}
	}
	loaded(true)
	if written.String() != res.Text {
		// Events were dropped (a slow terminal): say so, and finish the text
		// when what was written is a prefix of it.
		if rest, ok := strings.CutPrefix(res.Text, written.String()); ok {
			fmt.Fprint(e.stdout, rest)
		} else {
			fmt.Fprintf(e.stdout, "\n%s", res.Text)
		}
		fmt.Fprintln(e.stderr, "warning: some streamed tokens were lost; the text above was completed from the final result")
	}
	return *res, nil
}

// modelLoaded reports whether this install has loaded a model called name
// (false when it cannot say: then the grid is asked).
func modelLoaded(ctx context.Context, c *client.Client, name string) bool {
	var models []api.LoadedModel
	if err := c.Call(ctx, api.MethodInferenceModels, api.Empty{}, &models); err != nil {
		return false
	}
	for _, m := range models {
		if m.Name == name {
			return true
		}
	}
	return false
}

// gridOffers reports whether a live, linked peer offers capability.
func gridOffers(ctx context.Context, c *client.Client, capability string) bool {
	var r api.RoutesResult
	if err := c.Call(ctx, api.MethodGridRoutes, api.RoutesParams{Capability: capability}, &r); err != nil {
		return false
	}
	for _, rt := range r.Routes {
		if rt.State == "live" && rt.LinkUp {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
