package llama

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// ContextOptions size a [Context].
type ContextOptions struct {
	// NCtx is the context length in tokens (prompt + generated). 0: the
	// model's training context, capped at 4096.
	NCtx int
	// NBatch is the most prompt tokens decoded per llama_decode call; the
	// prompt is fed in chunks of this size, with a cancellation check
	// between chunks. 0: 512 (capped at NCtx).
	NBatch int
	// NThreads is the CPU threads for decoding. 0: 1. More threads help big
	// models on the CPU; with a GPU the CPU threads mostly wait.
	NThreads int
}

// Context is a llama.cpp context: a KV cache and the state to generate with
// it. A llama context is not thread-safe, so a Context runs one generation
// at a time (callers queue, in arrival order, and stop waiting when their
// context.Context ends). Make several Contexts per Model to serve requests
// in parallel.
type Context struct {
	model  *Model
	ptr    uintptr
	nCtx   int
	nBatch int
	// sem is a one-slot semaphore rather than a sync.Mutex so that a caller
	// waiting for a busy context can give up when its ctx is cancelled.
	sem    chan struct{}
	closed bool // guarded by sem
	piece  []byte
}

// Limits on stop strings: matching costs grow with their number and length.
const (
	maxStops   = 16
	maxStopLen = 256
)

// DefaultMaxTokens caps generation when a request gives no MaxTokens.
const DefaultMaxTokens = 256

// GenerateRequest is one generation.
type GenerateRequest struct {
	// Prompt is raw text; Messages is a conversation formatted with the
	// model's chat template ([Model.ApplyChatTemplate]). Give exactly one.
	// Special-token text in Prompt ("</s>") stays text; in Messages the
	// template's own control tokens are parsed as such.
	Prompt   string
	Messages []ChatMessage
	// MaxTokens caps the tokens generated; 0 means DefaultMaxTokens.
	MaxTokens int
	// Temperature 0 (or less) is greedy decoding: deterministic. Above 0,
	// tokens are sampled after top-p filtering, seeded by Seed.
	Temperature float32
	// TopP in (0, 1) enables nucleus filtering; 0 or 1 disables it.
	TopP float32
	// Seed of the sampler (ignored when greedy). 0xFFFFFFFF asks llama.cpp
	// for a random seed.
	Seed uint32
	// Stop strings end generation; the text ends before the first one.
	// At most 16, each at most 256 bytes.
	Stop []string
}

// Token is one generated token as streamed. Piece is its share of the text:
// valid UTF-8, possibly empty (see package doc on UTF-8).
type Token struct {
	Index int    // 0-based position among the generated tokens
	ID    int32  // token id
	Piece string // text this token adds
}

// Stop reasons of a [GenerateResult].
const (
	StopEOG         = "eog"          // the model emitted an end-of-generation token
	StopMaxTokens   = "max_tokens"   // MaxTokens reached
	StopString      = "stop"         // a stop string matched
	StopContextFull = "context_full" // the context has no room for another token
	StopCancelled   = "cancelled"    // ctx ended; Generate returns ctx.Err()
	StopCallback    = "callback"     // onToken returned an error
)

// GenerateResult summarises a generation.
type GenerateResult struct {
	Text         string  // the generated text, valid UTF-8
	Tokens       []int32 // ids of the delivered tokens (end-of-generation excluded)
	PromptTokens int
	// TokensPerSec is the decode rate: tokens generated after the first,
	// divided by the time from the first token to the last. With one token
	// it is 1 over the time to first token.
	TokensPerSec float64
	// TimeToFirstTokenMs runs from the start of work on the request (after
	// waiting for the context) to the first sampled token: tokenization and
	// prompt decoding included.
	TimeToFirstTokenMs float64
	StopReason         string
}

// NewContext creates a generation context on the model.
func (m *Model) NewContext(opts ContextOptions) (*Context, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, newErr(CodeClosed, "model is closed", nil)
	}
	nCtx := opts.NCtx
	if nCtx <= 0 {
		nCtx = min(m.info.NCtxTrain, 4096)
	}
	if nCtx <= 0 || nCtx > 1<<24 {
		return nil, newErr(CodeContextCreate, fmt.Sprintf("context length %d out of range", nCtx), nil)
	}
	nBatch := opts.NBatch
	if nBatch <= 0 {
		nBatch = 512
	}
	nBatch = min(nBatch, nCtx)
	nThreads := opts.NThreads
	if nThreads <= 0 {
		nThreads = 1
	}
	if m.info.OnGPU {
		need := kvBytes(m.info, nCtx)
		var free uint64
		for _, g := range m.lib.GPUs() {
			free += g.MemoryFree
		}
		if need > free {
			return nil, newErr(CodeInsufficientVRAM, fmt.Sprintf("a %d-token context needs about %s of GPU memory for its KV cache, GPUs have %s free", nCtx, fmtBytes(need), fmtBytes(free)), nil)
		}
	}

	p := c.llamaContextDefaultParams()
	p.NCtx = uint32(nCtx)
	p.NBatch = uint32(nBatch)
	p.NUBatch = uint32(nBatch)
	p.NSeqMax = 1
	p.NThreads = int32(nThreads)
	p.NThreadsBatch = int32(nThreads)
	p.NoPerf = true
	var ptr uintptr
	lines := captureLog(func() { ptr = c.llamaInitFromModel(m.ptr, p) })
	if ptr == 0 {
		return nil, newErr(CodeContextCreate, fmt.Sprintf("llama.cpp could not create a %d-token context: %v", nCtx, lines), nil)
	}
	cx := &Context{model: m, ptr: ptr, nCtx: int(c.llamaNCtx(ptr)), nBatch: int(c.llamaNBatch(ptr)), sem: make(chan struct{}, 1)}
	m.contexts[cx] = struct{}{}
	return cx, nil
}

// kvBytes estimates a context's KV cache: K and V, f16, per layer, per
// token, n_embd/n_head*n_head_kv wide.
func kvBytes(info ModelInfo, nCtx int) uint64 {
	if info.NHead == 0 {
		return 0
	}
	width := uint64(info.NEmbd / info.NHead * info.NHeadKV)
	return 2 * 2 * uint64(info.NLayer) * uint64(nCtx) * width
}

// NCtx is the context length in tokens.
func (cx *Context) NCtx() int { return cx.nCtx }

// Close frees the context, waiting for a generation in progress to finish.
func (cx *Context) Close() error {
	cx.sem <- struct{}{}
	defer func() { <-cx.sem }()
	if cx.closed {
		return nil
	}
	cx.closed = true
	c.llamaFree(cx.ptr)
	cx.ptr = 0
	cx.model.mu.Lock()
	delete(cx.model.contexts, cx)
	cx.model.mu.Unlock()
	return nil
}

// Generate runs one generation, calling onToken (which may be nil) for each
// token in order as its text becomes final. The KV cache starts empty for
// every request. Cancelling ctx stops decoding between tokens (or prompt
// chunks); Generate then returns the result so far with ctx.Err(). If
// onToken returns an error, generation stops and Generate returns it.
func (cx *Context) Generate(ctx context.Context, req GenerateRequest, onToken func(Token) error) (GenerateResult, error) {
	select {
	case cx.sem <- struct{}{}:
	case <-ctx.Done():
		return GenerateResult{StopReason: StopCancelled}, ctx.Err()
	}
	defer func() { <-cx.sem }()
	if cx.closed {
		return GenerateResult{}, newErr(CodeClosed, "context is closed", nil)
	}
	return cx.generate(ctx, req, onToken)
}

func (cx *Context) generate(ctx context.Context, req GenerateRequest, onToken func(Token) error) (res GenerateResult, err error) {
	start := time.Now()
	m := cx.model
	if (req.Prompt == "") == (len(req.Messages) == 0) {
		return res, newErr(CodeInvalidRequest, "give exactly one of prompt and messages", nil)
	}
	if req.MaxTokens < 0 {
		return res, newErr(CodeInvalidRequest, fmt.Sprintf("maxTokens %d is negative", req.MaxTokens), nil)
	}
	if req.TopP < 0 || req.TopP > 1 {
		return res, newErr(CodeInvalidRequest, fmt.Sprintf("topP %v outside [0, 1]", req.TopP), nil)
	}
	if len(req.Stop) > maxStops {
		return res, newErr(CodeInvalidRequest, fmt.Sprintf("%d stop strings (at most %d)", len(req.Stop), maxStops), nil)
	}
	for _, s := range req.Stop {
		if len(s) > maxStopLen {
			return res, newErr(CodeInvalidRequest, fmt.Sprintf("a stop string of %d bytes (at most %d)", len(s), maxStopLen), nil)
		}
	}
	maxTokens := req.MaxTokens
	if maxTokens == 0 {
		maxTokens = DefaultMaxTokens
	}

	var prompt []int32
	if len(req.Messages) > 0 {
		text, err := m.applyChatTemplate(req.Messages, true)
		if err != nil {
			return res, err
		}
		prompt, err = m.tokenize(text, true, true)
		if err != nil {
			return res, err
		}
	} else if prompt, err = m.tokenize(req.Prompt, true, false); err != nil {
		return res, err
	}
	res.PromptTokens = len(prompt)
	if len(prompt) == 0 {
		return res, newErr(CodeInvalidRequest, "the prompt tokenizes to nothing", nil)
	}
	// One slot must stay free for the first generated token to be decoded
	// after sampling; a prompt that fills the context could not continue.
	if len(prompt) >= cx.nCtx {
		return res, newErr(CodePromptTooLong, fmt.Sprintf("prompt is %d tokens, the context holds %d (%d with room to generate); shorten the prompt or use a larger context", len(prompt), cx.nCtx, cx.nCtx-1), nil)
	}

	// Forget the previous request's cells but do not zero the KV buffers:
	// unused cells are masked out of attention, and zeroing them is pure
	// time to first token that grows with the context (on the benchmark
	// model, at best 0.17 ms at 1024 tokens and 1.2 ms at 4096, against
	// 4–10 µs for the metadata alone).
	c.llamaMemoryClear(c.llamaGetMemory(cx.ptr), false)
	smpl := newSampler(req)
	defer c.llamaSamplerFree(smpl)

	stream := newTextStream(req.Stop)
	var first, last time.Time
	generated := 0
	deliver := func(ts []Token) error {
		for _, t := range ts {
			res.Tokens = append(res.Tokens, t.ID)
			if onToken != nil {
				if err := onToken(t); err != nil {
					return err
				}
			}
		}
		return nil
	}
	finish := func(reason string, cause error) (GenerateResult, error) {
		if cause == nil {
			cause = deliver(stream.finish())
			if cause != nil {
				reason = StopCallback
			}
		} else {
			stream.finish() // pieces of a cancelled run are not delivered
		}
		res.Text = string(stream.text)
		res.StopReason = reason
		if !first.IsZero() {
			res.TimeToFirstTokenMs = float64(first.Sub(start).Microseconds()) / 1000
			if d := last.Sub(first).Seconds(); generated > 1 && d > 0 {
				res.TokensPerSec = float64(generated-1) / d
			} else if ttft := first.Sub(start).Seconds(); ttft > 0 {
				res.TokensPerSec = 1 / ttft
			}
		}
		return res, cause
	}

	// Prompt, in chunks of n_batch.
	for i := 0; i < len(prompt); i += cx.nBatch {
		if err := ctx.Err(); err != nil {
			return finish(StopCancelled, err)
		}
		chunk := prompt[i:min(i+cx.nBatch, len(prompt))]
		if err := cx.decode(chunk); err != nil {
			return finish(StopCancelled, err)
		}
	}
	nPast := len(prompt)
	var tok [1]int32
	for {
		id := c.llamaSamplerSample(smpl, cx.ptr, -1)
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		last = now
		if c.llamaVocabIsEOG(m.vocab, id) {
			return finish(StopEOG, nil)
		}
		index := generated
		generated++
		cx.piece = m.piece(id, cx.piece)
		ready, stopped := stream.add(index, id, cx.piece)
		if err := deliver(ready); err != nil {
			res.Text = string(stream.text)
			res.StopReason = StopCallback
			return res, err
		}
		switch {
		case stopped:
			return finish(StopString, nil)
		case generated >= maxTokens:
			return finish(StopMaxTokens, nil)
		case nPast >= cx.nCtx:
			return finish(StopContextFull, nil)
		}
		if err := ctx.Err(); err != nil {
			return finish(StopCancelled, err)
		}
		tok[0] = id
		if err := cx.decode(tok[:]); err != nil {
			return finish(StopCancelled, err)
		}
		nPast++
	}
}

// decode feeds tokens to llama_decode. The batch points into Go memory,
// which is kept alive across the call.
func (cx *Context) decode(toks []int32) error {
	b := batch{NTokens: int32(len(toks)), Token: uintptrOf(toks)}
	rc := c.llamaDecode(cx.ptr, b)
	runtime.KeepAlive(toks)
	if rc != 0 {
		return newErr(CodeDecode, fmt.Sprintf("llama_decode returned %d for %d tokens", rc, len(toks)), nil)
	}
	return nil
}

// newSampler builds the sampler chain: greedy for temperature 0, else
// top-p (when set), temperature, then a seeded distribution draw.
func newSampler(req GenerateRequest) uintptr {
	p := c.llamaSamplerChainDefault()
	p.NoPerf = true
	chain := c.llamaSamplerChainInit(p)
	if req.Temperature <= 0 {
		c.llamaSamplerChainAdd(chain, c.llamaSamplerInitGreedy())
		return chain
	}
	if req.TopP > 0 && req.TopP < 1 {
		c.llamaSamplerChainAdd(chain, c.llamaSamplerInitTopP(req.TopP, 1))
	}
	c.llamaSamplerChainAdd(chain, c.llamaSamplerInitTemp(req.Temperature))
	c.llamaSamplerChainAdd(chain, c.llamaSamplerInitDist(req.Seed))
	return chain
}
