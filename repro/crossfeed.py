#!/usr/bin/env python3
"""crossfeed.py - can one client receive another client's bytes?

Runs the real weft binary (WEFT_BIN, WEFT_MODEL_ARGS as in tests/conformance)
and, for a bounded time, many clients at once on 127.0.0.1. Every byte a
client sends carries its own tag ("<C0007>" repeated), so a byte it gets back
that is not its own names the client it came from. Alongside the honest
clients, hostile ones churn the paths suspected of recycling memory: they
send a lot and reset without reading (sends in flight cancelled, uring slots
and provided buffers reused), stop reading (back-pressure: recv cancelled and
re-armed), break an HTTP pipeline half way, subscribe and vanish (subscriber
freed while messages are in its mailbox), or fall behind as slow consumers.

    cd tests/conformance   # for weftest.py
    WEFT_BIN=../../build/weft-asan WEFT_MODEL_ARGS="--model uring --threads 2" \
        python3 ../../repro/crossfeed.py echo 8 [--tls]

Modes: echo, http, chat. Exit 0 when every honest client got exactly its own
bytes and the server log holds no sanitizer report; 1 otherwise (with the
evidence printed).
"""
import os
import random
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "conformance"))
from weftest import Weft, client_ssl_context  # noqa: E402

TAG_RE = re.compile(rb"<C(\d{4})>")
failures = []
flock = threading.Lock()
stats = {"ok": 0, "hostile": 0}


def fail(msg):
    with flock:
        failures.append(msg)
        print("FAIL:", msg, flush=True)


def tag(cid):
    return b"<C%04d>" % cid


def tagged(cid, n):
    t = tag(cid)
    return (t * (n // len(t) + 1))[:n]


def foreign(cid, data):
    """Tags in data that are not cid's."""
    return sorted({int(m) for m in TAG_RE.findall(data) if int(m) != cid})


def connect(w, tls):
    if not tls:
        s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    else:
        raw = socket.create_connection(("127.0.0.1", w.tls_port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = client_ssl_context().wrap_socket(raw, server_hostname="localhost")
    return s


def reset(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def connections(w, tls, end):
    """Connected sockets, one after another, until end or the first failure."""
    while time.monotonic() < end and not failures:
        try:
            yield connect(w, tls)
        except OSError:
            continue


def pump(s, out, want_fn, deadline):
    """Send out while reading, on one thread (an SSL socket must not be
    read and written by two threads at once), until want_fn(received) says
    enough. Returns the bytes received."""
    import select
    import ssl
    s.setblocking(False)
    got = bytearray()
    off = 0
    while not want_fn(got):
        if time.monotonic() > deadline:
            raise TimeoutError("got %d bytes, sent %d of %d" % (len(got), off, len(out)))
        progressed = False
        try:
            c = s.recv(1 << 18)
            if not c:
                raise EOFError("EOF after %d bytes (sent %d of %d)" % (len(got), off, len(out)))
            got += c
            progressed = True
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        if off < len(out):
            try:
                k = s.send(out[off:off + 16384])
                off += k
                progressed = progressed or k > 0
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
        if not progressed:
            pending = getattr(s, "pending", lambda: 0)()
            if not pending:
                select.select([s], [s] if off < len(out) else [], [], 0.05)
    s.setblocking(True)
    return got


def check(cid, what, got, want):
    if got == want:
        return True
    f = foreign(cid, got)
    if f:
        fail("client %d (%s): got bytes of client(s) %s" % (cid, what, f))
    else:
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
        fail("client %d (%s): differs at byte %d of %d: got %r want %r" % (cid, what, i, len(want),
                                                                         got[i:i + 40], want[i:i + 40]))
    return False


# ---- echo ----------------------------------------------------------------------

def echo_honest(w, cid, tls, end, rng):
    for s in connections(w, tls, end):
        try:
            for _ in range(rng.randint(1, 6)):
                n = rng.choice([1, 7, 100, 1023, 4096, 4097, 16384, 16385, 40000, 70000, 200000])
                data = tagged(cid, n)
                got = bytes(pump(s, data, lambda g: len(g) >= n, time.monotonic() + 30))
                if not check(cid, "echo %d" % n, got, data):
                    return
                stats["ok"] += 1
        except (OSError, TimeoutError, EOFError) as e:
            fail("client %d: echo broke: %r" % (cid, e))
            return
        finally:
            s.close()


def echo_hostile(w, cid, tls, end, rng):
    while time.monotonic() < end and not failures:
        try:
            s = connect(w, tls)
            s.setblocking(False) if not tls else None
            kind = rng.randint(0, 3)
            data = tagged(cid, rng.choice([5000, 70000, 300000]))
            try:
                s.settimeout(0.2)
                s.sendall(data)
            except (OSError, socket.timeout):
                pass
            if kind == 1:
                time.sleep(rng.random() * 0.05)
            elif kind == 2:  # read a little, then vanish with the rest in flight
                try:
                    got = s.recv(3000)
                    if foreign(cid, got):
                        fail("hostile %d got bytes of %s" % (cid, foreign(cid, got)))
                except (OSError, socket.timeout):
                    pass
            reset(s)
            stats["hostile"] += 1
        except OSError:
            pass


# ---- http ----------------------------------------------------------------------

def http_req(cid, i, n, chunked=False):
    body = tagged(cid, n)
    if chunked:
        mid = n // 2
        if mid == 0:
            enc = (b"%x\r\n%s\r\n" % (n, body) if n else b"") + b"0\r\n\r\n"
        else:
            enc = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (mid, body[:mid], n - mid, body[mid:])
        head = b"POST /c%d/%d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % (cid, i)
        return head + enc, body
    return b"POST /c%d/%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (cid, i, n) + body, body


def split_responses(buf, k):
    """k whole responses from buf as (head, body), or None if not all here."""
    out, i = [], 0
    buf = bytes(buf)
    for _ in range(k):
        e = buf.find(b"\r\n\r\n", i)
        if e < 0:
            return None
        head = buf[i:e]
        m = re.search(rb"Content-Length: (\d+)", head)
        n = int(m.group(1)) if m else 0
        if len(buf) < e + 4 + n:
            return None
        out.append((head, buf[e + 4:e + 4 + n]))
        i = e + 4 + n
    return out


def http_honest(w, cid, tls, end, rng):
    for s in connections(w, tls, end):
        try:
            reqs, bodies = [], []
            for i in range(rng.randint(1, 12)):
                k = rng.random()
                if k < 0.15:
                    reqs.append(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    bodies.append(b"Hello, World!\n")
                else:
                    r, b = http_req(cid, i, rng.choice([0, 1, 100, 1025, 5000, 20000, 70000]), chunked=k > 0.7)
                    reqs.append(r)
                    bodies.append(b)
            got = pump(s, b"".join(reqs), lambda g: split_responses(g, len(bodies)) is not None,
                       time.monotonic() + 30)
            for i, (head, body) in enumerate(split_responses(got, len(bodies))):
                if foreign(cid, head):
                    fail("client %d: head holds %s" % (cid, foreign(cid, head)))
                if not check(cid, "http %d" % i, body, bodies[i]):
                    break
                stats["ok"] += 1
        except (OSError, TimeoutError, EOFError, AttributeError) as e:
            fail("client %d: http broke: %r" % (cid, e))
            return
        finally:
            s.close()


def http_hostile(w, cid, tls, end, rng):
    while time.monotonic() < end and not failures:
        try:
            s = connect(w, tls)
            parts = []
            for i in range(rng.randint(1, 6)):
                parts.append(http_req(cid, i, rng.choice([10, 3000, 70000]), chunked=rng.random() < 0.5)[0])
            bad = rng.choice([b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                              b"GARBAGE\r\n\r\n", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                              b"GET / HTTP/1.1\r\n" + b"X: " + tagged(cid, 20000) + b"\r\n\r\n"])
            parts.insert(rng.randint(0, len(parts)), bad)
            parts.append(http_req(cid, 99, 1000)[0])
            try:
                s.settimeout(0.5)
                s.sendall(b"".join(parts))
                got = b""
                dl = time.monotonic() + 0.5
                while time.monotonic() < dl:
                    c = s.recv(65536)
                    if not c:
                        break
                    got += c
                    if foreign(cid, got):
                        fail("hostile http %d got bytes of %s" % (cid, foreign(cid, got)))
                        break
            except (OSError, socket.timeout):
                pass
            reset(s) if rng.random() < 0.5 else s.close()
            stats["hostile"] += 1
        except OSError:
            pass


# ---- chat (RESP) -----------------------------------------------------------------

def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def parse_resp(buf):
    """One RESP value from buf (bytearray): (value, rest) or None if incomplete."""
    def one(i):
        if i >= len(buf):
            return None
        nl = buf.find(b"\r\n", i)
        if nl < 0:
            return None
        t, line = bytes(buf[i:i + 1]), bytes(buf[i + 1:nl])
        if t in (b"+", b"-", b":"):
            return (t + line, nl + 2)
        if t == b"$":
            n = int(line)
            if n < 0:
                return (None, nl + 2)
            if len(buf) < nl + 2 + n + 2:
                return None
            return (bytes(buf[nl + 2:nl + 2 + n]), nl + 4 + n)
        if t == b"*":
            k, j, out = int(line), nl + 2, []
            for _ in range(k):
                r = one(j)
                if r is None:
                    return None
                out.append(r[0])
                j = r[1]
            return (out, j)
        raise ValueError("bad RESP %r" % bytes(buf[i:i + 40]))
    r = one(0)
    if r is None:
        return None
    del buf[:r[1]]
    return r[0]


def line_subscriber(w, cid, tls, end, rng):
    """The netcat protocol: joins its own channel; every MSG line must be its own."""
    for s in connections(w, tls, end):
        try:
            ch = b"c%04d" % cid
            s.sendall(b"/join " + ch + b"\n")
            buf, stop = bytearray(), time.monotonic() + rng.uniform(0.5, 3)
            while time.monotonic() < stop and not failures:
                s.settimeout(0.2)
                try:
                    c = s.recv(65536)
                except socket.timeout:
                    continue
                if not c:
                    fail("line subscriber %d: EOF" % cid)
                    return
                buf += c
                while b"\n" in buf:
                    line, _, rest = bytes(buf).partition(b"\n")
                    buf[:] = rest
                    if line.startswith(b"ERR slow consumer"):
                        raise ConnectionAbortedError("dropped")
                    if line.startswith(b"OK join "):
                        continue
                    parts = line.split(b" ", 3)
                    if parts[0] != b"MSG" or parts[1] != ch or parts[3] != tagged(cid, len(parts[3])):
                        fail("line subscriber %d got %r (tags %s)" % (cid, line[:80], foreign(cid, line)))
                        return
                    stats["ok"] += 1
            reset(s) if rng.random() < 0.5 else s.close()
        except ConnectionAbortedError:
            s.close()
        except OSError as e:
            fail("line subscriber %d: broke: %r" % (cid, e))
            return


def chat_subscriber(w, cid, tls, end, rng):
    """Subscribes to its own channel and pattern; every message it gets must be its own."""
    if cid % 4 == 3:
        return line_subscriber(w, cid, tls, end, rng)
    for s in connections(w, tls, end):
        try:
            ch, pat = b"c%04d" % cid, b"p%04d.*" % cid
            s.sendall(resp(b"SUBSCRIBE", ch) + resp(b"PSUBSCRIBE", pat))
            buf = bytearray()
            got, stop = 0, time.monotonic() + rng.uniform(0.5, 3)
            while time.monotonic() < stop and not failures:
                s.settimeout(0.2)
                try:
                    c = s.recv(65536)
                except socket.timeout:
                    continue
                if not c:
                    fail("subscriber %d: EOF after %d messages, %d bytes unparsed: %r" % (cid, got, len(buf), bytes(buf[:80])))
                    return
                buf += c
                while True:
                    v = parse_resp(buf)
                    if v is None:
                        break
                    if isinstance(v, bytes) and v.startswith(b"-ERR slow consumer"):
                        raise ConnectionAbortedError("dropped as a slow consumer")
                    if isinstance(v, list) and v[0] in (b"message", b"pmessage"):
                        chan, data = v[-2], v[-1]
                        if not (chan == ch or chan.startswith(b"p%04d." % cid)) or (data and foreign(cid, data)) \
                                or data != tagged(cid, len(data)):
                            fail("subscriber %d got %r on %r (tags %s)" % (cid, data[:40], chan, foreign(cid, data)))
                            return
                        got += 1
                        stats["ok"] += 1
            if rng.random() < 0.5:
                reset(s)
            else:
                s.close()
        except ConnectionAbortedError:
            s.close()
        except (OSError, ValueError) as e:
            fail("subscriber %d: broke: %r" % (cid, e))
            return


def chat_publisher(w, cid, tls, end, rng):
    try:
        s = connect(w, tls)
    except OSError:
        return
    buf = bytearray()
    while time.monotonic() < end and not failures:
        target = rng.randrange(NCLIENTS)
        n = rng.choice([1, 50, 1000, 1025, 3000, 4000, 9000, 40000])
        ch = b"c%04d" % target if rng.random() < 0.6 else b"p%04d.x%d" % (target, rng.randrange(3))
        try:
            s.sendall(resp(b"PUBLISH", ch, tagged(target, n)))
            s.settimeout(10)
            while parse_resp(buf) is None:
                c = s.recv(65536)
                if not c:
                    fail("publisher: EOF")
                    return
                buf += c
        except OSError as e:
            fail("publisher: %r" % e)
            return
    s.close()


def chat_hostile(w, cid, tls, end, rng):
    """Subscribes to a busy channel and every pattern channel, stops reading
    (a slow consumer: dropped with sends in flight), then reads what it was
    sent: whole messages of their publishers' own bytes, at most an error
    line, nothing else."""
    while time.monotonic() < end and not failures:
        try:
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.settimeout(10)
            raw.connect(("127.0.0.1", w.tls_port if tls else w.port))
            s = client_ssl_context().wrap_socket(raw, server_hostname="localhost") if tls else raw
            target = rng.randrange(NCLIENTS)
            s.sendall(resp(b"SUBSCRIBE", b"c%04d" % target) + resp(b"PSUBSCRIBE", b"p*"))
            time.sleep(rng.random() * 1.0)
            if rng.random() < 0.4:
                reset(s)
                stats["hostile"] += 1
                continue
            buf, dl = bytearray(), time.monotonic() + 3
            while time.monotonic() < dl:
                try:
                    s.settimeout(max(0.01, dl - time.monotonic()))
                    c = s.recv(1 << 16)
                except (OSError, socket.timeout):
                    break
                if not c:
                    break
                buf += c
                if len(buf) > (4 << 20):
                    break
            while True:
                try:
                    v = parse_resp(buf)
                except ValueError as e:
                    fail("hostile subscriber %d: garbage in its stream: %s" % (cid, e))
                    break
                if v is None:
                    break
                if isinstance(v, list) and v[0] in (b"message", b"pmessage"):
                    chan, data = v[-2], v[-1]
                    owner = int(chan[1:5]) if re.match(rb"[cp]\d{4}", chan) else -1
                    if data != tagged(owner, len(data)):
                        fail("hostile subscriber %d: message on %r holds %r (tags %s)"
                             % (cid, chan, data[:40], foreign(owner, data)))
                        break
                elif isinstance(v, list) and v[0] in (b"subscribe", b"psubscribe"):
                    pass
                elif not (isinstance(v, bytes) and v.startswith(b"-ERR slow consumer")):
                    fail("hostile subscriber %d: unexpected %r" % (cid, v))
                    break
            s.close()
            stats["hostile"] += 1
        except OSError:
            pass


NCLIENTS = 8


def report(w):
    m = w.metrics()
    print("server: " + ", ".join("%s=%d" % (k.split("{")[0].replace("weft_", "") + ("{" + k.split("{", 1)[1].split(",", 1)[1] if "," in k else ""), v)
                                  for k, v in sorted(m.items()) if v and any(x in k for x in (
                                      "slow_consumer", "input_paused", "reset", "http_requests", "delivered",
                                      "cluster_messages", "cl_"))))


def run_clients(mode, servers, seconds, tls, seed):
    """servers: where honest clients, publishers and hostile ones connect."""
    end = time.monotonic() + seconds
    plan = {"echo": [(echo_honest, 6), (echo_hostile, 3)],
            "http": [(http_honest, 6), (http_hostile, 3)],
            "chat": [(chat_subscriber, NCLIENTS), (chat_publisher, 2), (chat_hostile, 3)]}[mode]
    threads = []
    for fn, k in plan:
        for i in range(k):
            cid = len(threads)
            if fn is chat_subscriber:
                own, w = i, servers["honest"]
            elif fn is chat_publisher:
                own, w = 9000 + cid, servers["publisher"]
            elif fn in (echo_hostile, http_hostile, chat_hostile):
                own, w = 5000 + cid, servers["hostile"][i % len(servers["hostile"])]
            else:
                own, w = cid, servers["honest"]
            threads.append(threading.Thread(target=fn, args=(w, own, tls, end, random.Random(seed * 1000 + cid)),
                                            daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    if any(t.is_alive() for t in threads):
        fail("a client thread did not finish")
    print("ok exchanges: %d, hostile connections: %d" % (stats["ok"], stats["hostile"]))


def cluster(extra, seconds, tls, seed):
    """Two nodes joined through a real redis-server: subscribers on one,
    publishers on the other, hostile clients on both."""
    import tempfile
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cluster"))
    from clusterlib import Redis, link_up
    from weftest import wait_for
    with tempfile.TemporaryDirectory() as tmp, Redis(tmp) as r:
        url = "redis://127.0.0.1:%d" % r.port
        args = ["--mode", "chat", "--outbox-hard", "100000", "--cluster", url] + extra
        with Weft(extra_args=args) as a, Weft(extra_args=args) as b:
            if not wait_for(lambda: link_up(a) and link_up(b), 20):
                fail("cluster links not up")
            run_clients("chat", {"honest": b, "publisher": a, "hostile": [a, b]}, seconds, tls, seed)
            for w in (a, b):
                if failures:
                    print("node log tail:\n" + w.tail(20))
                report(w)
    print("FAILED" if failures else "PASS")
    return 1 if failures else 0


def main():
    global NCLIENTS
    mode = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8
    tls = "--tls" in sys.argv
    extra = [a for a in sys.argv[3:] if a != "--tls"]
    seed = int(os.environ.get("SEED", "1"))
    extra = os.environ.get("CROSSFEED_ARGS", "--read-pause 16k").split() + extra
    if mode == "chat":
        extra = ["--mode", "chat", "--outbox-hard", "100000"] + extra
        NCLIENTS = 8
    if mode == "cluster":
        return cluster(extra, seconds, tls, seed)
    with Weft(extra_args=extra) as w:
        run_clients(mode, {"honest": w, "publisher": w, "hostile": [w]}, seconds, tls, seed)
        if failures:
            print("server log tail:\n" + w.tail(30))
        report(w)
    print("FAILED" if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAIL:", str(e)[-5000:])
        sys.exit(1)
