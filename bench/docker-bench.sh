#!/bin/bash
# docker-bench.sh - the compose `bench` service: weft-load and wrk against
# the `server` service (another container, same host network, other CPUs).
# Writes one JSON per run to bench/results/docker-<date>/ and exits non-zero
# when any run failed verification or got nothing back.
set -u
PORT=${PORT:-7700}
TLS_PORT=${TLS_PORT:-7701}
DURATION=${DURATION:-5}
MODEL=${MODEL:-?}
out=bench/results/docker-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

# The server container may still be starting: wait for its port (bounded).
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
	sleep 0.1
done

fail=0
run() { # name, weft-load args...
	local name=$1
	shift
	if ! weft-load "$@" --label "$MODEL.$name" --json "$out/$name.json"; then
		echo "docker-bench: $name FAILED" >&2
		fail=1
	fi
}
run echo-64B echo --port "$PORT" -c 100 -d "$DURATION" -s 64
run echo-64KiB echo --port "$PORT" -c 10 -d "$DURATION" -s 64k
if (exec 3<>/dev/tcp/127.0.0.1/"$TLS_PORT") 2>/dev/null; then
	run tls-handshake-full handshake --tls --port "$TLS_PORT" -c 10 -d "$DURATION"
	run tls-handshake-resumed handshake --tls --resume --port "$TLS_PORT" -c 10 -d "$DURATION"
fi
wrk -t 1 -c 100 -d "${DURATION%.*}s" --latency "http://127.0.0.1:$PORT/" | tee "$out/http-keepalive.wrk.txt"
grep -q 'Requests/sec' "$out/http-keepalive.wrk.txt" && ! grep -q 'Non-2xx' "$out/http-keepalive.wrk.txt" || fail=1
echo "docker-bench: model $MODEL, results in $out, $([ $fail = 0 ] && echo OK || echo FAILED)"
exit $fail
