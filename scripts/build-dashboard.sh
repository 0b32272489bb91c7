#!/usr/bin/env bash
# Builds the dashboard's JavaScript bundle (dashboard/assets/dashboard.js)
# from dashboard/web/*.ts and the generated TypeScript client, with the
# esbuild and TypeScript that bindings/typescript/package-lock.json pins, and
# records the sums `go run ./gen -check` compares (dashboard/bundle.sum).
#   scripts/build-dashboard.sh          type-check, build, write the sums
#   scripts/build-dashboard.sh --check  build into a temp file and fail when
#                                       the checked-in bundle differs
# Needs node and npm (npm ci runs once in bindings/typescript when needed).
set -euo pipefail
cd "$(dirname "$0")/.."

ts=bindings/typescript
if [ ! -f $ts/node_modules/.package-lock.json ] || [ $ts/package-lock.json -nt $ts/node_modules/.package-lock.json ]; then
	(cd $ts && npm ci --no-audit --no-fund --loglevel=error)
fi

$ts/node_modules/.bin/tsc -p dashboard/tsconfig.json

out=dashboard/assets/dashboard.js
if [ "${1:-}" = --check ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	out=$tmp/dashboard.js
fi
# Not minified: the checked-in bundle stays readable in a diff. No source
# map: it would embed absolute paths of the machine that built it.
$ts/node_modules/.bin/esbuild dashboard/web/dashboard.ts \
	--bundle --format=esm --platform=browser --target=es2022 --charset=utf8 \
	--legal-comments=inline --log-level=warning --outfile="$out"
if grep -q '"node:' "$out"; then
	echo "build-dashboard: the bundle pulls in a Node module" >&2
	exit 1
fi

if [ "${1:-}" = --check ]; then
	if ! cmp -s "$out" dashboard/assets/dashboard.js; then
		echo "build-dashboard: dashboard/assets/dashboard.js is stale: run scripts/build-dashboard.sh (make dashboard) and commit it" >&2
		diff -u dashboard/assets/dashboard.js "$out" | head -40 >&2 || true
		exit 1
	fi
	go run ./gen -check
	echo "dashboard bundle up to date"
else
	go run ./gen -dashboard-sum
	echo "wrote $out ($(wc -c <"$out") bytes) and dashboard/bundle.sum"
fi
