"""fatal_wait.py - the loop runtime's teardown walk after a fatal poller or
ring error (loop_teardown: m->halt, then m->release for every connection
left, then m->teardown), a path no suite reaches: a loop that serves to the
end has no connection left. fatal_wait.c (LD_PRELOAD) makes every wait fail
with EIO once a flag file exists, while the server holds:

  echo: 20 connections, 10 of them with a 1 MiB echo unread behind a 4 KiB
        receive buffer (sends in flight on uring when the ring is exited);
  chat: 40 RESP subscribers that do not read and 3 publishers that keep
        publishing; with FAIL_ONE only the loop that waits first fails, the
        others are stopped by the group while deliveries cross loops.

Each run must end (exit 1: a loop failed) within 20 s, close every
connection it held (at --log-level debug each close is a "closed" line), say
nothing of connections not found at teardown, and have no sanitizer report
(weftest's check). Usage, from tests/conformance:

    WEFT_BIN=../../build/weft-asan WEFT_SANITIZER=asan \
      WEFT_MODEL_ARGS="--model uring --threads 2" python3 ../../repro/fatal_wait.py
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "conformance"))
from weftest import Weft, payload, resp_cmd, send_all  # noqa: E402


def run(tmp, shim, mode, fail_one):
    flag = os.path.join(tmp, "fail")
    env = {"LD_PRELOAD": shim, "FAIL_FILE": flag,
           # the shim comes before the sanitizer runtime in the library list
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    if fail_one:
        env["FAIL_ONE"] = "1"
    w = Weft(["--mode", mode, "--log-level", "debug"], env=env, expect_exit=None, tls_listener=False)
    w.start()
    held, stop = [], threading.Event()
    try:
        for _ in range(20 if mode == "echo" else 40):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", w.port))
            held.append(s)
        if mode == "echo":
            data = payload(1 << 20)
            for s in held[:10]:
                s.setblocking(False)
                try:
                    s.send(data)
                except BlockingIOError:
                    pass
        else:
            for s in held:
                send_all(s, resp_cmd(b"SUBSCRIBE", b"ch"))

            def publish():
                p = socket.create_connection(("127.0.0.1", w.port), timeout=0.5)
                burst = b"".join(resp_cmd(b"PUBLISH", b"ch", payload(2000)) for _ in range(50))
                while not stop.is_set():
                    try:
                        p.sendall(burst)
                        p.recv(65536)
                    except OSError:
                        pass
                p.close()
            for _ in range(3):
                threading.Thread(target=publish, daemon=True).start()
        time.sleep(0.5)
        open(flag, "w").close()
        try:
            w.proc.wait(20)
        except subprocess.TimeoutExpired:
            w.kill()
            raise AssertionError("no exit within 20 s of the failure:\n" + w.tail())
        w._reap()
        w.check_sanitizers()
    finally:
        stop.set()
        for s in held:
            s.close()
    log = w.log()
    failed = [i for i, line in enumerate(log.splitlines()) if " ERROR " in line and "Input/output error" in line]
    assert failed, "no wait failed:\n" + w.tail()
    assert w.returncode == 1, "exit %d after a fatal wait error, expected 1:\n%s" % (w.returncode, w.tail())
    assert "not found at teardown" not in log, w.tail()
    closed = sum(1 for line in log.splitlines()[failed[0]:] if ": closed (" in line)
    assert closed >= len(held), "%d of %d connections closed after the failure:\n%s" % (closed, len(held), w.tail())
    print("ok: %s%s: %d connections closed after the failure" % (mode, " (one loop)" if fail_one else "", closed))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        shim = os.path.join(tmp, "fatal_wait.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", shim, os.path.join(HERE, "fatal_wait.c"), "-ldl"],
                       check=True)
        for mode, one in (("echo", False), ("chat", False), ("chat", True)):
            run(tmp, shim, mode, one)
            os.unlink(os.path.join(tmp, "fail"))


if __name__ == "__main__":
    main()
