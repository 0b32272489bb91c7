package llama

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/continuum-grid/continuum/llama/gguf"
)

// ModelOptions tunes [Library.LoadModel].
type ModelOptions struct {
	// AllowCPU permits running without a GPU device (development, tests).
	// Without it, loading on a machine with no GPU fails with
	// [ErrGPUUnavailable].
	AllowCPU bool
	// OnProgress, when set, is called with the load progress in [0, 1]
	// from the loading goroutine. Return false to abort the load.
	OnProgress func(progress float32) bool
}

// ModelInfo is a loaded model's metadata.
type ModelInfo struct {
	Path        string
	Description string // llama_model_desc: "llama ?B all F32", ...
	NCtxTrain   int
	NEmbd       int
	NLayer      int
	NHead       int
	NHeadKV     int
	NVocab      int
	SizeBytes   uint64 // tensor bytes
	NParams     uint64
	// ChatTemplate is the model's tokenizer.chat_template ("" when none).
	ChatTemplate string
	// OnGPU reports whether all layers were offloaded to GPU devices.
	OnGPU bool
	// GGUF is what validation read from the file header.
	GGUF gguf.Info
}

// Model is a loaded model. It is safe for concurrent use; generation happens
// in a [Context], and several contexts per model run in parallel.
type Model struct {
	lib   *Library
	ptr   uintptr
	vocab uintptr
	info  ModelInfo

	mu       sync.Mutex // guards closed and contexts
	closed   bool
	contexts map[*Context]struct{}
	// live is held shared by calls that use the model outside a context
	// (Tokenize) and exclusively by Close while it frees the model.
	live sync.RWMutex
}

// progress dispatch: one purego callback for the process, routed by the
// user-data id to the load in progress.
var (
	progressMu    sync.Mutex
	progressFuncs = map[uintptr]func(float32) bool{}
	progressSeq   atomic.Uintptr
)

func onProgress(p float32, id uintptr) bool {
	progressMu.Lock()
	f := progressFuncs[id]
	progressMu.Unlock()
	if f == nil {
		return true
	}
	return f(p)
}

// LoadModel validates the GGUF file at path, applies the GPU-or-fail rule,
// checks that the whole model fits in free GPU memory (no silent partial
// offload) and loads it. Cancelling ctx aborts the load.
//
// The fit check estimates the model's device memory as its tensor bytes plus
// 10% and 64 MiB for compute and scratch buffers, against the summed free
// memory of the GPU devices. KV caches are checked when a context is made.
func (l *Library) LoadModel(ctx context.Context, path string, opts ModelOptions) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info, err := gguf.Validate(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, newErr(CodeModelInvalid, "model file "+path+" does not exist", err)
		}
		return nil, newErr(CodeModelInvalid, "model file "+path+" is not a valid GGUF file", err)
	}
	if err := l.RequireGPU(opts.AllowCPU); err != nil {
		return nil, err
	}
	gpus := l.GPUs()
	onGPU := len(gpus) > 0
	if onGPU {
		need := modelDeviceBytes(info)
		var free uint64
		for _, g := range gpus {
			free += g.MemoryFree
		}
		if need > free {
			return nil, newErr(CodeInsufficientVRAM, fmt.Sprintf(
				"model %s needs about %s of GPU memory (%s of tensors + 10%% + 64 MiB), GPUs have %s free (%s); refusing a partial offload: use a smaller or more quantized model or free GPU memory",
				path, fmtBytes(need), fmtBytes(uint64(info.TensorBytes)), fmtBytes(free), gpuList(gpus)), nil)
		}
	}

	p := c.llamaModelDefaultParams()
	if onGPU {
		p.NGPULayers = -1 // every layer; the fit check above stands behind it
	} else {
		p.NGPULayers = 0
	}
	id := progressSeq.Add(1)
	progressMu.Lock()
	progressFuncs[id] = func(f float32) bool {
		if ctx.Err() != nil {
			return false
		}
		if opts.OnProgress != nil {
			return opts.OnProgress(f)
		}
		return true
	}
	progressMu.Unlock()
	defer func() {
		progressMu.Lock()
		delete(progressFuncs, id)
		progressMu.Unlock()
	}()
	p.ProgressCallback = progressCB
	p.ProgressCallbackUserData = id

	var ptr uintptr
	lines := captureLog(func() { ptr = c.llamaModelLoadFromFile(path, p) })
	if ptr == 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		msg := "llama.cpp could not load " + path
		if len(lines) > 0 {
			msg += ": " + strings.Join(lines, "; ")
		}
		return nil, newErr(CodeModelLoad, msg, nil)
	}
	m := &Model{lib: l, ptr: ptr, vocab: c.llamaModelGetVocab(ptr), contexts: map[*Context]struct{}{}}
	var buf [256]byte
	n := c.llamaModelDesc(ptr, &buf[0], uint64(len(buf)))
	desc := ""
	if n > 0 {
		desc = string(buf[:min(int(n), len(buf)-1)])
	}
	m.info = ModelInfo{
		Path:         path,
		Description:  desc,
		NCtxTrain:    int(c.llamaModelNCtxTrain(ptr)),
		NEmbd:        int(c.llamaModelNEmbd(ptr)),
		NLayer:       int(c.llamaModelNLayer(ptr)),
		NHead:        int(c.llamaModelNHead(ptr)),
		NHeadKV:      int(c.llamaModelNHeadKV(ptr)),
		NVocab:       int(c.llamaVocabNTokens(m.vocab)),
		SizeBytes:    c.llamaModelSize(ptr),
		NParams:      c.llamaModelNParams(ptr),
		ChatTemplate: c.llamaModelChatTemplate(ptr, nil),
		OnGPU:        onGPU,
		GGUF:         info,
	}
	return m, nil
}

// modelDeviceBytes is the fit heuristic: tensor bytes + 10% + 64 MiB.
func modelDeviceBytes(info gguf.Info) uint64 {
	t := uint64(info.TensorBytes)
	if t == 0 { // unknown tensor types: fall back to the file size
		t = uint64(info.FileSize)
	}
	return t + t/10 + 64<<20
}

func gpuList(gpus []Device) string {
	var s []string
	for _, g := range gpus {
		s = append(s, g.String())
	}
	return strings.Join(s, "; ")
}

// Info returns the model's metadata.
func (m *Model) Info() ModelInfo { return m.info }

// Close frees the model. It first closes the model's open contexts, waiting
// for generations in progress on them to finish. Close is idempotent.
func (m *Model) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	ctxs := make([]*Context, 0, len(m.contexts))
	for cx := range m.contexts {
		ctxs = append(ctxs, cx)
	}
	m.mu.Unlock()
	for _, cx := range ctxs {
		cx.Close()
	}
	m.live.Lock()
	defer m.live.Unlock()
	c.llamaModelFree(m.ptr)
	m.ptr = 0
	return nil
}

// Tokenize converts text to token ids. addSpecial adds the BOS token when
// the model wants one; parseSpecial lets control-token text ("</s>") become
// control tokens instead of plain text.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	if err := m.use(); err != nil {
		return nil, err
	}
	defer m.done()
	return m.tokenize(text, addSpecial, parseSpecial)
}

func (m *Model) tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	b := []byte(text)
	if len(b) > 1<<30 {
		return nil, newErr(CodeInvalidRequest, "text too long to tokenize", nil)
	}
	var tp *byte
	if len(b) > 0 {
		tp = &b[0]
	}
	toks := make([]int32, len(b)+2)
	n := c.llamaTokenize(m.vocab, tp, int32(len(b)), &toks[0], int32(len(toks)), addSpecial, parseSpecial)
	if n < 0 { // buffer too small: -n is the count needed
		toks = make([]int32, -n)
		n = c.llamaTokenize(m.vocab, tp, int32(len(b)), &toks[0], int32(len(toks)), addSpecial, parseSpecial)
	}
	if n < 0 {
		return nil, newErr(CodeInvalidRequest, fmt.Sprintf("tokenization failed (%d)", n), nil)
	}
	return toks[:n], nil
}

// TokenPiece returns the bytes a token stands for (control tokens: none).
// They may be part of a UTF-8 sequence, or not UTF-8 at all.
func (m *Model) TokenPiece(tok int32) []byte {
	if m.use() != nil {
		return nil
	}
	defer m.done()
	return m.piece(tok, nil)
}

func (m *Model) piece(tok int32, buf []byte) []byte {
	if cap(buf) < 64 {
		buf = make([]byte, 64)
	}
	buf = buf[:cap(buf)]
	n := c.llamaTokenToPiece(m.vocab, tok, &buf[0], int32(len(buf)), 0, false)
	if n < 0 {
		buf = make([]byte, -n)
		n = c.llamaTokenToPiece(m.vocab, tok, &buf[0], int32(len(buf)), 0, false)
	}
	if n <= 0 {
		return buf[:0]
	}
	return buf[:n]
}

// use and done bracket a call that needs the model alive.
func (m *Model) use() error {
	m.live.RLock()
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		m.live.RUnlock()
		return newErr(CodeClosed, "model is closed", nil)
	}
	return nil
}

func (m *Model) done() { m.live.RUnlock() }
