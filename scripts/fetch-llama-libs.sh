#!/usr/bin/env bash
# fetch-llama-libs.sh [cpu|cuda] [DEST]
#
# Fetches the prebuilt llama.cpp libraries that the llama/ package binds to
# (node-llama-cpp's per-platform npm packages, one pinned version) and unpacks
# them so the .so files lie directly in DEST.
#
#   cpu  (default) @node-llama-cpp/linux-x64
#   cuda           @node-llama-cpp/linux-x64-cuda (needs a host CUDA 13 runtime)
#
# DEST defaults to <repo>/.cache/llama/<variant>. The script is idempotent: when
# DEST holds the stamp file for this exact package and version it does nothing.
# It unpacks into a temporary folder next to DEST and renames it into place, so
# an interrupted fetch never leaves a folder that looks complete.
#
# The version is pinned because the Go bindings guard the ABI (llama/abi.go):
# bump both together.
set -euo pipefail

VERSION=3.21.1
variant=${1:-cpu}
case "$variant" in
cpu) pkg=@node-llama-cpp/linux-x64 ;;
cuda) pkg=@node-llama-cpp/linux-x64-cuda ;;
*)
	echo "usage: $0 [cpu|cuda] [DEST]" >&2
	exit 2
	;;
esac

repo_root=$(cd "$(dirname "$0")/.." && pwd)
dest=${2:-$repo_root/.cache/llama/$variant}
stamp_name=.continuum-llama-stamp
want_stamp="$pkg@$VERSION"

if [[ -f "$dest/$stamp_name" ]] && [[ "$(cat "$dest/$stamp_name")" == "$want_stamp" ]]; then
	echo "$dest"
	exit 0
fi
if [[ -e "$dest" ]] && [[ ! -f "$dest/$stamp_name" ]] && [[ -n "$(ls -A "$dest" 2>/dev/null)" ]]; then
	echo "fetch-llama-libs: $dest exists, is not empty and has no stamp; remove it first" >&2
	exit 1
fi

command -v npm >/dev/null || {
	echo "fetch-llama-libs: npm is required (apt-get install npm)" >&2
	exit 1
}

parent=$(dirname "$dest")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.fetch-$variant.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetch-llama-libs: npm pack $want_stamp" >&2
(cd "$tmp" && npm pack --silent "$want_stamp" >/dev/null)
tgz=$(ls "$tmp"/*.tgz)
mkdir "$tmp/unpack"
tar -xzf "$tgz" -C "$tmp/unpack"
bins=$(ls -d "$tmp"/unpack/package/bins/*/ 2>/dev/null | head -n1)
if [[ -z "$bins" ]]; then
	echo "fetch-llama-libs: $want_stamp has no package/bins/<platform>/ folder" >&2
	exit 1
fi
mkdir "$tmp/out"
# Only the shared libraries and the build metadata: the Node addon is not used.
find "$bins" -maxdepth 1 -type f \( -name '*.so' -o -name '*.so.*' -o -name '_nlcBuildMetadata.json' \) \
	-exec mv {} "$tmp/out/" \;
if ! ls "$tmp"/out/libllama*.so >/dev/null 2>&1; then
	echo "fetch-llama-libs: no libllama*.so in $want_stamp" >&2
	exit 1
fi
echo "$want_stamp" >"$tmp/out/$stamp_name"

# Swap into place: a stale stamped folder (other version) is moved aside first.
if [[ -e "$dest" ]]; then
	mv "$dest" "$tmp/old"
fi
mv "$tmp/out" "$dest"
echo "$dest"
