#!/usr/bin/python3
"""test_compare_ws.py - bench/compare's WebSocket scenarios end to end, short.

Runs coro through pubsub-1x100, ws-echo (20 and 64 B) and ws-pubsub-1x100 with
floor-ws, floor-pubsub and the Node ws anchor, then checks: weft and the floors
have clean results with CPU per message, `bound by` and `vs floor` (ws-pubsub's
from pubsub-1x100's floor); the WebSocket targets are in the targets table; the
node-ws rows are results, or - where npm cannot fetch ws (offline) - an error
row that says so rather than a crash.

usage: test_compare_ws.py BIN_DIR
"""
import csv
import os
import subprocess
import sys
import tempfile

from checks import check, done

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


out = tempfile.mkdtemp(prefix="weft-compare-ws-test-")
p = subprocess.run([os.path.join(ROOT, "bench", "compare"), "--quick", "--models", "coro", "--only",
                    "pubsub-1x100,ws", "--bin-dir", sys.argv[1], "--duration", "0.5", "--out", out],
                   capture_output=True, text=True, timeout=280)
print(p.stderr[-2500:])
check(p.returncode == 0, "bench/compare exits 0")
rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
by = {(r["scenario"], r["target"]): r for r in rows if r["conns"] in ("100", "101")}
for scen in ("ws-echo-20B", "ws-echo-64B", "ws-pubsub-1x100"):
    for t in ("coro", "floor") if scen.startswith("ws-echo") else ("coro",):
        r = by.get((scen, t))
        check(r and r["errors"] in ("", "0") and float(r["ops_per_s"]) > 0 and r["cpu_us_per_op"] != "" and
              r["bound_by"] in ("server", "load") and r["vs_floor"] != "",
              "%s %s: %s ops/s, %s us/op, vs floor %s, bound by %s" %
              ((scen, t) + ((r["ops_per_s"], r["cpu_us_per_op"], r["vs_floor"], r["bound_by"]) if r else ("-",) * 4)))
    n = by.get((scen, "node-ws"))
    check(n and ((n["errors"] in ("", "0") and float(n["ops_per_s"]) > 0) or "npm could not install" in n["note"]),
          "%s node-ws: a result or the offline message (%s)" % (scen, n and (n["ops_per_s"], n["note"][:80])))
ws, resp, fl = by.get(("ws-pubsub-1x100", "coro")), by.get(("pubsub-1x100", "coro")), by.get(("pubsub-1x100", "floor"))
if ws and fl and ws["cpu_us_per_op"] and fl["cpu_us_per_op"]:
    want = round(float(ws["cpu_us_per_op"]) / float(fl["cpu_us_per_op"]), 2)
    check(abs(float(ws["vs_floor"] or 0) - want) < 0.011, "ws-pubsub vs floor is over pubsub-1x100's floor (%s, want %s)"
          % (ws["vs_floor"], want))
report = open(os.path.join(out, "report.md")).read()
for text in ("## ws-echo-20B", "## ws-pubsub-1x100", "WebSocket echo 20 B CPU/message <= 1.1x the WebSocket floor",
             "WebSocket echo 64 B CPU/message below Node ws",
             "WebSocket pub/sub 1->100 CPU/delivery <= 1.25x the same model's RESP pub/sub", "floor-ws"):
    check(text in report, "report.md has %r" % text)
line = next((l for l in report.splitlines() if l.startswith("| WebSocket pub/sub 1->100")), "")
if ws and resp and ws["cpu_us_per_op"] and resp["cpu_us_per_op"]:
    want = float(ws["cpu_us_per_op"]) / float(resp["cpu_us_per_op"])
    check("| %.2fx (target <= 1.25x) |" % want in line,
          "the ws pub/sub target divides by coro's own RESP row (want %.2fx): %s" % (want, line[:200]))
done(lambda: "bench/compare stderr (tail):\n" + p.stderr[-2500:])
