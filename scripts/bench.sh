#!/usr/bin/env bash
# `make bench`: every benchmark of the project in one run on this machine,
# each printing its own table:
#   1. bus       continuumd against NATS on the live-bus shapes (and, once the
#                kernel logs broadcast events, durable emit and replay against
#                JetStream and bbolt). The bench is its own Go module
#                (bench/go.mod), so NATS never enters the main module.
#   2. clients   kernel/ping round trips through the Go, TypeScript and
#                Python clients (scripts/bench-clients.sh).
#   3. inference generation through continuumd against node-llama-cpp on the
#                same libraries and model (scripts/bench-inference.sh).
#   4. grid      a grid command's round trip (A → B's provider) at 1 and 16
#                callers against the local provided command, the raw quic-go
#                round trip and msgrpc over a link; remote against local
#                generate on the tiny model (Go benchmarks in grid/, grid/link).
# Every measuring program these run is in the bench/ module (bench/cmd/...,
# bench/node-llama); the scripts only build and start them.
#
#   scripts/bench.sh                       # everything, ~5 minutes
#   BENCH_PARTS='inference' scripts/bench.sh
#   BENCH_ARGS='-only ping -d 3s' scripts/bench.sh        # flags for busbench
#   BENCH_ARGS='-only fanout/4 -side continuum -cpuprofile /tmp/cpu.prof' scripts/bench.sh
#
# The bus table is also written as markdown to bench/results/latest.md (or
# $BENCH_MD); the inference table to bench/results/inference.md. A part that
# fails is reported and the others still run; the exit status is then 1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
parts=${BENCH_PARTS:-bus clients inference grid}
failed=()

bus() {
	cd "$root/bench"
	local md=${BENCH_MD:-results/latest.md}
	mkdir -p "$(dirname "$md")"
	go build -o results/busbench ./cmd/busbench
	# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
	BUSBENCH_COMMAND="make bench${BENCH_ARGS:+ BENCH_ARGS='$BENCH_ARGS'}" results/busbench -md "$md" ${BENCH_ARGS:-}
	echo "markdown: bench/$md"
}

clients() { "$root/scripts/bench-clients.sh" "${BENCH_CLIENT_SECONDS:-3}"; }

inference() {
	mkdir -p "$root/bench/results"
	BENCH_INFERENCE_MD="$root/bench/results/inference.md" "$root/scripts/bench-inference.sh"
}

grid() {
	cd "$root"
	CONTINUUM_LLAMA_LIB_DIR="${CONTINUUM_LLAMA_LIB_DIR:-$root/.cache/llama/cpu}" \
		go test ./grid/link ./grid -run '^$' -bench 'RawQUICRoundTrip$|LinkMsgrpcRoundTrip$|GridCommand|GridGenerate' -benchtime "${BENCH_GRID_TIME:-3s}"
}

for part in $parts; do
	case $part in
	bus) title="continuumd vs NATS (bench/cmd/busbench)" ;;
	clients) title="client round trips (scripts/bench-clients.sh)" ;;
	inference) title="inference through continuumd vs node-llama-cpp (scripts/bench-inference.sh)" ;;
	grid) title="grid dispatch vs local and raw QUIC (go test -bench in grid/)" ;;
	*)
		echo "bench: unknown part $part (bus, clients, inference, grid)" >&2
		exit 2
		;;
	esac
	printf '\n== %s ==\n\n' "$title"
	# A subshell: each part may cd, and one failing does not stop the rest.
	# Not in an `if`, where bash would ignore set -e inside the part.
	set +e
	(
		set -e
		"$part"
	)
	rc=$?
	set -e
	if [ $rc != 0 ]; then
		failed+=("$part")
		echo "bench: $part failed (exit $rc)" >&2
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "bench: failed: ${failed[*]}" >&2
	exit 1
fi
