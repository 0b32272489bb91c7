package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	"github.com/continuum-grid/continuum/llama/gguf"
	flag "github.com/spf13/pflag"
)

var modelGroup = &group{
	name:    "model",
	summary: "load, list and unload llama.cpp models in the daemon; write a tiny demo model",
	commands: []*command{
		modelLoadCommand,
		modelListCommand,
		modelUnloadCommand,
		modelTinyCommand,
	},
}

var modelLoadCommand = &command{
	name:    "load",
	args:    "PATH",
	summary: "load the GGUF model at PATH into the daemon",
	help: `Calls inference/load. PATH is made absolute here, so it is relative to this
shell's directory; the daemon reads the file itself. The model is registered
under --name (default: its absolute path) and stays loaded until unloaded or
the daemon stops. Progress is shown on stderr (from inference:load-progress).

Inference needs a GPU unless continuumd runs with --allow-cpu (a daemon
flag: make run ARGS=--allow-cpu): without one this fails with
gpu_unavailable and says what was found. Loading is not bounded by --timeout
(only connecting is); --max-time bounds it.

A loaded model is loaded again when continuumd restarts on the same state
dir, until 'continuum model unload' (continuumd --no-reload-models turns
that off).`,
	example: `continuum model tiny /tmp/tiny.gguf && continuum model load /tmp/tiny.gguf --name tiny
continuum model load ./models/llama-3.2-1b-q4_k_m.gguf --name llama --json`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		name := fs.String("name", "", "name to register the model under (default: its absolute path)")
		maxTime := fs.Duration("max-time", 0, "give up loading after this long; 0 for no limit (Ctrl-C stops it too)")
		return func(ctx context.Context, e *env, args []string) error {
			path, err := filepath.Abs(args[0])
			if err != nil {
				return usagef("model load", "PATH: %v", err)
			}
			c, err := e.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := withMaxTime(ctx, *maxTime)
			defer cancel()
			var progress *client.Subscription
			if !e.jsonOut() {
				progress, _ = c.Subscribe(ctx, api.SubscribeParams{Pattern: api.EventInferenceLoadProgress})
			}
			done := make(chan bool, 1)
			shown := make(chan struct{})
			go func() {
				defer close(shown)
				if progress != nil {
					want := *name
					if want == "" {
						want = path
					}
					showLoadProgress(e, progress, want, done)
				}
			}()
			var m api.LoadedModel
			err = c.Call(ctx, api.MethodInferenceLoad, api.LoadModelParams{Path: path, Name: *name}, &m)
			done <- err == nil
			<-shown
			if err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, m, false)
			}
			fmt.Fprintf(e.stdout, "loaded %s\n", m.Name)
			return printModel(e, &m)
		}
	},
}

// showLoadProgress draws a load's progress bar from sub's
// inference:load-progress events until done yields whether the load
// succeeded.
func showLoadProgress(e *env, sub *client.Subscription, want string, done <-chan bool) {
	bar := newLoadBar(e, want)
	var grace <-chan time.Time
	succeeded := false
	for {
		select {
		case ok := <-done:
			if !ok || bar.last >= 100 {
				bar.finish(ok)
				return
			}
			// The daemon publishes the final progress event (1) before it
			// replies, but the reply can overtake it: wait for it briefly.
			succeeded, done, grace = true, nil, time.After(time.Second)
		case <-grace:
			bar.finish(true)
			return
		case ev, ok := <-sub.Events():
			if !ok {
				bar.finish(succeeded)
				return
			}
			bar.event(*ev)
			if succeeded && bar.last >= 100 {
				bar.finish(true)
				return
			}
		}
	}
}

// loadBar draws the progress of loading one model on stderr. On a terminal
// the bar is redrawn in place; elsewhere (a log, a test) each whole tenth
// gets one line, so the output stays short.
type loadBar struct {
	e     *env
	name  string
	tty   bool
	last  int // percent drawn last; -1 before the first
	ended bool
}

func newLoadBar(e *env, name string) *loadBar {
	return &loadBar{e: e, name: name, tty: isTerminal(e.stderr), last: -1}
}

// event draws an inference:load-progress event of this model; other events
// are ignored.
func (b *loadBar) event(ev api.Event) {
	var p api.LoadProgressEvent
	if b.ended || ev.Class != api.EventInferenceLoadProgress || api.Assign(&p, ev.Payload) != nil || p.Name != b.name {
		return
	}
	if pct := int(p.Progress * 100); pct > b.last {
		b.draw(pct)
	}
}

func (b *loadBar) draw(pct int) {
	if b.tty {
		fmt.Fprintf(b.e.stderr, "\rloading %s %s %3d%%", b.name, progressBar(pct, 30), pct)
	} else if b.last < 0 || pct/10 > b.last/10 {
		fmt.Fprintf(b.e.stderr, "loading %s %s %3d%%\n", b.name, progressBar(pct, 30), pct)
	}
	b.last = pct
}

// finish ends the bar once the load is over: a success draws 100% (the
// reply can overtake the last progress events), and a bar redrawn in place
// gets its newline. A model that was already loaded drew nothing and
// prints nothing.
func (b *loadBar) finish(ok bool) {
	if b.ended {
		return
	}
	b.ended = true
	if b.last < 0 {
		return
	}
	if ok && b.last < 100 {
		b.draw(100)
	}
	if b.tty {
		fmt.Fprintln(b.e.stderr)
	}
}

// progressBar renders pct (0 to 100) as a bar of width cells.
func progressBar(pct, width int) string {
	full := min(max(pct, 0), 100) * width / 100
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "]"
}

// isTerminal reports whether w is a character device (a terminal), where
// a bar can be redrawn in place with \r.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func printModel(e *env, m *api.LoadedModel) error {
	where := "CPU"
	if m.Info.OnGPU {
		where = "GPU"
	}
	return fields(e.stdout,
		"name", m.Name,
		"path", m.Path,
		"description", orDash(m.Info.Description),
		"runs on", where,
		"layers", strconv.Itoa(m.Info.NLayer),
		"embedding", strconv.Itoa(m.Info.NEmbd),
		"vocabulary", strconv.Itoa(m.Info.NVocab),
		"trained context", strconv.Itoa(m.Info.NCtxTrain),
		"size", humanBytes(m.Info.SizeBytes),
	)
}

var modelListCommand = &command{
	name:    "list",
	summary: "list the loaded models",
	help: `Calls inference/models: each model's name, where it runs, size, the
generations running and waiting now, and its file.`,
	example: `continuum model list
continuum model list --json`,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				var ms []api.LoadedModel
				if err := c.Call(ctx, api.MethodInferenceModels, nil, &ms); err != nil {
					return err
				}
				if e.jsonOut() {
					if ms == nil {
						ms = []api.LoadedModel{}
					}
					return printJSON(e.stdout, ms, false)
				}
				if len(ms) == 0 {
					fmt.Fprintln(e.stderr, "no models loaded (continuum model load PATH)")
					return nil
				}
				rows := make([][]string, len(ms))
				for i, m := range ms {
					where := "CPU"
					if m.Info.OnGPU {
						where = "GPU"
					}
					rows[i] = []string{m.Name, where, humanBytes(m.Info.SizeBytes), strconv.Itoa(m.Active), strconv.Itoa(m.Queued), m.Path}
				}
				return table(e.stdout, []string{"NAME", "ON", "SIZE", "ACTIVE", "QUEUED", "PATH"}, rows)
			})
		}
	},
}

var modelUnloadCommand = &command{
	name:    "unload",
	args:    "NAME",
	summary: "unload model NAME once its running generations finish",
	help: `Calls inference/unload. Generations already running finish first; those
waiting for the model fail with unavailable.`,
	example: `continuum model unload llama`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, args []string) error {
			c, err := e.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Call(ctx, api.MethodInferenceUnload, api.NameParams{Name: args[0]}, nil); err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, map[string]string{"unloaded": args[0]}, false)
			}
			fmt.Fprintf(e.stdout, "unloaded %s\n", args[0])
			return nil
		}
	},
}

var modelTinyCommand = &command{
	name:    "tiny",
	args:    "PATH",
	summary: "write a tiny random-weight llama model (GGUF) to PATH, for demos and tests",
	help: `Writes a GGUF v3 model that llama.cpp loads: llama architecture, F32
weights drawn from --seed, and a small SentencePiece vocabulary (the 256 byte
tokens and about 150 English words). It generates fluent nonsense, fast: a
way to try continuumd without downloading a model. The same flags and seed
always give the same bytes. Nothing is sent to the daemon; load the file
with 'continuum model load PATH' or name it in 'continuum generate'.

--bench writes the benchmark model instead (8 layers, 256 wide, about 35 MB),
the one scripts/bench-inference.sh measures.`,
	example: `continuum model tiny /tmp/tiny.gguf && continuum generate --model /tmp/tiny.gguf "hello world"
continuum model tiny ./bench.gguf --bench
continuum model tiny ./wide.gguf --layers 4 --embd 128 --heads 8 --ff 512 --seed 7`,
	minArgs: 1,
	maxArgs: 1,
	flags: func(fs *flag.FlagSet) action {
		d := gguf.DefaultTinyConfig()
		bench := fs.Bool("bench", false, "write the benchmark model (8 layers, n_embd 256, about 35 MB)")
		seed := fs.Uint64("seed", d.Seed, "seed of the random weights")
		layers := fs.Int("layers", d.Layers, "transformer blocks")
		embd := fs.Int("embd", d.Embd, "embedding width (a multiple of --heads)")
		heads := fs.Int("heads", d.Heads, "attention heads")
		ff := fs.Int("ff", d.FF, "feed-forward width")
		ctxLen := fs.Int("context", d.ContextLength, "context length the model declares")
		return func(_ context.Context, e *env, args []string) error {
			cfg := gguf.DefaultTinyConfig()
			if *bench {
				cfg = gguf.BenchTinyConfig()
			}
			// Flags given explicitly apply on top of the preset.
			for name, set := range map[string]func(){
				"seed":    func() { cfg.Seed = *seed },
				"layers":  func() { cfg.Layers = *layers },
				"embd":    func() { cfg.Embd = *embd },
				"heads":   func() { cfg.Heads = *heads },
				"ff":      func() { cfg.FF = *ff },
				"context": func() { cfg.ContextLength = *ctxLen },
			} {
				if fs.Changed(name) {
					set()
				}
			}
			path, err := filepath.Abs(args[0])
			if err != nil {
				return usagef("model tiny", "PATH: %v", err)
			}
			if err := gguf.WriteTinyModelFile(path, cfg); err != nil {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			if e.jsonOut() {
				return printJSON(e.stdout, map[string]any{"path": path, "sizeBytes": st.Size(), "layers": cfg.Layers, "embd": cfg.Embd, "heads": cfg.Heads, "ff": cfg.FF, "contextLength": cfg.ContextLength, "seed": cfg.Seed}, false)
			}
			fmt.Fprintf(e.stdout, "wrote %s (%s; %d layers, n_embd %d, %d heads, n_ff %d, context %d, seed %d)\n",
				path, humanBytes(uint64(st.Size())), cfg.Layers, cfg.Embd, cfg.Heads, cfg.FF, cfg.ContextLength, cfg.Seed)
			fmt.Fprintf(e.stderr, "next: continuum model load %s --name tiny\n", path)
			return nil
		}
	},
}

// withMaxTime bounds ctx by d when d > 0.
func withMaxTime(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// modelRef turns a model argument into what the daemon expects: a name stays
// as it is; a path to an existing file (it has a slash or ends in .gguf)
// becomes absolute, since the daemon does not share this shell's directory.
func modelRef(s string) string {
	if filepath.IsAbs(s) || !(strings.Contains(s, string(filepath.Separator)) || strings.HasSuffix(s, ".gguf")) {
		return s
	}
	if st, err := os.Stat(s); err == nil && !st.IsDir() {
		if abs, err := filepath.Abs(s); err == nil {
			return abs
		}
	}
	return s
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
