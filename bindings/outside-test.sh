#!/usr/bin/env bash
# The newcomer's path, run as the docs write it, against a real continuumd:
#   1. the README's CLI tour (docs: README.md "A short tour of the CLI"),
#      line by line, with bin/continuum, tails and serve in the background
#      and stopped as Ctrl-C would;
#   2. docs/CLIENTS.md "Using the clients from another project": the install
#      commands, as written, in a scratch project outside the repository
#      (npm install PATH, a venv with pip install PATH, and PYTHONPATH);
#   3. the TypeScript and Python snippets of docs/CLIENTS.md, extracted and
#      run as written (the TypeScript one compiled by tsc) from that project.
# Every command runs with XDG_RUNTIME_DIR pointing at a private folder, so
# the CLI and both clients find the daemon at its default socket, as on a
# desktop. A snippet that fails, or that the docs no longer contain, fails
# this script.
#
# Needs go, node/npm, and Debian's python3 with python3-msgpack, python3-venv
# and python3-setuptools (`make deps`). $CONTINUUMD names a built daemon;
# otherwise one is built.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
PY=/usr/bin/python3

# block FILE HEADING LANG: the first ```LANG block after the line HEADING.
block() {
	"$PY" - "$@" <<'EOF'
import sys
path, heading, lang = sys.argv[1:]
lines = open(path, encoding="utf-8").read().split("\n")
try:
    i = lines.index(heading)
except ValueError:
    sys.exit(f"{path}: no heading {heading!r}")
while i < len(lines) and lines[i] != "```" + lang:
    i += 1
if i == len(lines):
    sys.exit(f"{path}: no ```{lang} block after {heading!r}")
j = lines.index("```", i + 1)
print("\n".join(lines[i + 1:j]))
EOF
}

# wait_for FILE PATTERN: until FILE has a line matching PATTERN (10 s).
wait_for() {
	for _ in $(seq 100); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timed out waiting for /$2/ in $1:" >&2
	cat "$1" >&2
	return 1
}

export XDG_RUNTIME_DIR="$tmp/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
tour="$tmp/tour"
mkdir -p "$tour/bin"
(cd "$repo" && go build -o "$tour/bin/continuum" ./cmd/continuum)
if [ -z "${CONTINUUMD:-}" ]; then
	(cd "$repo" && go build -o "$tour/bin/continuumd" ./cmd/continuumd)
	CONTINUUMD="$tour/bin/continuumd"
fi
"$CONTINUUMD" --state-dir "$tmp/state" >"$tmp/continuumd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
	[ -S "$XDG_RUNTIME_DIR/continuum/continuumd.sock" ] && break
	sleep 0.1
done

echo "== README tour, as written"
n=0
while IFS= read -r line; do
	cmd=$(printf '%s' "$line" | sed -E 's/[[:space:]]+#.*$//')
	case "$cmd" in
	"" | "#"*) continue ;;
	*"log compact"*)
		# Offline by design (the daemon must be stopped): its own tests
		# cover it (cmd/continuum/log_test.go).
		echo "   skip (offline): $cmd"
		continue
		;;
	esac
	n=$((n + 1))
	echo "   \$ $cmd"
	case "$cmd" in
	*"events tail"* | *"log tail"* | *"commands serve"*)
		(cd "$tour" && exec bash -c "exec $cmd") >"$tmp/bg$n.out" 2>"$tmp/bg$n.err" &
		pids+=($!)
		wait_for "$tmp/bg$n.err" "watching|following|serving"
		;;
	*)
		# stdin is not the tour: a line that reads input (continuum chat)
		# would swallow the lines after it. It gets end of input instead.
		if ! (cd "$tour" && bash -c "$cmd") </dev/null >"$tmp/fg$n.out" 2>&1; then
			echo "README tour line failed: $cmd" >&2
			cat "$tmp/fg$n.out" >&2
			exit 1
		fi
		;;
	esac
done < <(block "$repo/README.md" "## A short tour of the CLI" sh)
# What the tour's tails printed: the event it emitted, live and from the log.
for f in "$tmp"/bg*.out; do
	if grep -q "chat:posted" "$f"; then grep -q '"text":"hello"' "$f" || { echo "a tail missed the tour's event:" >&2; cat "$f" >&2; exit 1; }; fi
done
[ "$(grep -l '"text":"hello"' "$tmp"/bg*.out | wc -l)" -ge 2 ] || { echo "the tour's tails printed nothing" >&2; exit 1; }
# Ctrl-C for the tails and serve.
for p in "${pids[@]}"; do kill -INT "$p"; done
for p in "${pids[@]}"; do wait "$p" || { echo "a tour process did not stop cleanly on Ctrl-C" >&2; exit 1; }; done
pids=()

echo "== clients from another project, as docs/CLIENTS.md says"
app="$tmp/app"
mkdir -p "$app"
printf '{ "name": "my-app", "private": true, "type": "module" }\n' >"$app/package.json"
block "$repo/docs/CLIENTS.md" "## TypeScript (\`bindings/typescript\`, package \`@continuum-grid/client\`)" ts >"$app/app.ts"
block "$repo/docs/CLIENTS.md" "## Python (\`bindings/python\`, package \`continuum_client\`)" python >"$app/app.py"
install=$(block "$repo/docs/CLIENTS.md" "## Using the clients from another project" sh)
printf '%s\n' "$install" | sed 's/^/   $ /'
# Debian's python3 first on PATH, as the docs assume.
(cd "$app" && CONTINUUM="$repo" PATH="/usr/bin:$PATH" bash -euo pipefail -c "$install") >"$tmp/install.out" 2>&1 || {
	echo "the install commands failed:" >&2
	cat "$tmp/install.out" >&2
	exit 1
}
grep -q "hi from asyncio" "$tmp/install.out" || { echo "the PYTHONPATH run printed:" >&2; cat "$tmp/install.out" >&2; exit 1; }
[ -L "$app/node_modules/@continuum-grid/client" ] || [ -d "$app/node_modules/@continuum-grid/client" ] || { echo "npm install PATH installed nothing" >&2; exit 1; }

echo "== the TypeScript snippet, compiled and run"
cat >"$app/tsconfig.json" <<'EOF'
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
  "lib": ["ES2022", "DOM"], "types": [], "strict": true, "skipLibCheck": true, "outDir": "out" },
  "files": ["app.ts"] }
EOF
(cd "$app" && "$repo/bindings/typescript/node_modules/.bin/tsc" -p . && timeout 30 node out/app.js) >"$tmp/ts.out" 2>&1 || {
	echo "the TypeScript snippet failed:" >&2
	cat "$tmp/ts.out" >&2
	exit 1
}
grep -q "declared: true" "$tmp/ts.out" && grep -q "not_found: " "$tmp/ts.out" || { echo "the TypeScript snippet printed:" >&2; cat "$tmp/ts.out" >&2; exit 1; }

echo "== the Python snippet, from the venv install"
(cd "$app" && timeout 30 .venv/bin/python app.py) >"$tmp/py.out" 2>&1 || {
	echo "the Python snippet failed:" >&2
	cat "$tmp/py.out" >&2
	exit 1
}
grep -q "not_found: " "$tmp/py.out" && grep -q "hi from asyncio" "$tmp/py.out" || { echo "the Python snippet printed:" >&2; cat "$tmp/py.out" >&2; exit 1; }
site=$(cd "$app" && .venv/bin/python -c 'import continuum_client, os; print(os.path.dirname(continuum_client.__file__))')
case "$site" in "$repo"*) echo "the venv imports the checkout ($site), not the installed copy" >&2; exit 1 ;; esac

# Everything the snippets emitted is in the room's transcript.
(cd "$tour" && bin/continuum log replay --channel general --all) >"$tmp/replay.out"
for text in hello "hi from TypeScript" "hi from Python" "hi from asyncio"; do
	grep -q "$text" "$tmp/replay.out" || { echo "the transcript lacks \"$text\":" >&2; cat "$tmp/replay.out" >&2; exit 1; }
done
echo "ok: README tour, installs from another project, and CLIENTS.md snippets"
