#!/usr/bin/env bash
# Inference through continuumd against node-llama-cpp, on the same libraries
# and the same model (issue 5's "make bench" comparison; goal: ratio >= 0.98).
#
# Writes the benchmark model (gguf.BenchTinyConfig: 8 layers, n_embd 256,
# 35 MB F32), starts a real continuumd (bin/continuumd --allow-cpu
# --inference-threads THREADS --inference-ctx 1024, on a temporary socket and
# state folder), then runs ROUNDS rounds, each side once per round, in an
# order that rotates every round so that drift in the machine's load falls on
# every side:
#   - continuumd: bench/cmd/viadaemon, a Go client that calls
#     inference/generate with stream: true over the Unix socket and times the
#     inference:tokens events as they arrive (the daemon's own figures from
#     the result are kept too);
#   - node: bench/node-llama/bench.mjs, node-llama-cpp 3.21.1 in-process
#     (the same llama.cpp build as `make llama-libs`);
#   - direct: bench/cmd/viadaemon -direct, the same Go bindings in-process
#     without the daemon, which splits the ratio into what the bindings cost
#     and what the daemon adds.
# All: prompt "the quick brown fox jumps over the lazy dog", 128 greedy
# tokens, RUNS measured generations per round after a warm-up, 1024-token
# context, THREADS threads. tokens/s = tokens after the first / time from the
# first to the last token; TTFT = request (continuumd: sent by the client) to
# the first token (continuumd: its event received by the client). Prints a
# Markdown table of the medians over every run and the ratios.
#
#   scripts/bench-inference.sh                 # ROUNDS=6 RUNS=20 THREADS=1
#   ROUNDS=2 RUNS=5 scripts/bench-inference.sh # quick
#   BENCH_INFERENCE_MD=out.md scripts/bench-inference.sh   # also write the table
#
# Needs the CPU libraries (`make llama-libs`), Go, node and npm (the first run
# installs node-llama-cpp into bench/node-llama/node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-6}
RUNS=${RUNS:-20}
THREADS=${THREADS:-1}
LIBDIR=${CONTINUUM_LLAMA_LIB_DIR:-$PWD/.cache/llama/cpu}
if [ ! -d "$LIBDIR" ]; then
	echo "bench-inference: llama.cpp libraries not found at $LIBDIR: run \`make llama-libs\`" >&2
	exit 1
fi

work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
model=$work/bench.gguf
go -C bench run ./cmd/writemodel "$model"
go build -o "$work/continuumd" ./cmd/continuumd
go -C bench build -o "$work/viadaemon" ./cmd/viadaemon
if [ ! -d bench/node-llama/node_modules/node-llama-cpp ]; then
	(cd bench/node-llama && npm install --ignore-scripts --no-audit --no-fund --no-package-lock >&2)
fi

mkdir -m 700 "$work/run"
sock=$work/run/d.sock
"$work/continuumd" --socket "$sock" --state-dir "$work/state" --log-level warn \
	--llama-lib-dir "$LIBDIR" --allow-cpu --inference-threads "$THREADS" --inference-ctx 1024 \
	2>"$work/continuumd.log" &
pid=$!
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
if [ ! -S "$sock" ]; then
	echo "bench-inference: continuumd did not start:" >&2
	cat "$work/continuumd.log" >&2
	exit 1
fi

run_daemon() { "$work/viadaemon" -socket "$sock" -daemon-pid "$pid" -model "$model" -runs "$RUNS" >"$work/go.$1.json"; }
run_direct() { "$work/viadaemon" -direct "$LIBDIR" -threads "$THREADS" -model "$model" -runs "$RUNS" >"$work/direct.$1.json"; }
run_node() { (cd bench/node-llama && RUNS=$RUNS THREADS=$THREADS node bench.mjs "$model") >"$work/node.$1.json"; }
sides=(daemon node direct)
for round in $(seq 1 "$ROUNDS"); do
	# Rotate the order each round: daemon node direct, node direct daemon, ...
	for i in 0 1 2; do
		"run_${sides[$(((round - 1 + i) % 3))]}" "$round"
	done
	echo "round $round/$ROUNDS done" >&2
done

table=$(/usr/bin/python3 - "$work" "$ROUNDS" "$RUNS" "$THREADS" <<'PY'
import json, os, platform, statistics as st, subprocess, sys, time
work, rounds, runs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def load(side):
    return [json.load(open(os.path.join(work, f"{side}.{r}.json"))) for r in range(1, rounds + 1)]
go, node, direct = load("go"), load("node"), load("direct")
def all_runs(reps, key):
    return [v for r in reps for v in r[key]]
def med(reps, key):
    return st.median(all_runs(reps, key))
def spread(reps, key):
    # the median of each round, lowest to highest: how much the machine moved
    ms = [st.median(r[key]) for r in reps]
    return f"{min(ms):.0f}–{max(ms):.0f}" if "PerSec" in key else f"{min(ms):.2f}–{max(ms):.2f}"
g_tps, n_tps = med(go, "tokensPerSecRuns"), med(node, "tokensPerSecRuns")
g_ttft, n_ttft = med(go, "ttftMsRuns"), med(node, "ttftMsRuns")
s_tps, s_ttft = med(go, "serverTokensPerSecRuns"), med(go, "serverTtftMsRuns")
d_tps, d_ttft = med(direct, "tokensPerSecRuns"), med(direct, "ttftMsRuns")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
load1 = os.getloadavg()[0]
same = go[0]["firstIds"] == node[0]["firstIds"] == direct[0]["firstIds"]
print(f"{time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores ({cpu}), load average {load1:.1f} at the end; "
      f"model gguf.BenchTinyConfig (8 layers, n_embd 256, F32), 128 greedy tokens, 1024-token context, {threads} thread(s); "
      f"{rounds} rounds × {runs} runs per side, order rotating each round; medians over all {rounds * runs} runs (range: lowest–highest round median).")
print()
def cpu(reps, key="cpuMsPerToken"):
    return st.median([r.get(key, 0) for r in reps])
g_cpu, g_ccpu, d_cpu, n_cpu = cpu(go), cpu(go, "clientCpuMsPerToken"), cpu(direct), cpu(node)
print("| side | tokens/s | TTFT ms | CPU ms/token |")
print("| --- | ---: | ---: | ---: |")
print(f"| continuumd, measured by the client (events over the socket) | {g_tps:.1f} ({spread(go, 'tokensPerSecRuns')}) | {g_ttft:.2f} ({spread(go, 'ttftMsRuns')}) | {g_cpu:.3f} daemon + {g_ccpu:.3f} client |")
print(f"| continuumd, as the daemon reports it (result) | {s_tps:.1f} ({spread(go, 'serverTokensPerSecRuns')}) | {s_ttft:.2f} ({spread(go, 'serverTtftMsRuns')}) | |")
print(f"| Go bindings in-process, no daemon (package llama) | {d_tps:.1f} ({spread(direct, 'tokensPerSecRuns')}) | {d_ttft:.2f} ({spread(direct, 'ttftMsRuns')}) | {d_cpu:.3f} |")
print(f"| node-llama-cpp 3.21.1 in-process | {n_tps:.1f} ({spread(node, 'tokensPerSecRuns')}) | {n_ttft:.2f} ({spread(node, 'ttftMsRuns')}) | {n_cpu:.3f} |")
print(f"| **ratio continuumd (client) / node-llama-cpp** | **{g_tps / n_tps:.3f}** | {g_ttft / n_ttft:.2f} | {n_cpu / g_cpu:.3f} (node / daemon) |")
print(f"| ratio continuumd (client) / Go in-process: what the daemon costs | {g_tps / d_tps:.3f} | {g_ttft / d_ttft:.2f} | {d_cpu / g_cpu:.3f} (in-process / daemon) |")
print(f"| ratio Go in-process / node-llama-cpp: the bindings | {d_tps / n_tps:.3f} | {d_ttft / n_ttft:.2f} | {n_cpu / d_cpu:.3f} (node / in-process) |")
print()
print(f"Goal: tokens/s ratio ≥ 0.98. Same greedy ids on every side: {'yes' if same else 'NO'} "
      f"(first ids {go[0]['firstIds']} / {direct[0]['firstIds']} / {node[0]['firstIds']}). "
      f"TTFT ratios are time ratios: below 1 is faster. CPU ms/token: the medians of the rounds' CPU time over their tokens, "
      f"of the process running llama.cpp; the CPU ratios are oriented like tokens/s (above 1: the first side spends less).")
PY
)
echo "$table"
if [ -n "${BENCH_INFERENCE_MD:-}" ]; then
	printf '%s\n' "$table" >"$BENCH_INFERENCE_MD"
	echo "markdown: $BENCH_INFERENCE_MD" >&2
fi
