"""test_lifecycle.py - how a weft process starts and ends, for whichever model
WEFT_MODEL_ARGS names: the ready line, --help and --version, bad flags (exit 2),
SIGTERM/SIGINT drains in-flight echo without losing a byte and exits 0, the
listener closes on stop, and --daemon with --pidfile / weft stop (stale
pidfile detected, pidfile removed on exit). Plain TCP only.

Also that every reader of servers/models.def, the one list of models, agrees
with it: --help's models, the unknown-model error, the variant ctest ran
(tests/CMakeLists.txt) and bench/compare's MODELS, SINGLE_THREAD and --models."""
import importlib.machinery
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from weftest import (MODEL, MODEL_ARGS, SANITIZER_MARKS, THREADS, Weft, close_all, connect_many,
                     become_subreaper, echo_many, payload, pid_alive, reap_later, recv_exact,
                     recv_until_closed, send_all, slow_factor, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
CONFIG_C = os.path.join(ROOT, "common", "core", "config.c")
COMPARE = os.path.join(ROOT, "bench", "compare")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import weft_models  # noqa: E402
MiB = 1 << 20


def weft_bin():
    return os.environ.get("WEFT_BIN", "weft")


def run(args, timeout=30):
    """Run weft to completion: (exit code, stdout, stderr)."""
    p = subprocess.run([weft_bin()] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout * slow_factor())
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, "sanitizer report:\n" + err
    return p.returncode, out, err


def echo_ok(s, n=100):
    data = payload(n)
    send_all(s, data)
    assert recv_exact(s, n) == data


# ---- command line --------------------------------------------------------------------

def test_ready_line_names_model_and_ports(ctx):
    with Weft() as w:
        line = [ln for ln in w.log().splitlines() if " ready: " in ln][0]
        assert "model=%s " % MODEL in line, line
        assert "mode=echo" in line, line
        assert w.pid == w.proc.pid, "ready line pid %d, process %d" % (w.pid, w.proc.pid)
        assert w.port > 0 and w.tls_port > 0 and w.port != w.tls_port, line
        s = w.connect()
        echo_ok(s)
        s.close()


def test_help_lists_every_flag(ctx):
    rc, out, err = run(["--help"])
    assert rc == 0, (rc, err)
    with open(CONFIG_C) as f:
        flags = re.findall(r'^\s*\{"([a-z0-9-]+)", T_', f.read(), re.M)
    assert len(flags) > 20, "could not read the option table from config.c"
    for flag in flags + ["help", "version"]:
        assert "--" + flag in out, "--help does not mention --%s:\n%s" % (flag, out)
    assert "[7000]" in out, "defaults are not shown"


def test_help_lists_the_registry_models(ctx):
    names = [m.name for m in weft_models.models()]
    rc, out, err = run(["--help"])
    assert rc == 0, (rc, err)
    assert "\nmodels:\n" in out, "--help has no models: section:\n" + out
    listed = re.findall(r"^  (\S+) +\S", out.split("\nmodels:\n", 1)[1], re.M)
    assert listed == names, "--help lists models %s, servers/models.def has %s" % (listed, names)


def test_unknown_model_names_every_registered_model(ctx):
    names = [m.name for m in weft_models.models()]
    rc, out, err = run(["--model", "nosuch"])
    assert rc == 2, "exit %d, want 2\n%s" % (rc, err)
    want = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    assert "unknown --model 'nosuch': choose %s\n" % want in err, \
        "want every model of servers/models.def (%s) named:\n%s" % (want, err)


def test_this_variant_is_a_registry_variant(ctx):
    # ctest's variants come from tests/CMakeLists.txt reading models.def; the
    # two readers must agree on the arguments, word for word.
    if not os.environ.get("WEFT_MODEL_ARGS"):
        ctx.skip("not run by ctest (no WEFT_MODEL_ARGS)")
    args = [v.args for v in weft_models.variants()]
    assert MODEL_ARGS in args, "WEFT_MODEL_ARGS %s is none of models.def's variants %s" % (MODEL_ARGS, args)


def test_bench_compare_models_are_the_registry(ctx):
    models = weft_models.models()
    loader = importlib.machinery.SourceFileLoader("weft_compare", COMPARE)
    spec = importlib.util.spec_from_loader("weft_compare", loader)
    compare = importlib.util.module_from_spec(spec)
    loader.exec_module(compare)  # defines its tables; main() runs only as a script
    assert list(compare.MODELS) == [m.name for m in models], compare.MODELS
    for m in models:
        assert compare.MODELS[m.name] == ["--model", m.name] + m.bench_args, (m, compare.MODELS[m.name])
    assert set(compare.SINGLE_THREAD) == {m.name for m in models if m.single_loop}, compare.SINGLE_THREAD
    p = subprocess.run([sys.executable, COMPARE, "--help"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    default = ",".join(m.name for m in models)
    assert "[%s]" % default in p.stdout, "bench/compare --models default is not %s:\n%s" % (default, p.stdout)


def test_version(ctx):
    rc, out, _ = run(["--version"])
    assert rc == 0 and re.match(r"weft \d+\.\d+", out), (rc, out)


def test_bad_flags_exit_2_with_a_message(ctx):
    cases = [["--no-such-flag"], ["--port", "abc"], ["--port", "70000"], ["--model", "nosuch"],
             ["--threads", "0"], ["--mode", "gopher"], ["--max-conns", "0"], ["unexpected"],
             ["--idle-timeout", "-1"], ["--stack-size", "lots"], ["--port"]]
    for args in cases:
        rc, out, err = run(MODEL_ARGS + args)
        assert rc == 2, "%s: exit %d, want 2\n%s" % (args, rc, err)
        assert err.strip(), "%s: no message on stderr" % args
        assert "ready:" not in err, "%s: started anyway" % args


def test_stop_command_usage(ctx):
    rc, _, err = run(["stop"])
    assert rc == 2 and "--pidfile" in err, (rc, err)
    rc, _, err = run(["stop", "--pidfile", ctx.path("none.pid")])
    assert rc == 1 and err.strip(), (rc, err)


# ---- signals -------------------------------------------------------------------------

def graceful(sig):
    """Clients are mid-transfer when sig arrives: all of their echo still
    arrives, then the server closes them and exits 0. Each half-closes once
    it has sent everything: an echo transfer in flight at the stop is served
    until its client's EOF or --drain-timeout (docs/OPERATIONS.md, "Drain"),
    since a client that keeps its socket open may be one merely descheduled
    mid-transfer, with more to send."""
    n = 8
    with Weft(["--drain-timeout", 10 * slow_factor()]) as w:
        socks = connect_many(w, n)
        datas = [payload(MiB) for _ in socks]
        fired = []

        # Fired on what was sent, not echoed: a send takes at least one
        # selector round per 64 KiB, but a lagging echo can arrive in one.
        def progress(got, total, sent):
            if not fired and sent > total // 4:
                w.proc.send_signal(sig)
                fired.append(time.monotonic())
        echo_many(socks, datas, timeout=60, half_close=True, on_progress=progress)
        assert fired, "transfer finished before the signal could be sent"
        for s in socks:
            assert recv_until_closed(s, 15 * slow_factor()) == b"", "bytes after the echo"
        close_all(socks)
        rc = w.stop(sig, timeout=20 * slow_factor())
        assert rc == 0, "exit %d after signal %d:\n%s" % (rc, sig, w.tail())


def test_sigterm_loses_nothing_in_flight(ctx):
    graceful(signal.SIGTERM)


def test_sigint_loses_nothing_in_flight(ctx):
    graceful(signal.SIGINT)


def test_stop_closes_listener_and_idle_clients(ctx):
    with Weft() as w:
        idle = w.connect()
        echo_ok(idle)
        w.proc.send_signal(signal.SIGTERM)
        assert recv_until_closed(idle, 15 * slow_factor()) == b"", "idle client not closed on stop"

        def refused():
            try:
                socket.create_connection(("127.0.0.1", w.port), timeout=1).close()
                return False
            except OSError:
                return True
        assert wait_for(refused, 15 * slow_factor()), "still accepting after SIGTERM"
        assert w.stop(timeout=20 * slow_factor()) == 0
        idle.close()


def test_sigpipe_does_not_kill(ctx):
    """Writing to a client that is gone must not kill the process."""
    with Weft() as w:
        for _ in range(5):
            s = w.connect()
            s.sendall(payload(MiB))
            s.close()       # unread echo: the server's writes hit a closed socket
        time.sleep(0.3)
        assert w.alive(), "weft died:\n" + w.tail()
        s = w.connect()
        echo_ok(s)
        s.close()


# ---- daemon --------------------------------------------------------------------------

def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def daemon_state(pid, logfile):
    """For a failure message: the daemon's process state and its log's tail."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = "state " + f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    try:
        with open(logfile) as f:
            tail = "".join(f.readlines()[-15:])
    except FileNotFoundError:
        tail = "(no log)"
    return "pid %d %s; log tail:\n%s" % (pid, state, tail)


def start_daemon(ctx, pidfile, logfile):
    rc, out, err = run(MODEL_ARGS + ["--port", "0", "--daemon", "--pidfile", pidfile, "--log-file", logfile])
    return rc, err


def daemon_port(logfile):
    def port():
        try:
            with open(logfile) as f:
                m = re.search(r" ready: .* port=(\d+) ", f.read())
        except FileNotFoundError:
            return None
        return int(m.group(1)) if m else None
    p = wait_for(port, 10 * slow_factor())
    assert p, "no ready line in the daemon's log:\n" + (open(logfile).read() if os.path.exists(logfile) else "")
    return p


def check_log(logfile):
    with open(logfile) as f:
        log = f.read()
    for mark in SANITIZER_MARKS:
        assert mark not in log, "sanitizer report in the daemon log:\n" + log
    return log


def test_daemon_start_stop_pidfile(ctx):
    if not become_subreaper():
        ctx.skip("prctl(PR_SET_CHILD_SUBREAPER) unavailable")
    pidfile, logfile = ctx.path("weft.pid"), ctx.path("weft.log")
    rc, err = start_daemon(ctx, pidfile, logfile)
    assert rc == 0, "daemon start exit %d: %s" % (rc, err)
    assert os.path.exists(pidfile), "no pidfile after the start returned"
    pid = read_pid(pidfile)
    reaper = reap_later(pid)
    try:
        assert pid_alive(pid)
        assert os.getsid(pid) != os.getsid(0), "the daemon did not leave our session (setsid)"
        assert os.getppid() != pid
        port = daemon_port(logfile)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        echo_ok(s)
        s.close()
        # A second start with the same pidfile refuses: one is running.
        rc2, err2 = start_daemon(ctx, pidfile, ctx.path("second.log"))
        assert rc2 != 0, "a second daemon started over a live pidfile"
        assert read_pid(pidfile) == pid, "the live pidfile was overwritten"
        second = open(ctx.path("second.log")).read() if os.path.exists(ctx.path("second.log")) else ""
        assert "already running" in second + err2, second + err2
        # weft stop: SIGTERM, wait, exit 0; the pidfile is gone.
        rc, _, err = run(["stop", "--pidfile", pidfile])
        assert rc == 0, "weft stop exit %d: %s\n%s" % (rc, err, daemon_state(pid, logfile))
        assert not pid_alive(pid), "daemon still running after weft stop"
        assert not os.path.exists(pidfile), "pidfile not removed on exit"
        log = check_log(logfile)
        assert "stopped:" in log, log
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        reaper.join(5)


def test_daemon_stale_pidfile_replaced(ctx):
    if not become_subreaper():
        ctx.skip("prctl(PR_SET_CHILD_SUBREAPER) unavailable")
    pidfile, logfile = ctx.path("weft.pid"), ctx.path("weft.log")
    gone = subprocess.Popen(["true"])
    gone.wait()
    with open(pidfile, "w") as f:
        f.write("%d\n" % gone.pid)
    rc, err = start_daemon(ctx, pidfile, logfile)
    assert rc == 0, "daemon did not start over a stale pidfile: %s" % err
    pid = read_pid(pidfile)
    reaper = reap_later(pid)
    try:
        assert pid != gone.pid and pid_alive(pid)
        daemon_port(logfile)
        assert "stale" in check_log(logfile), "stale pidfile not reported"
        rc, _, err = run(["stop", "--pidfile", pidfile])
        assert rc == 0, "%s\n%s" % (err, daemon_state(pid, logfile))
        assert not os.path.exists(pidfile)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        reaper.join(5)


def test_pidfile_without_daemon(ctx):
    pidfile = ctx.path("fg.pid")
    with Weft(["--pidfile", pidfile]) as w:
        assert read_pid(pidfile) == w.pid
        rc = w.stop()
        assert rc == 0
    assert not os.path.exists(pidfile), "pidfile left behind"


def test_stop_on_dead_pid_reports_stale(ctx):
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile = ctx.path("dead.pid")
    with open(pidfile, "w") as f:
        f.write("%d\n" % gone.pid)
    rc, _, err = run(["stop", "--pidfile", pidfile])
    assert rc == 1 and "stale" in err, (rc, err)


def test_busy_port_fails_clearly(ctx):
    if THREADS > 1:
        ctx.skip("--threads > 1 sets SO_REUSEPORT, which lets a second process share the port by design")
    with Weft() as w:
        rc, _, err = run(MODEL_ARGS + ["--port", str(w.port)], timeout=20)
        assert rc == 1, "exit %d for a busy port:\n%s" % (rc, err)
        assert "port %d" % w.port in err, err

