#!/usr/bin/python3
"""measured.py - the hostile suite's measured outcomes as one markdown table.

Every hostile test prints `measured: <attack>: <outcome>` lines. After
`ctest --test-dir build -L hostile`, this reads ctest's full log
(build/Testing/Temporary/LastTest.log) and prints a table with one row per
attack and one column per model variant, for docs/SECURITY.md.

usage: tests/hostile/measured.py [LastTest.log] [--binary plain|asan] [--tls]
"""
import argparse
import collections
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import weft_models  # noqa: E402

VARIANTS = [v.name for v in weft_models.variants()]  # servers/models.def, in its order


def parse(path):
    """{(attack, variant, binary, tls): outcome} from a ctest log."""
    out = {}
    name = None
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r'\d+/\d+ Test: (hostile\.\S+)', line)
            if m:
                name = m.group(1)
                continue
            m = re.match(r'measured: (.+?): (.+)$', line.strip())
            if m and name:
                parts = name.split(".")
                variant = parts[2]
                binary = "asan" if "asan" in parts[3:] else "plain"
                tls = "tls" in parts[3:]
                out[(m.group(1), variant, binary, tls)] = m.group(2)
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", nargs="?", default="build/Testing/Temporary/LastTest.log")
    ap.add_argument("--binary", default="plain", choices=("plain", "asan"))
    ap.add_argument("--tls", action="store_true", help="the runs over TLS")
    a = ap.parse_args(argv)
    data = parse(a.log)
    rows = collections.OrderedDict()
    for (attack, variant, binary, tls), outcome in sorted(data.items()):
        if binary == a.binary and tls == a.tls:
            rows.setdefault(attack, {})[variant] = outcome
    if not rows:
        print("no measured lines for binary=%s tls=%s in %s" % (a.binary, a.tls, a.log), file=sys.stderr)
        return 1
    same = [(k, v) for k, v in rows.items() if len(v) == len(VARIANTS) and len(set(v.values())) == 1]
    differ = [(k, v) for k, v in rows.items() if (k, v) not in same]
    if same:
        print("| attack | outcome, the same on every model variant |")
        print("| --- | --- |")
        for attack, per in same:
            print("| %s | %s |" % (attack, next(iter(per.values())).replace("|", "/")))
        print()
    if differ:
        print("| attack | " + " | ".join(VARIANTS) + " |")
        print("| --- |" + " --- |" * len(VARIANTS))
        for attack, per in differ:
            print("| %s | %s |" % (attack, " | ".join(per.get(v, "-").replace("|", "/") for v in VARIANTS)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
