#!/usr/bin/env bash
# `make bench`: continuumd against NATS on the live-bus shapes (and, once the
# kernel logs broadcast events, durable emit and replay against JetStream and
# bbolt), in one run on this machine. The bench is its own Go module
# (bench/go.mod), so NATS never enters the main module's dependencies.
#
#   scripts/bench.sh                       # every shape, ~2 minutes
#   BENCH_ARGS='-only ping -d 3s' scripts/bench.sh
#   BENCH_ARGS='-only fanout/4 -side continuum -cpuprofile /tmp/cpu.prof' scripts/bench.sh
#
# Prints the table; writes it as markdown to bench/results/latest.md (or
# $BENCH_MD) for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../bench"
md=${BENCH_MD:-results/latest.md}
mkdir -p "$(dirname "$md")"
go build -o results/busbench ./cmd/busbench
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
BUSBENCH_COMMAND="make bench${BENCH_ARGS:+ BENCH_ARGS='$BENCH_ARGS'}" results/busbench -md "$md" ${BENCH_ARGS:-}
echo "markdown: bench/$md"
