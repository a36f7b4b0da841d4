#!/usr/bin/python3
"""run.py - run one conformance suite: every test_* function of a
tests/conformance/test_<area>.py file, in file order, each with a fresh temp
dir and a timeout, the whole suite within a wall clock.

usage: run.py SUITE.py [SUBSTRING ...]   (only tests whose name contains one; SUFFIX$: ends with it)

Prints PASS/FAIL/SKIP per test, then exactly "N passed, N failed". Exit code:
0 all ran tests passed, 1 any failed, 77 nothing ran because every test
skipped (ctest reports that as skipped). Env: WEFT_TEST_TIMEOUT (seconds per
test, default 120), WEFT_SUITE_TIMEOUT (default 600); both are multiplied
under sanitizers by weftest.slow_factor().
"""
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import weftest  # noqa: E402


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout("test took longer than its timeout")


def load(path):
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec.loader.exec_module(mod)
    return mod


def tests_of(mod, filters):
    fns = [(name, fn) for name, fn in vars(mod).items() if name.startswith("test_") and callable(fn)]
    fns.sort(key=lambda t: t[1].__code__.co_firstlineno)
    if filters:
        # "name$": only a test whose name ends so (a plain filter is a substring)
        fns = [t for t in fns if any(t[0].endswith(f[:-1]) if f.endswith("$") else f in t[0] for f in filters)]
    return fns


def run_one(name, fn, timeout):
    """('PASS'|'FAIL'|'SKIP', detail)."""
    tmp = tempfile.mkdtemp(prefix="weft-%s-" % name)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        fn(weftest.Ctx(name, tmp))
        return "PASS", ""
    except weftest.Skip as e:
        return "SKIP", str(e)
    except Exception as e:
        detail = "%s: %s" % (type(e).__name__, e)
        if not isinstance(e, (AssertionError, TestTimeout)):
            detail += "\n" + traceback.format_exc()
        elif not str(e):  # a bare assert: say which one
            frame = traceback.extract_tb(e.__traceback__)[-1]
            detail += "%s:%d: %s" % (os.path.basename(frame.filename), frame.lineno, frame.line)
        return "FAIL", detail
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        left = weftest.cleanup_all()
        for w in left:
            # A server the test left running: its log explains most failures.
            sys.stdout.write("  (server left running, killed; log tail:)\n")
            sys.stdout.write("".join("    " + line for line in w.tail(30).splitlines(True)))
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    slow = weftest.slow_factor()
    per_test = float(os.environ.get("WEFT_TEST_TIMEOUT", "120")) * slow
    suite_end = time.monotonic() + float(os.environ.get("WEFT_SUITE_TIMEOUT", "600")) * slow
    mod = load(argv[1])
    print("suite %s: WEFT_BIN=%s WEFT_MODEL_ARGS=%r WEFT_TLS=%s WEFT_SANITIZER=%s"
          % (os.path.basename(argv[1]), os.environ.get("WEFT_BIN", "weft"),
             os.environ.get("WEFT_MODEL_ARGS", ""), os.environ.get("WEFT_TLS", "0"), weftest.SANITIZER))
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for name, fn in tests_of(mod, argv[2:]):
        left = suite_end - time.monotonic()
        if left <= 1:
            verdict, detail = "FAIL", "not run: the suite's wall clock ran out"
        else:
            t0 = time.monotonic()
            verdict, detail = run_one(name, fn, min(per_test, left))
            detail = ("(%.1fs) " % (time.monotonic() - t0)) + detail
        counts[verdict] += 1
        print("%s %s %s" % (verdict, name, detail.rstrip()), flush=True)
    if counts["SKIP"]:
        print("%d skipped" % counts["SKIP"])
    print("%d passed, %d failed" % (counts["PASS"], counts["FAIL"]), flush=True)
    if counts["FAIL"]:
        return 1
    if counts["PASS"] == 0 and counts["SKIP"]:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
