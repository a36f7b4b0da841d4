"""test_introspect.py - Redis introspection (issue 20 item 5) on every model:
PUBSUB CHANNELS / NUMSUB / NUMPAT, CLIENT SETNAME / GETNAME / ID and their
errors, and what RESP2 refuses while subscribed, byte for byte against a real
redis-server holding the same subscriptions; INFO in Redis' format with
weft's values; CLIENT INFO / LIST; the line protocol's /who and /numpat; and
the /metrics gauges for channels, patterns and subscriptions. On the
--threads 2 variants the subscribers are spread over both loops (several
connections, SO_REUSEPORT), so the counts cover every loop."""
import re
import socket
import subprocess
import time

from weftest import Weft, close_all, redis_server, resp_cmd, send_all, slow_factor, wait_for
from test_chat import Reader, ask_both, read_all_quiet, resp_frames

CHAT = ["--mode", "chat"]

# Requests whose replies do not depend on the server's state: each on its own
# connection, all at once.
STATELESS = [
    resp_cmd("PUBSUB"), resp_cmd("pubsub", "foo"), resp_cmd("PUBSUB", "FOO", "x"), resp_cmd("pubsub", "f\x00oo"),
    resp_cmd("pubsub", "numpat", "x"), resp_cmd("pubsub", "channels", "a", "b"),
    resp_cmd("PUBSUB", "Channels", "a", "b"), resp_cmd("pubsub", "help", "x"), resp_cmd("pubsub", "numsub"),
    resp_cmd("CLIENT"), resp_cmd("client", "foo"), resp_cmd("client", "getname"),
    resp_cmd("client", "setname", "a b"), resp_cmd("client", "setname", "x\n"),
    resp_cmd("client", "setname", b"\xc3\xa9"), resp_cmd("client", "setname"),
    resp_cmd("client", "setname", "ok", "x"), resp_cmd("client", "getname", "x"), resp_cmd("client", "id", "x"),
    resp_cmd("CLIENT", "SETNAME", "bob") + resp_cmd("client", "getname") + resp_cmd("client", "setname", "")
    + resp_cmd("CLIENT", "GETNAME"),
    resp_cmd("info", "nosuchsection"),
    # RESP2 subscribed context: unknown subcommand and arity first, then the
    # context error naming the subcommand
    resp_cmd("subscribe", "ctx1") + resp_cmd("pubsub", "numpat") + resp_cmd("pubsub", "foo") + resp_cmd("pubsub")
    + resp_cmd("client", "id") + resp_cmd("client", "foo") + resp_cmd("info") + resp_cmd("pubsub", "numpat", "x")
    + resp_cmd("pubsub", "channels", "x", "y") + resp_cmd("client", "setname") + resp_cmd("CLIENT", "GETNAME")
    + resp_cmd("info", "server") + resp_cmd("unsubscribe") + resp_cmd("pubsub", "numsub", "ctx1"),
]

# The same subscriptions on both servers: (connection's requests) ...
SUBSCRIBERS = [
    resp_cmd("SUBSCRIBE", "news", "sport"), resp_cmd("SUBSCRIBE", "news"), resp_cmd("SUBSCRIBE", "news", "weather"),
    resp_cmd("PSUBSCRIBE", "n*", "s?ort"), resp_cmd("PSUBSCRIBE", "n*"), resp_cmd("PSUBSCRIBE", "w*", "n*"),
]
# ... and the queries on them whose replies are fully determined.
STATEFUL = [
    resp_cmd("PUBSUB", "NUMSUB", "news", "sport", "weather", "none", "n*"), resp_cmd("pubsub", "numpat"),
    resp_cmd("pubsub", "channels", "n*"), resp_cmd("pubsub", "channels", "x*"), resp_cmd("pubsub", "channels", "[sw]port"),
    resp_cmd("PUBLISH", "news", "hi"),
]


def test_introspection_bytes_match_redis_server(ctx):
    with redis_server() as rport, Weft(extra_args=CHAT, tls_listener=False) as w:
        wants, gots = ask_both(rport, w, STATELESS)
        for case, want, got in zip(STATELESS, wants, gots):
            assert want == got, "request %r\n redis: %r\n weft:  %r" % (case, want, got)
        # The same subscribers on both, kept open while the queries run.
        subs = [[socket.create_connection(("127.0.0.1", rport), timeout=5) for _ in SUBSCRIBERS],
                [w.connect() for _ in SUBSCRIBERS]]
        for side in subs:
            for sock, req in zip(side, SUBSCRIBERS):
                send_all(sock, req)
        # redis-server's acks: the same wait as weft's (a loaded machine can hold
        # either past a fixed 0.2 s, and an empty reference compares unequal)
        # (a lower bound: every ack of one name is over 30 bytes)
        want = [b"x" * 30 * (int(req[1:req.index(b"\r")]) - 1) for req in SUBSCRIBERS]
        want_acks = read_all_quiet(subs[0], 0.2, want, time.monotonic() + 10)
        got_acks = read_all_quiet(subs[1], 0.2 * slow_factor(), want_acks, time.monotonic() + 10 * slow_factor())
        assert want_acks == got_acks, (want_acks, got_acks)
        wants, gots = ask_both(rport, w, STATEFUL + [resp_cmd("PUBSUB", "CHANNELS")])
        for case, want, got in zip(STATEFUL, wants, gots):
            assert want == got, "request %r\n redis: %r\n weft:  %r" % (case, want, got)
        # Every channel: Redis lists them in hash order, weft by name.
        bulks = [resp_frames(x[4:]) for x in (wants[-1], gots[-1])]
        assert wants[-1][:4] == gots[-1][:4] == b"*3\r\n" and sorted(bulks[0]) == bulks[1], (wants, gots)
        assert bulks[1] == [b"$4\r\nnews\r\n", b"$5\r\nsport\r\n", b"$7\r\nweather\r\n"], gots
        # weft's own gauges for the same state
        assert w.metric("weft_chat_channels") == 3
        assert w.metric("weft_chat_patterns") == 3
        assert w.metric("weft_chat_subscriptions") == 10
        for side in subs:
            close_all(side)
        assert wait_for(lambda: w.metric("weft_chat_subscriptions") == 0, 5 * slow_factor())
        assert w.metric("weft_chat_channels") == 0 and w.metric("weft_chat_patterns") == 0


def parse_info(body):
    sections, cur = {}, None
    assert body.endswith(b"\r\n"), body
    for line in body.decode().split("\r\n"):
        if line.startswith("# "):
            cur = sections.setdefault(line[2:], {})
        elif line:
            k, v = line.split(":", 1)
            cur[k] = v
    return sections


def test_info_and_client(ctx):
    with Weft(extra_args=CHAT, tls_listener=False) as w:
        sub = w.connect()
        send_all(sub, resp_cmd("PSUBSCRIBE", "a*") + resp_cmd("SUBSCRIBE", "x", "y"))
        rsub = Reader(sub)
        for _ in range(3):
            rsub.value()
        s = w.connect()
        r = Reader(s)
        send_all(s, resp_cmd("INFO"))
        info = parse_info(r.value())
        assert list(info) == ["Server", "Clients", "Stats", "CPU", "Keyspace"], info
        assert info["Server"]["process_id"] == str(w.pid)
        assert info["Server"]["tcp_port"] == str(w.port)
        assert info["Server"]["weft_model"] == ctx.model
        assert int(info["Clients"]["connected_clients"]) == 2
        assert info["Stats"]["pubsub_channels"] == "2" and info["Stats"]["pubsub_patterns"] == "1"
        assert int(info["Stats"]["total_connections_received"]) >= 2
        assert float(info["CPU"]["used_cpu_user"]) >= 0
        # sections by name, any case, in Redis' order, a blank line between
        send_all(s, resp_cmd("info", "STATS", "clients"))
        body = r.value()
        assert re.fullmatch(rb"# Clients\r\n(\w+:\d+\r\n)+\r\n# Stats\r\n(\w+:\d+\r\n)+", body), body
        send_all(s, resp_cmd("client", "id") + resp_cmd("CLIENT", "SETNAME", "probe") + resp_cmd("client", "info")
                 + resp_cmd("client", "list") + resp_cmd("client", "help"))
        cid = r.value()
        assert isinstance(cid, int)
        assert r.value() == b"OK"
        line = r.value()
        assert line.startswith(b"id=%d name=probe age=" % cid) and b" flags=N " in line and line.endswith(b"\n"), line
        err = r.value()
        assert err[0] == "err" and err[1].startswith(b"ERR CLIENT LIST is not served by weft"), err
        assert r.value()[0].startswith(b"CLIENT <subcommand>")
        other = w.connect()
        send_all(other, resp_cmd("client", "id"))
        assert Reader(other).value() != cid
        close_all([sub, s, other])


def test_python_redis_library(ctx):
    """redis-py's own parsers take the replies (client_info() needs every
    integer field of Redis' CLIENT INFO line, info() parses the sections)."""
    code = r"""
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=10)
p = r.pubsub()
p.subscribe("news")
p.psubscribe("n*")
assert p.get_message(timeout=5)["type"] == "subscribe"
assert p.get_message(timeout=5)["type"] == "psubscribe"
assert r.pubsub_channels() == [b"news"], r.pubsub_channels()
assert r.pubsub_channels("x*") == []
assert r.pubsub_numsub("news", "none") == [(b"news", 1), (b"none", 0)]
assert r.pubsub_numpat() == 1
assert r.client_setname("probe") is True and r.client_getname() == "probe"
ci = r.client_info()
assert ci["id"] == r.client_id() and ci["name"] == "probe" and ci["sub"] == 0, ci
info = r.info()
assert info["pubsub_channels"] == 1 and info["pubsub_patterns"] == 1 and info["connected_clients"] == 2, info
assert r.info("cpu")["used_cpu_user"] >= 0
print("ok")
"""
    with Weft(extra_args=CHAT, tls_listener=False) as w:
        res = subprocess.run(["/usr/bin/python3", "-c", code, str(w.port)], capture_output=True,
                             timeout=60 * slow_factor())
        assert res.returncode == 0 and res.stdout.strip() == b"ok", res


def test_line_who_and_numpat(ctx):
    with Weft(extra_args=CHAT, tls_listener=False) as w:
        socks = []
        for req, acks in ((resp_cmd("PSUBSCRIBE", "r*", "q?"), 2), (resp_cmd("PSUBSCRIBE", "r*"), 1),
                          (resp_cmd("SUBSCRIBE", "room"), 1)):
            s = w.connect()
            send_all(s, req)
            rs = Reader(s)
            for _ in range(acks):
                rs.value()
            socks.append(s)
        line = w.connect()
        socks.append(line)
        send_all(line, b"/join room\n")
        r = Reader(line)
        assert r.line() == b"OK join room 2"
        send_all(line, b"/who room\n/WHO empty\n/numpat\n/who\n/who a\x01b\n")
        assert r.line() == b"WHO room 2"
        assert r.line() == b"WHO empty 0"
        assert r.line() == b"NUMPAT 2"
        assert r.line() == b"ERR usage: /who CHANNEL"
        assert r.line().startswith(b"ERR invalid channel name")
        close_all(socks)
