"""test_counts.py - huge counts and lengths that arrive without their data, and
HTTP versions weft does not speak (issue 9).

A peer's count or length is checked before anything is reserved for it:
  - RESP "*1048576\\r\\n" used to reserve 16 MiB of argument slots per
    connection before any argument arrived (100 connections: 1.6 GB of
    address space); now at most 1024 slots up front (as Redis), more only
    as arguments arrive. A "$N" bulk over --max-message is a protocol error
    and closes; one within it is read as it arrives, nothing reserved.
  - HTTP "Content-Length: 99999999999" without a body is 413 and closes.
  - An HTTP-shaped first line with a version weft does not speak
    (HTTP/9.9, HTTP/2.0, the HTTP/2 preface "PRI * HTTP/2.0") gets 505 and
    closes, instead of its own bytes echoed back.

Memory is read from /proc/<pid>/status: VmData (heap and anonymous mappings
the process made writable, which is what a reservation costs even while its
pages are untouched) and VmRSS (what is resident).
"""
import time

from weftest import (Weft, close_all, connect_many, is_closed, recv_exact, recv_until_closed,
                     send_all, slow_factor, wait_for)

CONNS = 100


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def memory(w):
    return status_kib(w.pid, "VmData"), status_kib(w.pid, "VmRSS")


# ---- HTTP versions --------------------------------------------------------------

VERSIONS = [
    ("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: t\r\n\r\n"),
    ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
    ("HTTP/0.9", b"GET / HTTP/0.9\r\n\r\n"),
    ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
]


def expect_505(w, name, data, pieces=1):
    s = w.connect()
    try:
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            send_all(s, data[i:i + step])
            if pieces > 1:
                time.sleep(0.05)
        t0 = time.monotonic()
        got = recv_until_closed(s, 10 * slow_factor())
        took = time.monotonic() - t0
    finally:
        s.close()
    head = got.split(b"\r\n", 1)[0]
    assert head == b"HTTP/1.1 505 HTTP Version Not Supported", "%s: %r" % (name, got[:200])
    assert data.split(b"\r\n", 1)[0] not in got, "%s: the request line came back: %r" % (name, got[:200])
    assert b"\r\nConnection: close\r\n" in got, "%s: no Connection: close: %r" % (name, got[:300])
    return took


def test_unsupported_http_version_gets_505_and_close(ctx):
    for mode in ("echo", "chat"):
        with Weft(["--mode", mode]) as w:
            before = w.metric("weft_http_requests_total", 'status="505"')
            for name, data in VERSIONS:
                took = expect_505(w, name, data)
                if mode == "echo":
                    print("measured: HTTP %s request line: 505, closed after %.2f s" % (name, took))
            # split anywhere, the verdict is the same: detection waits for the line
            expect_505(w, "HTTP/2.0 split", b"GET / HTTP/2.0\r\n", pieces=16)
            after = w.metric("weft_http_requests_total", 'status="505"')
            assert after - before == len(VERSIONS) + 1, "505 counted %d times, want %d" % (
                after - before, len(VERSIONS) + 1)
            # the rule that a line which is not HTTP-shaped is the mode's own protocol stays
            s = w.connect()
            try:
                if mode == "echo":
                    for line in (b"GET / HTTP/10.0\r\n", b"hello\n"):
                        send_all(s, line)
                        assert recv_exact(s, len(line)) == line
                else:
                    send_all(s, b"*1\r\n$4\r\nPING\r\n")
                    assert recv_exact(s, 7) == b"+PONG\r\n"
            finally:
                s.close()
            # and a polite HTTP/1.1 client is served as before
            status, _, body = w.http("/")
            assert status == 200 and body == b"Hello, World!\n", (status, body)


# ---- RESP counts and lengths --------------------------------------------------------

COUNT = b"*1048576\r\n"
BULK = b"*2\r\n$7\r\nPUBLISH\r\n$1073741824\r\n"


def open_sending(w, n, data):
    socks = connect_many(w, n, tls=False)
    for s in socks:
        send_all(s, data)
    return socks


# What Weft.metrics() sends; the server counts it before it renders the reply.
METRICS_REQUEST = len(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")


class Received:
    """Knows when the server has read every byte sent to it since start():
    weft_bytes_received_total, less what our own /metrics requests added."""

    def __init__(self, w):
        self.w = w
        self.base = w.metric("weft_bytes_received_total")
        self.calls = 0
        self.sent = 0

    def reached(self):
        self.calls += 1
        got = self.w.metric("weft_bytes_received_total")
        return got >= self.base + self.sent + self.calls * METRICS_REQUEST

    def settled_memory(self, sent):
        """Memory once the server has read `sent` more bytes (so every
        reservation it would make for them is made), after a short settle."""
        self.sent += sent
        assert wait_for(self.reached, 10 * slow_factor()), "the server did not read what was sent"
        time.sleep(0.3)
        return memory(self.w)


def test_resp_huge_counts_reserve_nothing_up_front(ctx):
    # Polite connections of the same shape go first: what a connection costs on
    # this model (a thread and its stack, buffers) is measured by them and
    # subtracted, so what is left is what the huge counts cost.
    # --max-message 2g: the 1 GiB bulk is within the limit, so it is waited for;
    # --workers: the pool serves every connection at once (others ignore it).
    excess_kib = 32 * 1024
    polite_bulk_cmd = b"*2\r\n$7\r\nPUBLISH\r\n$1\r\n"
    with Weft(["--mode", "chat", "--max-message", "2g", "--workers", str(4 * CONNS + 16),
               "--max-conns", str(8 * CONNS)], tls_listener=False) as w:
        rx = Received(w)
        data0, rss0 = rx.settled_memory(0)
        polite = open_sending(w, CONNS, b"*1\r\n")
        polite_bulk = open_sending(w, CONNS, polite_bulk_cmd)
        data1, rss1 = rx.settled_memory(CONNS * (4 + len(polite_bulk_cmd)))
        attack = open_sending(w, CONNS, COUNT)
        attack_bulk = open_sending(w, CONNS, BULK)
        data2, rss2 = rx.settled_memory(CONNS * (len(COUNT) + len(BULK)))
        polite_data, polite_rss = data1 - data0, rss1 - rss0
        attack_data, attack_rss = data2 - data1, rss2 - rss1
        print("measured: RESP *1048576 and *2 PUBLISH $1073741824 without data, %d connections each: "
              "VmData +%.1f MiB, VmRSS +%.1f MiB (polite *1 / $1 connections: VmData +%.1f MiB, VmRSS +%.1f MiB)"
              % (CONNS, attack_data / 1024, attack_rss / 1024, polite_data / 1024, polite_rss / 1024))
        # others are still served
        s = w.connect(tls=False)
        try:
            send_all(s, b"*1\r\n$4\r\nPING\r\n")
            assert recv_exact(s, 7) == b"+PONG\r\n"
            send_all(s, b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1\r\nm\r\n")
            assert recv_exact(s, 4) == b":0\r\n"
        finally:
            s.close()
        # the attackers were not cut off for sending a legal prefix
        assert not any(is_closed(x, 0.05) for x in attack[:5] + attack_bulk[:5]), "attackers were closed"
        close_all(polite + polite_bulk + attack + attack_bulk)
        assert attack_data - polite_data < excess_kib, (
            "VmData grew %.1f MiB for %d huge counts, %.1f MiB for as many polite connections (bound: +%d MiB)"
            % (attack_data / 1024, 2 * CONNS, polite_data / 1024, excess_kib // 1024))
        assert attack_rss - polite_rss < excess_kib, (
            "VmRSS grew %.1f MiB for %d huge counts, %.1f MiB for as many polite connections (bound: +%d MiB)"
            % (attack_rss / 1024, 2 * CONNS, polite_rss / 1024, excess_kib // 1024))


def test_resp_counts_past_the_limits_are_refused(ctx):
    cases = [
        (BULK, b"-ERR Protocol error: invalid bulk length\r\n"),             # over --max-message (1m)
        (b"*1048577\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),  # over Redis' 1M args
        (b"*99999999999999999999\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    ]
    with Weft(["--mode", "chat"], tls_listener=False) as w:
        for data, want in cases:
            s = w.connect(tls=False)
            try:
                send_all(s, data)
                got = recv_until_closed(s, 10 * slow_factor())
            finally:
                s.close()
            assert got == want, "%r: %r, want %r and close" % (data, got, want)
        print("measured: RESP $1073741824 over --max-message: error reply, closed")


# ---- HTTP lengths --------------------------------------------------------------------

def test_http_huge_lengths_without_body_get_413(ctx):
    heads = [
        ("Content-Length 99999999999",
         b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n"),
        ("Content-Length past 2^64",
         b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999999\r\n\r\n"),
        ("chunk size past 2^64",
         b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n"),
    ]
    with Weft() as w:
        data0, rss0 = memory(w)
        for name, head in heads:
            s = w.connect()
            try:
                send_all(s, head)
                got = recv_until_closed(s, 10 * slow_factor())
            finally:
                s.close()
            assert got.startswith(b"HTTP/1.1 413 Content Too Large\r\n"), "%s: %r" % (name, got[:200])
            assert b"\r\nConnection: close\r\n" in got, "%s: %r" % (name, got[:300])
            print("measured: HTTP %s without a body: 413, closed" % name)
        data1, rss1 = memory(w)
        assert data1 - data0 < 16 * 1024, "VmData grew %d KiB" % (data1 - data0)
