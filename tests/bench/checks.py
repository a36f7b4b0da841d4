"""checks.py - the one assertion of the bench tools' tests (tests/bench/test_*.py):
check() prints "ok  : what" or "FAIL: what" and counts; done() prints the totals
and exits 1 if any check failed. A test goes on after a failed check, so one
run shows every broken part. On a failure done() first repeats the failed
checks and what the test gives it to explain them (the tool's stderr tail):
a CI log keeps the end of a test's output, so that end must say what broke."""
import sys

passed = failed = 0
failures = []


def check(cond, what):
    global passed, failed
    print("%s: %s" % ("ok  " if cond else "FAIL", what), flush=True)
    passed, failed = passed + bool(cond), failed + (not cond)
    if not cond:
        failures.append(what)
    return bool(cond)


def done(diagnosis=""):
    """diagnosis: text (or a function returning it, called only on a failure) printed after the
    repeated failures, before the totals."""
    if failed:
        print("---- %d failed check%s:" % (failed, "s" if failed > 1 else ""))
        for what in failures:
            print("FAIL: %s" % what[:1500])
        text = diagnosis() if callable(diagnosis) else diagnosis
        if text:
            print("---- diagnosis:\n%s" % text.rstrip())
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)
