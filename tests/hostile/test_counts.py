"""test_counts.py - huge counts and lengths that arrive without their data, and
HTTP versions weft does not speak (issue 9).

A peer's count or length is checked before anything is reserved for it:
  - HTTP "Content-Length: 99999999999" without a body is 413 and closes.
  - An HTTP-shaped first line with a version weft does not speak
    (HTTP/9.9, HTTP/2.0, the HTTP/2 preface "PRI * HTTP/2.0") gets 505 and
    closes, instead of its own bytes echoed back.

Memory is read from /proc/<pid>/status: VmData (heap and anonymous mappings
the process made writable, which is what a reservation costs even while its
pages are untouched) and VmRSS (what is resident).
"""
import time

from weftest import Weft, recv_exact, recv_until_closed, send_all, slow_factor


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
            before = w.metric("weft_http_errors_total", 'status="505"')
            for name, data in VERSIONS:
                took = expect_505(w, name, data)
                if mode == "echo":
                    print("measured: HTTP %s request line: 505, closed after %.2f s" % (name, took))
            # split anywhere, the verdict is the same: detection waits for the line
            expect_505(w, "HTTP/2.0 split", b"GET / HTTP/2.0\r\n", pieces=16)
            after = w.metric("weft_http_errors_total", 'status="505"')
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
