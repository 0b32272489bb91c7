package inference

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/llama"
)

// Defaults of Options.
const (
	DefaultContextsPerModel = 2
	DefaultMaxQueued        = 8
)

// EnvLibDir names the environment variable DefaultLibDir reads first.
const EnvLibDir = "CONTINUUM_LLAMA_LIB_DIR"

// Options configure the service.
type Options struct {
	// LlamaLibDir is the folder of the llama.cpp libraries (what `make
	// llama-libs` fills). "" means DefaultLibDir().
	LlamaLibDir string
	// LlamaFile, GGMLFile and GGMLBaseFile name the library files inside
	// LlamaLibDir. Empty: found by pattern (libllama.*.so, libggml.*.so,
	// libggml-base.so), which fits both the CPU and the CUDA package; set
	// them when a folder holds more than one build.
	LlamaFile, GGMLFile, GGMLBaseFile string
	// AllowCPU permits inference without a GPU device (development, tests).
	AllowCPU bool
	// ContextsPerModel is how many generations run at once per model, each
	// in its own llama context (KV cache). Default 2.
	ContextsPerModel int
	// MaxQueued bounds the requests per model waiting for a context; one
	// more fails with resource_exhausted. Default 8; negative means none wait.
	MaxQueued int
	// NCtx is each context's length in tokens (prompt + generated). 0: the
	// model's training context, capped at 4096.
	NCtx int
	// NBatch is the most prompt tokens decoded per step. 0: 512.
	NBatch int
	// NThreads is the CPU threads per context. 0: half the CPUs, at least 1.
	NThreads int
	// NoReload turns off remembering loaded models across restarts (see
	// remember.go): by default a model loaded with inference/load is
	// loaded again when the daemon starts on the same state dir.
	NoReload bool
	// Logger receives the service's and llama.cpp's logs; nil discards them.
	Logger *slog.Logger
	// Alloys, when set, stores each generation's alloy (the daemon passes
	// its alloy service); the result carries the alloy either way.
	Alloys AlloyStore
}

// DefaultLibDir is where the libraries are looked for when no folder is
// configured, as an absolute path: $CONTINUUM_LLAMA_LIB_DIR when set; else
// .cache/llama/cpu under the current directory when it exists (a checkout
// after `make llama-libs`); else ../.cache/llama/cpu next to the executable
// when it exists (bin/continuumd in a checkout); else the first of these.
func DefaultLibDir() string {
	if d := os.Getenv(EnvLibDir); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			return abs
		}
		return d
	}
	local, _ := filepath.Abs(filepath.Join(".cache", "llama", "cpu"))
	if isDir(local) {
		return local
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			d := filepath.Join(filepath.Dir(exe), "..", ".cache", "llama", "cpu")
			if isDir(d) {
				return filepath.Clean(d)
			}
		}
	}
	return local
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Service hosts llama.cpp in the daemon. It is safe for concurrent use.
type Service struct {
	k    *kernel.Kernel
	opts Options
	log  *slog.Logger

	// tokens and genNanos count generation for kernel/metrics (Stats).
	tokens   atomic.Uint64
	genNanos atomic.Uint64

	libMu  sync.Mutex
	lib    *llama.Library
	libErr error // a load failure that retrying cannot fix (wrong version, …)

	mu     sync.Mutex
	models map[string]*entry
	closed bool

	// stopReload ends the reload of remembered models at Close; reloaded
	// is closed when that reload is over (at once when there is none).
	stopReload context.CancelFunc
	reloaded   chan struct{}
}

// Host creates the service and registers the inference/* methods on k. Call
// it after kernel.Open and before serving clients. The libraries are loaded
// at the first inference call, not here.
func Host(k *kernel.Kernel, opts Options) (*Service, error) {
	if opts.LlamaLibDir == "" {
		opts.LlamaLibDir = DefaultLibDir()
	}
	if opts.ContextsPerModel <= 0 {
		opts.ContextsPerModel = DefaultContextsPerModel
	}
	if opts.MaxQueued == 0 {
		opts.MaxQueued = DefaultMaxQueued
	} else if opts.MaxQueued < 0 {
		opts.MaxQueued = 0
	}
	if opts.NThreads <= 0 {
		opts.NThreads = max(1, runtime.NumCPU()/2)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{k: k, opts: opts, log: opts.Logger, models: map[string]*entry{}}
	for _, m := range []struct {
		name string
		fn   kernel.Service
	}{
		{api.MethodInferenceLoad, kernel.Typed(s.load)},
		{api.MethodInferenceUnload, kernel.Typed(s.unload)},
		{api.MethodInferenceModels, kernel.Typed(s.list)},
		{api.MethodInferenceGenerate, kernel.Typed(s.generate)},
	} {
		spec, ok := api.Lookup(m.name)
		if !ok {
			return nil, fmt.Errorf("inference: %s is missing from api.Methods", m.name)
		}
		if err := k.Host(spec, m.fn); err != nil {
			return nil, err
		}
	}
	s.declareClasses(k)
	s.reloaded = make(chan struct{})
	var reloadCtx context.Context
	reloadCtx, s.stopReload = context.WithCancel(context.Background())
	if ms := s.rememberedModels(); len(ms) > 0 && !opts.NoReload {
		go s.reload(reloadCtx, ms)
	} else {
		close(s.reloaded)
	}
	if !isDir(opts.LlamaLibDir) {
		s.log.Warn("llama.cpp libraries not found; inference methods answer unavailable until they are there", "dir", opts.LlamaLibDir, "fix", "make llama-libs")
	} else {
		s.log.Info("inference service ready; llama.cpp loads at the first call", "dir", opts.LlamaLibDir, "allow_cpu", opts.AllowCPU)
	}
	return s, nil
}

// LibDir is the library folder the service uses.
func (s *Service) LibDir() string { return s.opts.LlamaLibDir }

// library loads llama.cpp once and applies the GPU-or-fail rule; every
// inference method goes through it first.
func (s *Service) library() (*llama.Library, error) {
	s.libMu.Lock()
	defer s.libMu.Unlock()
	if s.lib == nil {
		if s.libErr != nil {
			return nil, s.libErr
		}
		lib, err := llama.Load(llama.LibraryOptions{
			Dir:          s.opts.LlamaLibDir,
			LlamaFile:    s.opts.LlamaFile,
			GGMLFile:     s.opts.GGMLFile,
			GGMLBaseFile: s.opts.GGMLBaseFile,
			Logger:       s.log.With("component", "llama"),
		})
		if err != nil {
			err = apiError(err)
			// A missing folder or file may be fetched while the daemon
			// runs: try again next time. Anything else (a library that
			// was opened and refused) stays.
			if !isNotFound(err) {
				s.libErr = err
			}
			s.log.Warn("cannot load llama.cpp", "dir", s.opts.LlamaLibDir, "err", err)
			return nil, err
		}
		s.lib = lib
		s.log.Info("llama.cpp loaded", "dir", lib.Dir(), "gpus", len(lib.GPUs()), "allow_cpu", s.opts.AllowCPU)
	}
	if err := s.lib.RequireGPU(s.opts.AllowCPU); err != nil {
		return nil, apiError(err)
	}
	return s.lib, nil
}

func isNotFound(err error) bool {
	var e *api.Error
	if errors.As(err, &e) {
		if d, ok := e.Data.(map[string]any); ok {
			return d["reason"] == string(llama.CodeLibraryNotFound)
		}
	}
	return false
}

func (s *Service) load(ctx context.Context, _ *kernel.Call, p api.LoadModelParams) (any, error) {
	// Bad params are the caller's to fix whatever the machine has: checked
	// before the libraries (which may answer gpu_unavailable).
	path, err := modelPath(p.Path)
	if err != nil {
		return nil, err
	}
	name := p.Name
	if name == "" {
		name = path
	}
	if strings.TrimSpace(name) == "" {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"name\" is blank")
	}
	if err := api.CheckName("name", name, api.MaxModelNameLen); err != nil {
		return nil, err
	}
	lib, err := s.library()
	if err != nil {
		return nil, err
	}
	e, err := s.loadModel(ctx, lib, name, path)
	if err != nil {
		return nil, err
	}
	s.remember(name, path)
	return e.describe(), nil
}

// modelPath checks a GGUF path from a client: absolute (the daemon's working
// directory is not the caller's) and cleaned.
func modelPath(p string) (string, error) {
	if strings.TrimSpace(p) == "" {
		return "", api.Errorf(api.CodeInvalidArgument, "field \"path\" is blank")
	}
	if !filepath.IsAbs(p) {
		return "", api.Errorf(api.CodeInvalidArgument, "model path %q is not absolute (the daemon resolves paths on its own machine, not in the caller's working directory)", p)
	}
	return filepath.Clean(p), nil
}

// loadModel registers name, loads the model and publishes its progress.
func (s *Service) loadModel(ctx context.Context, lib *llama.Library, name, path string) (*entry, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, api.Errorf(api.CodeUnavailable, "the inference service is shutting down")
	}
	if old := s.models[name]; old != nil {
		s.mu.Unlock()
		return nil, api.Errorf(api.CodeAlreadyExists, "a model named %q is already loaded (from %s); unload it first or choose another name", name, old.path)
	}
	e := newEntry(name, path, s.opts.ContextsPerModel)
	s.models[name] = e
	s.mu.Unlock()

	last := -1.0
	progress := func(f float32) bool {
		// llama.cpp reports many small steps: publish whole percents.
		if v := float64(f); v >= 1 || v-last >= 0.01 {
			last = v
			s.emit(ctx, "inference", api.EventInferenceLoadProgress, api.LoadProgressEvent{Name: name, Progress: min(v, 1)})
		}
		return true
	}
	m, err := lib.LoadModel(ctx, path, llama.ModelOptions{AllowCPU: s.opts.AllowCPU, OnProgress: progress})
	if err != nil {
		err = apiError(err)
		s.mu.Lock()
		if s.models[name] == e {
			delete(s.models, name)
		}
		s.mu.Unlock()
		e.fail(err)
		s.log.Info("model load failed", "name", name, "path", path, "err", err)
		return nil, err
	}
	if last < 1 {
		s.emit(ctx, "inference", api.EventInferenceLoadProgress, api.LoadProgressEvent{Name: name, Progress: 1})
	}
	e.loaded(m)
	go e.modelSHA256() // for the runs' alloys, hashed while the first prompt comes (alloy.go)
	s.mu.Lock()
	gone := s.models[name] != e // unloaded or shut down while loading
	s.mu.Unlock()
	if gone {
		e.close()
		return nil, api.Errorf(api.CodeUnavailable, "model %q was unloaded while it loaded", name)
	}
	s.log.Info("model loaded", "name", name, "path", path, "desc", e.info.Description, "on_gpu", e.info.OnGPU)
	return e, nil
}

// resolve finds the model a request names: a registered name, else a loaded
// model with that absolute path, else the file at that path, loaded under
// its path.
func (s *Service) resolve(ctx context.Context, lib *llama.Library, ref string) (*entry, error) {
	for {
		s.mu.Lock()
		e := s.models[ref]
		clean := ""
		if e == nil && filepath.IsAbs(ref) {
			clean = filepath.Clean(ref)
			e = s.models[clean]
			for _, c := range s.sortedLocked() {
				if e != nil {
					break
				}
				if c.path == clean {
					e = c
				}
			}
		}
		s.mu.Unlock()
		if e == nil {
			if clean == "" {
				return nil, api.Errorf(api.CodeNotFound, "no model named %q is loaded (continuum model list shows them, continuum model load PATH loads one; a GGUF file is named by its absolute path)", ref)
			}
			e, err := s.loadModel(ctx, lib, clean, clean)
			if errors.Is(err, &api.Error{Code: api.CodeAlreadyExists}) {
				continue // another request started loading it: wait for that one
			}
			return e, err
		}
		if err := e.wait(ctx); err != nil {
			if ctx.Err() == nil && isCtxErr(err) {
				continue // the request that was loading it gave up: load it here
			}
			return nil, err
		}
		return e, nil
	}
}

func isCtxErr(err error) bool {
	c := api.CodeOf(err)
	return c == api.CodeCancelled || c == api.CodeDeadlineExceeded
}

func (s *Service) unload(ctx context.Context, _ *kernel.Call, p api.NameParams) (any, error) {
	if _, err := s.library(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e := s.models[p.Name]
	if e == nil && filepath.IsAbs(p.Name) {
		// A path names a model wherever a name does: the one loaded from
		// that file, under whatever name.
		clean := filepath.Clean(p.Name)
		for _, c := range s.sortedLocked() {
			if e == nil && c.path == clean {
				e = c
			}
		}
	}
	if e != nil {
		delete(s.models, e.name)
	}
	s.mu.Unlock()
	if e == nil {
		// Not loaded, but perhaps remembered from before a restart (its
		// reload failed): unloading it means not to reload it either.
		s.forget(p.Name)
		return nil, api.Errorf(api.CodeNotFound, "no model named %q is loaded", p.Name)
	}
	if err := e.wait(ctx); err != nil && isCtxErr(err) && ctx.Err() != nil {
		// Still loading and our caller gave up: loadModel sees the entry
		// gone from the map and frees the model when it is done.
		return nil, err
	}
	e.close()
	s.forget(e.name)
	s.log.Info("model unloaded", "name", e.name)
	return api.Empty{}, nil
}

// list answers what is loaded. It does not go through library(): with no
// GPU or no libraries nothing can be loaded, and the honest answer to "what
// is loaded" is then an empty list, not gpu_unavailable (load says why).
func (s *Service) list(context.Context, *kernel.Call, api.Empty) (any, error) {
	s.mu.Lock()
	es := s.sortedLocked()
	s.mu.Unlock()
	out := make([]api.LoadedModel, 0, len(es))
	for _, e := range es {
		if e.isReady() {
			out = append(out, e.describe())
		}
	}
	return out, nil
}

func (s *Service) sortedLocked() []*entry {
	es := make([]*entry, 0, len(s.models))
	for _, e := range s.models {
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	return es
}

func (s *Service) generate(ctx context.Context, call *kernel.Call, p api.GenerateParams) (any, error) {
	lib, err := s.library()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Model) == "" {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"model\" is blank")
	}
	if (p.Prompt == "") == (len(p.Messages) == 0) {
		return nil, api.Errorf(api.CodeInvalidArgument, "give exactly one of \"prompt\" and \"messages\"")
	}
	if p.MaxTokens < 0 {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"maxTokens\" must not be negative")
	}
	if p.Temperature < 0 {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"temperature\" must not be negative")
	}
	if p.TopP < 0 || p.TopP > 1 {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"topP\" must be in [0, 1]")
	}
	if p.RequestID == "" {
		p.RequestID = newRequestID()
	}
	e, err := s.resolve(ctx, lib, p.Model)
	if err != nil {
		return nil, err
	}
	cx, release, err := e.acquire(ctx, s.opts)
	if err != nil {
		return nil, err
	}
	release = sync.OnceFunc(release) // given back before the alloy is made
	defer release()

	req := llama.GenerateRequest{
		Prompt:      p.Prompt,
		MaxTokens:   p.MaxTokens,
		Temperature: float32(p.Temperature),
		TopP:        float32(p.TopP),
		Seed:        0xFFFFFFFF, // llama.cpp picks a random seed
		Stop:        p.Stop,
	}
	if p.Seed != nil {
		req.Seed = *p.Seed
	}
	for _, m := range p.Messages {
		req.Messages = append(req.Messages, llama.ChatMessage{Role: m.Role, Content: m.Content})
	}
	var onToken func(llama.Token) error
	if p.Stream {
		sender := call.ClientID
		onToken = func(t llama.Token) error {
			s.emit(ctx, sender, api.EventInferenceTokens, api.TokenEvent{RequestID: p.RequestID, Index: t.Index, Token: t.ID, Piece: t.Piece})
			return nil
		}
	}
	started := time.Now()
	res, err := cx.Generate(ctx, req, onToken)
	if err != nil {
		return nil, apiError(err)
	}
	s.tokens.Add(uint64(len(res.Tokens)))
	s.genNanos.Add(uint64(time.Since(started)))
	release()
	run, err := s.runAlloy(e, p, res, started, time.Now())
	if err != nil {
		return nil, err
	}
	return api.GenerateResult{
		Text:               res.Text,
		Tokens:             res.Tokens,
		PromptTokens:       res.PromptTokens,
		TokensPerSec:       res.TokensPerSec,
		TimeToFirstTokenMs: res.TimeToFirstTokenMs,
		StopReason:         res.StopReason,
		RequestID:          p.RequestID,
		Model:              e.name,
		Alloy:              run,
	}, nil
}

func (s *Service) emit(ctx context.Context, sender, class string, payload any) {
	if _, err := s.k.Emit(ctx, sender, api.EmitParams{Name: class, Payload: payload}); err != nil {
		s.log.Debug("cannot publish event", "class", class, "err", err)
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "r" + hex.EncodeToString(b[:])
}

// Close unloads every model, waiting for running generations (cancel their
// callers first: the daemon closes connections before it calls Close).
// Later calls answer unavailable.
func (s *Service) Close() error {
	// A reload in progress stops first: its loads would otherwise outlive
	// the service (and the state file it remembers models in).
	s.stopReload()
	<-s.reloaded
	s.mu.Lock()
	s.closed = true
	es := s.sortedLocked()
	s.models = map[string]*entry{}
	s.mu.Unlock()
	for _, e := range es {
		if e.isReady() {
			e.close()
		}
	}
	return nil
}

// Stats returns the tokens generated since the service started and the
// time spent generating them (kernel/metrics).
func (s *Service) Stats() api.InferenceMetrics {
	m := api.InferenceMetrics{Tokens: s.tokens.Load(), GenerateSecs: time.Duration(s.genNanos.Load()).Seconds()}
	if m.GenerateSecs > 0 {
		m.TokensPerSecs = float64(m.Tokens) / m.GenerateSecs
	}
	return m
}
