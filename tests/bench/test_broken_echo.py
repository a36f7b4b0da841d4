#!/usr/bin/python3
"""test_broken_echo.py - weft-load must catch a broken echo server.

Against tests/bench/echo_server.py: a correct echo passes (exit 0, nothing
counted); one that drops a single byte fails (exit 1, mismatches counted);
one that stops answering fails (exit 1, timeouts counted). Both message sizes
and both loop kinds are exercised, and the TLS-free handshake path too.
"""
import json
import os
import re
import subprocess
import sys
import time

from checks import check, done

HERE = os.path.dirname(os.path.abspath(__file__))
LOAD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("WEFT_LOAD_BIN", "weft-load")


class EchoServer:
    def __init__(self, *args):
        self.p = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "echo_server.py")] + list(args),
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stderr.readline()
        m = re.search(r"port=(\d+)", line)
        if not m:
            raise SystemExit("echo_server.py did not start: %r" % line)
        self.port = int(m.group(1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.p.terminate()
        self.p.wait(10)


def load(port, *args):
    p = subprocess.run([LOAD, "echo", "--port", str(port), "-q"] + list(args), capture_output=True, text=True,
                       timeout=60)
    j = json.loads(p.stdout)
    return p.returncode, j


with EchoServer() as s:
    rc, j = load(s.port, "-c", "4", "-d", "1", "-s", "1000", "--depth", "2")
    check(rc == 0 and j["ok"] and j["ops"] > 0 and j["errors"]["mismatches"] == 0,
          "correct echo passes (rc=%d ops=%d)" % (rc, j["ops"]))
    rc, j = load(s.port, "-c", "2", "-d", "1", "-s", "64", "--rate", "500")
    check(rc == 0 and j["mode"] == "open" and 300 <= j["ops"] <= 700,
          "open loop sends at the asked rate (rc=%d ops=%d for 500/s x 1 s)" % (rc, j["ops"]))
    rc, j = load(s.port, "-c", "3", "-n", "300")
    check(rc == 0 and j["ops"] == 300, "--count bounds the run (ops=%d)" % j["ops"])

with EchoServer("--drop-at", "1500") as s:
    t = time.time()
    rc, j = load(s.port, "-c", "2", "-d", "1", "-s", "1000", "--timeout", "1")
    check(rc == 1 and not j["ok"] and j["errors"]["mismatches"] >= 1,
          "a dropped byte is caught (rc=%d mismatches=%d)" % (rc, j["errors"]["mismatches"]))
    check(time.time() - t < 20, "and the run still stops by itself")

with EchoServer("--drop-at", "63") as s:
    # The last byte of the first message: nothing arrives out of place, so
    # only the missing byte (a timeout) can reveal it.
    rc, j = load(s.port, "-c", "1", "-d", "1", "-s", "64", "--timeout", "0.5")
    bad = j["errors"]["mismatches"] + j["errors"]["timeouts"]
    check(rc == 1 and bad >= 1, "a dropped last byte is caught (rc=%d mismatches+timeouts=%d)" % (rc, bad))

with EchoServer("--stall-after", "100") as s:
    rc, j = load(s.port, "-c", "2", "-d", "1", "-s", "64", "--timeout", "0.5")
    check(rc == 1 and j["errors"]["timeouts"] >= 1, "a stalled server is caught (timeouts=%d)" % j["errors"]["timeouts"])

done()
