// Command writemodel writes the benchmark GGUF model (gguf.BenchTinyConfig)
// to a file, so programs outside Go (the node-llama-cpp comparison in
// bench/node-llama) can load exactly what BenchmarkGenerate measures.
//
//	go -C bench run ./cmd/writemodel /tmp/bench.gguf
package main

import (
	"fmt"
	"os"

	"github.com/continuum-grid/continuum/llama/gguf"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: writemodel PATH")
		os.Exit(2)
	}
	if err := gguf.WriteTinyModelFile(os.Args[1], gguf.BenchTinyConfig()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
