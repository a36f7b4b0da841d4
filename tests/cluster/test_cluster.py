"""test_cluster.py - chat across weft nodes through a real redis-server
(--cluster): every model as a node, fan-out exactly once and in order,
kill -9 of the engine mid-stream, the weft_cluster_ series a node has only
with --cluster, a node started while the engine is down,
rediss:// with a test CA (and a wrong one), SIGTERM in every link state,
hostile engine messages, and the flags' usage errors.

Run by tests/conformance/run.py like the other suites; the nodes' models are
fixed per test (WEFT_MODEL_ARGS is not used), WEFT_BIN picks the binary."""
import os
import socket
import subprocess
import time

import weftest
from weftest import scale, slow_factor, wait_for
from clusterlib import (MODELS, Pub, Redis, Sub, engine_publish, free_port, link_up, node, resp, spy_envelope,
                        stop_all, wait_engine_subs)

BIN = os.environ.get("WEFT_BIN", "weft")
CLUSTER_FAMILIES = ("weft_cluster_link_up", "weft_cluster_disconnected_seconds_total", "weft_cluster_subscriptions",
                    "weft_cluster_reconnects_total", "weft_cluster_connect_failures_total", "weft_cluster_sent_total",
                    "weft_cluster_received_total", "weft_cluster_dropped_total", "weft_cluster_malformed_total")


def usage(args):
    r = subprocess.run([BIN] + args, capture_output=True, timeout=30)
    return r.returncode, r.stderr.decode(errors="replace")


def test_flags_usage_errors(ctx):
    for url in ["foo", "redis:/x", "http://127.0.0.1:6379", "redis://", "redis://h:0", "redis://h:65536",
                "redis://h:12x", "redis://user@h:1", "redis://:@h:1", "redis://h:1/0", "redis://[::1", "redis://h h:1"]:
        rc, err = usage(["--mode", "chat", "--port", "0", "--cluster", url])
        assert rc == 2, (url, rc, err)
        assert "--cluster" in err, (url, err)
    rc, err = usage(["--mode", "echo", "--port", "0", "--cluster", "redis://127.0.0.1:1"])
    assert rc == 2 and "--mode chat" in err, err
    rc, err = usage(["--mode", "chat", "--port", "0", "--cluster", "redis://127.0.0.1:1", "--cluster-prefix", "a*"])
    assert rc == 2 and "--cluster-prefix" in err, err
    rc, err = usage(["--mode", "chat", "--port", "0", "--cluster", "redis://127.0.0.1:1", "--cluster-insecure"])
    assert rc == 2 and "rediss://" in err, err
    rc, err = usage(["--mode", "chat", "--port", "0", "--cluster", "rediss://127.0.0.1:1", "--cluster-ca",
                     ctx.path("missing.pem")])
    assert rc == 2 and "--cluster-ca" in err, err
    rc, err = usage(["--mode", "chat", "--port", "0", "--cluster-ca", "x"])
    assert rc == 2 and "--cluster" in err, err
    # a bad URL's message never shows the password
    rc, err = usage(["--mode", "chat", "--port", "0", "--cluster", "redis://ann:sesame@h h:1"])
    assert rc == 2 and "--cluster" in err and "sesame" not in err and "ann:***@" in err, err
    key = ctx.path("key")
    with open(key, "w") as f:
        f.write("k" * 40 + "\n")
    os.chmod(key, 0o644)
    base = ["--mode", "chat", "--port", "0", "--cluster", "redis://127.0.0.1:1"]
    rc, err = usage(base + ["--cluster-key-file", key])
    assert rc == 2 and "--cluster-key-file" in err and "chmod 600" in err, err
    os.chmod(key, 0o600)
    with open(key, "w") as f:
        f.write("short\n")
    rc, err = usage(base + ["--cluster-key-file", key])
    assert rc == 2 and "--cluster-key-file" in err and "32" in err, err
    rc, err = usage(base + ["--cluster-key-file", ctx.path("nokey")])
    assert rc == 2 and "--cluster-key-file" in err, err
    rc, err = usage(base + ["--cluster-password-file", ctx.path("nopw")])
    assert rc == 2 and "--cluster-password-file" in err, err
    rc, err = usage(["--mode", "chat", "--port", "0", "--cluster", "redis://:pw@127.0.0.1:1",
                     "--cluster-password-file", key])
    assert rc == 2 and "contradict" in err, err
    for flag in ["--cluster-backoff-max", "--cluster-connect-timeout"]:
        rc, err = usage(base + [flag, "0"])
        assert rc == 2 and flag in err, err
    rc, err = usage(["--mode", "chat", "--port", "0", "--cluster-key-file", key])
    assert rc == 2 and "go with --cluster" in err, err
    # --cluster-hosts is bounded (each map read judges every node against every entry)
    hosts = ",".join("10.0.%d.%d" % (i // 256, i % 256) for i in range(257))
    rc, err = usage(["--mode", "chat", "--port", "0", "--cluster", "redis-cluster://127.0.0.1:1", "--cluster-hosts", hosts])
    assert rc == 2 and "--cluster-hosts" in err and "at most 256 entries and 8192 bytes" in err, err
    assert len(err) < 600, err  # the list is not echoed whole


def check_stream(got, pubs, n, own=None, complete=True):
    """got: texts b"<p>-<i>"; every publisher's messages strictly increasing
    (no duplicate, no reordering). complete: all n of each. Returns
    {publisher: [indices]}."""
    seen = {p: [] for p in pubs}
    for t in got:
        p, i = t.decode().rsplit("-", 1)
        assert p in seen, t
        seen[p].append(int(i))
    for p, v in seen.items():
        assert all(a < b for a, b in zip(v, v[1:])), "publisher %s out of order or duplicated: %s" % (p, v[:50])
        if complete or p == own:
            assert v == list(range(n)), "publisher %s: got %d of %d (first missing %s)" % (
                p, len(v), n, next((i for i in range(n) if i not in set(v)), None))
    return seen


def test_forged_sequence_cannot_silence_a_node(ctx):
    """The issue's attack: a third party on the engine reads one genuine
    envelope of node 0 and PUBLISHes it again with seq = last + 1000 (it
    cost node 1 every later genuine message of node 0 up to that number),
    and then other single forgeries: the next number with other data, 2^64-1,
    a number far behind. Without a key the forgeries themselves are
    delivered (anyone on the engine can speak as anyone), but no genuine
    message may be lost; an exact replay of a genuine envelope is a
    duplicate. Every model receives (the publisher is coro, and so is the
    last receiver)."""
    with Redis(ctx.tmpdir) as r:
        url = "redis://127.0.0.1:%d" % r.port
        nodes = [node(m, url) for m in ("coro", "threads", "pool", "uring", "coro")]
        spy = None
        try:
            assert wait_for(lambda: all(link_up(w) for w in nodes), 10 * slow_factor())
            subs = [Sub(w, "resp", "f") for w in nodes[1:]]
            spy = socket.create_connection(("127.0.0.1", r.port), timeout=10)
            spy.sendall(resp("SUBSCRIBE", "weft:f"))
            wait_engine_subs(r, "weft:f", len(nodes), 0)
            p = Pub(nodes[0])
            p.publish("f", b"real-0")
            for sub in subs:
                assert sub.read(1, 10) == [b"real-0"], sub.got
            head = spy_envelope(spy, b"real-0").split(b"\n")[0].split(b" ")
            assert len(head) == 6 and head[4] == b"1", head
            engine_publish(r, "weft:f", b" ".join(head) + b"\nreal-0")  # an exact replay
            forged = []
            for seq in [1001, 2, 18446744073709551615, 1000000]:  # last + 1000, the next, 2^64-1, far
                head[4] = b"%d" % seq
                forged.append(b"forged-%d" % seq)
                engine_publish(r, "weft:f", b" ".join(head) + b"\n" + forged[-1])
                p.publish("f", b"real-%d" % len(forged))
            for j in range(len(forged) + 1, 40):
                p.publish("f", b"real-%d" % j)
            for w, sub in zip(nodes[1:], subs):
                got = sub.read(40 + len(forged), 10)
                real = [g for g in got if g.startswith(b"real-")]
                assert real == [b"real-%d" % j for j in range(40)], "genuine messages dropped after a forgery: %s" % got
                assert [g for g in got if g.startswith(b"forged-")] == forged, got
                assert w.metric("weft_cluster_duplicates_dropped_total") == 1, "the replay"
                assert w.metric("weft_cluster_gaps_total") == 0, "nothing was lost"
                sub.close()
            p.close()
        finally:
            if spy:
                spy.close()
            stop_all(nodes)


def test_fanout_every_model(ctx):
    """Four nodes (threads, pool, coro, uring): channel, pattern and line
    subscribers (a line client's /psub of a pattern of its own among them:
    that pattern reaches the engine only through it) and a publisher on
    every node; every message reaches every subscriber exactly once, in
    per-publisher order; PUBLISH counts this node's receivers only; nothing
    from the engine is republished."""
    k = scale(200, asan=2, tsan=4)
    with Redis(ctx.tmpdir) as r:
        url = "redis://127.0.0.1:%d" % r.port
        nodes = [node(m, url) for m in ("threads", "pool", "coro", "uring")]
        try:
            assert wait_for(lambda: all(link_up(w) for w in nodes), 10 * slow_factor())
            subs = []
            for w in nodes:
                subs += [Sub(w, "resp", "news"), Sub(w, "pat", "ne*"), Sub(w, "line", "news"), Sub(w, "lpat", "n?ws")]
            wait_engine_subs(r, "weft:news", len(nodes), 2 * len(nodes))
            pubs = [Pub(w, line=(i % 2 == 1)) for i, w in enumerate(nodes)]
            names = ["n%d" % i for i in range(len(nodes))]
            for j in range(k):
                for i, p in enumerate(pubs):
                    p.publish("news", b"%s-%d" % (names[i].encode(), j))
            for p in pubs:
                counts = p.drain()
                assert counts == [4] * k, "PUBLISH must count this node's 4 receivers: %s" % counts[:20]
            for s in subs:
                got = s.read(len(nodes) * k, 20)
                check_stream(got, names, k)
            extra = Sub.more_than(subs, len(nodes) * k)
            assert not extra, "got more than once: %s" % ["%s %s" % (s.kind, s.name) for s in extra]
            for w in nodes:
                # With --cluster the bridge's source adds the weft_cluster_
                # families (a node without it has none: conformance.metrics),
                # and the exposition still parses strictly.
                status, _, body = w.http("/metrics")
                assert status == 200
                m = weftest.parse_exposition(body.decode())
                assert m['weft_cluster_link_up{model="%s"}' % w.args[1]] == 1
                for fam in CLUSTER_FAMILIES:
                    assert any(key.split("{")[0] == fam for key in m), "%s missing on %s" % (fam, w.args)
                g = lambda name: sum(v for key, v in m.items() if key.split("{")[0] == name)
                assert g("weft_cluster_sent_total") == k, (w.args, g("weft_cluster_sent_total"))
                # from 3 other nodes, on the channel and the two pattern subscriptions
                assert g("weft_cluster_received_total") == 3 * (len(nodes) - 1) * k, g("weft_cluster_received_total")
                assert g("weft_cluster_echoes_dropped_total") == 3 * k
                assert g("weft_cluster_gaps_total") == 0 and g("weft_cluster_duplicates_dropped_total") == 0
                assert g("weft_cluster_malformed_total") == 0
                assert m['weft_cluster_subscriptions{model="%s",kind="channel"}' % w.args[1]] == 1
                assert m['weft_cluster_subscriptions{model="%s",kind="pattern"}' % w.args[1]] == 2
            # The last local subscriber leaving unsubscribes on the engine.
            for s in subs:
                s.close()
            wait_engine_subs(r, "weft:news", 0, 0)
            for p in pubs:
                p.close()
        finally:
            stop_all(nodes)


def test_kill9_engine_mid_stream(ctx):
    """redis-server killed with -9 while three nodes publish, restarted on
    the same port a second later: local delivery never stops or reorders,
    remote delivery has no duplicates or reordering and resumes, and each
    node's gap counter equals what its subscriber lost."""
    tick = 0.01
    with Redis(ctx.tmpdir) as r:
        url = "redis://127.0.0.1:%d" % r.port
        models = ("coro", "uring", "threads")
        nodes = [node(m, url) for m in models]
        try:
            assert wait_for(lambda: all(link_up(w) for w in nodes), 10 * slow_factor())
            subs = [Sub(w, "resp", "k") for w in nodes]
            wait_engine_subs(r, "weft:k", 3, 0)
            pubs = [Pub(w) for w in nodes]
            names = list(models)
            j = 0
            t0 = time.monotonic()
            killed_at = restarted_at = None
            # ~1 s up, kill, ~1 s down, restart, then until every link is back and 2 s more.
            back_at = None
            deadline = t0 + 40 * slow_factor()
            while time.monotonic() < deadline:
                for i, p in enumerate(pubs):
                    p.publish("k", b"%s-%d" % (names[i].encode(), j))
                j += 1
                now = time.monotonic()
                if killed_at is None and now - t0 >= 1.0:
                    r.kill9()
                    killed_at = now
                elif killed_at is not None and restarted_at is None and now - killed_at >= 1.0:
                    r.start()
                    restarted_at = time.monotonic()
                elif restarted_at is not None and back_at is None and j % 20 == 0:
                    if all(link_up(w) for w in nodes):
                        back_at = time.monotonic()
                elif back_at is not None and now - back_at >= 2.0:
                    break
                time.sleep(tick)
            assert back_at is not None, "links did not come back:\n" + "\n".join(w.tail(10) for w in nodes)
            n = j
            for p in pubs:
                p.drain()
            report = []
            lasts = {b"%s-%d" % (m.encode(), n - 1) for m in names}  # every publisher's last: 2 s after the links are back
            for s in subs:
                s.read(3 * n, 30, until=lambda got: got[-1:] and got[-1] in lasts and lasts <= set(got))
            assert not Sub.more_than(subs), "a message after every publisher's last"
            for i, (w, s) in enumerate(zip(nodes, subs)):
                got = s.got
                seen = check_stream(got, names, n, own=names[i], complete=False)
                lost = 0
                for p, v in seen.items():
                    if p == names[i]:
                        continue
                    assert v and v[0] == 0 and v[-1] == n - 1, "%s from %s: first %s last %s of %d" % (
                        names[i], p, v[:1], v[-1:], n)
                    lost += n - len(v)
                gaps = w.metric("weft_cluster_gaps_total")
                assert gaps == lost, "%s: gap counter %d, subscriber lost %d" % (names[i], gaps, lost)
                assert w.metric("weft_cluster_duplicates_dropped_total") == 0
                assert w.metric("weft_cluster_reconnects_total") == 1
                report.append("%s lost %d of %d remote, gaps %d, dropped while down %d" % (
                    names[i], lost, 2 * n, gaps, w.metric("weft_cluster_dropped_total", 'reason="down"')))
            print("  kill -9: %d messages per publisher, engine down %.2f s, all links back %.2f s after the "
                  "restart; %s" % (n, restarted_at - killed_at, back_at - restarted_at, "; ".join(report)))
            for p in pubs:
                p.close()
        finally:
            stop_all(nodes)


def test_node_starts_while_engine_down(ctx):
    """A node whose engine is not there serves at once (local chat works,
    engine copies are dropped and counted) and joins when it comes up."""
    port = free_port()
    url = "redis://127.0.0.1:%d" % port
    nodes = [node("pool", url)]
    try:
        w = nodes[0]
        assert not link_up(w)
        s = Sub(w, "resp", "j")
        p = Pub(w)
        p.publish("j", b"alone-0")
        assert p.drain() == [1]
        assert s.read(1, 10) == [b"alone-0"]
        assert w.metric("weft_cluster_dropped_total", 'reason="down"') == 1
        assert w.wait_log("cannot reach", 10)
        with Redis(ctx.tmpdir, port=port) as r:
            assert wait_for(lambda: link_up(w), 15 * slow_factor()), w.tail()
            assert w.wait_log("subscribed 1 channels", 5)
            nodes.append(node("threads", url))
            s2 = Sub(nodes[1], "line", "j")
            wait_engine_subs(r, "weft:j", 2, 0)
            p2 = Pub(nodes[1])
            p2.publish("j", b"other-0")
            assert p2.drain() == [1]
            assert s.read(2, 10) == [b"alone-0", b"other-0"]
            p.publish("j", b"alone-1")
            p.drain()
            assert s2.read(2, 10) == [b"other-0", b"alone-1"]
            for c in (s, p, s2, p2):
                c.close()
            stop_all(nodes)
    finally:
        stop_all(nodes)


def make_ca(ctx, name):
    key, pem = ctx.path(name + ".key"), ctx.path(name + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=weft test " + name],
                   check=True, capture_output=True, timeout=30)
    return key, pem


def make_server_cert(ctx, ca_key, ca_pem):
    key, csr, pem, ext = (ctx.path(n) for n in ("srv.key", "srv.csr", "srv.pem", "srv.ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", pem, "-days", "2", "-extfile", ext], check=True, capture_output=True, timeout=30)
    return key, pem


def test_rediss_verified_and_wrong_ca_refused(ctx):
    ca_key, ca = make_ca(ctx, "ca")
    _, wrong = make_ca(ctx, "wrong")
    key, cert = make_server_cert(ctx, ca_key, ca)
    with Redis(ctx.tmpdir, tls=dict(cert=cert, key=key, ca=ca)) as r:
        url = "rediss://127.0.0.1:%d" % r.port
        nodes = [node("coro", url, ["--cluster-ca", ca]), node("threads", url, ["--cluster-ca", ca])]
        try:
            assert wait_for(lambda: all(link_up(w) for w in nodes), 10 * slow_factor()), nodes[0].tail()
            s = Sub(nodes[1], "line", "secure")
            wait_engine_subs(r, "weft:secure", 1, 0)
            p = Pub(nodes[0])
            p.publish("secure", b"over-tls-0")
            p.drain()
            assert s.read(1, 10) == [b"over-tls-0"]
            # A CA that did not sign the engine's certificate: refused, logged, counted, retried.
            bad = node("uring", url, ["--cluster-ca", wrong])
            nodes.append(bad)
            assert wait_for(lambda: bad.metric("weft_cluster_connect_failures_total", 'reason="tls"') >= 2,
                            15 * slow_factor()), bad.tail()
            assert "certificate refused" in bad.log(), bad.tail()
            assert not link_up(bad)
            bs = Sub(bad, "resp", "secure")  # it still serves its own clients
            bp = Pub(bad)
            bp.publish("secure", b"local-0")
            assert bp.drain() == [1]
            assert bs.read(1, 10) == [b"local-0"]
            assert s.read(2, 1) == [b"over-tls-0"], "a message crossed a link that should not exist"
            # Not verifying at all is a choice one makes by name.
            loose = node("pool", url, ["--cluster-insecure"])
            nodes.append(loose)
            assert wait_for(lambda: link_up(loose), 10 * slow_factor()), loose.tail()
            for c in (s, p, bs, bp):
                c.close()
        finally:
            stop_all(nodes)


def test_sigterm_in_every_link_state(ctx):
    """Exit 0 on SIGTERM while backing off, connecting, in the TLS handshake,
    and up."""
    nodes = []
    # backoff: nothing listens
    w = node("threads", "redis://127.0.0.1:%d" % free_port())
    nodes.append(w)
    assert w.wait_log("cannot reach", 10)
    assert w.stop() == 0
    # connecting: a listener whose backlog is full never completes our SYN
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(full.getsockname())
        fillers.append(c)
    w = node("pool", "redis://127.0.0.1:%d" % full.getsockname()[1])
    nodes.append(w)
    time.sleep(0.5)
    assert not link_up(w)
    assert w.stop() == 0
    # TLS handshake: a listener that accepts and never answers
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    w = node("coro", "rediss://127.0.0.1:%d" % mute.getsockname()[1], ["--cluster-insecure"])
    nodes.append(w)
    mute.settimeout(10 * slow_factor())
    held = [mute.accept()[0], mute.accept()[0]]
    assert not link_up(w)
    assert w.stop() == 0
    for c in held + fillers + [full, mute]:
        c.close()
    # up
    with Redis(ctx.tmpdir) as r:
        w = node("uring", "redis://127.0.0.1:%d" % r.port)
        nodes.append(w)
        assert wait_for(lambda: link_up(w), 10 * slow_factor())
        assert w.stop() == 0
    stop_all(nodes)


def test_hostile_engine_messages(ctx):
    """Anyone may PUBLISH on weft:<channel> with redis-cli: what is not an
    envelope is counted and dropped, and the node carries on."""
    garbage = [b"", b"hello", b"weft1", b"weft1 ", b"weft1 0123456789abcdef 1 0 1 nick",  # no newline
               b"weft1 0123456789abcdeg 1 0 1 nick\nx", b"weft1 0123456789abcdef0 1 0 1 nick\nx",
               b"weft1 0123456789abcdef 99999999999999999999999 0 1 nick\nx",
               b"weft1 0123456789abcdef 1 0 0 nick\nx",  # seq 0
               b"weft1 0123456789abcdef 1 0 1 bad nick\nx", b"weft1 0123456789abcdef 1 0 1 \nx",
               b"weft1 0123456789abcdef -1 0 1 nick\nx", b"weft1 0123456789abcdef 1 0 1 " + b"n" * 40 + b"\nx",
               b"\x00\xff" * 50]
    with Redis(ctx.tmpdir) as r:
        url = "redis://127.0.0.1:%d" % r.port
        nodes = [node("pool", url, ["--max-message", "16k"]), node("coro", url, ["--max-message", "16k"])]
        try:
            assert wait_for(lambda: all(link_up(w) for w in nodes), 10 * slow_factor())
            subs = [Sub(nodes[0], "resp", "h"), Sub(nodes[1], "pat", "h*"), Sub(nodes[1], "line", "h")]
            wait_engine_subs(r, "weft:h", 2, 1)
            for g in garbage:
                subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(r.port), "-x", "PUBLISH", "weft:h"],
                               input=g, capture_output=True, timeout=10, check=True)
            assert wait_for(lambda: nodes[0].metric("weft_cluster_malformed_total") == len(garbage), 10)
            assert wait_for(lambda: nodes[1].metric("weft_cluster_malformed_total") == 2 * len(garbage), 10)
            # A reply larger than any message may be: the link is dropped and made again.
            subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(r.port), "-x", "PUBLISH", "weft:h"],
                           input=b"weft1 " + b"x" * (200 << 10), capture_output=True, timeout=10, check=True)
            for w in nodes:
                assert wait_for(lambda: w.metric("weft_cluster_reconnects_total") == 1, 15 * slow_factor()), w.tail()
                assert wait_for(lambda: link_up(w), 15 * slow_factor())
            assert nodes[0].metric("weft_cluster_malformed_total") == len(garbage)
            assert nodes[0].metric("weft_cluster_protocol_errors_total") == 1
            wait_engine_subs(r, "weft:h", 2, 1)
            p = Pub(nodes[0])
            p.publish("h", b"real-0")
            assert p.drain() == [1]
            for s in subs:
                assert s.read(1, 10) == [b"real-0"], (s.kind, s.got)
            for s in subs + [p]:
                s.close()
        finally:
            stop_all(nodes)


def test_crafted_channel_from_another_node_stays_one_pmsg_line(ctx):
    """A RESP client on node A PUBLISHes on a channel holding a newline and
    spaces (any bytes up to --max-channel); a line client's /psub * on node
    B gets it through the engine as one PMSG line of five words, the name
    escaped, not a forged MSG line after it."""
    with Redis(ctx.tmpdir) as r:
        url = "redis://127.0.0.1:%d" % r.port
        nodes = [node("coro", url), node("threads", url)]
        sub = pub = None
        try:
            assert wait_for(lambda: all(link_up(w) for w in nodes), 10 * slow_factor())
            sub = nodes[1].connect()
            sub.settimeout(10 * slow_factor())
            f = sub.makefile("rb")
            weftest.send_all(sub, b"/psub *\n")
            assert f.readline() == b"OK psub * 1\n"
            wait_engine_subs(r, "weft:x", 0, 1)
            pub = nodes[0].connect()
            pub.settimeout(10 * slow_factor())
            weftest.send_all(pub, resp("PUBLISH", "x\nMSG admin root pwned", "hi") + resp("PUBLISH", "end", "bye"))
            assert weftest.recv_exact(pub, 8, 10 * slow_factor()) == b":0\r\n:0\r\n", "no receiver on node A"
            line = f.readline()
            words = line.rstrip(b"\n").split(b" ")
            assert len(words) == 5 and words[:3] == [b"PMSG", b"*", b"x\\nMSG\\x20admin\\x20root\\x20pwned"], line
            assert words[3].startswith(b"guest") and words[4] == b"hi", line
            line = f.readline()
            assert line.startswith(b"PMSG * end guest") and line.endswith(b" bye\n"), "forged line? %r" % line
            f.close()
        finally:
            for s in (sub, pub):
                if s:
                    s.close()
            stop_all(nodes)
