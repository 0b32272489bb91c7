#!/usr/bin/env bash
# Tests of the generated clients against a real continuumd, non-interactive:
#   1. the checked-in shims match the Go API types (go run ./gen -check);
#   2. TypeScript: node:test suite, incl. interop with the Python client;
#   3. Python: pytest suite (sync and asyncio clients);
#   4. the newcomer's path (outside-test.sh): the README tour, both clients
#      installed into a project outside the repository, and docs/CLIENTS.md's
#      snippets run as written;
#   5. the browser tests: the TS client bundled by esbuild in headless chromium,
#      over continuumd's WebSocket listener, with a Python provider and emitter;
#      and the dashboard (/dashboard/) with events emitted from Node.
# Between 2 and 3 the dashboard bundle is rebuilt and compared with the
# checked-in one (scripts/build-dashboard.sh --check).
# Needs go, node/npm, /usr/bin/python3 with python3-msgpack, python3-pytest,
# python3-venv and python3-setuptools, /usr/bin/chromium (`make deps`
# installs the Debian packages as root), and for the dashboard test the
# llama.cpp CPU libraries (`make llama-libs`, or $CONTINUUM_LLAMA_LIB_DIR).
# SKIP_BROWSER=1 leaves out step 5.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== generated bindings up to date"
go run ./gen -check

echo "== build continuumd"
go build -o "$tmp/continuumd" ./cmd/continuumd
export CONTINUUMD="$tmp/continuumd"

echo "== TypeScript client (node --test)"
(
	cd bindings/typescript
	if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
		npm ci --no-audit --no-fund --loglevel=error
	fi
	npm test --silent
)

echo "== dashboard bundle rebuilt from its sources matches the checked-in one"
scripts/build-dashboard.sh --check

echo "== Python client (pytest)"
/usr/bin/python3 -m pytest bindings/python/tests -q

echo "== the newcomer's path: README tour, clients from another project, CLIENTS.md snippets"
bindings/outside-test.sh

if [ "${SKIP_BROWSER:-}" = 1 ]; then
	echo "== browser test skipped (SKIP_BROWSER=1)"
else
	echo "== browser test (chromium over WebSocket)"
	if [ ! -x /usr/bin/chromium ]; then
		echo "chromium is missing: run 'make deps' as root, or: sudo apt-get install -y chromium" >&2
		exit 1
	fi
	(cd bindings/typescript && node --test dist/test/browser/)
fi
