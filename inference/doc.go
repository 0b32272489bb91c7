// Package inference is the daemon's inference service: it hosts llama.cpp
// (package llama) in continuumd and serves the inference/* methods
// (inference/load, inference/unload, inference/models, inference/generate;
// wire types in package api, contract in docs/INFERENCE.md).
//
// What it promises:
//
//   - The daemon starts without llama.cpp: the libraries are loaded at the
//     first inference call. Until they can be, every inference method answers
//     unavailable saying to run `make llama-libs`; a later call tries again.
//   - GPU or fail: without a GPU device and without AllowCPU every inference
//     method answers gpu_unavailable with llama's explanation (devices found,
//     why no GPU backend is active, how to fix it). Other methods are not
//     affected.
//   - Each model has a small pool of llama contexts (ContextsPerModel, default
//     2) and a bounded queue (MaxQueued, default 8): requests beyond the pool
//     wait in arrival order; beyond the queue they fail at once with
//     resource_exhausted.
//   - With stream: true each token is published, before the reply, as a local
//     inference:tokens event whose sender is the calling client; a request's
//     events have indexes 0, 1, … and their pieces join to the result text.
//   - The caller's cancellation (or its connection closing) stops decoding
//     between tokens.
//   - Errors carry catalogue codes; llama's own code is in the error data as
//     {"reason": code} (for example prompt_too_long).
package inference
