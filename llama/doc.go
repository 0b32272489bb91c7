// Package llama runs llama.cpp in-process through purego (no cgo: it builds
// with CGO_ENABLED=0), against one pinned build of the prebuilt libraries
// that scripts/fetch-llama-libs.sh fetches (node-llama-cpp 3.21.1, llama.cpp
// v0.4.0).
//
// # Basics
//
//	lib, err := llama.Load(llama.LibraryOptions{Dir: ".cache/llama/cpu"})
//	m, err := lib.LoadModel(ctx, "model.gguf", llama.ModelOptions{AllowCPU: true})
//	cx, err := m.NewContext(llama.ContextOptions{NCtx: 2048})
//	res, err := cx.Generate(ctx, llama.GenerateRequest{Prompt: "Hello", MaxTokens: 64},
//		func(t llama.Token) error { fmt.Print(t.Piece); return nil })
//
// # Promises
//
//   - ABI guard: [Load] refuses a library whose llama_version, ggml_version
//     or ggml_commit differ from the pinned ones ([ErrABIMismatch], naming
//     what was found and what is expected), and the Go mirrors of C structs
//     are size-checked before any call.
//   - Once per process: libraries and backends cannot be unloaded, so [Load]
//     loads one folder; loading it again returns the same [Library], another
//     folder fails with [ErrAlreadyLoaded].
//   - GPU or fail: without a GPU device, model loading fails with
//     [ErrGPUUnavailable] (saying what was found, why the GPU backend did not
//     load, and how to fix it) unless AllowCPU is set. With a GPU, all layers
//     are offloaded or loading fails with [ErrInsufficientVRAM]: never a
//     silent partial offload.
//   - Bad input gets a typed error before llama.cpp sees it where Go can
//     tell: a corrupt GGUF ([ErrModelInvalid], wrapping the gguf package's
//     error), a prompt longer than the context ([ErrPromptTooLong]).
//     llama.cpp's own refusals ([ErrModelLoad]) carry its log lines.
//   - Temperature 0 is greedy and deterministic: the same ids on every run
//     and every context.
//   - Text is valid UTF-8: token pieces are bytes; a character split across
//     tokens is held until complete, bytes that cannot be UTF-8 become
//     U+FFFD. Streamed pieces always concatenate to the result's text.
//   - Cancelling the ctx of Generate stops decoding before the next token.
//
// # Concurrency
//
// [Library] and [Model] are safe for concurrent use. A [Context] runs one
// generation at a time (llama.cpp contexts are not thread-safe); callers
// queue on it in arrival order and stop waiting when their ctx ends. Create
// several contexts per model to serve requests in parallel.
//
// # Caveats
//
// llama.cpp's log and its backends are process-wide. llama.cpp may round a
// context's length up ([Context.NCtx] reports the real one). Use one thread
// per context on small machines: with more threads than free cores ggml's
// spinning workers and the Go scheduler compete.
package llama
