"""test_echo.py - echo mode, for whichever model WEFT_MODEL_ARGS names (and over
TLS when WEFT_TLS=1): every byte comes back, in order, whatever the sizes,
chunking and number of clients; half-close, resets and garbage affect only the
client that does them."""
import random
import socket
import struct
import threading

from weftest import (MODEL, TLS, Weft, close_all, connect_many, echo_clients, echo_many, payload,
                     raise_nofile, recv_exact, recv_until_closed, scale, send_all, slow_factor, wait_for)

MiB = 1 << 20


def server_args(clients):
    """Extra flags so `clients` connections can be served at once: the pool
    model serves at most --workers clients by design."""
    if MODEL == "pool":
        return ["--workers", str(clients + 8), "--queue", "64"]
    return []


def echo_one(s, data, timeout=30.0):
    """Send data and read it back at the same time (a big message does not fit
    in the socket buffers, so sending first and reading after would deadlock)."""
    echo_many([s], [data], timeout=timeout)


def test_one_byte(ctx):
    with Weft() as w:
        s = w.connect()
        for b in (b"\x00", b"x", b"\xff", b"\n"):
            send_all(s, b)
            assert recv_exact(s, 1) == b
        s.close()


def test_sizes_one_client(ctx):
    """1 B to 4 MiB, each on a fresh connection and then all on one connection."""
    sizes = [1, 2, 3, 100, 1460, 4096, 65535, 65536, 65537, 256 * 1024, MiB, 4 * MiB]
    with Weft() as w:
        for n in sizes:
            s = w.connect()
            echo_one(s, payload(n))
            s.close()
        s = w.connect()
        for n in sizes:
            echo_one(s, payload(n))
        s.close()


def test_100_concurrent_clients(ctx):
    n = scale(100, asan=2, tsan=4)
    sizes = [(1, 100, 4096, 65536, 256 * 1024)[i % 5] for i in range(n)]
    sizes[0] = 4 * MiB
    with Weft(server_args(n)) as w:
        echo_clients(w, sizes, timeout=60)


def test_1000_concurrent_clients(ctx):
    n = scale(1000, asan=4, tsan=8)
    raise_nofile(n + 200)
    sizes = [(1, 10, 100, 1000, 16384)[i % 5] for i in range(n)]
    with Weft(server_args(n)) as w:
        echo_clients(w, sizes, timeout=90)


def test_many_small_writes(ctx):
    """64 KiB sent 7 bytes per send(): the echo is the same stream."""
    with Weft() as w:
        s = w.connect()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        echo_many([s], [payload(scale(64 * 1024, asan=2, tsan=4))], chunk=7, timeout=60)
        s.close()


def test_one_huge_write(ctx):
    """8 MiB handed to one sendall() from a thread while the main thread reads."""
    data = payload(8 * MiB)
    with Weft() as w:
        s = w.connect(timeout=30 * slow_factor())
        if TLS:
            # One SSL object must not be written and read from two threads at
            # once: hand the whole buffer to each non-blocking send() instead.
            echo_many([s], [data], chunk=len(data), timeout=60)
            s.close()
            return
        err = []

        def writer():
            try:
                s.sendall(data)
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        got = recv_exact(s, len(data), timeout=60 * slow_factor())
        t.join(10)
        assert not err, err
        assert got == data, "echo differs from what was sent"
        s.close()


def test_half_close_gets_all_echo(ctx):
    """shutdown(SHUT_WR) after sending: all of the echo still arrives, then EOF."""
    if TLS:
        ctx.skip("a TCP half-close under TLS is a truncation attack, not an end of stream")
    with Weft() as w:
        for n in (1, 1000, 2 * MiB):
            s = w.connect()
            data = payload(n)
            echo_many([s], [data], half_close=True, timeout=60)
            assert recv_until_closed(s, 10 * slow_factor()) == b"", "data after the echo"
            s.close()


def test_half_close_before_reading(ctx):
    """The client sends everything and shuts down its side before reading a
    byte; the server must not close before the echo is out."""
    if TLS:
        ctx.skip("a TCP half-close under TLS is a truncation attack, not an end of stream")
    with Weft() as w:
        s = w.connect()
        data = payload(512 * 1024)
        t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)), daemon=True)
        t.start()
        got = recv_until_closed(s, 30 * slow_factor())
        t.join(10)
        assert got == data, "got %d of %d bytes" % (len(got), len(data))
        s.close()


def reset(s):
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_reset_mid_stream_affects_only_that_client(ctx):
    with Weft() as w:
        a, c = w.connect(), w.connect()
        echo_one(a, payload(1000))
        for i in range(scale(20, asan=2, tsan=4)):
            b = w.connect()
            # Leave the server with unsent echo to this client, then vanish.
            b.setblocking(False)
            sent = 0
            data = payload(2 * MiB)
            try:
                while sent < len(data):
                    sent += b.send(data[sent:sent + 65536])
            except (BlockingIOError, OSError):
                pass
            b.setblocking(True)
            reset(b)
            echo_one(a, payload(100 + i))
        echo_one(c, payload(MiB))
        echo_one(a, payload(MiB))
        d = w.connect()
        echo_one(d, payload(4096))
        close_all([a, c, d])


def test_reset_while_idle_and_mid_message(ctx):
    """A reset before any data, and one right after a partial write."""
    with Weft() as w:
        keep = w.connect()
        reset(w.connect())
        b = w.connect()
        send_all(b, payload(10))
        reset(b)
        echo_one(keep, payload(100000))
        keep.close()


def test_garbage_all_byte_values(ctx):
    every = bytes(range(256))
    with Weft() as w:
        s = w.connect()
        echo_one(s, every * 64)
        echo_one(s, bytes(reversed(every)) * 64)
        echo_one(s, b"\r\n\x00" * 1000 + b"GET / HTTP/1.1\r\n\r\n")  # not HTTP: not the first bytes
        s.close()
        t = w.connect()
        rng = random.Random(7)
        echo_one(t, b"\x00" + bytes(rng.randrange(256) for _ in range(100000)))
        t.close()


def test_ping_pong_many_round_trips(ctx):
    """Request/response of random sizes on one connection, each answered
    before the next is sent (what a chatty client does)."""
    rng = random.Random(1)
    with Weft() as w:
        s = w.connect()
        for _ in range(scale(300, asan=3, tsan=6)):
            data = payload(rng.randrange(1, 5000))
            send_all(s, data)
            assert recv_exact(s, len(data)) == data
        s.close()


def test_clients_come_and_go(ctx):
    """Connection churn: every connection is served and accounted for."""
    n = scale(200, asan=4, tsan=8)
    with Weft() as w:
        base = w.metric("weft_connections_accepted_total")
        for i in range(n):
            s = w.connect()
            data = payload(1 + i)
            send_all(s, data)
            assert recv_exact(s, len(data)) == data
            s.close()
        assert w.metric("weft_connections_accepted_total") >= base + n
        # Once they are all gone, only the /metrics connection itself is open.
        assert wait_for(lambda: w.metric("weft_connections_open") <= 1, 10 * slow_factor()), \
            "connections still counted open: %s" % w.metric("weft_connections_open")


def test_clients_do_not_block_each_other(ctx):
    """A client that sends a lot and does not read must not stall the others."""
    with Weft(server_args(4)) as w:
        hog = w.connect()
        hog.setblocking(False)
        try:
            for _ in range(1000):
                hog.send(payload(65536))
        except (BlockingIOError, OSError):
            pass
        hog.setblocking(True)
        others = connect_many(w, 3)
        echo_many(others, [payload(300000) for _ in others], timeout=30)
        close_all(others + [hog])


def test_large_replies_do_not_fault_the_heap_in_each_time(ctx):
    """64 KiB round trips on 10 connections at once (weft-load, the harness's
    client) with the TLS listener loaded: the memory a reply is freed into
    must stay mapped for the next one. With glibc's default trimming it was
    handed back to the kernel after every reply and faulted in again, 12.5
    page faults per round trip, which made uring 12x slower than the floor in
    bench/compare. Counted in page faults (from /proc), not time; glibc's
    malloc only, so not under the sanitizers."""
    import json
    import os
    import subprocess
    import weftest
    if weftest.SANITIZER != "none":
        raise weftest.Skip("sanitizer builds bring their own allocator")
    binary = os.environ.get("WEFT_BIN", "weft")
    load = os.path.join(os.path.dirname(os.path.abspath(binary)), "weft-load")
    if not os.path.exists(load):
        raise weftest.Skip("no weft-load next to " + binary)

    def run_load(w):
        out = subprocess.run([load, "echo", "--port", str(w.port), "-c", "10", "-s", "65536", "--duration", "1",
                              "-q"], capture_output=True, timeout=60, check=True).stdout
        j = json.loads(out)
        assert j["ok"], j
        return j["ops"]

    def minflt(w):
        with open("/proc/%d/stat" % w.proc.pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[7])
    # The certificate bench/compare gives every server (an RSA key): the
    # heap layout it leaves is the one that showed it.
    cert, key = ctx.path("cert.pem"), ctx.path("key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost"], capture_output=True, timeout=60, check=True)
    with Weft(["--cert", cert, "--key", key]) as w:
        run_load(w)  # warm: the heap grows to its working size once
        before = minflt(w)
        ops = run_load(w)
        per_round_trip = (minflt(w) - before) / max(ops, 1)
        print("measured: %.2f page faults per 64 KiB round trip (%d round trips)" % (per_round_trip, ops))
        assert per_round_trip < 1, "%.1f page faults per 64 KiB round trip: freed reply memory is " \
            "unmapped and faulted in again" % per_round_trip
