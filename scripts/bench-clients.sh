#!/usr/bin/env bash
# Round trips per second (kernel/ping) through the Go, TypeScript and Python
# clients against one continuumd, with 1 and 16 concurrent callers, as a
# Markdown table on stdout. With -w, the table also replaces the section
# between the clients markers in docs/BENCHMARKS.md (appended when absent).
#
#   scripts/bench-clients.sh [-w] [SECONDS]      (default 3 seconds per row)
set -euo pipefail
cd "$(dirname "$0")/.."
write=0
if [ "${1:-}" = "-w" ]; then write=1; shift; fi
secs=${1:-3}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/continuumd" ./cmd/continuumd
go -C bench build -o "$tmp/gocalls" ./cmd/gocalls
(cd bindings/typescript && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npx tsc -p .)
mkdir -m 700 "$tmp/run"
"$tmp/continuumd" --socket "$tmp/run/d.sock" --state-dir "$tmp/state" --log-level warn 2>"$tmp/log" &
pid=$!
for _ in $(seq 200); do [ -S "$tmp/run/d.sock" ] && break; sleep 0.05; done
sock="$tmp/run/d.sock"

rate() { /usr/bin/python3 -c 'import json,sys; print("%.0f" % json.loads(sys.stdin.read().strip().splitlines()[-1])["calls_per_s"])'; }
declare -A r
for n in 1 16; do
	r[go,$n]=$("$tmp/gocalls" -socket "$sock" -callers "$n" -duration "${secs}s" | rate)
	r[ts,$n]=$(node bindings/typescript/dist/test/bench.js "$sock" "$n" "$secs" | rate)
	r[py,$n]=$(/usr/bin/python3 bindings/python/bench.py "$sock" "$n" "$secs" sync | rate)
	r[pya,$n]=$(/usr/bin/python3 bindings/python/bench.py "$sock" "$n" "$secs" async | rate)
done
ratio() { /usr/bin/python3 -c "print('%.2f' % ($1 / $2))"; }
table=$(
	echo "<!-- clients:begin (written by scripts/bench-clients.sh -w) -->"
	echo "### Client round trips (kernel/ping over the Unix socket)"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(go version | cut -d' ' -f3), Node $(node --version), Python $(/usr/bin/python3 -c 'import platform; print(platform.python_version())'); ${secs}s per row, one connection per client shared by the callers."
	echo
	echo "| client | 1 caller, calls/s | × Go | 16 callers, calls/s | × Go |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	echo "| Go (ipc/client) | ${r[go,1]} | 1.00 | ${r[go,16]} | 1.00 |"
	echo "| TypeScript (Node, bindings/typescript) | ${r[ts,1]} | $(ratio ${r[ts,1]} ${r[go,1]}) | ${r[ts,16]} | $(ratio ${r[ts,16]} ${r[go,16]}) |"
	echo "| Python sync Client (threads) | ${r[py,1]} | $(ratio ${r[py,1]} ${r[go,1]}) | ${r[py,16]} | $(ratio ${r[py,16]} ${r[go,16]}) |"
	echo "| Python AsyncClient (tasks) | ${r[pya,1]} | $(ratio ${r[pya,1]} ${r[go,1]}) | ${r[pya,16]} | $(ratio ${r[pya,16]} ${r[go,16]}) |"
	echo
	echo "Targets: TypeScript ≥ 0.5× and Python ≥ 0.25× the Go client's calls/s."
	echo "<!-- clients:end -->"
)
echo "$table"
if [ $write = 1 ]; then
	f=docs/BENCHMARKS.md
	[ -f $f ] || printf '# Benchmarks\n\n' >$f
	TABLE="$table" /usr/bin/python3 - "$f" <<'PY'
import os, re, sys
p = sys.argv[1]
s = open(p).read()
t = os.environ["TABLE"]
pat = re.compile(r"<!-- clients:begin.*?<!-- clients:end -->", re.S)
s = pat.sub(lambda m: t, s) if pat.search(s) else s.rstrip("\n") + "\n\n" + t + "\n"
open(p, "w").write(s)
PY
	echo "updated $f"
fi
