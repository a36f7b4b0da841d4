"""test_link_flood.py - the engine link shares its loop with clients (loop 0
of coro and uring; threads and pool host it on a loop of its own, whose thread
competes with every client thread): a publish flood by local clients must not
cost the link.

Each test floods one node of one variant (model x --threads) with 4,000-byte
PUBLISHes, pipelined by 8 local clients for 5 s, while a second node (threads)
publishes a numbered sequence on another channel. The flooded node subscribes
to every flooded channel (one reading client), so the engine sends it back
every publish it makes: its link must read at least as fast as its clients
publish, or Redis closes the subscriber connection at its pubsub output-buffer
limit (32 MiB) and the other node's messages are lost. Before the fix (the
publishers held while the link is behind, cluster/bridge.c) this failed on
threads, pool and --threads 2 (coro, uring) in every run or every other one.
Asserted: no link lost, no gap counted, the link up, and every message of the
sequence delivered in order to a subscriber on the flooded node. Not asserted:
that no engine copy is dropped at the link's full queue
(weft_cluster_dropped_total{reason="full"}). On uring
--threads 2 the publishers on the loop without the link were held but retried
after every turn of their own loop in which a send moved, one message a turn,
and filled the link's queue (hundreds to 266,208 copies dropped per run under
a busy loop); now such a hold is retried by time only (session_held_far) and
a dropped copy ends the run of holds (owner_pressure_dropped), but a run of
holds still ends after --publish-hold-secs, and under a loaded machine the
link stays behind that long at times: tens of copies can still go. A faster
REMOTE publisher is not part of it: nothing a node does can take more than it
can read.

Run by tests/conformance/run.py (test names carry the variant); WEFT_BIN picks
the binary."""
import selectors
import subprocess
import sys
import threading
import time

from weftest import slow_factor, wait_for, send_all
from clusterlib import Redis, Sub, link_up, node, resp, stop_all, wait_engine_subs

PAYLOAD = 4000
CHANNELS = 20
FLOOD_S = 5
CLIENTS = 8
SEQ = 1000  # numbered messages from the other node, spread over the flood


def flood(w, stop):
    """CLIENTS connections pipelining PUBLISHes of PAYLOAD bytes to the
    flooded channels until stop, whole commands only, replies read and
    dropped (waiting in select, not spinning). Returns the replies' byte
    count (the publishes went in)."""
    cmds = [resp("PUBLISH", "fl%d" % i, b"y" * PAYLOAD) for i in range(CHANNELS)]
    batch = b"".join(cmds[i % CHANNELS] for i in range(64))
    socks = [w.connect(tls=False) for _ in range(CLIENTS)]
    left = {s: b"" for s in socks}
    got = 0
    sel = selectors.DefaultSelector()
    try:
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while left and time.monotonic() < stop:
            for key, ev in sel.select(0.1):
                s = key.fileobj
                try:
                    if ev & selectors.EVENT_READ:
                        b = s.recv(1 << 20)
                        if not b:
                            raise OSError("closed")
                        got += len(b)
                    if ev & selectors.EVENT_WRITE:
                        if not left[s]:
                            left[s] = batch
                        left[s] = left[s][s.send(left[s]):]
                except BlockingIOError:
                    pass
                except OSError:  # held past its limits: the node may drop a publisher
                    sel.unregister(s)
                    del left[s]
    finally:
        sel.close()
        for s in socks:
            s.close()
    return got


# The flooded channels' subscriber, in a process of its own: a reader that
# shares the test's GIL with the flood falls behind under load and is cut as a
# slow consumer, which ends the publishers' holds (session.h) and stops the
# engine's copies coming back; it is the link that is under test.
DRAIN = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(sys.argv[3].encode())
sys.stdout.write("subscribed\\n")
sys.stdout.flush()
buf = bytearray(1 << 20)
while s.recv_into(buf):
    pass
"""


def start_drain(w):
    cmd = resp("SUBSCRIBE", *["fl%d" % i for i in range(CHANNELS)]).decode()
    p = subprocess.Popen([sys.executable, "-c", DRAIN, "127.0.0.1", str(w.port), cmd], stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"subscribed\n"
    return p


def stop_drain(p):
    if p.poll() is None:
        p.terminate()
    p.wait(10)
    p.stdout.close()


def sequence(w, stop_at, err):
    """SEQ numbered PUBLISHes on channel "gen", spread until stop_at, each
    reply read (one connection); an exception goes to err."""
    try:
        publish_sequence(w, stop_at)
    except Exception as e:  # the test fails on it
        err.append(e)


def publish_sequence(w, stop_at):
    s = w.connect(tls=False)
    s.settimeout(10 * slow_factor())
    gap = FLOOD_S * 0.8 / SEQ
    try:
        for i in range(SEQ):
            send_all(s, resp("PUBLISH", "gen", b"g-%d" % i))
            got = b""
            while not got.endswith(b"\r\n"):
                got += s.recv(64)
            if time.monotonic() < stop_at:
                time.sleep(gap)
    finally:
        s.close()


def diag(w, other):
    m = ("weft_cluster_sent_total", "weft_cluster_received_total", "weft_cluster_dropped_total",
         "weft_cluster_echoes_dropped_total", "weft_publisher_holds_total")
    return "node %s; other %s" % ({k: w.metric(k) for k in m}, {k: other.metric(k) for k in m})


def run_flood(ctx, model, threads):
    with Redis(ctx.tmpdir) as r:
        url = "redis://127.0.0.1:%d" % r.port
        w = node(model, url, ["--threads", str(threads)] if model in ("coro", "uring") else [])
        other = node("threads", url)
        nodes = [w, other]
        drainer = None
        try:
            assert wait_for(lambda: all(link_up(n) for n in nodes), 10 * slow_factor())
            drainer = start_drain(w)  # one subscriber of every flooded channel, read at full speed
            gen = Sub(w, "resp", "gen")
            wait_engine_subs(r, "weft:fl%d" % (CHANNELS - 1), 1, 0)
            wait_engine_subs(r, "weft:gen", 1, 0)
            stop = time.monotonic() + FLOOD_S
            out = {}
            jobs = [threading.Thread(target=lambda: out.__setitem__(0, flood(w, stop)))]
            err = []
            jobs.append(threading.Thread(target=sequence, args=(other, stop, err)))
            for t in jobs:
                t.start()
            got = gen.read(SEQ, 20 + FLOOD_S)  # read while the flood runs: a subscriber that keeps up
            for t in jobs:
                t.join()
            assert not err, err
            assert len(out) == 1 and all(v > 0 for v in out.values()), "a flood got no reply: %r" % out
            lost = [l for l in w.log().splitlines() if " lost: " in l or "no answer" in l]
            assert not lost, (lost, [l for l in w.log().splitlines() if "slow consumer" in l],
                              w.metric("weft_publisher_holds_total"))
            assert w.metric("weft_cluster_connect_failures_total", 'reason="lost"') == 0, w.tail()
            assert w.metric("weft_cluster_gaps_total") == 0, w.tail()
            assert link_up(w), w.tail()
            want = [b"g-%d" % i for i in range(SEQ)]
            assert got == want, "%s; %d of %d in order; first missing: %r" % (diag(w, other),
                sum(1 for a, b in zip(got, want) if a == b), SEQ, next((b for a, b in zip(got, want) if a != b),
                                                                     want[len(got)] if len(got) < SEQ else None))
            gen.close()
        finally:
            if drainer:
                stop_drain(drainer)
            stop_all(nodes)


def _variant(model, threads):
    def test(ctx):
        run_flood(ctx, model, threads)
    test.__name__ = "test_publish_flood_on_the_links_loop_%s_t%d" % (model, threads)
    test.__doc__ = "The flood on a %s node with --threads %d: the link keeps up." % (model, threads)
    return test


for _m, _t in (("uring", 1), ("uring", 2), ("coro", 1), ("coro", 2), ("threads", 1), ("pool", 1)):
    _fn = _variant(_m, _t)
    globals()[_fn.__name__] = _fn


def engine_flood(port, channel, stop):
    """An outsider publishing straight to the engine: PUBLISHes of 64 KiB of
    junk on channel, pipelined in bursts of 1 MiB until stop, replies drained."""
    import socket
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    batch = resp("PUBLISH", channel, b"j" * 65536) * 16
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    left = b""
    try:
        while time.monotonic() < stop:
            for _, ev in sel.select(0.1):
                try:
                    if ev & selectors.EVENT_READ:
                        s.recv(1 << 20)
                    if ev & selectors.EVENT_WRITE:
                        if not left:
                            time.sleep(0.01)  # bursts of 1 MiB: behind at times, not past Redis's limit
                            left = batch
                        left = left[s.send(left):]
                except BlockingIOError:
                    pass
    finally:
        sel.close()
        s.close()


def publish_n(w, channel, n, stop):
    """Up to n PUBLISHes on channel, one at a time, each reply read; stops at stop."""
    s = w.connect(tls=False)
    s.settimeout(10 * slow_factor())
    try:
        for i in range(n):
            if time.monotonic() >= stop:
                break
            send_all(s, resp("PUBLISH", channel, b"q-%d" % i))
            got = b""
            while not got.endswith(b"\r\n"):
                got += s.recv(64)
    finally:
        s.close()


def test_remote_flood_holds_only_publishers_it_concerns(ctx):
    """An outsider floods, on the engine, a channel this node subscribes to:
    the link reads behind (link_behind). Publishes to a channel no one here
    subscribes to never come back on the link, so holding them protects
    nothing: before the fix every publisher on the node was held (a node-wide
    publish stall caused from outside). Asserted: a publisher on such a channel
    is never held during the flood, while one on the flooded channel is (the
    flood did make the link behind)."""
    with Redis(ctx.tmpdir) as r:
        url = "redis://127.0.0.1:%d" % r.port
        w = node("threads", url)
        drainer = None
        try:
            assert wait_for(lambda: link_up(w), 10 * slow_factor())
            cmd = resp("SUBSCRIBE", "vic").decode()
            drainer = subprocess.Popen([sys.executable, "-c", DRAIN, "127.0.0.1", str(w.port), cmd],
                                       stdout=subprocess.PIPE)
            assert drainer.stdout.readline() == b"subscribed\n"
            wait_engine_subs(r, "weft:vic", 1, 0)
            held = {}
            for ch in ("vic", "quiet"):
                before = w.metric("weft_publisher_holds_total")
                stop = time.monotonic() + 3
                t = threading.Thread(target=engine_flood, args=(r.port, "weft:vic", stop))
                t.start()
                try:
                    time.sleep(0.3)
                    publish_n(w, ch, 100000, stop)
                finally:
                    t.join()
                held[ch] = w.metric("weft_publisher_holds_total") - before
                assert link_up(w), w.tail()
            assert held["vic"] > 0, "the flood never put the link behind: %r" % held
            assert held["quiet"] == 0, "publishers to an unwatched channel held by a remote flood: %r" % held
        finally:
            if drainer:
                stop_drain(drainer)
            stop_all([w])
