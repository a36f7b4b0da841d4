#!/bin/sh
# deps.sh - install the Debian (bookworm) packages weft needs to build, test and
# benchmark, but only those missing: a machine that has them all is left alone
# (no apt-get update, no network). Run as root, or as a user with sudo.
#
#   scripts/deps.sh            install what is missing
#   scripts/deps.sh --check    list what is missing; exit 1 if anything is
set -eu

PACKAGES="
build-essential cmake pkg-config
liburing-dev libssl-dev libhiredis-dev libwslay-dev
clang libclang-rt-14-dev
python3 python3-redis python3-websockets
curl wrk nginx-light redis-server netcat-openbsd
gnuplot-nox openssl procps iproute2
man-db groff-base
haproxy
chromium nodejs
"

missing=""
for p in $PACKAGES; do
	# "install ok installed" is dpkg's word for a package that is fully there.
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi
echo "deps: missing:$missing"
if [ "${1:-}" = "--check" ]; then
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "deps: run as root (or install sudo) to install:$missing" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
# nginx and redis are benchmark anchors, started by the harness on their own
# ports; a package's post-install may still try to start its service, which
# fails harmlessly where there is no init system.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
echo "deps: installed:$missing"
