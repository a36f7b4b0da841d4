#!/usr/bin/python3
"""test_compare.py - bench/compare end to end on a tiny slice of the matrix.

Runs one model (coro) and nginx through echo, HTTP keep-alive and idle memory
with short cells, then checks what a person reads: report.md has a table per
scenario with both targets, the CSV has non-zero results and no errors, the
plots are PNGs, and no server it started is left running.

usage: test_compare.py BIN_DIR   (where weft and weft-load are)
"""
import csv
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = sys.argv[1]
passed = failed = 0


def check(cond, what):
    global passed, failed
    print("%s: %s" % ("ok  " if cond else "FAIL", what), flush=True)
    passed, failed = passed + bool(cond), failed + (not cond)


out = tempfile.mkdtemp(prefix="weft-compare-test-")
p = subprocess.run([os.path.join(ROOT, "bench", "compare"), "--quick", "--models", "coro", "--only",
                    "echo-64B,http-keepalive,idle", "--bin-dir", BIN, "--duration", "0.5", "--out", out],
                   capture_output=True, text=True, timeout=240)
print(p.stderr[-3000:])
check(p.returncode == 0, "bench/compare exits 0")
check("about" in p.stderr and "[  1/" in p.stderr, "it says how long it will take and shows progress")
rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
got = {(r["scenario"], r["target"], r["conns"]) for r in rows}
for key in [("echo-64B", "coro", "1"), ("echo-64B", "coro", "100"), ("http-keepalive", "coro", "100"),
            ("http-keepalive", "nginx", "100"), ("idle-memory", "coro", "1000")]:
    check(key in got, "a result for %s" % (key,))
for r in rows:
    ok = r["errors"] in ("", "0") and (float(r["ops_per_s"] or 0) > 0 or r["scenario"] == "idle-memory")
    check(ok, "%s %s c=%s: %s ops/s, errors %s %s" % (r["scenario"], r["target"], r["conns"], r["ops_per_s"],
                                                      r["errors"], r["note"]))
    if r["scenario"] != "idle-memory":
        check(r["cpu_us_per_op"] != "" and r["peak_rss_kb"] != "", "  with server CPU/op and peak RSS")
idle = [r for r in rows if r["scenario"] == "idle-memory"]
check(idle and idle[0]["mem_per_conn_b"] != "", "idle memory per connection is reported")
report = open(os.path.join(out, "report.md")).read()
for head in ("## Targets", "## echo-64B", "## http-keepalive", "## idle-memory", "HTTP keep-alive req/s"):
    check(head in report, "report.md has %r" % head)
check("x nginx" in report, "report.md shows ratios to nginx")
for png in ("throughput.png", "p99.png", "memory.png"):
    path = os.path.join(out, png)
    check(os.path.exists(path) and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n", "%s is a PNG" % png)
check(os.path.isdir(os.path.join(out, "raw")) and len(os.listdir(os.path.join(out, "raw"))) >= len(rows),
      "raw results are kept")
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
