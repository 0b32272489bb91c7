// Package gguf reads and writes the header of GGUF files, the model format of
// llama.cpp, without cgo and without the llama.cpp libraries.
//
// Two jobs:
//
//   - [Validate] checks a file before llama.cpp sees it: magic, version (2 or
//     3), plausible counts, every metadata value and tensor description
//     readable, every tensor's data inside the file. A corrupt file gives a
//     typed error ([ErrBadMagic], [ErrUnsupportedVersion], [ErrTruncated],
//     [ErrImplausible], [ErrMalformed]) instead of whatever llama.cpp would do
//     with it. The reader never allocates from a count it has not checked
//     against the bytes left in the file.
//   - [Writer] and [WriteTinyModel] write GGUF v3 files. The tiny model is a
//     llama-architecture model with seeded random F32 weights and a small
//     SentencePiece-style vocabulary: llama.cpp loads it and generates from it
//     deterministically, which is what tests and benchmarks need without
//     downloading a real model.
//
// Nothing here interprets tensor data; shapes that do not fit the architecture
// are left for llama.cpp to reject.
package gguf
