#!/bin/bash
# test_docker.sh - build docker/Dockerfile for real and run weft in containers.
#
# No registry is reachable, so the base image is Debian bookworm made here with
# `debootstrap --variant=minbase` and `docker import` (cached in
# /var/cache/weft-bench). A private dockerd (its own socket, data and exec
# roots, no bridge, no iptables) is started for the test and stopped by PID at
# the end. Then, with docker-compose 1.29 (and `docker compose` v2 where it is
# installed): build, `up -d server` (one model, CPU 0), `run bench` (weft-load
# and wrk against it, CPU 1), and `run compare` (a short bench/compare inside a
# container), then docker/cluster.yml (redis, three weft nodes of different models,
# HAProxy on one port) carrying a chat message between two nodes through the balancer
# (tests/bench/cluster_check.py). WEFT_DOCKER_ONLY=cluster runs only that part.
# Exit 77 (ctest: skipped) only when dockerd cannot start.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=/var/cache/weft-bench
STATE=/run/weft-bench-docker
SOCK=unix://$STATE.sock
DOCKERD_PID=
WORK=$(mktemp -d /tmp/weft-docker-test.XXXXXX)
passed=0
failed=0

say() { echo "test_docker: [$SECONDS s] $*"; } # seconds since the start: where the time goes
ok() { say "ok   $*"; passed=$((passed + 1)); }
bad() { say "FAIL $*"; failed=$((failed + 1)); }
skip() {
	say "SKIP: $*"
	cleanup
	echo "0 passed, 0 failed, 1 skipped"
	exit 77
}

cleanup() {
	if [ -n "$DOCKERD_PID" ]; then
		compose down -v --remove-orphans >/dev/null 2>&1
		(cd "$ROOT/docker" && docker-compose -p weftclustertest -f cluster.yml down -v --remove-orphans) >/dev/null 2>&1
		kill -TERM "$DOCKERD_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
		kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID"
		DOCKERD_PID=
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# Debian's packages, installed when missing (root and apt only).
need=""
command -v dockerd >/dev/null || need="$need docker.io"
command -v debootstrap >/dev/null || need="$need debootstrap"
command -v docker-compose >/dev/null || need="$need docker-compose"
if [ -n "$need" ]; then
	say "installing$need"
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need) >"$WORK/apt.log" 2>&1 ||
			say "apt-get failed: $(tail -3 "$WORK/apt.log")"
	fi
fi
command -v dockerd >/dev/null || skip "dockerd is not installed and could not be installed"

# A private dockerd: it never touches another engineer's docker.
mkdir -p "$STATE"
dockerd --host "$SOCK" --data-root /var/lib/weft-bench-docker --exec-root "$STATE" --pidfile "$STATE.pid" \
	--bridge=none --iptables=false --ip6tables=false >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
export DOCKER_HOST=$SOCK
for _ in $(seq 150); do
	docker info >/dev/null 2>&1 && break
	kill -0 "$DOCKERD_PID" 2>/dev/null || break
	sleep 0.2
done
if ! docker info >/dev/null 2>&1; then
	reason=$(tail -3 "$WORK/dockerd.log" | tr '\n' ' ')
	kill -0 "$DOCKERD_PID" 2>/dev/null || DOCKERD_PID=
	skip "dockerd cannot start here: $reason"
fi
ok "dockerd started (pid $DOCKERD_PID)"

# The base image, without a registry.
if ! docker image inspect local/bookworm >/dev/null 2>&1; then
	mkdir -p "$CACHE"
	if [ ! -s "$CACHE/bookworm-minbase.tar" ]; then
		say "debootstrap --variant=minbase bookworm (a few minutes, once)"
		if ! debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/deboot.log" 2>&1; then
			bad "debootstrap: $(tail -3 "$WORK/deboot.log")"
			echo "$passed passed, $failed failed"
			exit 1
		fi
		tar -C "$WORK/rootfs" -c . >"$CACHE/bookworm-minbase.tar.tmp" && mv "$CACHE/bookworm-minbase.tar.tmp" "$CACHE/bookworm-minbase.tar"
		rm -rf "$WORK/rootfs"
	fi
	docker import - local/bookworm <"$CACHE/bookworm-minbase.tar" >/dev/null && ok "base image local/bookworm imported" ||
		bad "docker import"
fi

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export BASE=local/bookworm MODEL=coro DURATION=2 RESULTS="$WORK/results"
export PORT=$(free_port) TLS_PORT=$(free_port)
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
	export SERVER_CPUS=0 BENCH_CPUS=1 COMPARE_CPUS=0,1
else
	export SERVER_CPUS=0 BENCH_CPUS=0 COMPARE_CPUS=0
fi
mkdir -p "$RESULTS"

COMPOSE=(docker-compose)
compose() { (cd "$ROOT/docker" && "${COMPOSE[@]}" -p weftbenchtest -f compose.yml "$@"); }

t=$(date +%s)
if compose build >"$WORK/build.log" 2>&1; then
	ok "images built with --build-arg BASE=local/bookworm in $(($(date +%s) - t)) s"
else
	bad "image build failed: $(tail -20 "$WORK/build.log")"
	echo "$passed passed, $failed failed"
	exit 1
fi

# One round of the two-container setup and a short harness run, per compose.
round() {
	local tag=$1
	compose up -d server >"$WORK/up.log" 2>&1 && ok "$tag: server up (model $MODEL, cpuset $SERVER_CPUS)" ||
		bad "$tag: up: $(tail -5 "$WORK/up.log")"
	if compose run --rm bench >"$WORK/bench.log" 2>&1; then
		ok "$tag: bench container ran weft-load and wrk against the server container"
	else
		bad "$tag: bench: $(tail -15 "$WORK/bench.log")"
	fi
	grep -h '"ok":' "$RESULTS"/docker-*/*.json 2>/dev/null | grep -q '"ok":false' && bad "$tag: a weft-load run failed verification"
	compose down >/dev/null 2>&1
	rm -rf "$RESULTS"/*
	if compose run --rm compare --quick --models coro --only echo-64B,http-keepalive,pubsub --duration 0.5 \
		--out /opt/weft/bench/results/compare >"$WORK/compare.log" 2>&1; then
		ok "$tag: bench/compare ran in a container"
	else
		bad "$tag: compare: $(tail -15 "$WORK/compare.log")"
	fi
	if [ -s "$RESULTS/compare/report.md" ] && grep -q '^| coro' "$RESULTS/compare/report.md" &&
		grep -q '^| \**nginx' "$RESULTS/compare/report.md" && grep -q '^| \**redis' "$RESULTS/compare/report.md"; then
		ok "$tag: its report has coro, nginx and redis rows"
	else
		bad "$tag: no usable report.md from the container run"
	fi
	compose down >/dev/null 2>&1
	rm -rf "${RESULTS:?}"/*
}

# The cluster (docker/cluster.yml): redis, three weft nodes of different models and
# HAProxy on one port; a chat message from a client on one node to a client on another,
# both connected through the balancer.
cluster_round() {
	export REDIS_PORT=$(free_port) LB_PORT=$(free_port) NODE1_PORT=$(free_port) NODE2_PORT=$(free_port) NODE3_PORT=$(free_port)
	ccompose() { (cd "$ROOT/docker" && "${COMPOSE[@]}" -p weftclustertest -f cluster.yml "$@"); }
	if ccompose up -d >"$WORK/cluster-up.log" 2>&1; then
		ok "cluster: redis, three nodes (threads, coro, uring) and haproxy up"
	else
		bad "cluster: up: $(tail -10 "$WORK/cluster-up.log")"
	fi
	if /usr/bin/python3 "$ROOT/tests/bench/cluster_check.py" "$LB_PORT" "$NODE1_PORT" "$NODE2_PORT" "$NODE3_PORT" \
		>"$WORK/cluster-check.log" 2>&1; then
		ok "cluster: $(tail -1 "$WORK/cluster-check.log")"
	else
		bad "cluster: $(tail -5 "$WORK/cluster-check.log"); logs: $(ccompose logs --tail 10 2>&1 | tail -30)"
	fi
	ccompose down -v --remove-orphans >/dev/null 2>&1
}

if [ "${WEFT_DOCKER_ONLY:-}" = cluster ]; then # a quicker run while working on the cluster
	cluster_round
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
fi

round "docker-compose $(docker-compose version --short 2>/dev/null)"
cluster_round
if docker compose version >/dev/null 2>&1; then
	COMPOSE=(docker compose)
	round "docker compose $(docker compose version --short 2>/dev/null)"
else
	say "note: the docker compose v2 plugin is not installed here; only docker-compose 1.29 was exercised"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
