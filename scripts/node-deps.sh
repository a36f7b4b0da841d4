#!/usr/bin/env bash
# node-deps.sh DIR - install the npm packages the tests and bench/compare use as
# clients and anchors (tests/node/package.json, pinned by its package-lock.json;
# never part of the server) into DIR/node_modules with `npm ci`.
#
# Safe to call from tests running at the same time: one install at a time
# (flock on DIR/.lock), and a stamp (the lock file's hash) makes every later
# call a no-op. Two concurrent `npm install --prefix DIR pkg@v` calls used to
# prune each other's packages (each rewrites DIR/package.json with only its own).
set -euo pipefail
dir=${1:?usage: scripts/node-deps.sh DIR}
here=$(cd "$(dirname "$0")/../tests/node" && pwd)
command -v npm >/dev/null || { echo "node-deps: npm is missing (Debian: nodejs npm; scripts/deps.sh installs it)" >&2; exit 1; }
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock -w 600 9 || { echo "node-deps: waited 10 minutes for another install into $dir" >&2; exit 1; }
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$want" ] && [ -d "$dir/node_modules" ]; then
	exit 0
fi
rm -f "$dir/.installed"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
if ! out=$(cd "$dir" && timeout 300 npm ci --no-audit --no-fund 2>&1); then
	echo "node-deps: npm ci in $dir failed (is the npm registry reachable?):" >&2
	echo "$out" | tail -n 5 >&2
	exit 1
fi
echo "$want" >"$dir/.installed"
