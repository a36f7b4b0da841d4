#!/usr/bin/python3
"""test_weft_load_listeners.py - weft-load chat's receiver-count check, and runs kept apart.

A PUBLISH reply counts every listener of the channel, not just this run's
subscribers. On a loaded machine a run that follows another on the same
server can find some of the earlier run's subscribers still registered (the
server has not yet seen them close): the smoke test once failed on that as
"mismatches: 55". Here a listener that is not weft-load's (a raw /join) stands
in for them, on every built model:

  - weft-load reports it as count_mismatches (the reply named too many
    receivers), with no payload mismatch, loss or error, and says so once on
    stderr ("first wrong receiver count");
  - with --channel-prefix the run has channels of its own and is clean;
  - once a run has ended and the server has seen its subscribers close, its
    channel has no subscriber left (WHO): the count was a late close, not a
    subscription the server kept.

usage: test_weft_load_listeners.py WEFT WEFT_LOAD
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

from checks import check, done

WEFT, LOAD = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import weft_models  # noqa: E402

MODELS = {m.name: m.bench_args for m in weft_models.models()}


def built_models():
    out = subprocess.run([WEFT, "--help"], capture_output=True, text=True).stdout
    return [m for m in MODELS
            if (lambda ln: ln and "not built yet" not in ln.group(1))(re.search(r"^\s+%s\s+(.*)$" % m, out, re.M))]


def start(model):
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a server that logs more never blocks on it
    p = subprocess.Popen([WEFT, "--model", model] + MODELS[model] + ["--mode", "chat", "--port", "0", "--tls-port", "0"],
                         stderr=log, stdout=subprocess.DEVNULL)
    for _ in range(500):
        log.seek(0)
        m = re.search(r"ready: .* port=(\d+)", log.read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
        time.sleep(0.02)
    p.kill()
    raise RuntimeError("weft %s did not start" % model)


def line_conn(port):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(5)
    return s, s.makefile("rb")


def ask(s, f, cmd, want):
    s.sendall(cmd.encode() + b"\n")
    while True:
        ln = f.readline()
        if not ln:
            raise EOFError(cmd)
        if ln.startswith(want.encode()):
            return ln.decode().strip()


def load(port, extra):
    p = subprocess.run([LOAD, "chat", "--port", str(port), "--subscribers", "5", "-d", "0.3", "-q", "-t", "5"] + extra,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout)["errors"], p.stderr


models = built_models()
for m in models:
    w, port = start(m)
    try:
        s, f = line_conn(port)
        ask(s, f, "/join wl0", "OK join")  # one listener of wl0 that is not the run's
        rc, e, err = load(port, [])
        check(rc == 1 and e["count_mismatches"] > 0 and e["mismatches"] == 0 and e["lost"] == 0 and e["errors"] == 0,
              "%s: another listener on the run's channel is a count mismatch, nothing else: rc=%d %s" %
              (m, rc, {k: v for k, v in e.items() if v}))
        check("first wrong receiver count" in err and "reached 6, not 5" in err,
              "%s: weft-load says which check failed: %s" % (m, err.strip().splitlines()[:1]))
        rc, e, _ = load(port, ["--channel-prefix", "own-"])
        check(rc == 0 and not any(e.values()), "%s: on channels of its own the run is clean: rc=%d %s" %
              (m, rc, {k: v for k, v in e.items() if v}))
        # The runs' subscribers are gone from the server once it has seen them close (bounded wait).
        left = None
        for _ in range(100):
            left = (ask(s, f, "/who wl0", "WHO"), ask(s, f, "/who own-0", "WHO"))
            if left == ("WHO wl0 1", "WHO own-0 0"):
                break
            time.sleep(0.05)
        check(left == ("WHO wl0 1", "WHO own-0 0"), "%s: after the runs only the other listener is left: %s" % (m, left))
        s.close()
    finally:
        w.terminate()
        w.wait(15)

check(bool(models), "some model is built: %s" % models)
done()
