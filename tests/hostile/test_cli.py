"""test_cli.py - the command line and 'weft stop' against hostile input (issue 9).

  - Durations that cannot be held (--drain-timeout 2200000 was INT_MIN ms, and
    pool/threads then spun at 100 % CPU on stop; nan, inf, hex and exponents
    came through strtod) are usage errors: exit 2, a message naming the flag
    and the allowed range. The longest allowed one works on every model.
  - Settings that cannot work (--read-pause 0, --port equal to --tls-port,
    --queue so large that the pool's ring wrapped int, ...) are usage errors.
"""
import os
import socket
import subprocess
import time

from weftest import MODEL_ARGS, Weft, recv_exact, send_all, slow_factor

BIN = os.environ.get("WEFT_BIN", "weft")
SECS_MAX = "604800"


def run(args, timeout=None):
    """(exit code, stderr) of the binary; killed (ours) if it does not exit."""
    timeout = timeout or 10 * slow_factor()
    p = subprocess.Popen([BIN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        return None, err.decode("utf-8", "replace")
    return p.returncode, err.decode("utf-8", "replace")


def usage_error(args, names):
    rc, err = run(MODEL_ARGS + ["--port", "0"] + args)
    assert rc == 2, "%s: exit %s, want 2 (a usage error)\n%s" % (args, rc, err[-2000:])
    for n in names:
        assert n in err, "%s: the message does not name %s: %r" % (args, n, err)
    assert "ready:" not in err, "%s: started anyway" % args


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- durations -------------------------------------------------------------------------

def test_durations_out_of_range_are_usage_errors(ctx):
    bad = ["2200000", "nan", "inf", "-1", "0x10", "1e3", "0.0001", "604800.5"]
    for v in bad:
        usage_error(["--drain-timeout", v], ["--drain-timeout", SECS_MAX])
    for flag in ("--idle-timeout", "--handshake-timeout", "--outbox-soft-secs"):
        for v in ("2200000", "nan"):
            usage_error([flag, v], [flag, SECS_MAX])
    print("measured: --drain-timeout 2200000 / nan / inf: usage error, exit 2")


def test_longest_duration_serves_and_stops(ctx):
    # Every consumer holds the maximum: the threads/pool stop path
    # (pthread_cond_timedwait), poll timeouts, uring's ms clock, coro's timer
    # cap. The server serves, then stops promptly on SIGTERM without spinning.
    args = ["--mode", "chat", "--drain-timeout", SECS_MAX, "--idle-timeout", SECS_MAX,
            "--handshake-timeout", SECS_MAX, "--outbox-soft-secs", SECS_MAX]
    with Weft(args, tls_listener=False) as w:
        s = w.connect(tls=False)
        send_all(s, b"*1\r\n$4\r\nPING\r\n")
        assert recv_exact(s, 7) == b"+PONG\r\n"
        idle = w.connect(tls=False)  # an open connection the drain must close, not wait for
        time.sleep(0.2)
        t0 = time.monotonic()
        rc = w.stop(timeout=15 * slow_factor())
        took = time.monotonic() - t0
        s.close()
        idle.close()
    assert rc == 0, "exit %d" % rc
    print("measured: --drain-timeout %s (the longest): stopped after %.2f s" % (SECS_MAX, took))
    assert took < 5 * slow_factor(), "stop took %.1f s with a %s s drain timeout" % (took, SECS_MAX)


# ---- settings that cannot work -------------------------------------------------------------

def test_settings_that_cannot_work_are_usage_errors(ctx):
    port = free_port()
    cases = [
        (["--read-pause", "0"], ["--read-pause"]),
        (["--port", str(port), "--tls-port", str(port)], ["--port", "--tls-port"]),
        (["--port", str(port), "--tls-port", str(port), "--threads", "2"], ["--port", "--tls-port"]),
        (["--workers", "0"], ["--workers"]),
        (["--queue", "-1"], ["--queue"]),
        (["--queue", "2147483647"], ["--queue"]),  # workers + queue + 1 wrapped int in pool.c
        (["--threads", "0"], ["--threads"]),
        (["--threads", "100000"], ["--threads"]),
        (["--max-conns", "0"], ["--max-conns"]),
        (["--backlog", "-1"], ["--backlog"]),
        (["--max-subs", "0"], ["--max-subs"]),
        (["--max-headers", "100000000"], ["--max-headers"]),
        (["--max-message", "18446744073709551615"], ["--max-message"]),
        (["--stack-size", "2g"], ["--stack-size"]),
    ]
    for args, names in cases:
        # the port is given after the harness's --port 0, so it is the one that counts
        usage_error(args, names)
    # 0 for both (two ephemeral ports) is fine: that is how every test runs
    with Weft(["--tls-port", "0"]) as w:
        assert w.port != w.tls_port
    print("measured: --read-pause 0, --port = --tls-port: usage error, exit 2")
