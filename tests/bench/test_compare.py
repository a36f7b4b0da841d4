#!/usr/bin/python3
"""test_compare.py - bench/compare end to end on a tiny slice of the matrix.

Runs one model (coro), nginx and the floor servers through echo, HTTP
keep-alive, idle memory and a two-step echo latency-knee sweep with short
cells, then checks what a person reads: report.md has a table per scenario
with floor rows, `vs floor` and `bound by` columns, the targets table, the knee
table and its plot; the CSV has non-zero results, no errors and the CPU
figures behind `bound by`; the plots are PNGs.

usage: test_compare.py BIN_DIR   (where weft and weft-load are)
"""
import csv
import os
import subprocess
import sys
import tempfile

from checks import check, done

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = sys.argv[1]


out = tempfile.mkdtemp(prefix="weft-compare-test-")
p = subprocess.run([os.path.join(ROOT, "bench", "compare"), "--quick", "--models", "coro", "--only",
                    "echo-64B,http-keepalive,idle,knee-echo", "--bin-dir", BIN, "--duration", "0.5",
                    "--knee-steps", "2", "--sweep-duration", "0.3", "--out", out],
                   capture_output=True, text=True, timeout=240)
print(p.stderr[-3000:])
check(p.returncode == 0, "bench/compare exits 0")
check("about" in p.stderr and "[  1/" in p.stderr, "it says how long it will take and shows progress")
rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
got = {(r["scenario"], r["target"], r["conns"]) for r in rows}
for key in [("echo-64B", "coro", "1"), ("echo-64B", "coro", "100"), ("echo-64B", "floor", "100"),
            ("http-keepalive", "coro", "100"), ("http-keepalive", "nginx", "100"),
            ("http-keepalive", "floor", "100"), ("idle-memory", "coro", "1000"), ("knee-echo-64B", "coro", "100"),
            ("knee-echo-64B", "floor", "100")]:
    check(key in got, "a result for %s" % (key,))
for r in rows:
    ok = r["errors"] in ("", "0") and (float(r["ops_per_s"] or 0) > 0 or r["scenario"] == "idle-memory")
    check(ok, "%s %s c=%s: %s ops/s, errors %s %s" % (r["scenario"], r["target"], r["conns"], r["ops_per_s"],
                                                      r["errors"], r["note"]))
    if r["scenario"] not in ("idle-memory", "knee-echo-64B"):
        check(r["cpu_us_per_op"] != "" and r["peak_rss_kb"] != "", "  with server CPU/op and peak RSS")
        check(r["bound_by"] in ("server", "load") and r["server_cpu_pct"] != "" and r["load_cpu_pct"] != "",
              "  with both CPU figures (%s %% server, %s %% load) and bound by %r" %
              (r["server_cpu_pct"], r["load_cpu_pct"], r["bound_by"]))
        # vs floor = CPU/op over the floor's in the same table and connection count, wherever both could be
        # measured (a starved cell can use less than a clock tick of CPU)
        fl = [f for f in rows if f["scenario"] == r["scenario"] and f["conns"] == r["conns"] and f["target"] == "floor"]
        check(len(fl) == 1, "  with a floor row beside it")
        if fl and float(r["cpu_us_per_op"] or 0) > 0 and float(fl[0]["cpu_us_per_op"] or 0) > 0:
            want = round(float(r["cpu_us_per_op"]) / float(fl[0]["cpu_us_per_op"]), 2)
            check(r["vs_floor"] != "" and abs(float(r["vs_floor"]) - want) < 0.011,
                  "  with its vs floor ratio (%s, want %s)" % (r["vs_floor"], want))
check(any(r["vs_floor"] not in ("", "1.0") for r in rows), "some model or nginx row has a vs floor ratio")
idle = [r for r in rows if r["scenario"] == "idle-memory"]
check(idle and idle[0]["mem_per_conn_b"] != "", "idle memory per connection is reported")
report = open(os.path.join(out, "report.md")).read()
for head in ("## Targets", "## echo-64B", "## http-keepalive", "## idle-memory", "## knee-echo-64B",
             "HTTP keep-alive CPU/request <= 1.05x the floor", "HTTP keep-alive CPU/request <= 0.9x nginx",
             "| bound by (model / reference) |", "load-bound cell never meets or misses a target",
             "measuring sticks, not servers"):
    check(head in report, "report.md has %r" % head)
check("0.6x" not in report, "the 0.6x nginx target is gone")
check("x nginx" in report, "report.md shows ratios to nginx")


def section(name):
    """The lines of one '## name...' section of report.md."""
    part = report.split("\n## " + name, 1)
    return part[1].split("\n## ", 1)[0].splitlines() if len(part) == 2 else []


for scen in ("echo-64B", "http-keepalive"):
    lines = section(scen)
    head = next((l for l in lines if l.startswith("| target |")), "")
    check("| vs floor |" in head and "| bound by |" in head and "| server CPU % |" in head,
          "the %s table has vs floor, bound by and server CPU %% columns" % scen)
    check(any(l.startswith("| floor |") or l.startswith("| **floor** |") for l in lines),
          "the %s table has a floor row" % scen)
knee = section("knee-echo-64B")
head = next((l for l in knee if l.startswith("| target |")), "")
check("closed-loop ops/s" in head and "knee: offered ops/s" in head, "the knee table has the knee next to the "
      "closed-loop throughput")
for t in ("coro", "floor"):
    check(any(l.lstrip("| *").startswith(t) for l in knee if l.startswith("| ") and "---" not in l
              and not l.startswith("| target")), "the knee table has a %s row" % t)
pts = list(csv.DictReader(open(os.path.join(out, "knee.csv"))))
for t in ("coro", "floor"):
    mine = [q for q in pts if q["target"] == t]
    check(len(mine) == 2 and all(float(q["p99_us"] or 0) > 0 for q in mine),
          "knee.csv has both sweep steps for %s with a p99" % t)
for png in ("throughput.png", "p99.png", "memory.png", "knee-echo-64B.png"):
    path = os.path.join(out, png)
    check(os.path.exists(path) and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n", "%s is a PNG" % png)
check(os.path.isdir(os.path.join(out, "raw")) and len(os.listdir(os.path.join(out, "raw"))) >= len(rows),
      "raw results are kept")
done(lambda: "bench/compare stderr (tail):\n" + p.stderr[-3000:])
