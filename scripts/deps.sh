#!/usr/bin/env bash
# Installs the Debian packages the tests need when run as root; otherwise says
# exactly which command to run. Go modules and npm packages are fetched by the
# go and npm commands themselves.
set -euo pipefail
pkgs=(python3-msgpack python3-pytest python3-venv python3-setuptools chromium tmux)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "missing Debian packages: ${missing[*]}" >&2
	echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
