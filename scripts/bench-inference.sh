#!/usr/bin/env bash
# Inference through continuumd against node-llama-cpp, on the same model.
#
# Writes the benchmark model (gguf.BenchTinyConfig, 35 MB F32), then runs, in
# alternation ROUNDS times:
#   - go:   BenchmarkGenerateDaemon (inference/bench_test.go): a Go client
#           calls inference/generate over the Unix socket of an in-process
#           continuumd with stream: true and times the inference:tokens
#           events as they arrive;
#   - node: llama/bench/node/bench.mjs, node-llama-cpp 3.21.1 in-process
#           (the same llama.cpp build as `make llama-libs`).
# Both: prompt "the quick brown fox jumps over the lazy dog", 128 greedy
# tokens, RUNS runs per round, THREADS threads. tokens/s is tokens after the
# first over the time from first to last token; TTFT from the request to the
# first token. Prints each round and the ratio go/node of the medians (the
# goal is >= 0.98).
#
#   scripts/bench-inference.sh            # ROUNDS=3 RUNS=20 THREADS=1
#
# Needs the libraries (`make llama-libs`), Go, node and npm (the first run
# installs node-llama-cpp into llama/bench/node/node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-20}
THREADS=${THREADS:-1}
LIBDIR=${CONTINUUM_LLAMA_LIB_DIR:-$PWD/.cache/llama/cpu}
if [ ! -d "$LIBDIR" ]; then
	echo "bench-inference: llama.cpp libraries not found at $LIBDIR: run \`make llama-libs\`" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=$work/bench.gguf
go run ./llama/bench/writemodel "$model"
go test -c -o "$work/inference.test" ./inference
if [ ! -d llama/bench/node/node_modules/node-llama-cpp ]; then
	(cd llama/bench/node && npm install --ignore-scripts --no-audit --no-fund --no-package-lock >&2)
fi

go_tps=() go_ttft=() node_tps=() node_ttft=()
for round in $(seq 1 "$ROUNDS"); do
	line=$(CONTINUUM_BENCH_MODEL=$model CONTINUUM_LLAMA_LIB_DIR=$LIBDIR THREADS=$THREADS \
		"$work/inference.test" -test.run '^$' -test.bench '^BenchmarkGenerateDaemon$' \
		-test.benchtime "${RUNS}x" | grep '^BenchmarkGenerateDaemon')
	gt=$(awk '{for (i = 2; i <= NF; i++) if ($i == "tokens/s") print $(i-1)}' <<<"$line")
	gf=$(awk '{for (i = 2; i <= NF; i++) if ($i == "ttft_ms") print $(i-1)}' <<<"$line")
	json=$(cd llama/bench/node && RUNS=$RUNS THREADS=$THREADS node bench.mjs "$model")
	nt=$(node -e 'const r = JSON.parse(process.argv[1]); console.log(r.tokensPerSec.toFixed(1))' "$json")
	nf=$(node -e 'const r = JSON.parse(process.argv[1]); console.log(r.ttftMs.toFixed(2))' "$json")
	go_tps+=("$gt") go_ttft+=("$gf") node_tps+=("$nt") node_ttft+=("$nf")
	printf 'round %d: continuumd %s tokens/s, TTFT %s ms | node-llama-cpp %s tokens/s, TTFT %s ms\n' \
		"$round" "$gt" "$gf" "$nt" "$nf"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
gm=$(median "${go_tps[@]}") nm=$(median "${node_tps[@]}")
gfm=$(median "${go_ttft[@]}") nfm=$(median "${node_ttft[@]}")
awk -v g="$gm" -v n="$nm" -v gf="$gfm" -v nf="$nfm" -v r="$ROUNDS" -v runs="$RUNS" -v th="$THREADS" 'BEGIN {
	printf "median of %d rounds x %d runs, %d thread(s): continuumd %.1f tokens/s (TTFT %.2f ms), node-llama-cpp %.1f tokens/s (TTFT %.2f ms)\n", r, runs, th, g, gf, n, nf
	printf "ratio continuumd/node tokens/s: %.3f (goal >= 0.98)\n", g / n
}'
