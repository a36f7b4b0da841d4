"""test_slowloris.py - slowloris: a client that keeps a connection busy by
sending its first flight a byte at a time, never pausing long enough for an
inactivity timeout. Every timeout that defends a resource must be total:
--handshake-timeout from the start of the connection, --header-timeout from
the first byte of a request head (docs/TLS.md, docs/HTTP.md).

Each attack prints `measured: <attack>: closed after N s`.
"""
import select
import socket
import ssl
import time

import weftest
from weftest import Weft, recv_exact, resp_cmd, send_all, slow_factor, wait_for
from test_chat import Reader

INTERVAL = 0.2   # seconds between trickled bytes: far below every inactivity limit
DEADLINE = 1     # --handshake-timeout / --header-timeout under test, seconds
SLACK = 2.0      # allowed past the deadline (times slow_factor())


def client_hello():
    """A real TLS client's first flight (ClientHello), from Python's ssl."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = weftest.client_ssl_context().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert len(hello) > 100 and hello[0] == 0x16, "not a TLS handshake record: %r" % hello[:8]
    return hello


def raw_tls(w):
    s = socket.create_connection((weftest.HOST, w.tls_port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def limit():
    """By when a trickled connection must be closed, seconds after it started."""
    return DEADLINE + SLACK * slow_factor()


def trickle(socks, data, interval=INTERVAL, give_up=None):
    """Send data to every socket, one byte per interval, until the server
    closes each one (EOF or reset) or give_up seconds pass. Whatever the
    server sends is collected. Returns (closed, got): closed maps a socket's
    index to the seconds from the start to its close; got maps it to the bytes
    it received."""
    give_up = give_up if give_up is not None else limit() + 1.0
    start = time.monotonic()
    closed, got = {}, {i: b"" for i in range(len(socks))}
    sent, next_send = 0, start
    for s in socks:
        s.setblocking(False)
    while len(closed) < len(socks) and time.monotonic() - start < give_up:
        now = time.monotonic()
        if now >= next_send and sent < len(data):
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    s.send(data[sent:sent + 1])
                except BlockingIOError:
                    pass
                except OSError:  # EPIPE, ECONNRESET: the server closed it
                    closed[i] = now - start
            sent += 1
            next_send += interval
        open_socks = [s for i, s in enumerate(socks) if i not in closed]
        wait = max(0.0, min(next_send - time.monotonic(), 0.05))
        readable, _, _ = select.select(open_socks, [], [], wait)
        for s in readable:
            i = socks.index(s)
            try:
                b = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                b = b""
            if b:
                got[i] += b
            else:
                closed[i] = time.monotonic() - start
    assert sent < len(data), "ran out of bytes to trickle after %d: make the data longer" % sent
    return closed, got


def assert_closed_in_time(closed, n, what):
    lim = limit()
    late = [i for i in range(n) if i not in closed or closed[i] > lim]
    assert not late, "%s: %d of %d still open %.1f s after the start (deadline %d s + slack); closed: %s" % (
        what, len(late), n, lim, DEADLINE, {i: round(t, 2) for i, t in closed.items()})
    early = [t for t in closed.values() if t < DEADLINE - 0.15]
    assert not early, "%s: closed before the %d s deadline (%s): not the deadline closed it" % (what, DEADLINE, early)


def tls_timeouts(w):
    return w.metric("weft_errors_total", 'kind="tls_handshake_timeout"')


# ---- (a) a ClientHello one byte at a time ----------------------------------------

def test_tls_hello_trickle_closed_at_deadline(ctx):
    hello = client_hello()
    with Weft(["--handshake-timeout", DEADLINE]) as w:
        before = tls_timeouts(w)
        s = raw_tls(w)
        try:
            closed, got = trickle([s], hello)
        finally:
            s.close()
        assert_closed_in_time(closed, 1, "slowloris ClientHello")
        assert got[0] == b"", "the server answered an incomplete ClientHello: %r" % got[0][:40]
        assert wait_for(lambda: tls_timeouts(w) == before + 1, 5 * slow_factor()), \
            "tls_handshake_timeout went %d -> %d, expected +1" % (before, tls_timeouts(w))
        print("measured: slowloris TLS hello: closed after %.1f s" % closed[0])


def handshake_raw(s):
    """Finish a TLS handshake over the plain socket s with a memory-BIO client,
    so the test can then write raw TLS bytes of its choosing to s."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = weftest.client_ssl_context().wrap_bio(inc, out, server_hostname="localhost")
    s.settimeout(10 * slow_factor())
    for _ in range(100):
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            s.sendall(out.read())
            data = s.recv(65536)
            assert data, "the server closed during the handshake"
            inc.write(data)
    else:
        raise AssertionError("the handshake did not finish")
    s.sendall(out.read())


def test_tls_record_trickle_closed_at_deadline(ctx):
    """After the handshake, a record trickled byte by byte decrypts to
    nothing until it is whole, so no protocol sees a head begin: the record
    gets --header-timeout of its own (found by review: it held a connection
    open as long as the idle timeout allowed, on every model)."""
    with Weft(["--header-timeout", DEADLINE, "--handshake-timeout", DEADLINE]) as w:
        before = w.metric("weft_errors_total", 'kind="header_timeout"')
        s = raw_tls(w)
        try:
            handshake_raw(s)
            # application data, 16384 bytes announced, then its body
            closed, _ = trickle([s], bytes([0x17, 0x03, 0x03, 0x40, 0x00]) + b"\0" * 100)
        finally:
            s.close()
        assert_closed_in_time(closed, 1, "slowloris TLS record")
        assert wait_for(lambda: w.metric("weft_errors_total", 'kind="header_timeout"') == before + 1,
                        5 * slow_factor()), "header_timeout was not counted"
        print("measured: slowloris TLS record after the handshake: closed after %.1f s" % closed[0])


# ---- (b) an HTTP head one byte at a time ---------------------------------------

def http_408s(w):
    return w.metric("weft_http_requests_total", 'status="408"')


def test_http_head_trickle_gets_408_at_deadline(ctx):
    with Weft(["--header-timeout", DEADLINE]) as w:
        before = http_408s(w)
        s = socket.create_connection((weftest.HOST, w.port), timeout=10)
        try:
            s.sendall(b"GET / HTTP/1.1\r\n")  # a complete request line: detected as HTTP at once
            closed, got = trickle([s], b"Host: localhost\r\nX-Slow: " + b"a" * 4096)
        finally:
            s.close()
        assert_closed_in_time(closed, 1, "slowloris HTTP head")
        assert got[0].startswith(b"HTTP/1.1 408 Request Timeout\r\n"), "expected a 408, got %r" % got[0][:80]
        assert b"\r\nConnection: close\r\n" in got[0], got[0]
        assert wait_for(lambda: http_408s(w) == before + 1, 5 * slow_factor())
        assert w.metric("weft_errors_total", 'kind="header_timeout"') == 1
        print("measured: slowloris HTTP head: closed after %.1f s" % closed[0])


def test_http_request_line_trickle_is_bounded(ctx):
    """The request line is part of the head: one trickled before HTTP is even
    detected ends at the deadline too (it is then not HTTP: it goes to the
    mode's protocol, echo here, as at EOF), and the echo connection it became
    is still served."""
    with Weft(["--header-timeout", DEADLINE]) as w:
        s = socket.create_connection((weftest.HOST, w.port), timeout=10)
        try:
            line = b"GET /" + b"a" * 4000
            start = time.monotonic()
            s.setblocking(False)
            sent = 0
            while time.monotonic() - start < limit() and sent < 3 * limit() / INTERVAL:
                s.send(line[sent:sent + 1])
                sent += 1
                r, _, _ = select.select([s], [], [], INTERVAL)
                if r:
                    break
            s.setblocking(True)
            elapsed = time.monotonic() - start
            # Everything sent before the deadline comes back at once; the rest, as echo.
            echoed = recv_exact(s, sent, 5 * slow_factor())
            assert echoed == line[:sent], echoed
            assert DEADLINE - 0.15 <= elapsed <= limit(), "decided after %.2f s" % elapsed
            send_all(s, b"more\n")
            assert recv_exact(s, 5, 5 * slow_factor()) == b"more\n"
        finally:
            s.close()
        print("measured: slowloris HTTP request line: undecided for %.1f s" % elapsed)


# ---- (c) polite clients are not cut off -----------------------------------------

def http_get(s, timeout=5.0):
    send_all(s, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", timeout)
    head = b""
    end = time.monotonic() + timeout * slow_factor()
    while b"\r\n\r\n" not in head:
        s.settimeout(max(0.01, end - time.monotonic()))
        b = s.recv(4096)
        assert b, "connection closed after %r" % head
        head += b
    hdr, _, body = head.partition(b"\r\n\r\n")
    n = int([ln.split(b":")[1] for ln in hdr.split(b"\r\n") if ln.lower().startswith(b"content-length:")][0])
    if len(body) < n:
        body += recv_exact(s, n - len(body), timeout * slow_factor())
    return hdr.split(b"\r\n")[0]


def test_keepalive_pauses_not_cut_by_head_deadline(ctx):
    """Keep-alive clients (plain and TLS) pausing longer than --header-timeout
    and --handshake-timeout between requests, and sending a head in two halves
    with a pause shorter than the deadline, are served throughout: the head
    deadline starts with each head's first byte, the handshake's ends with it."""
    with Weft(["--header-timeout", DEADLINE, "--handshake-timeout", DEADLINE, "--idle-timeout", 30]) as w:
        plain = socket.create_connection((weftest.HOST, w.port), timeout=10)
        tls = w.connect(tls=True)
        try:
            for rnd in range(2):
                for s in (plain, tls):
                    assert http_get(s) == b"HTTP/1.1 200 OK", "round %d" % rnd
                time.sleep(DEADLINE + 0.3)
            for s in (plain, tls):
                send_all(s, b"GET / HTTP/1.1\r\nHo")
            time.sleep(DEADLINE / 2)
            for s in (plain, tls):
                send_all(s, b"st: localhost\r\n\r\n")
                s.settimeout(5 * slow_factor())
                assert s.recv(4096).startswith(b"HTTP/1.1 200 OK")
        finally:
            plain.close()
            tls.close()
        assert http_408s(w) == 0


# ---- (d) a normal TLS client still handshakes ------------------------------------

def test_normal_tls_client_served_beside_trickle(ctx):
    hello = client_hello()
    with Weft(["--handshake-timeout", DEADLINE]) as w:
        slow = raw_tls(w)
        try:
            slow.sendall(hello[:1])
            s = w.connect(tls=True)
            try:
                assert s.version() in ("TLSv1.2", "TLSv1.3")
                assert http_get(s) == b"HTTP/1.1 200 OK"
            finally:
                s.close()
            closed, _ = trickle([slow], hello[1:])
        finally:
            slow.close()
        assert_closed_in_time(closed, 1, "the trickling handshake beside a normal one")


# ---- pool: trickling handshakes must not hold every worker ---------------------------

def test_pool_workers_freed_at_handshake_deadline(ctx):
    """--workers 4 and four ClientHellos trickling: every worker is taken. A
    fifth client waits in the queue until the handshake deadline frees one."""
    if ctx.model != "pool":
        ctx.skip("the worker pool is the pool model's")
    workers = 4
    hello = client_hello()
    args = list(ctx.model_args) + ["--workers", str(workers), "--handshake-timeout", str(DEADLINE)]
    with Weft(model_args=args) as w:
        start = time.monotonic()
        slow = [raw_tls(w) for _ in range(workers)]
        fifth = None
        try:
            for s in slow:
                s.sendall(hello[:1])
                s.setblocking(False)
            # Let the acceptor hand them to the workers before the fifth
            # arrives (it accepts the plain listener first in one wake-up).
            time.sleep(0.3 * slow_factor())
            fifth = socket.create_connection((weftest.HOST, w.port), timeout=10)
            send_all(fifth, b"ping\n")
            fifth.setblocking(False)
            got, pos, next_send = b"", 1, time.monotonic()
            while time.monotonic() - start < limit() and got != b"ping\n":
                if time.monotonic() >= next_send:
                    for s in slow:
                        try:
                            s.send(hello[pos:pos + 1])
                        except OSError:  # full, or closed by the server
                            pass
                    pos, next_send = pos + 1, next_send + INTERVAL
                if select.select([fifth], [], [], 0.05)[0]:
                    b = fifth.recv(64)
                    assert b, "the fifth client was closed unanswered"
                    got += b
            served = time.monotonic() - start
            assert got == b"ping\n", "the fifth client was not served within %.1f s (got %r)" % (limit(), got)
            # Served only once a worker was freed, else the workers were not all taken.
            assert served >= DEADLINE - 0.15, "served %.2f s after the tricklers began: a worker was free" % served
        finally:
            for s in slow + [fifth]:
                if s is not None:
                    s.close()
        print("measured: slowloris TLS hello, pool of %d workers: a 5th client served %.1f s after they began" % (workers, served))


def test_never_reader_closed_at_idle_and_counted(ctx):
    """A client that sends and never reads: its output is stuck when the idle
    limit comes. It is closed then (not held for ever), and the close is an
    idle timeout in /metrics (the shared deadline policy once closed it without
    counting: found by review)."""
    with Weft(["--idle-timeout", "1", "--read-pause", "64k"]) as w:
        s = socket.create_connection((weftest.HOST, w.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        sent, chunk, end, last = 0, b"x" * 65536, time.monotonic() + 5 * slow_factor(), time.monotonic()
        while time.monotonic() < end and sent < (64 << 20):  # until the server stops reading us
            try:
                sent += s.send(chunk)
                last = time.monotonic()
            except BlockingIOError:
                if time.monotonic() - last > 0.5:
                    break
                time.sleep(0.01)
        assert sent > 0
        # The /metrics request that reads the gauge is one open connection itself.
        closed = wait_for(lambda: w.metric("weft_connections_open") == 1, 6 * slow_factor(), interval=0.1)
        assert closed, "a never-reading connection with output pending was held past --idle-timeout:\n" + w.tail()
        idle = w.metric("weft_connections_closed_total", 'reason="idle"')
        assert idle == 1, "closed for idleness, but weft_connections_closed_total{reason=\"idle\"} is %d" % idle
        s.close()


def test_subscriber_stuck_by_a_delivery_it_never_took_is_closed_at_idle(ctx):
    """A subscriber stops reading while it is under --outbox-soft (no idle
    limit: a quiet subscriber is exempt); then one delivery that the kernel
    cannot take at all puts it over --outbox-soft, and the publisher goes
    quiet. It is stuck now and --idle-timeout counts for it again. The
    deadline must be armed when that delivery is queued, by whichever code
    queued it: coro's write pass armed it only when it wrote something, so
    a delivery that wrote nothing left this connection with no deadline at
    all, open for ever (uring's update arms it every time)."""
    chat = ["--mode", "chat", "--idle-timeout", "1", "--outbox-soft", "8m", "--outbox-soft-secs", "1",
            "--outbox-hard", "64m", "--max-message", "16m", "--read-pause", "64m", "--publish-hold", "0"]
    with Weft(chat, tls_listener=False) as w:
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((weftest.HOST, w.port))
        send_all(stuck, resp_cmd("SUBSCRIBE", "firehose"))
        assert wait_for(lambda: w.metric("weft_chat_subscriptions") == 1, 5 * slow_factor())
        # The deadline its first wait armed (before SUBSCRIBE: --idle-timeout)
        # comes and goes: a subscriber has none after it.
        time.sleep(1.5)
        pub = w.connect()
        rpub = Reader(pub)
        # 6 MB in 64 KB deliveries: more than the kernel's buffers take (the
        # server's send buffer grows to tcp_wmem's 4 MB), and never over
        # --outbox-soft (8 MB), so every send that made progress found the
        # subscriber exempt from --idle-timeout.
        for _ in range(96):
            send_all(pub, resp_cmd("PUBLISH", "firehose", "y" * 65536))
            got = rpub.value()
            assert got == 1, got
        # The send buffer settles full but for a few KB (a send takes those,
        # EPOLLOUT waits for a third): one more delivery takes them.
        time.sleep(0.5)
        send_all(pub, resp_cmd("PUBLISH", "firehose", "w" * 16384))
        got = rpub.value()
        assert got == 1, got
        time.sleep(0.2)
        # Then 8 MB that the full socket takes nothing of: over --outbox-soft.
        send_all(pub, resp_cmd("PUBLISH", "firehose", "z" * (8 << 20)))
        got = rpub.value()
        assert got == 1, got
        pub.close()
        # The /metrics request that reads the gauge is one open connection itself.
        closed = wait_for(lambda: w.metric("weft_connections_open") == 1, 6 * slow_factor(), interval=0.2)
        stuck.close()
        assert closed, "a subscriber stuck over --outbox-soft by a delivery it never took stayed open " \
            "past --idle-timeout 1:\n" + w.tail()


# ---- (e) the same deadline 49.7 days after the start ------------------------------

def test_handshake_deadline_after_clock_wrap(ctx):
    """A silent TLS client is closed at --handshake-timeout, not at
    --idle-timeout, also once the server's ms clock since its start has passed
    2^32 (49.7 days up): coro and uring kept the last activity as a uint32 and
    added it back to their start time, so every connection then looked 49.7
    days idle (the idle deadline always the earliest: coro waited for it,
    uring never closed). clock_shift.c (LD_PRELOAD) moves CLOCK_MONOTONIC
    2^32 ms ahead once the server runs."""
    if weftest.SANITIZER != "none":
        ctx.skip("LD_PRELOAD shim: the sanitizer runtimes must come first")
    import os
    import subprocess
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    tmp = tempfile.mkdtemp(prefix="weft-shift-")
    shim, flag = os.path.join(tmp, "clock_shift.so"), os.path.join(tmp, "shifted")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", shim, os.path.join(here, "clock_shift.c"), "-ldl"],
                   check=True)
    env = {"LD_PRELOAD": shim, "SHIFT_FILE": flag, "SHIFT_MS": str((1 << 32) + 1000)}
    with Weft(["--handshake-timeout", DEADLINE, "--idle-timeout", 30], env=env) as w:
        open(flag, "w").close()
        time.sleep(2.5)  # every loop wakes (at most 1 s asleep) and reads the moved clock
        s = raw_tls(w)
        t0 = time.monotonic()
        s.settimeout(DEADLINE + SLACK * slow_factor() + 5)
        try:
            while s.recv(4096):
                pass
            took = time.monotonic() - t0
        except socket.timeout:
            took = None
        except OSError:
            took = time.monotonic() - t0
        finally:
            s.close()
        assert took is not None and took < DEADLINE + SLACK * slow_factor(), \
            "silent TLS client after the clock wrap: closed after %s s, deadline %d s (idle 30 s)" % (
                took and round(took, 2), DEADLINE)
        print("measured: silent TLS client 2^32 ms after the start: closed after %.1f s" % took)
