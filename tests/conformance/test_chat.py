"""test_chat.py - chat mode on every model: netcat line users (their /psub
patterns matched against line, RESP and WebSocket publishers), redis-cli and
python3-redis through weft unchanged, fan-out exactly once and in order
(1 -> 100, 10 channels x 10), a subscriber that stops reading dropped at its
limit while the others keep receiving and RSS stays bounded, RESP replies
byte for byte against a real redis-server, and garbage, oversized and
truncated input. Every socket goes through w.connect(), so the suite also
runs over TLS (WEFT_TLS=1); external clients get --tls there."""
import contextlib
import os
import socket
import ssl
import subprocess
import time

import weftest
from weftest import (TLS, Skip, Weft, close_all, recv_until_closed, redis_server, resp_cmd, scale, send_all,
                     slow_factor, wait_for)

CHAT = ["--mode", "chat"]


# ---- clients ------------------------------------------------------------------


class Reader:
    """Buffered, bounded reads of lines and RESP values from one socket."""

    def __init__(self, sock, timeout=10.0):
        self.s = sock
        self.buf = bytearray()
        self.timeout = timeout * slow_factor()

    def _fill(self, end):
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("timeout; have %r" % bytes(self.buf[:200]))
        self.s.settimeout(left)
        try:
            b = self.s.recv(1 << 16)
        except socket.timeout:
            raise AssertionError("timeout; have %r" % bytes(self.buf[:200]))
        if not b:
            raise EOFError(bytes(self.buf))
        self.buf += b

    def line(self, sep=b"\n"):
        end = time.monotonic() + self.timeout
        while sep not in self.buf:
            self._fill(end)
        i = self.buf.index(sep)
        out = bytes(self.buf[:i])
        del self.buf[:i + len(sep)]
        return out

    def exact(self, n):
        end = time.monotonic() + self.timeout
        while len(self.buf) < n:
            self._fill(end)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def value(self):
        """One RESP2 value: bytes (simple/bulk), int, None, list, or ('err', text)."""
        head = self.line(b"\r\n")
        t, rest = head[:1], head[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return ("err", rest)
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n + 2)[:-2]
        if t == b"*":
            return [self.value() for _ in range(int(rest))]
        raise AssertionError("not RESP: %r" % head)


def line_client(w, *lines):
    s = w.connect()
    r = Reader(s)
    if lines:
        send_all(s, b"".join(l + b"\n" for l in lines))
    return s, r


def resp_client(w):
    s = w.connect()
    return s, Reader(s)


def redis_cli(w):
    if TLS:
        return ["redis-cli", "--tls", "--insecure", "-h", "127.0.0.1", "-p", str(w.tls_port)]
    return ["redis-cli", "-h", "127.0.0.1", "-p", str(w.port)]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- netcat users ---------------------------------------------------------------

def test_two_line_clients_see_each_other(ctx):
    with Weft(extra_args=CHAT) as w:
        a, ra = line_client(w, b"/nick alice", b"/join room")
        assert ra.line() == b"OK nick alice"
        assert ra.line() == b"OK join room 1"
        b, rb = line_client(w, b"/nick bob", b"/join room", b"hello alice")
        assert rb.line() == b"OK nick bob"
        assert rb.line() == b"OK join room 2"
        assert rb.line() == b"MSG room bob hello alice"
        assert ra.line() == b"MSG room bob hello alice"
        send_all(a, b"hi bob \\ tab\there\r\n")
        assert rb.line() == b"MSG room alice hi bob \\\\ tab\there"
        assert ra.line() == b"MSG room alice hi bob \\\\ tab\there"
        send_all(a, b"/list\n/pub other x y\n//slash\n/leave\nnowhere\n/quit\n")
        assert ra.line() == b"LIST 1 room=2"
        assert ra.line() == b"OK pub other 0"
        assert ra.line() == b"MSG room alice /slash"
        assert ra.line() == b"OK leave room"
        assert ra.line().startswith(b"ERR not in any channel")
        assert ra.line() == b"BYE"
        assert recv_until_closed(a, 5 * slow_factor()) == bytes(ra.buf)
        assert rb.line() == b"MSG room alice /slash"
        close_all([a, b])


def test_line_psub_from_line_resp_and_websocket(ctx):
    """/psub PATTERN: a line subscriber (and a WebSocket one) gets PMSG
    <pattern> <channel> <nick> <text> for each publish matching its pattern,
    whoever published it (a line, RESP or WebSocket client), once per
    matching pattern, and nothing for a channel that matches none;
    /punsub PATTERN and /punsub stop it; /help and /numpat know them."""
    from wsclient import TEXT, recv_message, send, upgrade
    with Weft(extra_args=CHAT) as w:
        sub, rs = line_client(w, b"/nick sub", b"/help", b"/join mark", b"/psub n*", b"/psub n?ws", b"/PSUB n*",
                              b"/numpat")
        assert rs.line() == b"OK nick sub"
        help_line = rs.line()
        assert b"/psub PATTERN" in help_line and b"/punsub [PATTERN]" in help_line, help_line
        assert rs.line() == b"OK join mark 1"
        assert rs.line() == b"OK psub n* 2"
        assert rs.line() == b"OK psub n?ws 3"
        assert rs.line() == b"OK psub n* 3"  # again: nothing changes
        assert rs.line() == b"NUMPAT 2"
        ws = upgrade(w.connect())
        for cmd, want in ((b"/nick wsub", b"OK nick wsub"), (b"/psub *s", b"OK psub *s 1")):
            send(ws, TEXT, cmd)
            assert recv_message(ws) == (TEXT, want)

        # a line publisher
        lp, rl = line_client(w, b"/nick lp", b"/pub news from line", b"/pub xnews not\x01sub's", b"/pub nab ab")
        assert rl.line() == b"OK nick lp"
        assert rl.line() == b"OK pub news 3"  # n*, n?ws, *s
        assert rl.line() == b"OK pub xnews 1"  # *s only
        assert rl.line() == b"OK pub nab 1"
        assert rs.line() == b"PMSG n* news lp from line"
        assert rs.line() == b"PMSG n?ws news lp from line"
        assert rs.line() == b"PMSG n* nab lp ab"  # not xnews
        assert recv_message(ws) == (TEXT, b"PMSG *s news lp from line")
        assert recv_message(ws) == (TEXT, b"PMSG *s xnews lp not\\x01sub's")

        # a RESP publisher
        rp, rr = resp_client(w)
        send_all(rp, resp_cmd("PUBLISH", "nest", "from resp") + resp_cmd("PUBLISH", "zz", "no"))
        assert rr.value() == 1
        assert rr.value() == 0
        line = rs.line()
        assert line.startswith(b"PMSG n* nest guest") and line.endswith(b" from resp"), line

        # a WebSocket publisher
        send(ws, TEXT, b"/pub nn from ws")
        assert recv_message(ws) == (TEXT, b"OK pub nn 1")
        send(ws, TEXT, b"/pub zz no")
        assert recv_message(ws) == (TEXT, b"OK pub zz 0")
        assert rs.line() == b"PMSG n* nn wsub from ws"

        # /punsub PATTERN, then /punsub (every pattern)
        send_all(sub, b"/punsub n?ws\n/punsub n?ws\n")
        assert rs.line() == b"OK punsub n?ws 2"
        assert rs.line() == b"ERR not subscribed to pattern 'n?ws'"
        send_all(lp, b"/pub news two\n")
        assert rl.line() == b"OK pub news 2"
        assert rs.line() == b"PMSG n* news lp two"
        send_all(sub, b"/psub a*\n/punsub\n/punsub\n/numpat\n")
        assert rs.line() == b"OK psub a* 3"
        assert rs.line() == b"OK punsub n* 2"
        assert rs.line() == b"OK punsub a* 1"
        assert rs.line() == b"ERR not subscribed to any pattern"
        assert rs.line() == b"NUMPAT 1"  # the WebSocket's *s
        send_all(lp, b"/pub news three\n/pub mark end\n")
        assert rl.line() == b"OK pub news 1"
        assert rl.line() == b"OK pub mark 1"
        assert rs.line() == b"MSG mark lp end"  # nothing for news came before it
        assert recv_message(ws) == (TEXT, b"PMSG *s news lp two")
        assert recv_message(ws) == (TEXT, b"PMSG *s news lp three")
        for cmd, want in ((b"/punsub *s", b"OK punsub *s 0"), (b"/join m2", b"OK join m2 1")):
            send(ws, TEXT, cmd)
            assert recv_message(ws) == (TEXT, want)
        send_all(lp, b"/pub news four\n/pub m2 end\n")
        assert rl.line() == b"OK pub news 0"
        assert rl.line() == b"OK pub m2 1"
        assert recv_message(ws) == (TEXT, b"MSG m2 lp end")
        send_all(sub, b"/quit\n")
        assert rs.line() == b"BYE"
        close_all([sub, lp, rp, ws])


def test_line_psub_bad_input_and_limits(ctx):
    """/psub refuses an empty, overlong or unprintable pattern and one past
    --max-subs (channels and patterns together) with one ERR line each; the
    client stays usable and its neighbours are unaffected."""
    with Weft(extra_args=CHAT + ["--max-subs", "3"]) as w:
        p200 = b"p" * 200
        a, ra = line_client(w, b"/psub", b"/psub ", b"/psub " + b"p" * 201, b"/psub a\x01b", b"/psub a b",
                            b"/punsub a b", b"/punsub " + b"p" * 201, b"/psub " + p200, b"/join c1", b"/psub q*",
                            b"/psub r*", b"/numpat")
        rule = b": 1-200 bytes, no spaces or control characters"
        assert ra.line() == b"ERR usage: /psub PATTERN"
        assert ra.line() == b"ERR usage: /psub PATTERN"
        assert ra.line() == b"ERR invalid pattern '" + b"p" * 16 + b"...'" + rule
        assert ra.line() == b"ERR invalid pattern 'a\\x01b'" + rule
        assert ra.line() == b"ERR invalid pattern 'a b'" + rule
        assert ra.line() == b"ERR not subscribed to pattern 'a b'"
        assert ra.line() == b"ERR not subscribed to pattern '" + b"p" * 16 + b"...'"
        assert ra.line() == b"OK psub " + p200 + b" 1"
        assert ra.line() == b"OK join c1 1"
        assert ra.line() == b"OK psub q* 3"
        assert ra.line() == b"ERR too many subscriptions: 3 channels and patterns at most (weft --max-subs)"
        assert ra.line() == b"NUMPAT 2"
        assert w.metric("weft_client_errors_total", 'kind="chat_max_subs"') == 1
        assert w.metric("weft_client_errors_total", 'kind="chat_bad_input"') == 7
        # a neighbour has its own limit and gets what matches
        b, rb = line_client(w, b"/nick bee", b"/psub r*", b"/psub q*", b"/psub " + p200)
        assert rb.line() == b"OK nick bee"
        assert rb.line() == b"OK psub r* 1"
        assert rb.line() == b"OK psub q* 2"
        assert rb.line() == b"OK psub " + p200 + b" 3"
        # the refused client still works: make room, then r* fits
        send_all(a, b"/punsub " + p200 + b"\n/psub r*\n/pub qq hi\n")
        assert ra.line() == b"OK punsub " + p200 + b" 2"
        assert ra.line() == b"OK psub r* 3"
        got = [ra.line(), ra.line()]
        assert got[0].startswith(b"PMSG q* qq guest") and got[0].endswith(b" hi"), got
        assert got[1] == b"OK pub qq 2", got
        line = rb.line()
        assert line == got[0], line
        send_all(b, b"/pub rr x\n/pub " + b"pp" + b" y\n")
        assert rb.line() == b"PMSG r* rr bee x"
        assert rb.line() == b"OK pub rr 2"
        assert rb.line() == b"OK pub pp 0"  # p200 is a literal 200-byte pattern
        assert ra.line() == b"PMSG r* rr bee x"
        close_all([a, b])


# ---- Redis clients ------------------------------------------------------------------

def read_cli_lines(p, n, timeout=10.0):
    out = []
    end = time.monotonic() + timeout * slow_factor()
    while len(out) < n and time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        out.append(line.rstrip(b"\n"))
    return out


def test_redis_cli_subscribe_publish_psubscribe(ctx):
    with Weft(extra_args=CHAT) as w:
        cli = redis_cli(w)
        sub = subprocess.Popen(cli + ["subscribe", "news"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        psub = subprocess.Popen(cli + ["psubscribe", "n*"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert read_cli_lines(sub, 3) == [b"subscribe", b"news", b"1"]
            assert read_cli_lines(psub, 3) == [b"psubscribe", b"n*", b"1"]
            pub = subprocess.run(cli + ["publish", "news", "hi"], capture_output=True, timeout=10 * slow_factor())
            assert pub.stdout.strip() == b"2", pub  # one channel + one pattern subscription
            assert read_cli_lines(sub, 3) == [b"message", b"news", b"hi"]
            assert read_cli_lines(psub, 4) == [b"pmessage", b"n*", b"news", b"hi"]
            nc, r = line_client(w, b"/join news", b"from netcat")
            assert r.line() == b"OK join news 2"
            assert read_cli_lines(sub, 3) == [b"message", b"news", b"from netcat"]
            assert read_cli_lines(psub, 4) == [b"pmessage", b"n*", b"news", b"from netcat"]
            assert r.line().startswith(b"MSG news guest")
            nc.close()
            ping = subprocess.run(cli + ["ping"], capture_output=True, timeout=10 * slow_factor())
            assert ping.stdout.strip() == b"PONG"
        finally:
            for p in (sub, psub):
                p.kill()
                p.wait()


def test_python_redis_library(ctx):
    code = r"""
import sys, time, redis
kw = dict(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=10)
if sys.argv[2] == "1":
    kw.update(ssl=True, ssl_cert_reqs=None)
r = redis.Redis(**kw)
assert r.ping() is True
p = r.pubsub()
p.subscribe("news")
m = p.get_message(timeout=5)
assert m["type"] == "subscribe" and m["channel"] == b"news" and m["data"] == 1, m
p.psubscribe("n?ws")
m = p.get_message(timeout=5)
assert m["type"] == "psubscribe" and m["data"] == 2, m
assert r.publish("news", b"\x00bin\r\nary") == 2
got = []
end = time.time() + 10
while len(got) < 2 and time.time() < end:
    m = p.get_message(timeout=1)
    if m:
        got.append(m)
assert sorted(g["type"] for g in got) == ["message", "pmessage"], got
assert all(g["data"] == b"\x00bin\r\nary" and g["channel"] == b"news" for g in got), got
p.unsubscribe()
p.punsubscribe()
p.close()
try:
    r.execute_command("GET", "k")
    raise SystemExit("GET should fail")
except redis.ResponseError as e:
    assert "unknown command" in str(e), e
print("ok")
"""
    with Weft(extra_args=CHAT) as w:
        port = w.tls_port if TLS else w.port
        res = subprocess.run(["/usr/bin/python3", "-c", code, str(port), "1" if TLS else "0"],
                             capture_output=True, timeout=60 * slow_factor())
        assert res.returncode == 0 and res.stdout.strip() == b"ok", res


# ---- fan-out ---------------------------------------------------------------------

def subscribe_all(socks, readers, channel):
    for s in socks:
        send_all(s, resp_cmd("SUBSCRIBE", channel))
    for r in readers:
        v = r.value()
        assert v == [b"subscribe", channel.encode(), 1], v


def expect_messages(r, channel, msgs):
    for m in msgs:
        v = r.value()
        assert v == [b"message", channel, m], "expected %r, got %r" % (m, v)


def test_one_publisher_hundred_subscribers(ctx):
    n_subs, n_msgs = scale(100, asan=2, tsan=4), scale(200, asan=2, tsan=4)
    weftest.raise_nofile(4 * n_subs + 64)
    with Weft(extra_args=CHAT) as w:
        socks = weftest.connect_many(w, n_subs)
        readers = [Reader(s, 30) for s in socks]
        try:
            subscribe_all(socks, readers, "fan")
            pub, rp = resp_client(w)
            msgs = [b"m%05d-" % i + os.urandom(8).hex().encode() for i in range(n_msgs)]
            send_all(pub, b"".join(resp_cmd("PUBLISH", "fan", m) for m in msgs))
            for _ in msgs:
                assert rp.value() == n_subs
            for r in readers:  # every message once, in publish order, nothing else
                expect_messages(r, b"fan", msgs)
            send_all(pub, resp_cmd("PUBLISH", "fan", "last"))
            assert rp.value() == n_subs
            for r in readers:
                expect_messages(r, b"fan", [b"last"])
                assert not r.buf
            pub.close()
        finally:
            close_all(socks)


def test_ten_channels_ten_subscribers(ctx):
    n_msgs = scale(50, asan=2, tsan=4)
    weftest.raise_nofile(512)
    # 110 clients at once: pool serves at most --workers of them, by design.
    with Weft(extra_args=CHAT + (["--workers", "128"] if weftest.MODEL == "pool" else [])) as w:
        groups = []
        try:
            for c in range(10):
                socks = weftest.connect_many(w, 10)
                readers = [Reader(s, 30) for s in socks]
                subscribe_all(socks, readers, "ch%d" % c)
                groups.append((socks, readers))
            pubs = [resp_client(w) for _ in range(10)]
            sent = {c: [b"c%d-%d" % (c, i) for i in range(n_msgs)] for c in range(10)}
            for i in range(n_msgs):  # interleave the channels
                for c in range(10):
                    send_all(pubs[c][0], resp_cmd("PUBLISH", "ch%d" % c, sent[c][i]))
            for c in range(10):
                for _ in range(n_msgs):
                    assert pubs[c][1].value() == 10
                for r in groups[c][1]:
                    expect_messages(r, b"ch%d" % c, sent[c])
            close_all([p[0] for p in pubs])
        finally:
            for socks, _ in groups:
                close_all(socks)


# ---- slow consumers ------------------------------------------------------------------

def test_slow_subscriber_dropped_others_served(ctx):
    hard = 2 << 20
    size = 16 << 10
    total = scale(48 << 20, asan=2, tsan=4)
    with Weft(extra_args=CHAT + ["--outbox-hard", str(hard), "--outbox-soft", "0"]) as w:
        # It simply never reads until it has been dropped. (A tiny SO_RCVBUF
        # would make the final read crawl at one delayed ACK per window.)
        slow = w.connect()
        rs = Reader(slow)
        send_all(slow, resp_cmd("SUBSCRIBE", "firehose"))
        assert rs.value() == [b"subscribe", b"firehose", 1]
        fast, rf = resp_client(w)
        rf.timeout = 60 * slow_factor()
        send_all(fast, resp_cmd("SUBSCRIBE", "firehose"))
        assert rf.value() == [b"subscribe", b"firehose", 1]
        pub, rp = resp_client(w)
        rss0 = rss_kb(w.pid)
        body = b"x" * size
        count = total // size
        peak = 0
        got = None
        after = None  # messages published after the drop was seen
        for i in range(count):
            msg = b"%08d" % i + body[8:]
            send_all(pub, resp_cmd("PUBLISH", "firehose", msg))
            assert rp.value() in (1, 2)  # the slow one still counts until it is gone
            v = rf.value()
            assert v == [b"message", b"firehose", msg], "fast subscriber lost message %d" % i
            if i % 64 == 0:
                peak = max(peak, rss_kb(w.pid))
                if got is None and w.metric("weft_slow_consumer_disconnects_total", 'limit="hard"') >= 1:
                    # Read what it was sent at once: a dropped consumer gets a
                    # short linger to take its error line, then it is closed.
                    got = bytes(rs.buf) + recv_until_closed(slow, 30 * slow_factor(), limit=4 * hard + (8 << 20))
                    after = 0
            if after is not None:
                after += 1
                if after > 256:
                    break  # the others kept being served after the drop
        peak = max(peak, rss_kb(w.pid))
        assert got is not None, "the subscriber that never read was not dropped after %d bytes" % total
        assert after > 256, "publishing stopped %d messages after the drop" % after
        assert b"-ERR slow consumer: more than %d bytes unsent" % hard in got[-300:], got[-300:]
        assert len(got) < total // 2, len(got)  # it was cut off long before the end
        # Without the limit the server would hold the whole firehose for it.
        # (Sanitizer builds keep freed memory in quarantine: RSS says nothing there.)
        if weftest.SANITIZER == "none":
            assert (peak - rss0) * 1024 < total // 2, (rss0, peak, total)
        close_all([fast, pub])


# ---- byte for byte against redis-server ------------------------------------------------

# The cases run at once, each on its own connection: channel names differ
# wherever a count of subscribers is in the reply.
CASES = [
    resp_cmd("PING"), resp_cmd("ping", "hi"), resp_cmd("ping", "a", "b"),
    resp_cmd("subscribe", "a", "b", "a") + resp_cmd("ping") + resp_cmd("ping", "x") + resp_cmd("publish", "a", "x")
    + resp_cmd("get", "k") + resp_cmd("unsubscribe", "a") + resp_cmd("unsubscribe") + resp_cmd("unsubscribe")
    + resp_cmd("publish", "a", "x"),
    resp_cmd("psubscribe", "n*", "h?llo") + resp_cmd("punsubscribe", "zz") + resp_cmd("punsubscribe", "n*")
    + resp_cmd("punsubscribe", "h?llo") + resp_cmd("punsubscribe"),
    resp_cmd("subscribe"), resp_cmd("publish", "a"), resp_cmd("foo", "a" * 200, "b"), resp_cmd("foo"),
    resp_cmd("quit") + resp_cmd("ping"), resp_cmd("foo", "a\r\nb"),
    b"*x\r\n", b"*1\r\nx\r\n", b"*1\r\n$-5\r\n", b"*01\r\n", b"*0\r\n" + resp_cmd("ping"), b"*-1\r\n" + resp_cmd("ping"),
    resp_cmd("PING") + b"PING\r\n" + b"ping  a \r\n" + b"\r\n" + b"PUBLISH inl d\n",
    resp_cmd("publish", "x y", "z"), resp_cmd("Subscribe", "c") + resp_cmd("publish"),
    resp_cmd("subscribe", "c") + resp_cmd("SET", "k", "v"),
    b"*2\r\n$4\r\nping\r\n$3\r\nab", b"*1\r\n$4\r\nping\r\n*1\r\n$4\r\npi",  # truncated: only the whole one answered
]


def read_all_quiet(socks, quiet, want=None, deadline=None):
    """Read every socket until each has closed or gone quiet: nothing more for
    `quiet` seconds, and (when want is given) at least as many bytes as its
    want entry, or the deadline passed. Returns the bytes per socket."""
    import selectors
    out = [bytearray() for _ in socks]
    done = [False] * len(socks)
    last = time.monotonic()
    sel = selectors.DefaultSelector()
    timeouts = [sock.gettimeout() for sock in socks]
    for i, sock in enumerate(socks):
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, i)
    try:
        while not all(done):
            now = time.monotonic()
            short = want is not None and now < deadline and any(
                not done[i] and len(out[i]) < len(want[i]) for i in range(len(socks)))
            if not short and now - last >= quiet:
                break
            for key, _ in sel.select(0.02):
                i = key.data
                try:
                    b = socks[i].recv(1 << 16)
                    # TLS: a record already decrypted is not on the fd any more
                    while b and isinstance(socks[i], ssl.SSLSocket) and socks[i].pending():
                        b += socks[i].recv(1 << 16)
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                    continue
                except OSError:
                    b = b""
                if b:
                    out[i] += b
                    last = time.monotonic()
                else:
                    done[i] = True
                    sel.unregister(socks[i])
    finally:
        sel.close()
        for sock, t in zip(socks, timeouts):
            sock.settimeout(t)
    return [bytes(o) for o in out]


def resp_frames(data):
    """Split a RESP stream into its top-level values, each as its own bytes."""
    frames, i = [], 0

    def skip(i):
        j = data.index(b"\r\n", i)
        t, n = data[i:i + 1], int(data[i + 1:j]) if data[i:i + 1] in b"*$" else 0
        i = j + 2
        if t == b"$" and n >= 0:
            return i + n + 2
        if t == b"*":
            for _ in range(max(n, 0)):
                i = skip(i)
        return i
    while i < len(data):
        j = skip(i)
        frames.append(data[i:j])
        i = j
    return frames


def ask_both(rport, w, cases):
    """Each case on its own connection, all at once: first to redis-server (it
    answers in microseconds), then to weft, which must send as many bytes.
    Returns (redis' replies, weft's replies), one bytes per case."""
    rs = [socket.create_connection(("127.0.0.1", rport), timeout=5) for _ in cases]
    ws = [w.connect() for _ in cases]
    try:
        for sock, case in zip(rs, cases):
            send_all(sock, case)
        wants = read_all_quiet(rs, 0.2)
        for sock, case in zip(ws, cases):
            send_all(sock, case)
        gots = read_all_quiet(ws, 0.2 * slow_factor(), wants, time.monotonic() + 10 * slow_factor())
    finally:
        close_all(rs + ws)
    return wants, gots


def test_resp_bytes_match_redis_server(ctx):
    with redis_server() as port, Weft(extra_args=CHAT) as w:
        # The same bytes, and nothing after them.
        wants, gots = ask_both(port, w, CASES)
        for case, want, got in zip(CASES, wants, gots):
            assert want == got, "request %r\n redis: %r\n weft:  %r" % (case, want, got)
        # deliveries: a subscriber on each side, the same publishes
        q = 0.3 * slow_factor()
        subs = [socket.create_connection(("127.0.0.1", port), timeout=5), w.connect()]
        for sock in subs:
            send_all(sock, resp_cmd("SUBSCRIBE", "news") + resp_cmd("PSUBSCRIBE", "n*", "*s"))
        read_all_quiet(subs, q)
        pubs = [socket.create_connection(("127.0.0.1", port), timeout=5), w.connect()]
        req = resp_cmd("PUBLISH", "news", "hello") + resp_cmd("PUBLISH", "nope", b"\x00\r\n") \
            + resp_cmd("PUBLISH", "zzz", "none")
        for sock in pubs:
            send_all(sock, req)
        replies = read_all_quiet(pubs, q)
        assert replies[0] == replies[1], replies
        seen = read_all_quiet(subs, q)
        # Every delivery byte for byte. Redis walks its patterns in hash
        # order, so the pmessages of one PUBLISH may come in another order;
        # the plain messages keep theirs.
        frames = [resp_frames(x) for x in seen]
        assert sorted(frames[0]) == sorted(frames[1]), seen
        plain = [[f for f in fr if f.startswith(b"*3\r\n$7\r\nmessage")] for fr in frames]
        assert plain[0] == plain[1], seen
        close_all(subs + pubs)


# ---- bad input ----------------------------------------------------------------------------

def test_garbage_oversized_truncated(ctx):
    with Weft(extra_args=CHAT + ["--max-line", "1k", "--max-message", "4k", "--max-subs", "3"]) as w:
        watch, rw = resp_client(w)
        send_all(watch, resp_cmd("PSUBSCRIBE", "*"))
        assert rw.value() == [b"psubscribe", b"*", 1]
        # line: an oversized line is refused and skipped; the connection goes on
        a, ra = line_client(w, b"/join t")
        assert ra.line() == b"OK join t 1"
        send_all(a, b"y" * 3000 + b"\nstill here\n")
        assert ra.line().startswith(b"ERR line too long")
        mine = ra.line()
        assert mine.startswith(b"MSG t guest") and mine.endswith(b" still here"), mine
        send_all(a, b"/join bad\x01name\n/nick no spaces\n/frob\n/join a\n/join b\n/join c\n")
        lines = [ra.line() for _ in range(6)]
        assert lines[0].startswith(b"ERR invalid channel name"), lines
        assert lines[1].startswith(b"ERR invalid nick"), lines
        assert lines[2].startswith(b"ERR unknown command '/frob'"), lines
        assert lines[3:5] == [b"OK join a 1", b"OK join b 1"], lines
        assert lines[5].startswith(b"ERR too many subscriptions: 3 channels and patterns at most"), lines
        # a partial line, then the connection drops: nothing published
        send_all(a, b"/pub t never sent")
        a.close()
        v = rw.value()
        assert v[0] == b"pmessage" and v[3] == b"still here", v  # the one whole line, nothing else
        # RESP: garbage and oversized bulks are protocol errors, then close
        for bad, err in ((b"*1\r\n$x\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
                         (b"*1\r\n:5\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
                         (b"*2\r\n$7\r\nPUBLISH\r\n$5000\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
                         (b"*" + b"9" * 30 + b"\r\n", b"-ERR Protocol error: invalid multibulk length\r\n")):
            s = w.connect()
            send_all(s, bad)
            assert recv_until_closed(s, 10 * slow_factor()) == err, bad
            s.close()
        # The line user that left is detached only once its server side has
        # seen the close (with a thread per connection, in that thread's own
        # time): wait until just watch and /metrics' own connection are open,
        # so the count PUBLISH returns below is the watcher's alone.
        assert wait_for(lambda: w.metric("weft_connections_open") == 2, 10 * slow_factor()), \
            w.metric("weft_connections_open")
        # a truncated PUBLISH, then a reset: nothing published
        s = w.connect()
        send_all(s, resp_cmd("PUBLISH", "t", "half")[:-4])
        s.close()
        s, rs = resp_client(w)
        send_all(s, resp_cmd("PUBLISH", "t", "whole"))
        assert rs.value() == 1
        assert rw.value() == [b"pmessage", b"*", b"t", b"whole"]
        # binary garbage on a line connection gets errors, not a crash
        g = w.connect()
        send_all(g, bytes(range(256)) * 4 + b"\n/quit\n")
        out = recv_until_closed(g, 10 * slow_factor())
        assert out.endswith(b"BYE\n"), out[-200:]
        close_all([watch, s, g])
        assert w.alive()
