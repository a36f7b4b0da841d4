"""checks.py - the one assertion of the bench tools' tests (tests/bench/test_*.py):
check() prints "ok  : what" or "FAIL: what" and counts; done() prints the totals
and exits 1 if any check failed. A test goes on after a failed check, so one
run shows every broken part."""
import sys

passed = failed = 0


def check(cond, what):
    global passed, failed
    print("%s: %s" % ("ok  " if cond else "FAIL", what), flush=True)
    passed, failed = passed + bool(cond), failed + (not cond)
    return bool(cond)


def done():
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
