#!/usr/bin/python3
"""test_weft_load_ws.py - weft-load --ws: WebSocket echo and pub/sub.

Against every built weft model (echo: 20 B, 64 B, a 70,000 B message with a
64-bit length, pipelined, open loop, idle, and wss:// over TLS; chat: 1 -> 20
and 3 x 6 fan-out over the line protocol in text messages) and floor-ws, each
run must exit 0 with results and no verification error. Then against a
Python WebSocket echo server that checks the client (every frame masked, a
fresh mask per frame), and its broken modes that weft-load must catch: a
flipped payload byte (mismatch), a message sent back as two (error), a wrong
Sec-WebSocket-Accept and a plain TCP echo (connect failures), a masked server
frame (error).

usage: test_weft_load_ws.py WEFT WEFT_LOAD FLOOR_WS
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import weft_models  # noqa: E402

WEFT, LOAD, FLOOR_WS = sys.argv[1], sys.argv[2], sys.argv[3]
D = ["-d", "0.5"]  # smoke: every kind runs and verifies; 1 s each saturated both cores for 38 s of the suite
MODELS = {m.name: m.bench_args for m in weft_models.models()}
passed = failed = 0


def result(ok, what):
    global passed, failed
    print("%s: %s" % ("ok  " if ok else "FAIL", what), flush=True)
    passed, failed = passed + bool(ok), failed + (not ok)


def built_models():
    out = subprocess.run([WEFT, "--help"], capture_output=True, text=True).stdout
    return [m for m in MODELS if re.search(r"^\s+%s\s+(?!.*not built yet)" % m, out, re.M)]


class Weft:
    def __init__(self, model, mode):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([WEFT, "--model", model] + MODELS[model] +
                                  ["--mode", mode, "--port", "0", "--tls-port", "0", "--workers", "300"],
                                  stderr=self.log, stdout=subprocess.DEVNULL)
        self.port = self.tls_port = None
        for _ in range(500):
            self.log.seek(0)
            m = re.search(r"ready: .*port=(\d+) tls_port=(-?\d+)", self.log.read())
            if m:
                self.port, self.tls_port = int(m.group(1)), int(m.group(2))
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        self.log.seek(0)
        raise RuntimeError("weft did not start: " + self.log.read()[-500:])

    def stop(self):
        self.p.terminate()
        return self.p.wait(15)


def load(args):
    p = subprocess.run([LOAD] + args + ["-q", "-t", "2", "--timeout", "3"], capture_output=True, text=True,
                       timeout=120)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, None, p.stderr


def good(what, args):
    rc, j, err = load(args)
    if not j:
        result(False, "%s: no JSON (rc=%d) %s" % (what, rc, err[-300:]))
        return None
    e = {k: v for k, v in j["errors"].items() if v}
    result(rc == 0 and j["ok"] and j["ops"] > 0 and not e,
           "%s: rc=%d ops=%d %.0f/s errors=%s" % (what, rc, j["ops"], j["ops_per_s"], e))
    return j


def bad(what, args, key):
    rc, j, err = load(args)
    n = j["errors"].get(key, 0) if j else 0
    result(rc != 0 and n > 0, "%s: caught (rc=%d, %s=%d)" % (what, rc, key, n))


class Proc:
    def __init__(self, argv, pat, stream="stderr"):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = getattr(self.p, stream).readline()
        m = re.search(pat, line)
        if not m:
            self.p.kill()
            raise RuntimeError("%s did not start: %r" % (argv[0], line))
        self.port = m.group(1)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, _ = self.p.communicate(timeout=15)
        return self.p.returncode, out


models = built_models()
for m in models:
    w = Weft(m, "echo")
    try:
        p = str(w.port)
        good("%s ws echo 20 B x 10" % m, ["echo", "--ws", "--port", p, "-c", "10", "-s", "20"] + D)
        good("%s ws echo 64 B x 100" % m, ["echo", "--ws", "--port", p, "-c", "100"] + D)
        good("%s ws echo 70000 B x 2, depth 2 (64-bit length)" % m,
             ["echo", "--ws", "--port", p, "-c", "2", "-s", "70000", "--depth", "2"] + D)
        good("%s ws echo open loop 2000/s" % m, ["echo", "--ws", "--port", p, "-c", "10", "--rate", "2000"] + D)
        good("%s ws idle 50" % m, ["idle", "--ws", "--port", p, "-c", "50", "--hold", "0.2"])
        if w.tls_port and w.tls_port > 0:
            good("%s wss echo 64 B x 4" % m, ["echo", "--ws", "--tls", "--port", str(w.tls_port), "-c", "4"] + D)
    finally:
        result(w.stop() == 0, "%s echo stopped cleanly" % m)
    w = Weft(m, "chat")
    try:
        p = str(w.port)
        # Each run on channels of its own: an earlier run's subscribers that the loaded server has not
        # yet seen close are counted in a PUBLISH reply (weft-load's count_mismatches).
        good("%s ws pub/sub 1->20" % m, ["chat", "--ws", "--port", p, "--subscribers", "20",
                                         "--channel-prefix", "ws1x20-"] + D)
        good("%s ws pub/sub 3x6, 1 KiB, open loop" % m, ["chat", "--ws", "--port", p, "--subscribers", "6",
                                                         "--publishers", "3", "-s", "1024", "--rate", "3000",
                                                         "--channel-prefix", "ws3x6-"] + D)
    finally:
        result(w.stop() == 0, "%s chat stopped cleanly" % m)

fl = Proc([FLOOR_WS, "0"], r"floor-ws ready: port=(\d+)", "stdout")
try:
    good("floor-ws echo 20 B x 10", ["echo", "--ws", "--port", fl.port, "-c", "10", "-s", "20"] + D)
    good("floor-ws echo 70000 B x 2", ["echo", "--ws", "--port", fl.port, "-c", "2", "-s", "70000"] + D)
finally:
    fl.stop()

py = [sys.executable, os.path.join(HERE, "ws_echo_server.py"), "--mode"]
s = Proc(py + ["ok"], r"ready: port=(\d+)")
good("python ws echo 64 B x 4", ["echo", "--ws", "--port", s.port, "-c", "4", "-d", "0.5"])
_, out = s.stop()
m = re.search(r"frames=(\d+) unmasked=(\d+) distinct_masks=(\d+)", out or "")
frames, unmasked, distinct = (int(x) for x in m.groups()) if m else (0, -1, 0)
result(frames > 100 and unmasked == 0, "every client frame was masked (%d frames, %d unmasked)" % (frames, unmasked))
result(distinct >= 0.99 * frames, "a fresh mask per frame (%d distinct masks for %d frames)" % (distinct, frames))
for mode, key in (("flip", "mismatches"), ("split", "errors"), ("unmasked", "errors"),
                  ("accept", "connect_failures")):
    s = Proc(py + [mode], r"ready: port=(\d+)")
    try:
        bad("a server that %s" % {"flip": "flips a payload byte", "split": "splits messages",
                                   "unmasked": "masks its frames", "accept": "sends a wrong accept"}[mode],
            ["echo", "--ws", "--port", s.port, "-c", "2", "-d", "0.5"], key)
    finally:
        s.stop()
s = Proc([sys.executable, os.path.join(HERE, "echo_server.py")], r"ready: port=(\d+)")
try:
    bad("a plain TCP echo server (no upgrade)", ["echo", "--ws", "--port", s.port, "-c", "2", "-d", "0.5"],
        "connect_failures")
finally:
    s.p.terminate()
    s.p.wait(10)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or not models else 0)
