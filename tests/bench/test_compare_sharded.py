#!/usr/bin/python3
"""test_compare_sharded.py - bench/compare's cluster-sharded cell end to end.

A three-primary Redis Cluster, three coro nodes with --cluster
redis-cluster://, two weft-load chat runs (--channel-prefix keeps them apart:
without it their channels collide and every subscriber counts errors). Checks
what docs/CLUSTER.md's capacity table is built from: a row per shard with the
messages it carried and its CPU per message, every shard carrying a share
(the channels are spread over every shard), node rows with CPU per publish or
per delivery and no delivery error; the -fanout3 cell's shard rows with each
message going to three nodes; report.md's two tables with their three shard rows
(the busiest shard's name is in bold). Skips (77) without redis-server/redis-cli.

usage: test_compare_sharded.py BIN_DIR   (where weft and weft-load are)
"""
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile

from checks import check, done

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = sys.argv[1]


if not shutil.which("redis-server") or not shutil.which("redis-cli"):
    print("skip: redis-server and redis-cli are needed")
    sys.exit(77)
out = tempfile.mkdtemp(prefix="weft-compare-sharded-")
stderr = ""


def diagnosis():
    """What a failed run needs in one CI log: bench/compare's progress lines (each row's rate, errors and
    note: a failed run's reason, a node's error breakdown) and the CSV rows the checks read."""
    text = "bench/compare stderr (tail):\n" + stderr[-2500:]
    try:
        text += "\nresults.csv:\n" + "".join(l for l in open(os.path.join(out, "results.csv")))[-2500:]
    except OSError as e:
        text += "\nresults.csv: %s" % e
    return text


def shard_lines(report, scen):
    """The shard rows of report.md's `## scen` table; the best row's name is in bold."""
    part = report.split("\n## %s\n" % scen, 1)
    lines = part[1].split("\n## ", 1)[0].splitlines() if len(part) == 2 else []
    return [l for l in lines if re.match(r"\| (\*\*)?shard \d \(slots ", l)]


try:
    p = subprocess.run([os.path.join(ROOT, "bench", "compare"), "--quick", "--models", "coro", "--only",
                        "cluster-sharded", "--bin-dir", BIN, "--out", out],
                       capture_output=True, text=True, timeout=240)
    stderr = p.stderr
    print(stderr[-3000:])
    check(p.returncode == 0, "bench/compare exits %d" % p.returncode)
    rows = [r for r in csv.DictReader(open(os.path.join(out, "results.csv"))) if r["scenario"] == "cluster-sharded"]
    shards = [r for r in rows if r["target"].startswith("shard ")]
    check(len(shards) == 3, "a row per shard (%d)" % len(shards))
    total = sum(float(r["ops_per_s"]) for r in shards)
    for r in shards:
        check(r["cpu_us_per_op"] != "" and float(r["cpu_us_per_op"]) > 0 and float(r["ops_per_s"]) > 0.1 * total,
              "%s: %s messages/s (of %.0f), %s us CPU each" % (r["target"], r["ops_per_s"], total, r["cpu_us_per_op"]))
    nodes = {r["target"].split()[1]: r for r in rows if r["target"].startswith("node ")}
    check(sorted(nodes) == ["A", "B", "C"], "rows for node A, B and C (%s)" % sorted(nodes))
    a = nodes.get("A")
    check(a and abs(float(a["ops_per_s"]) - total) < 0.01 * total + 1,
          "node A published what the shards carried (%s vs %.0f)" % (a and a["ops_per_s"], total))
    for n in "BC":
        r = nodes.get(n)
        check(r and r["errors"] == "0" and float(r["ops_per_s"]) > 0 and r["cpu_us_per_op"] != "",
              "node %s: %s deliveries/s, %s us CPU each, errors %s (%s)" %
              ((n,) + ((r["ops_per_s"], r["cpu_us_per_op"], r["errors"], r["note"]) if r else ("-",) * 4)))
    check(rows and all(r["bound_by"] for r in rows), "every row says what bound it")
    f3 = [r for r in csv.DictReader(open(os.path.join(out, "results.csv")))
          if r["scenario"] == "cluster-sharded-fanout3" and r["target"].startswith("shard ")]
    check(len(f3) == 3 and all(r["errors"] in ("", "0") and "each to 3 nodes" in r["note"] and
                               float(r["cpu_us_per_op"] or 0) > 0 for r in f3),
          "cluster-sharded-fanout3: three shard rows, each message to 3 nodes, no listener lost (%s)" %
          [(r["ops_per_s"], r["cpu_us_per_op"], r["errors"], r["note"][-80:]) for r in f3])
    report = open(os.path.join(out, "report.md")).read()
    for scen in ("cluster-sharded", "cluster-sharded-fanout3"):
        got = shard_lines(report, scen)
        check(len(got) == 3 and "shard 1 (slots 0-5460)" in got[0], "report.md's %s table has the three shards:\n%s"
              % (scen, "\n".join(got)[:1500]))
except Exception as e:  # noqa: BLE001 - a missing file or a short row is a failed check, told before the totals
    check(False, "the checks ran to the end (%s: %s)" % (type(e).__name__, e))
finally:
    try:
        done(diagnosis)  # exits
    finally:
        shutil.rmtree(out, ignore_errors=True)
