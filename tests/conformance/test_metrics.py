"""test_metrics.py - /metrics as an operator's alerting sees it, on every
model: the exposition parses (every line HELP, TYPE or a sample; one family
per name, its samples together, its TYPE before them); every close is counted
once under its reason, so after a scripted mix of closes (the peer's FIN,
QUIT, the idle timeout at --idle-timeout 1, an RST, a protocol error) the
reasons move by exactly that mix and add up to the connections accepted;
process_* series are there and agree with /proc; HTTP responses are counted
by status; no weft_cluster_ series without --cluster (tests/cluster checks
they are there with it). One server per test, plain TCP (raw sockets: the
scripted closes are TCP-level), about 1.5 s per variant."""
import os
import re
import socket
import struct
import time

from weftest import HOST, Weft, parse_exposition, recv_until_closed, send_all, slow_factor, wait_for

CHAT_IDLE_1 = ["--mode", "chat", "--idle-timeout", "1"]
PING = b"*1\r\n$4\r\nPING\r\n"
REASONS = ("peer", "quit", "idle", "reset", "drain", "drain_timeout", "slow_consumer", "timeout", "bad_input",
           "error")

class Scraper:
    """One keep-alive HTTP connection that GETs /metrics (or any path), so the
    scrapes themselves open and close nothing the close counts would see."""

    def __init__(self, w):
        self.s = socket.create_connection((HOST, w.port), timeout=10 * slow_factor())
        self.buf = b""

    def get(self, path="/metrics"):
        send_all(self.s, ("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(l.split(":", 1)[1]) for l in lines if l.lower().startswith("content-length:"))
        while len(self.buf) < length:
            self._more()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body.decode()

    def _more(self):
        b = self.s.recv(1 << 16)
        if not b:
            raise AssertionError("the scrape connection was closed (idle while the test was slow?)")
        self.buf += b

    def metrics(self):
        status, text = self.get()
        assert status == 200, status
        return parse_exposition(text), text

    def close(self):
        self.s.close()


def family(m, name):
    return {k: v for k, v in m.items() if k.split("{", 1)[0] == name}


def closed_by_reason(m):
    """{reason: count} from weft_connections_closed_total; every reason present."""
    out = {}
    for k, v in family(m, "weft_connections_closed_total").items():
        r = re.search(r'reason="([^"]*)"', k)
        assert r, "a close counted without its reason: " + k
        out[r.group(1)] = v
    assert set(out) == set(REASONS), "close reasons: %s" % sorted(out)
    return out


def one(m, name, label=""):
    got = [v for k, v in family(m, name).items() if label in k]
    assert len(got) == 1, "%s%s: %r" % (name, label, got)
    return got[0]


def ping_pong(s):
    send_all(s, PING)
    assert recv_until_pong(s) == b"+PONG\r\n"


def recv_until_pong(s):
    data = b""
    while not data.endswith(b"\r\n"):
        b = s.recv(64)
        if not b:
            break
        data += b
    return data


def connect(w):
    return socket.create_connection((HOST, w.port), timeout=10 * slow_factor())


def test_close_reasons_add_up(ctx):
    with Weft(CHAT_IDLE_1, tls_listener=False) as w:
        sc = Scraper(w)
        before, _ = sc.metrics()
        held = [connect(w) for _ in range(3)]  # these end at the idle timeout
        for s in held:
            ping_pong(s)
        peer = connect(w)  # FIN from the client
        ping_pong(peer)
        peer.close()
        quit_ = connect(w)  # QUIT
        send_all(quit_, b"*1\r\n$4\r\nQUIT\r\n")
        assert recv_until_closed(quit_) == b"+OK\r\n"
        quit_.close()
        reset = connect(w)  # RST: SO_LINGER 0
        ping_pong(reset)
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.close()
        bad = connect(w)  # a RESP protocol error
        send_all(bad, b"*x\r\n")
        assert recv_until_closed(bad).startswith(b"-ERR Protocol error")
        bad.close()

        expect = dict.fromkeys(REASONS, 0)
        expect.update(peer=1, quit=1, idle=len(held), reset=1, bad_input=1)
        accepted = len(held) + 4
        state = {}

        def settled():
            # every 0.1 s: the scrape connection itself never idles out
            m, _ = sc.metrics()
            b, a = closed_by_reason(before), closed_by_reason(m)
            state.update(m=m, delta={r: a[r] - b[r] for r in REASONS})
            return state["delta"] == expect and one(m, "weft_connections_open") == 1

        ok = wait_for(settled, 5 * slow_factor(), 0.1)
        delta, m = state["delta"], state["m"]
        assert ok, "closes by reason moved by %s, expected %s; open %s\n%s" % (
            delta, expect, one(m, "weft_connections_open"), w.tail())
        got = one(m, "weft_connections_accepted_total") - one(before, "weft_connections_accepted_total")
        assert got == accepted == sum(delta.values()), (got, accepted, delta)
        # none of these is an error an operator is paged for
        errors = family(m, "weft_errors_total")
        assert errors and sum(errors.values()) == 0, errors
        assert not [s for s in held if s.recv(1)], "an idle connection got bytes instead of a close"
        for s in held:
            s.close()
        sc.close()


def test_exposition_and_process_series(ctx):
    with Weft(CHAT_IDLE_1, tls_listener=False) as w:
        sc = Scraper(w)
        held = [connect(w) for _ in range(5)]
        for s in held:
            ping_pong(s)
        m, text = sc.metrics()  # the parser checks the format
        assert "weft_cluster_" not in text, "cluster series without --cluster"
        for name in ("process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_cpu_seconds_total", "process_start_time_seconds"):
            assert name in m, "%s missing" % name
        assert m["process_resident_memory_bytes"] > 0
        assert m["process_virtual_memory_bytes"] >= m["process_resident_memory_bytes"]
        assert m["process_open_fds"] >= len(held) + 1, (m["process_open_fds"], len(held) + 1)
        assert m["process_max_fds"] >= m["process_open_fds"]
        assert m["process_cpu_seconds_total"] >= 0
        with open("/proc/%d/stat" % w.pid) as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(l.split()[1]) for l in f if l.startswith("btime "))
        started = btime + start_ticks / os.sysconf("SC_CLK_TCK")
        assert abs(m["process_start_time_seconds"] - started) < 0.05, (m["process_start_time_seconds"], started)
        assert started <= time.time()
        # by status: this scrape's 200 and one 404, each once
        status, _ = sc.get("/nope")
        assert status == 404
        after, _ = sc.metrics()
        for code, n in (("200", 1), ("404", 1), ("400", 0)):
            got = one(after, "weft_http_requests_total", 'status="%s"' % code) - \
                one(m, "weft_http_requests_total", 'status="%s"' % code)
            assert got == n, "status %s moved by %d, expected %d" % (code, got, n)
        for s in held:
            s.close()
        sc.close()
