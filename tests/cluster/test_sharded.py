"""test_sharded.py - the sharded engine (--cluster redis-cluster://...) against
a real Redis Cluster started here (shardlib.py: 6 redis-server, 3 primaries
with a replica each, cluster-node-timeout 1000 ms): exactly once and in
per-publisher order across three nodes of different models on channels
spread over every shard; a slot moved (CLUSTER SETSLOT) while publishing;
kill -9 of a primary and its replica's promotion; SIGTERM of a node.

Run by tests/conformance/run.py; the nodes' models are fixed per test."""
import hashlib
import hmac
import os
import re
import signal
import socket
import time

from weftest import scale, slow_factor, wait_for
from clusterlib import Pub, Redis, Sub, node, stop_all
import subprocess

from shardlib import RedisCluster, channels_over_every_shard, keyslot, shared_cluster
from test_cluster import check_stream, make_ca, make_server_cert
from weftest import send_all
from clusterlib import resp
from test_engine_hostile import NO_QUARANTINE, rss

MiB = 1 << 20

MODELS3 = ("threads", "coro", "uring")


def shards_up(w, n=3):
    m = w.metrics()
    return (m.get('weft_cluster_shards{model="%s",state="up"}' % w.args[1]) == n
            and m.get('weft_cluster_link_up{model="%s"}' % w.args[1]) == 1)


def engine_subs(rc, channel, n, timeout=10):
    """Until the channel's owner counts n shard subscriptions of it."""
    def ok():
        owner = rc.owner(rc.keyslot(channel))
        out = rc.cli(owner, "PUBSUB", "SHARDNUMSUB", channel).split()
        return len(out) == 2 and int(out[1]) == n
    if not wait_for(ok, timeout * slow_factor(), 0.05):
        raise AssertionError("the owner of %s does not hold %d subscriptions of it" % (channel, n))


def test_exactly_once_in_order_over_every_shard(ctx):
    """Three nodes (threads, coro, uring), channels over all three primaries,
    a channel and a line subscriber of every channel on every node and a
    publisher on every node: each subscriber gets every message exactly once
    in per-publisher order; sent, received, echoes exact, no gap or duplicate."""
    k = scale(40, asan=4, tsan=8)
    with shared_cluster() as rc:
        chans = channels_over_every_shard(rc, per_shard=2)
        assert len(set(chans.values())) == 3
        nodes = [node(m, rc.url(2 if i else 1)) for i, m in enumerate(MODELS3)]
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), nodes[0].tail()
            subs = [Sub(w, kind, c) for w in nodes for c in chans for kind in ("resp", "line")]
            for c in chans:
                engine_subs(rc, "weft:" + c, 3)
            pubs = [Pub(w, line=(i == 1)) for i, w in enumerate(nodes)]
            for j in range(k):
                for c in chans:
                    for i, p in enumerate(pubs):
                        p.publish(c, b"%s-%d" % (MODELS3[i].encode(), j))
            for p in pubs:
                assert p.drain() == [2] * (k * len(chans))  # this node's receivers only
            for s in subs:
                got = s.read(3 * k, 20)
                check_stream(got, MODELS3, k)
            extra = Sub.more_than(subs, 3 * k)
            assert not extra, "%s got more than once" % [s.name for s in extra]
            for w in nodes:
                g = w.metric
                assert g("weft_cluster_sent_total") == k * len(chans)
                assert g("weft_cluster_received_total") == 2 * k * len(chans), g("weft_cluster_received_total")
                assert g("weft_cluster_echoes_dropped_total") == k * len(chans)
                assert g("weft_cluster_gaps_total") == 0 and g("weft_cluster_duplicates_dropped_total") == 0
                assert g("weft_cluster_dropped_total") == 0 and g("weft_cluster_malformed_total") == 0
            for s in subs:
                s.close()
            for c in chans:
                engine_subs(rc, "weft:" + c, 0)  # the last local subscriber gone: SUNSUBSCRIBE on the owner
            for p in pubs:
                p.close()
        finally:
            stop_all(nodes)


def ann_taken(w, n=1):
    return w.metric("weft_cluster_pattern_announcements_total", 'result="taken"') >= n


def own_pattern_stream(got, pubs, chans, k):
    """got: pmessage texts b"<pub>.<channel>-<i>": every (publisher, channel)
    stream complete, exactly once, in order."""
    check_stream(got, ["%s.%s" % (p, c) for p in pubs for c in chans], k)


def test_patterns_across_nodes_over_every_shard(ctx):
    """Sharded pub/sub has no patterns; weft's nodes announce theirs
    (docs/CLUSTER.md, Patterns): a PSUBSCRIBE on node B gets the publishes
    of nodes A and C (and B) on channels over every shard, exactly once and
    in per-publisher order, as pmessages, and so does a line client's /psub
    of another pattern on B, as PMSG lines; B's exact subscriber still gets
    its channel's copies once. Each publish of A and C makes exactly one
    inbox copy; after PUNSUBSCRIBE B gets nothing more, and (no key: the
    announced pattern expires) A and C stop sending copies."""
    k = scale(20, asan=4, tsan=4)
    with shared_cluster() as rc:
        chans = channels_over_every_shard(rc, per_shard=2)
        nodes = [node(m, rc.url()) for m in ("threads", "coro", "uring")]
        a, b, c = nodes
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), b.tail()
            pat, exact = Sub(b, "pat", "room*"), Sub(b, "resp", "room0x")
            lpat = Sub(b, "lpat", "room[0-9]*")
            first = next(iter(chans))
            exact2 = Sub(b, "resp", first)
            assert wait_for(lambda: ann_taken(a) and ann_taken(c), 10 * slow_factor()), a.tail()
            assert b.metric("weft_cluster_subscriptions", 'kind="pattern"') == 2
            engine_subs(rc, "weft:" + first, 1)
            names = ("A", "B", "C")
            pubs = [Pub(w) for w in nodes]
            for j in range(k):
                for ch in chans:
                    for i, p in enumerate(pubs):
                        p.publish(ch, b"%s.%s-%d" % (names[i].encode(), ch.encode(), j))
            for p in pubs:
                p.drain()
            n = 3 * k * len(chans)
            got = pat.read(n, 30)
            own_pattern_stream(got, names, chans, k)
            assert len(pat.read(n + 1, 0.5)) == n, "the pattern subscriber got a message twice"
            lgot = lpat.read(n, 30)
            own_pattern_stream(lgot, names, chans, k)
            assert len(lpat.read(n + 1, 0.3)) == n, "the /psub subscriber got a message twice"
            check_stream([t.split(b".", 1)[0] + b"-" + t.rsplit(b"-", 1)[1] for t in exact2.read(3 * k, 20)],
                         names, k)
            assert exact.read(1, 0.3) == []
            for w in (a, c):
                assert w.metric("weft_cluster_pattern_copies_sent_total") == k * len(chans), w.tail()
            assert b.metric("weft_cluster_pattern_copies_sent_total") == 0
            # B: 2 remote publishers x every channel to each of the 2 patterns (one inbox copy for both),
            # 2 x one channel to the exact subscriber
            assert b.metric("weft_cluster_received_total") == 2 * 2 * k * len(chans) + 2 * k
            for w in nodes:
                assert w.metric("weft_cluster_gaps_total") == 0 and w.metric("weft_cluster_duplicates_dropped_total") == 0
                assert w.metric("weft_cluster_dropped_total") == 0 and w.metric("weft_cluster_malformed_total") == 0
                assert w.metric("weft_cluster_pattern_announcements_total", 'result="refused"') == 0
            assert all(rc.cli(p, "PUBSUB", "NUMPAT") == "0" for p in rc.live())  # nothing classic on the engine

            # PUNSUBSCRIBE and /punsub: B delivers nothing more at once; A and C stop sending when the
            # patterns expire
            send_all(pat.s, resp("PUNSUBSCRIBE", "room*"))
            assert pat._value()[0] == b"punsubscribe"
            send_all(lpat.s, b"/punsub\n")
            assert lpat._line() == b"OK punsub room[0-9]* 0"
            assert wait_for(lambda: b.metric("weft_cluster_subscriptions", 'kind="pattern"') == 0, 5 * slow_factor())
            pa = Pub(a)
            pa.publish(first, b"after-0")
            pa.drain()
            assert exact2.read(3 * k + 1, 10)[-1] == b"after-0"
            assert pat.read(n + 1, 0.5) == got, "a message after PUNSUBSCRIBE"
            assert lpat.read(n + 1, 0.3) == lgot, "a message after /punsub"

            def copies_stopped():
                before = a.metric("weft_cluster_pattern_copies_sent_total")
                pa.publish(first, b"probe")
                pa.drain()
                return a.metric("weft_cluster_pattern_copies_sent_total") == before
            assert wait_for(copies_stopped, 20 * slow_factor(), 0.5), "A still sends copies to B's inbox"
            assert pat.read(n + 1, 0.3) == got
            for s in (pat, lpat, exact, exact2):
                s.close()
            for p in pubs + [pa]:
                p.close()
        finally:
            stop_all(nodes)


def engine_spublish(rc, channel, payloads):
    """SPUBLISH each payload (bytes, as is) on channel at its slot's owner,
    pipelined from a raw socket, as anyone with access to the engine could."""
    owner = rc.owner(rc.keyslot(channel))
    s = socket.create_connection(("127.0.0.1", owner), timeout=30 * slow_factor())
    try:
        send_all(s, b"".join(resp("SPUBLISH", channel, p) for p in payloads), 60 * slow_factor())
        buf = b""
        while buf.count(b"\r\n") < len(payloads):
            chunk = s.recv(1 << 16)
            assert chunk, "the engine closed"
            buf += chunk
        assert all(l[:1] == b":" for l in buf.split(b"\r\n")[:-1]), buf[:200]
    finally:
        s.close()


def announcement(origin, boot, version, patterns):
    """An unsigned announcement (docs/CLUSTER.md, Patterns): an envelope of
    nick "-" whose data is the patterns."""
    return b"weft1 %016x %d 0 %d -\n" % (origin, boot, version) + patterns


def node_id(w):
    m = re.search(r"node ([0-9a-f]{16}) boot (\d+)", w.log())
    assert m, w.tail()
    return int(m.group(1), 16), int(m.group(2))


def test_forged_announcements_stay_bounded(ctx):
    """Anyone on the engine can SPUBLISH on the control channel. Without a
    key, a flood of 2000 made-up nodes with 60 long patterns each (120,000
    entries, ~30 MiB if kept), an empty set in the genuine subscriber's name,
    a list over 16 KiB, a malformed list and garbage: the remote pattern
    table stays within its bounds (RSS), what did not fit makes whole inbox
    buckets match every channel (more copies, counted), the bad ones are
    refused, and every genuine message still reaches the pattern subscriber
    exactly once, in order."""
    k = scale(20, asan=6, tsan=6)
    with shared_cluster() as rc:
        nodes = [node(m, rc.url(), env=NO_QUARANTINE) for m in ("coro", "threads")]
        a, b = nodes
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), b.tail()
            pat = Sub(b, "pat", "room*")
            assert wait_for(lambda: ann_taken(a), 10 * slow_factor()), a.tail()
            chans = list(channels_over_every_shard(rc, per_shard=1))
            borigin, bboot = node_id(b)
            before = rss(a)
            ctl = "weft: ctl"
            for batch in range(10):
                flood = [announcement(0x100000 + batch * 200 + i, 1, 1,
                                      b" ".join(b"f%d-%d-%s" % (i, j, b"x" * 180) for j in range(60)))
                         for i in range(200)]
                engine_spublish(rc, ctl, flood)
            engine_spublish(rc, ctl, [announcement(borigin, bboot, 1 << 40, b""),  # B let go of everything: no
                                      announcement(1, 1, 1, b"a" * 17000),        # over 16 KiB
                                      announcement(2, 1, 1, b"a  b"),             # an empty pattern
                                      b"weft1 garbage"])
            refused = 'result="refused"'
            assert wait_for(lambda: a.metric("weft_cluster_pattern_announcements_total", refused) >= 3,
                            20 * slow_factor()), a.tail()
            grew = rss(a) - before
            assert grew < 12 * MiB, "RSS grew %.1f MiB under forged announcements" % (grew / MiB)
            assert a.metric("weft_cluster_pattern_announcements_total", 'result="full"') > 0
            copies = a.metric("weft_cluster_pattern_copies_sent_total")
            p = Pub(a)
            for j in range(k):
                for ch in chans:
                    p.publish(ch, b"A.%s-%d" % (ch.encode(), j))
            p.drain()
            own_pattern_stream(pat.read(k * len(chans), 20), ["A"], chans, k)
            assert len(pat.read(k * len(chans) + 1, 0.5)) == k * len(chans)
            sent = a.metric("weft_cluster_pattern_copies_sent_total") - copies
            assert sent > k * len(chans), "the full buckets should take every channel (%d copies)" % sent
            assert sent <= 64 * k * len(chans)
            assert b.metric("weft_cluster_gaps_total") == 0 and b.metric("weft_cluster_duplicates_dropped_total") == 0
            pat.close()
            p.close()
        finally:
            stop_all(nodes)


def keyed_floor_across_shards(rc, a, b):
    """A keyed channel floor was one per sender for all its channels
    (replay.h floor_sub: subscription 0, "one connection carries them all,
    in order"). Over redis-cluster:// each shard is a connection of its
    own: a's envelope on a channel of a slow shard (its primary stopped
    ~1 s here, no failover) comes after its later one on another shard.
    When that later stream was forgotten at b's `seen` bound meanwhile
    (8 MiB: ~139 pattern copies on channels of 60,000 bytes pass it; a and b
    run with --max-channel 65536), its stamp raised the floor above the slow
    envelope's, and that genuine first message was refused as a replay
    (weft_cluster_replays_refused_total{reason="evicted"}). Now the floor
    is per slot there. ~1.5 s."""
    N, CH = 150, 60000
    for p in rc.live():  # the stopped primary is not replaced
        rc.cli(p, "CONFIG", "SET", "cluster-replica-no-failover", "yes")
    origin, _ = node_id(b)
    inbox = rc.owner(rc.keyslot("weft: pin%d" % (origin % 64)))
    names = ["slow%d" % i for i in range(400)]
    cx = next(c for c in names if rc.owner(rc.keyslot("weft:" + c)) != inbox)
    p1 = rc.owner(rc.keyslot("weft:" + cx))  # neither b's inbox's nor the others' below
    cy = next(c for c in names if rc.owner(rc.keyslot("weft:" + c)) != p1)
    tag = next(t for t in ("f%d" % i for i in range(400)) if rc.owner(rc.keyslot(t)) != p1)
    fill = ["{%s}%05d" % (tag, i) + "c" * (CH - 10) for i in range(N)]
    slow, fast, pat = Sub(b, "resp", cx), Sub(b, "resp", cy), Sub(b, "pat", "{%s}*" % tag)
    engine_subs(rc, "weft:" + cx, 1)
    engine_subs(rc, "weft:" + cy, 1)
    p = Pub(a)

    def announced():  # a sends b copies for the pattern
        p.publish("{%s}probe" % tag, b"probe")
        p.drain()
        return pat.read(1, 0.1) == [b"probe"]
    assert wait_for(announced, 10 * slow_factor(), 0.05), a.tail()
    pat.got.clear()
    rc.procs[p1].send_signal(signal.SIGSTOP)
    try:
        p.publish(cx, b"genuine")  # stamped first, held up on its shard
        p.publish(cy, b"later")
        assert fast.read(1, 10) == [b"later"], b.tail()
        for ch in fill:  # streams past seen's bound: the oldest (cy's among them) forgotten
            p.publish(ch, b"F")
        assert len(pat.read(N, 20)) == N, b.tail()
        assert b.metric("weft_cluster_seen_evicted_total") >= 1, b.tail()
    finally:
        rc.procs[p1].send_signal(signal.SIGCONT)
    p.drain()
    texts = slow.read(1, 5)
    refused = b.metric("weft_cluster_replays_refused_total", 'reason="evicted"')
    assert texts == [b"genuine"] and refused == 0, \
        "the slow shard's genuine message: %r, %s refused as evicted" % (texts, refused)
    for x in (p, slow, fast, pat):
        x.close()


def spy_read(spy, buf, find, what, timeout=10):
    """Read spy (SSUBSCRIBEd to an inbox) into buf (a bytearray kept by the
    caller) until find(buf) is not None; returns that."""
    end = time.monotonic() + timeout * slow_factor()
    while (v := find(bytes(buf))) is None:
        spy.settimeout(max(0.01, end - time.monotonic()))
        chunk = spy.recv(1 << 16)
        assert chunk and time.monotonic() < end, "no %s seen" % what
        buf += chunk
    return v


def spy_copy(spy, ch, text, timeout=10, buf=None):
    """The payload ("<ch> <envelope>") of the inbox copy carrying text that
    spy (SSUBSCRIBEd to an inbox) sees."""
    def find(buf):
        for m in re.finditer(rb"\$(\d+)\r\n" + re.escape(ch.encode()) + rb" weft1 ", buf):
            start = m.end() - len(ch) - 7
            body = buf[start:start + int(m.group(1))]
            if len(body) == int(m.group(1)) and body.endswith(b"\n" + text):
                return body
        return None
    return spy_read(spy, bytearray() if buf is None else buf, find, "copy of %r" % text, timeout)


def spy_markers(spy, buf, copy, n=3, timeout=10):
    """Until spy has seen n "last seq" markers (nick "!", bridge.c marker_one)
    of copy's sender, channel and sequence number on the inbox: a sends
    MARKERS (3) of them, one a tick, after its last publish on the channel."""
    ch, _, origin, boot, _, seq = copy.split(b" ", 6)[:6]
    marker = re.escape(b"%s weft1 %s %s " % (ch, origin, boot)) + rb"\S+ " + re.escape(seq) + rb" ! "
    spy_read(spy, buf, lambda b: True if len(re.findall(marker, b)) >= n else None,
             "%d markers of %r" % (n, copy[:60]), timeout)


def keyed_inbox_lost_replay(rc, a, b):
    """A pattern copy sent to b's inbox while b's link to the inbox's shard
    was down (b never got it), captured there and replayed after b
    resubscribed, was delivered: the rule before_subscribe judged copies by
    the pattern's time alone (when it was added), which a lost inbox
    subscription does not move (over redis://, a PSUBSCRIBE made again when
    the link is back does). Now a copy is judged by the later of the
    pattern's and the inbox subscription's times. b's reconnect is held off
    by the shard's maxclients until a's "last seq" markers of the channel
    are spent (a marker b got after resubscribing moves its mark past the
    copy, whose replay the mark then drops: not the rule tested here) and
    the copy is 2.5 s old. ~3.5 s."""
    origin, _ = node_id(b)
    inbox = "weft: pin%d" % (origin % 64)
    port = rc.owner(rc.keyslot(inbox))
    spy = socket.create_connection(("127.0.0.1", port), timeout=10 * slow_factor())
    admin = socket.create_connection(("127.0.0.1", port), timeout=10 * slow_factor())
    pat = Sub(b, "pat", "zz*")
    p = Pub(a)
    try:
        send_all(spy, resp("SSUBSCRIBE", inbox))

        def announced():
            p.publish("zz1", b"probe")
            p.drain()
            return pat.read(1, 0.1) == [b"probe"]
        assert wait_for(announced, 10 * slow_factor(), 0.05), a.tail()
        conn = subscriber_conn_id(rc, port, b.proc.pid)
        send_all(admin, resp("CONFIG", "SET", "maxclients", "1") + resp("CLIENT", "KILL", "ID", conn))
        try:
            assert wait_for(lambda: b.metric("weft_cluster_link_up") == 0, 10 * slow_factor()), b.tail()
            p.publish("zz1", b"lost")  # sent while b's inbox is lost
            p.drain()
            buf = bytearray()
            copy = spy_copy(spy, "zz1", b"lost", buf=buf)
            seen = time.monotonic()
            # a's markers of zz1 (seq: the lost copy's) go to b's inbox for three ticks
            # after the copy: one b got once resubscribed would count the loss and move
            # its mark past the copy, whose replay the mark then drops as a duplicate,
            # not before_subscribe (under load b could be back before the third).
            spy_markers(spy, buf, copy)
            # the copy is stamped more than 2 s (STAMP_SLACK_US) before b's resubscription
            time.sleep(max(0.0, 2.5 - (time.monotonic() - seen)))
        finally:
            send_all(admin, resp("CONFIG", "SET", "maxclients", "10000"))
        assert wait_for(lambda: shards_up(b), 20 * slow_factor()), b.tail()
        assert wait_for(lambda: rc.cli(port, "PUBSUB", "SHARDNUMSUB", inbox).split()[-1] == "2",
                        10 * slow_factor(), 0.05), b.tail()  # b's and the spy's
        engine_spublish(rc, inbox, [copy])
        p.publish("zz1", b"after")
        p.drain()
        got = pat.read(3, 5, until=lambda g: b"after" in g)
        assert b"lost" not in got, "the lost copy's replay was delivered: %r" % got
        assert b.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"') >= 1, b.tail()
    finally:
        for x in (spy, admin):
            x.close()
        pat.close()
        p.close()


def keyed_pattern_flap_keeps_time(rc, a, b):
    """A pattern let go and held again within one turn of b's loop (a
    client's PUNSUBSCRIBE and PSUBSCRIBE read at once) is never announced
    as gone, so the other nodes never stop sending b its copies; but its
    time (the one before_subscribe judges its copies by) was reset to the
    PSUBSCRIBE, and a copy sent before that and delayed more than 2 s (b's
    inbox's shard stopped ~2.5 s here, within the link's PING deadline)
    was refused as a replay: a genuine message lost (over redis:// nothing
    is sent to the engine then, and the subscription's time stays). Now the
    pattern keeps its time. ~3 s."""
    origin, _ = node_id(b)
    port = rc.owner(rc.keyslot("weft: pin%d" % (origin % 64)))
    for x in rc.live():  # the stopped primary is not replaced
        rc.cli(x, "CONFIG", "SET", "cluster-replica-no-failover", "yes")
    pat = Sub(b, "pat", "yy*")
    p = Pub(a)
    try:
        def announced():
            p.publish("yy1", b"probe")
            p.drain()
            return pat.read(1, 0.1) == [b"probe"]
        assert wait_for(announced, 10 * slow_factor(), 0.05), a.tail()
        refused = b.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"')
        rc.procs[port].send_signal(signal.SIGSTOP)
        try:
            p.publish("yy1", b"held up")  # its copy waits on b's inbox's shard
            p.drain()
            time.sleep(2.5)  # stamped more than 2 s (STAMP_SLACK_US) before the pattern is held again
            send_all(pat.s, resp("PUNSUBSCRIBE", "yy*") + resp("PSUBSCRIBE", "yy*"))
            replies = []
            while len(replies) < 2:  # a probe's pmessage may come first
                v = pat._value()
                if v[0] in (b"punsubscribe", b"psubscribe"):
                    replies.append(v[0])
        finally:
            rc.procs[port].send_signal(signal.SIGCONT)
        p.publish("yy1", b"after")
        p.drain()
        got = pat.read(3, 10, until=lambda g: b"after" in g)
        now = b.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"')
        assert b"held up" in got and now == refused, \
            "the copy sent before the flap: %r, %d refused as before_subscribe\n%s" % (got, now - refused, b.tail())
    finally:
        pat.close()
        p.close()


def keyed_replay_from_a_sender_never_heard_from(rc, b, flags):
    """The rule before_subscribe needs the sender's clock offset, which b
    learned only from that sender's messages it delivered: a fresh node c
    publishing on a channel b does not hold was unknown to b, and c's
    envelope captured on the channel's owner, SPUBLISHed again once a client
    of b subscribed, was delivered to it. Now c's clock beacons (on their
    own channel, another shard than ch's here) tell b c's offset: the
    replay is refused, c's next message delivered. ~5 s."""
    beacons = rc.owner(rc.keyslot("weft: clk"))
    ch = next(n for n in ("nh%d" % i for i in range(400)) if rc.owner(rc.keyslot("weft:" + n)) != beacons)
    eng = "weft:" + ch
    c = node("threads", rc.url(), flags)
    spy = p = sub = None
    try:
        assert wait_for(lambda: shards_up(c) and shards_up(b), 20 * slow_factor()), c.tail()
        spy = socket.create_connection(("127.0.0.1", rc.owner(rc.keyslot(eng))), timeout=10 * slow_factor())
        send_all(spy, resp("SSUBSCRIBE", eng))
        engine_subs(rc, eng, 1)
        p = Pub(c)
        p.publish(ch, b"cap")
        p.drain()
        start = time.monotonic()
        cap = capture_cap(spy, eng)
        time.sleep(max(0, start + 2.3 - time.monotonic()))  # the capture: past the 2 s slack
        before = b.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"')
        sub = Sub(b, "resp", ch)
        engine_subs(rc, eng, 2)  # b's and the spy's
        engine_spublish(rc, eng, [cap])
        p.publish(ch, b"new")
        p.drain()
        got = sub.read(2, 5, until=lambda g: b"new" in g)
        assert got == [b"new"], "a replay was delivered: %r (beacons from c: %d)" % (
            got, b.metric("weft_cluster_beacons_total", 'result="ok"'))
        assert b.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"') == before + 1, b.tail()
        assert c.metric("weft_cluster_beacons_sent_total") >= 1
    finally:
        for x in (spy, p, sub):
            if x:
                x.close()
        stop_all([c])


def capture_cap(spy, eng):
    """The envelope of the message "cap" (seq 1) the spy, subscribed to eng, saw,
    once the sender's three end markers of it have passed too (one a second:
    one that reached a node after its subscription would make the mark, and a
    replay of "cap" a duplicate rather than a replay to refuse)."""
    buf = b""
    while b"\ncap" not in buf or len(re.findall(rb"\r\n%s\r\n\$\d+\r\nweft1 \S+ \S+ \S+ 1 ! " % eng.encode(), buf)) < 3:
        chunk = spy.recv(1 << 16)
        assert chunk, "the engine closed the spy"
        buf += chunk
    i = buf.index(b"\ncap")
    return buf[buf.rindex(b"weft1 ", 0, i):i + 4]


def keyed_replay_in_the_first_beacon_period(rc, a, flags):
    """A node knows no sender's clock offset in its first beacon period
    after its links come up, when its clients subscribe: an envelope of a
    captured on a channel's owner before that, SPUBLISHed again at once, was
    judged by the age rule only and delivered to a client that subscribed
    after it was sent. Now the node holds the envelopes of senders whose
    clock is not proved until they answer its clock request (warmup.h; the
    channel on another shard here): the replay is refused, a's genuine
    messages after it are delivered in order. The node starts right after
    a's beacon, so that it cannot have the next one before the replay.
    ~7 s."""
    beacons = rc.owner(rc.keyslot("weft: clk"))
    ch = next(n for n in ("fb%d" % i for i in range(400)) if rc.owner(rc.keyslot("weft:" + n)) != beacons)
    eng = "weft:" + ch
    origin, _ = node_id(a)
    spy = bspy = p = sub = r = None
    try:
        spy = socket.create_connection(("127.0.0.1", rc.owner(rc.keyslot(eng))), timeout=10 * slow_factor())
        send_all(spy, resp("SSUBSCRIBE", eng))
        bspy = socket.create_connection(("127.0.0.1", beacons), timeout=10 * slow_factor())
        send_all(bspy, resp("SSUBSCRIBE", "weft: clk"))
        engine_subs(rc, eng, 1)
        p = Pub(a)
        p.publish(ch, b"cap")
        p.drain()
        cap = capture_cap(spy, eng)
        bspy.settimeout(0.05)
        try:
            while bspy.recv(1 << 16):  # what came before: not the next beacon
                pass
        except socket.timeout:
            pass
        bspy.settimeout(10 * slow_factor())
        mine, seen = b"weft1 %016x " % origin, b""
        while mine not in seen:
            chunk = bspy.recv(1 << 16)
            assert chunk, "the engine closed the beacon spy"
            seen += chunk
        r = node("coro", rc.url(), flags)
        sub = Sub(r, "resp", ch)
        engine_subs(rc, eng, 2)  # r's and the spy's
        engine_spublish(rc, eng, [cap])
        for k in range(3):
            p.publish(ch, b"new-%d" % k)
        p.drain()
        got = sub.read(3, 10)
        assert got == [b"new-0", b"new-1", b"new-2"], "%r (held: %d)" % (got, r.metric("weft_cluster_warmup_held_total"))
        assert r.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"') == 1, r.tail()
        # held until a's answer came (beacon.h), unless it came first
        assert r.metric("weft_cluster_clock_answers_total", 'result="proved"') >= 1
        assert r.metric("weft_cluster_warmup_early_total") == 0
        held = r.metric("weft_cluster_warmup_held_total")
        p.publish(ch, b"after")  # a's clock is proved: nothing held
        p.drain()
        assert sub.read(4, 10)[3:] == [b"after"] and r.metric("weft_cluster_warmup_held_total") == held
    finally:
        for x in (spy, bspy, p, sub):
            if x:
                x.close()
        stop_all([r] if r else [])


def keyed_pattern_gone_unsent_keeps_time(rc, a, b, key):
    """A pattern let go while b's link to the control channel's shard was
    down: its going was never announced (the SPUBLISH could not be queued),
    so the other nodes never stopped sending b its copies; but it was
    forgotten as if announced, and held again it got a new time, against
    which a copy sent before the PUNSUBSCRIBE and delayed more than 2 s on
    b's inbox's shard (stopped ~2.7 s) was refused as before_subscribe: a
    genuine message lost. Now a pattern let go is kept until an
    announcement without it is sent. A node whose inbox is on another shard
    than the control channel takes b's place here (b's may share it). ~5 s."""
    # the shard keyed_pattern_flap_keeps_time stopped is seen as failed a while
    assert wait_for(lambda: len(rc.primaries()) == 3, 10 * slow_factor(), 0.1), rc.nodes()
    cport = rc.owner(rc.keyslot("weft: ctl"))
    c = None
    for _ in range(12):  # 2 in 3 chances each: another shard
        c = node("coro", rc.url(), ["--cluster-key-file", key, "--max-channel", "65536"])
        iport = rc.owner(rc.keyslot("weft: pin%d" % (node_id(c)[0] % 64)))
        if iport != cport:
            break
        stop_all([c])
        c = None
    assert c, "every node's inbox was on the control channel's shard"
    admin = socket.create_connection(("127.0.0.1", cport), timeout=10 * slow_factor())
    pat = Sub(c, "pat", "xx*")
    p = Pub(a)
    try:
        assert wait_for(lambda: shards_up(c), 10 * slow_factor()), c.tail()

        def announced():
            p.publish("xx1", b"probe")
            p.drain()
            return pat.read(1, 0.1) == [b"probe"]
        assert wait_for(announced, 10 * slow_factor(), 0.05), a.tail()
        refused = c.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"')
        conn = subscriber_conn_id(rc, cport, c.proc.pid)
        send_all(admin, resp("CONFIG", "SET", "maxclients", "1") + resp("CLIENT", "KILL", "ID", conn))
        try:
            assert wait_for(lambda: c.metric("weft_cluster_link_up") == 0, 10 * slow_factor()), c.tail()
            sent = c.metric("weft_cluster_pattern_announcements_sent_total")
            rc.procs[iport].send_signal(signal.SIGSTOP)
            try:
                p.publish("xx1", b"held up")  # its copy waits on c's inbox's shard
                p.drain()
                time.sleep(2.2)
                send_all(pat.s, resp("PUNSUBSCRIBE", "xx*"))
                while pat._value()[0] != b"punsubscribe":  # a probe's pmessage may come first
                    pass
                time.sleep(0.5)  # c's loop tries to announce the change (its control shard is down)
                send_all(pat.s, resp("PSUBSCRIBE", "xx*"))
                while pat._value()[0] != b"psubscribe":
                    pass
            finally:
                rc.procs[iport].send_signal(signal.SIGCONT)
            # what is tested: c's link to the control shard was down throughout
            assert c.metric("weft_cluster_pattern_announcements_sent_total") == sent, c.tail()
        finally:
            send_all(admin, resp("CONFIG", "SET", "maxclients", "10000"))
        assert wait_for(lambda: shards_up(c), 20 * slow_factor()), c.tail()
        p.publish("xx1", b"after")
        p.drain()
        got = pat.read(3, 10, until=lambda g: b"after" in g)
        now = c.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"')
        assert b"held up" in got and now == refused, \
            "the copy sent before the PUNSUBSCRIBE: %r, %d refused as before_subscribe\n%s" % (got, now - refused, c.tail())
    finally:
        admin.close()
        pat.close()
        p.close()
        stop_all([c])


def test_keyed_announcements(ctx):
    """With --cluster-key-file an announcement is authenticated: an unsigned
    one and a replay of a genuine one are refused; a set replaces the last
    whole, so after PUNSUBSCRIBE the publisher stops sending copies at once
    (the change is announced), not after the pattern expires. Then
    keyed_floor_across_shards, keyed_replay_from_a_sender_never_heard_from,
    keyed_replay_in_the_first_beacon_period, keyed_inbox_lost_replay, keyed_pattern_flap_keeps_time and
    keyed_pattern_gone_unsent_keeps_time (sharing this cluster)."""
    key = ctx.path("key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"k" * 40 + b"\n")
    os.close(fd)
    with RedisCluster(ctx.tmpdir) as rc:
        nodes = [node(m, rc.url(), ["--cluster-key-file", key, "--max-channel", "65536"]) for m in ("uring", "coro")]
        a, b = nodes
        ctl = "weft: ctl"
        spy = socket.create_connection(("127.0.0.1", rc.owner(rc.keyslot(ctl))), timeout=10 * slow_factor())
        try:
            send_all(spy, resp("SSUBSCRIBE", ctl))
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), b.tail()
            pat = Sub(b, "pat", "room*")
            assert wait_for(lambda: ann_taken(a), 10 * slow_factor()), a.tail()
            buf = b""
            while b"room*" not in buf:
                chunk = spy.recv(65536)
                assert chunk
                buf += chunk
            i = buf.index(b"room*")
            genuine = buf[buf.rindex(b"weft1 ", 0, i):i + 5]
            refused = 'result="refused"'
            r0 = a.metric("weft_cluster_pattern_announcements_total", refused)
            borigin, bboot = node_id(b)
            engine_spublish(rc, ctl, [genuine, announcement(borigin, bboot, 1 << 40, b"")])
            assert wait_for(lambda: a.metric("weft_cluster_pattern_announcements_total", refused) == r0 + 2,
                            10 * slow_factor()), a.tail()
            assert a.metric("weft_cluster_auth_failures_total") >= 1
            ch = next(iter(channels_over_every_shard(rc, per_shard=1)))
            p = Pub(a)
            for j in range(5):
                p.publish(ch, b"A-%d" % j)
            p.drain()
            check_stream(pat.read(5, 10), ["A"], 5)
            assert a.metric("weft_cluster_pattern_copies_sent_total") == 5
            send_all(pat.s, resp("PUNSUBSCRIBE", "room*"))
            assert pat._value()[0] == b"punsubscribe"
            t0 = time.monotonic()

            def stopped():
                before = a.metric("weft_cluster_pattern_copies_sent_total")
                p.publish(ch, b"probe")
                p.drain()
                return a.metric("weft_cluster_pattern_copies_sent_total") == before
            assert wait_for(stopped, 10 * slow_factor(), 0.05)
            took = time.monotonic() - t0
            assert took < 1.5 * slow_factor(), "copies stopped after %.1f s: not at once" % took
            pat.close()
            p.close()
            keyed_floor_across_shards(rc, a, b)
            keyed_replay_from_a_sender_never_heard_from(rc, b, ["--cluster-key-file", key, "--max-channel", "65536"])
            keyed_replay_in_the_first_beacon_period(rc, a, ["--cluster-key-file", key, "--max-channel", "65536"])
            keyed_inbox_lost_replay(rc, a, b)
            keyed_pattern_flap_keeps_time(rc, a, b)
            keyed_pattern_gone_unsent_keeps_time(rc, a, b, key)
        finally:
            spy.close()
            stop_all(nodes)


def engine_spublishes(rc, port):
    """SPUBLISH calls one Redis Cluster node has executed (INFO commandstats)."""
    for line in rc.cli(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_spublish:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def subscriber_conn_id(rc, port, pid):
    """The id, on Redis node port, of process pid's connection there that
    holds shard subscriptions (CLIENT LIST's ssub), found through pid's
    sockets (/proc/<pid>/fd and /proc/<pid>/net/tcp)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    mine = set()
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == port and fields[9] in inodes:
                mine.add(int(fields[1].split(":")[1], 16))
    for line in rc.cli(port, "CLIENT", "LIST").splitlines():
        kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if int(kv["addr"].rsplit(":", 1)[1]) in mine and int(kv.get("ssub", "0")) > 0:
            return kv["id"]
    raise AssertionError("no shard subscriber connection of pid %d on %d" % (pid, port))


def test_patterns_gap_at_the_end_of_a_copy_stream(ctx):
    """Pattern copies (docs/CLUSTER.md, Patterns) carried no end-of-stream
    markers: a copy lost last was never counted (the markers went to the
    channel, which the pattern subscriber's node does not hold). The
    publisher's markers now go to each inbox its copies go to as well: node
    B (pattern room*) is SIGSTOPped, its subscriber connection on its
    inbox's shard killed, node A publishes two more (Redis delivers their
    inbox copies to nobody) and stops; B goes on, subscribes its inbox again
    and counts 2 gaps, once (the later markers change nothing)."""
    with shared_cluster() as rc:
        nodes = [node(m, rc.url()) for m in ("coro", "threads")]
        a, b = nodes
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), b.tail()
            origin, _ = node_id(b)
            inbox = rc.owner(rc.keyslot("weft: pin%d" % (origin % 64)))
            ch = "room7"
            pat = Sub(b, "pat", "room*")
            assert wait_for(lambda: ann_taken(a), 10 * slow_factor()), a.tail()
            p = Pub(a)
            for j in range(10):
                p.publish(ch, b"A-%d" % j)
            p.drain()
            check_stream(pat.read(10, 10), ["A"], 10)
            before = engine_spublishes(rc, inbox)
            conn = subscriber_conn_id(rc, inbox, b.pid)
            os.kill(b.pid, signal.SIGSTOP)
            try:
                assert rc.cli(inbox, "CLIENT", "KILL", "ID", conn) == "1"
                for j in (10, 11):
                    p.publish(ch, b"lost-%d" % j)
                p.drain()
                assert wait_for(lambda: engine_spublishes(rc, inbox) >= before + 2, 10 * slow_factor())
                last = -1
                while last != engine_spublishes(rc, inbox):  # nothing else in flight
                    last = engine_spublishes(rc, inbox)
                    time.sleep(0.1)
            finally:
                os.kill(b.pid, signal.SIGCONT)
            assert a.metric("weft_cluster_pattern_copies_sent_total") == 12
            assert wait_for(lambda: b.metric("weft_cluster_shard_links_lost_total") >= 1, 10 * slow_factor()), b.tail()
            assert wait_for(lambda: b.metric("weft_cluster_gaps_total") == 2, 8 * slow_factor()), \
                "B counted %d gaps; it lost the last 2 copies" % b.metric("weft_cluster_gaps_total")
            time.sleep(3.5)  # the other markers change nothing
            assert b.metric("weft_cluster_gaps_total") == 2
            assert b.metric("weft_cluster_received_total") == 10
            assert pat.read(11, 0.3) == pat.got[:10]
            assert b.metric("weft_cluster_malformed_total") == 0
            assert b.metric("weft_cluster_pattern_copies_unmatched_total") == 0  # a marker is not a copy
            pat.close()
            p.close()
        finally:
            stop_all(nodes)


def test_gap_at_the_end_while_the_shard_is_down(ctx):
    """A marker that its channel's shard refused (the owner's link down, or
    its queue full) was spent all the same and lost: when a publish was
    dropped while the shard was down (weft_cluster_dropped_total{reason="down"})
    and the shard was back only after the markers' three ticks, the receiver
    never learnt that the stream had gone one further, and the loss at its
    end was not counted. Now a refused marker stays due
    (weft_cluster_markers_deferred_total) and goes once the shard takes it.
    The channel's primary is killed (-9; its replica does not take over:
    cluster-replica-no-failover), node A publishes once while it is down,
    the primary is started again after the three ticks: node B counts 1 gap
    and delivers nothing more."""
    with RedisCluster(ctx.tmpdir) as rc:
        for port in rc.live():  # the killed primary comes back as the owner of its slots
            rc.cli(port, "CONFIG", "SET", "cluster-replica-no-failover", "yes")
            rc.cli(port, "CONFIG", "SET", "cluster-require-full-coverage", "no")
        ch, victim = next(iter(channels_over_every_shard(rc, per_shard=1).items()))
        url = rc.url(len(rc.ports))  # every node a seed: the victim may be one
        nodes = [node(m, url) for m in ("coro", "threads")]
        a, b = nodes
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), b.tail()
            sub = Sub(b, "resp", ch)
            engine_subs(rc, "weft:" + ch, 1)
            p = Pub(a)
            for j in range(3):
                p.publish(ch, b"A-%d" % j)
            p.drain()
            assert sub.read(3, 10) == [b"A-0", b"A-1", b"A-2"], sub.got
            rc.kill9(victim)
            assert wait_for(lambda: a.metric("weft_cluster_shards", 'state="up"') == 2, 10 * slow_factor()), a.tail()
            p.publish(ch, b"lost")
            p.drain()
            assert wait_for(lambda: a.metric("weft_cluster_dropped_total", 'reason="down"') == 1, 5 * slow_factor())
            time.sleep(4)  # past the three ticks (LINK_TICK_MS, 1 s) the markers had, all refused
            assert a.metric("weft_cluster_shards", 'state="up"') == 2, "the killed shard came back by itself"
            rc.start_node(victim)
            assert wait_for(lambda: shards_up(a) and shards_up(b), 30 * slow_factor()), a.tail() + b.tail()
            assert wait_for(lambda: b.metric("weft_cluster_gaps_total") == 1, 10 * slow_factor()), \
                "B counted %d gaps; it lost the stream's last message" % b.metric("weft_cluster_gaps_total")
            assert a.metric("weft_cluster_markers_deferred_total") >= 3
            assert sub.read(4, 0.5) == [b"A-0", b"A-1", b"A-2"], sub.got
            assert b.metric("weft_cluster_received_total") == 3
            sub.close()
            p.close()
        finally:
            stop_all(nodes)


def signed_announcement(key, origin, boot, version, patterns):
    """An announcement signed with key, as node (origin, boot) would have
    sent it with that version (unix ms) and a stamp of that time (sign.c:
    HMAC-SHA256 of the head through the stamp, the length of the channel
    (" ctl", after the prefix) as 8 bytes little-endian, the channel and the
    data)."""
    head = b"weft1 %016x %d 0 %d - %d" % (origin, boot, version, version * 1000)
    ch = b" ctl"
    tag = hmac.new(key, head + len(ch).to_bytes(8, "little") + ch + patterns, hashlib.sha256).hexdigest()
    return head + b" " + tag.encode() + b"\n" + patterns


def test_keyed_announcements_replayed_after_expiry(ctx):
    """With a key an announcement older than the last taken was refused only
    while the announcer's version entry lived (it expired with its
    patterns, 8 s here): a compromised Redis could replay an old signed
    announcement after that and bring back a set the node had dropped. Node
    B announces room*, drops it (its empty sets clear it on A), and 8 s
    later B's own genuine room* announcement, as a spy on the control
    channel saw it, is replayed: refused and counted, no copy sent. A set
    40 s old (signed here with the key: what B would have sent then) is
    refused for its age and logged; a fresh one signed the same way is
    taken (so the refusals are not about the tag)."""
    key = ctx.path("key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"k" * 40 + b"\n")
    os.close(fd)
    flags = ["--cluster-key-file", key, "--cluster-connect-timeout", "2"]  # patterns last 8 s
    with shared_cluster() as rc:
        nodes = [node(m, rc.url(), flags) for m in ("uring", "coro")]
        a, b = nodes
        ctl = "weft: ctl"
        spy = socket.create_connection(("127.0.0.1", rc.owner(rc.keyslot(ctl))), timeout=10 * slow_factor())
        try:
            send_all(spy, resp("SSUBSCRIBE", ctl))
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), b.tail()
            borigin, bboot = node_id(b)
            pat = Sub(b, "pat", "room*")
            assert wait_for(lambda: ann_taken(a), 10 * slow_factor()), a.tail()
            buf = b""
            mine = b"weft1 %016x " % borigin
            while mine not in buf or b"room*" not in buf[buf.index(mine):]:
                chunk = spy.recv(65536)
                assert chunk
                buf += chunk
            i = buf.index(b"room*", buf.index(mine))
            genuine = buf[buf.rindex(b"weft1 ", 0, i):i + 5]
            assert genuine.startswith(mine), genuine
            p = Pub(a)
            p.publish("room1", b"A-0")
            p.drain()
            assert pat.read(1, 10) == [b"A-0"]
            send_all(pat.s, resp("PUNSUBSCRIBE", "room*"))
            assert pat._value()[0] == b"punsubscribe"

            def copies():
                before = a.metric("weft_cluster_pattern_copies_sent_total")
                p.publish("room1", b"probe")
                p.drain()
                return a.metric("weft_cluster_pattern_copies_sent_total") - before
            assert wait_for(lambda: copies() == 0, 10 * slow_factor(), 0.1), "B's empty set did not clear room*"
            # B's last empty set (of three, 2 s apart) plus 8 s: its entries expired on A (and swept)
            time.sleep(4 + 8 + 3)
            refused, taken = 'result="refused"', 'result="taken"'
            r0 = a.metric("weft_cluster_pattern_announcements_total", refused)
            t0 = a.metric("weft_cluster_pattern_announcements_total", taken)
            auth0 = a.metric("weft_cluster_auth_failures_total")
            engine_spublish(rc, ctl, [genuine])
            assert wait_for(lambda: a.metric("weft_cluster_pattern_announcements_total", refused) == r0 + 1,
                            10 * slow_factor()), "the replay was not refused"
            assert copies() == 0, "the replayed set brought room* back"
            secret = b"k" * 40
            old = int(time.time() * 1000) - 40000
            engine_spublish(rc, ctl, [signed_announcement(secret, borigin, bboot, old, b"room*")])
            assert wait_for(lambda: a.metric("weft_cluster_pattern_announcements_total", refused) == r0 + 2,
                            10 * slow_factor()), "a 40 s old announcement was not refused"
            assert a.wait_log("s off this node's clock: refused"), a.tail()
            assert copies() == 0
            assert a.metric("weft_cluster_auth_failures_total") == auth0  # genuine tags, refused for their age
            assert a.metric("weft_cluster_pattern_announcements_total", taken) == t0
            fresh = signed_announcement(secret, borigin, bboot, int(time.time() * 1000) + 5000, b"room*")
            engine_spublish(rc, ctl, [fresh])
            assert wait_for(lambda: a.metric("weft_cluster_pattern_announcements_total", taken) == t0 + 1,
                            10 * slow_factor()), a.tail()
            assert copies() == 1
            pat.close()
            p.close()
        finally:
            spy.close()
            stop_all(nodes)


def test_patterns_survive_a_hung_control_shard(ctx):
    """The control channel's primary hangs (SIGSTOP, no failover) for 9 s,
    longer than the 5 s an announcement first lasted: announcements cannot
    flow, but the remote patterns do not expire meanwhile (the link finds
    the hung shard within ~6 s and freezes their expiry; they last longer
    than that), so every publish on another shard still reaches the
    pattern subscriber, whose inbox is on another shard too."""
    with RedisCluster(ctx.tmpdir) as rc:
        for p in rc.live():  # the hung shard stays down; the others serve
            rc.cli(p, "CONFIG", "SET", "cluster-replica-no-failover", "yes")
            rc.cli(p, "CONFIG", "SET", "cluster-require-full-coverage", "no")
        ctl = rc.owner(rc.keyslot("weft: ctl"))
        a = node("coro", rc.url())
        nodes = [a]
        try:
            b = None
            for _ in range(8):  # a node whose inbox (random) is not on the control channel's shard
                w = node("threads", rc.url())
                nodes.append(w)
                origin, _ = node_id(w)
                if rc.owner(rc.keyslot("weft: pin%d" % (origin % 64))) != ctl:
                    b = w
                    break
            assert b, "every node's inbox landed on the control channel's shard"
            assert wait_for(lambda: shards_up(a) and shards_up(b), 10 * slow_factor()), b.tail()
            ch = next(c for c in ("room%d" % i for i in range(200)) if rc.owner(rc.keyslot("weft:" + c)) != ctl)
            pat = Sub(b, "pat", "room*")
            assert wait_for(lambda: ann_taken(a), 10 * slow_factor()), a.tail()
            p = Pub(a)
            rc.procs[ctl].send_signal(signal.SIGSTOP)
            try:
                t0, n = time.monotonic(), 0
                while time.monotonic() - t0 < 9:
                    p.publish(ch, b"A-%d" % n)
                    n += 1
                    time.sleep(0.1)
                p.drain()
                assert a.metric("weft_cluster_link_up") == 0, "the hung shard was not noticed"
                check_stream(pat.read(n, 10), ["A"], n)
                assert a.metric("weft_cluster_pattern_copies_sent_total") == n
            finally:
                rc.procs[ctl].send_signal(signal.SIGCONT)
            pat.close()
            p.close()
        finally:
            stop_all(nodes)


def test_patterns_announced_while_frozen_expire_after_the_thaw(ctx):
    """While a shard is down nothing expires, and after it the entries get
    that time back (docs/CLUSTER.md). An entry announced during the outage
    lost none of it: it must still expire 11 s after the thaw at the latest,
    not 11 s plus however far into the outage it was last announced. Another
    shard than the control channel's hangs for ~8 s after it is noticed; the
    pattern, announced all along, is let go (no key: it stops its copies when
    it expires) just before the shard comes back; 14 s after the link is up
    again the publisher must have stopped copying."""
    with RedisCluster(ctx.tmpdir) as rc:
        for p in rc.live():
            rc.cli(p, "CONFIG", "SET", "cluster-replica-no-failover", "yes")
            rc.cli(p, "CONFIG", "SET", "cluster-require-full-coverage", "no")
        ctl = rc.owner(rc.keyslot("weft: ctl"))
        hung = next(p for p in rc.primaries() if p != ctl)
        nodes = [node(m, rc.url()) for m in ("coro", "threads")]
        a, b = nodes
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), b.tail()
            ch = next(c for c in ("room%d" % i for i in range(200)) if rc.owner(rc.keyslot("weft:" + c)) != hung)
            pat = Sub(b, "pat", "room*")
            assert wait_for(lambda: ann_taken(a), 10 * slow_factor()), a.tail()
            p = Pub(a)
            rc.procs[hung].send_signal(signal.SIGSTOP)
            try:
                assert wait_for(lambda: a.metric("weft_cluster_link_up") == 0, 15 * slow_factor()), a.tail()
                time.sleep(8)  # announcements of room* keep flowing (the control shard is up)
                send_all(pat.s, resp("PUNSUBSCRIBE", "room*"))
                assert pat._value()[0] == b"punsubscribe"
                time.sleep(0.5)
            finally:
                rc.procs[hung].send_signal(signal.SIGCONT)
            assert wait_for(lambda: a.metric("weft_cluster_link_up") == 1, 15 * slow_factor()), a.tail()
            time.sleep(14)
            before = a.metric("weft_cluster_pattern_copies_sent_total")
            p.publish(ch, b"probe")
            p.drain()
            sent = a.metric("weft_cluster_pattern_copies_sent_total") - before
            assert sent == 0, "a pattern let go during the outage still copied 14 s after it"
            pat.close()
            p.close()
        finally:
            stop_all(nodes)


def stream_with_event(nodes, pub_node, subs, channel, event, before=1.0, after=4.0, tick=0.01):
    """Publish b"p-<i>" on channel from pub_node every tick; event() once
    `before` seconds in; go on for `after` seconds after it returns. Returns
    (n published, [publish time of each], time the event ended)."""
    p = Pub(pub_node)
    times = []
    t0 = time.monotonic()
    done_at = None
    deadline = t0 + 50 * slow_factor()
    while time.monotonic() < deadline:
        p.publish(channel, b"p-%d" % len(times))
        times.append(time.monotonic())
        if done_at is None and times[-1] - t0 >= before:
            event()
            done_at = time.monotonic()
        elif done_at is not None and times[-1] - done_at >= after:
            break
        time.sleep(tick)
    p.drain()
    p.close()
    return len(times), times, done_at


def check_recovery(nodes, subs, n, times, done_at, within):
    """Each subscriber: no duplicate, in order, everything published from
    `within` seconds after the event on delivered, its node's gap counter
    equal to what it lost. Returns [(lost, first index delivered late)]."""
    out = []
    for s in subs:  # the last message is published long after the event: each has it
        s.read(n, 20, until=lambda got: got[-1:] == [b"p-%d" % (n - 1)])
    assert not Sub.more_than(subs), "a message after the last one"
    for w, s in zip(nodes, subs):
        got = s.got
        seen = check_stream(got, ["p"], n, complete=False)["p"]
        have = set(seen)
        late = [i for i in range(n) if times[i] >= done_at + within and i not in have]
        assert not late, "%s: %d messages published more than %.1f s after the event not delivered (first %d)" % (
            w.args[1], len(late), within, late[0])
        lost = n - len(seen)
        # the markers count a loss at the very end too; give them their ticks
        assert wait_for(lambda: w.metric("weft_cluster_gaps_total") == lost, 5 * slow_factor()), (
            "%s: gap counter %d, subscriber lost %d" % (w.args[1], w.metric("weft_cluster_gaps_total"), lost))
        assert w.metric("weft_cluster_duplicates_dropped_total") == 0
        back = next((i for i in range(n) if times[i] >= done_at and i in have), None)
        out.append((lost, None if back is None else times[back] - done_at))
    return out


def move_slot(rc, slot, src, dst):
    """CLUSTER SETSLOT steps of a live resharding (the slot has no keys):
    IMPORTING on the target, MIGRATING on the source, then NODE everywhere."""
    sid, did = rc.node_id(src), rc.node_id(dst)
    assert rc.cli(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", sid) == "OK"
    assert rc.cli(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", did) == "OK"
    assert rc.cli(dst, "CLUSTER", "SETSLOT", slot, "NODE", did) == "OK"
    assert rc.cli(src, "CLUSTER", "SETSLOT", slot, "NODE", did) == "OK"
    for p in rc.primaries():
        if p not in (src, dst):
            rc.cli(p, "CLUSTER", "SETSLOT", slot, "NODE", did)


RESHARD_WITHIN = 2.0  # seconds: delivering again this soon after a slot moved


def test_slot_moved_while_publishing(ctx):
    """A channel's slot moved to another primary (CLUSTER SETSLOT) while one
    node publishes 100 messages a second and two others subscribe: the old
    owner's sunsubscribe (or a MOVED) makes each node find the new owner;
    no duplicates, in order, what was lost counted as gaps, and every
    message published more than RESHARD_WITHIN seconds after the move
    delivered."""
    with RedisCluster(ctx.tmpdir) as rc:
        nodes = [node(m, rc.url(2)) for m in ("coro", "threads", "uring")]
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor())
            ch = "moving"
            slot = rc.keyslot("weft:" + ch)
            src = rc.owner(slot)
            dst = next(p for p in rc.primaries() if p != src)
            subs = [Sub(w, "resp", ch) for w in nodes[1:]]
            engine_subs(rc, "weft:" + ch, 2)
            n, times, done_at = stream_with_event(nodes, nodes[0], subs, ch, lambda: move_slot(rc, slot, src, dst))
            assert rc.owner(slot) == dst
            res = check_recovery(nodes[1:], subs, n, times, done_at, RESHARD_WITHIN)
            engine_subs(rc, "weft:" + ch, 2)  # on the new owner now
            for w in nodes[1:]:
                assert w.metric("weft_cluster_slot_moves_total") >= 1, w.tail()
            print("  slot %d moved %d -> %d: %d published; per subscriber (lost, first delivery after the move): %s;"
                  " publisher dropped moved=%d down=%d" % (
                      slot, src, dst, n, res, nodes[0].metric("weft_cluster_dropped_total", 'reason="moved"'),
                      nodes[0].metric("weft_cluster_dropped_total", 'reason="down"')))
            for s in subs:
                s.close()
        finally:
            stop_all(nodes)


def test_reshard_with_redis_cli_while_publishing(ctx):
    """redis-cli --cluster reshard moves 100 slots from one primary to another
    while a node publishes on three channels in those slots and one outside
    them: no duplicates, in order, each subscriber's node counts what it lost,
    every message published more than RESHARD_WITHIN seconds after the
    reshard delivered, and the channel outside the moved slots loses nothing."""
    with RedisCluster(ctx.tmpdir) as rc:
        prim = rc.primaries()
        src = min(prim, key=lambda p: prim[p][0][0])
        dst = next(p for p in prim if p != src)
        lo = prim[src][0][0]
        moving = [n for n in ("r%d" % i for i in range(20000)) if lo <= keyslot("weft:" + n) < lo + 100][:3]
        assert rc.keyslot("weft:" + moving[0]) == keyslot("weft:" + moving[0])
        still = next(n for n in ("s%d" % i for i in range(1000)) if rc.owner(keyslot("weft:" + n)) == src
                     and keyslot("weft:" + n) >= lo + 100)
        chans = moving + [still]
        nodes = [node(m, rc.url(2)) for m in ("threads", "uring", "coro")]
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor())
            subs = {w: [Sub(w, "resp", c) for c in chans] for w in nodes[1:]}
            for c in chans:
                engine_subs(rc, "weft:" + c, 2)
            p = Pub(nodes[0])
            times, t0, done_at = [], time.monotonic(), None
            while time.monotonic() < t0 + 50 * slow_factor():
                for c in chans:
                    p.publish(c, b"p-%d" % len(times))
                times.append(time.monotonic())
                if done_at is None and times[-1] - t0 >= 1.0:
                    began = time.monotonic()
                    r = subprocess.run(["redis-cli", "--cluster", "reshard", "127.0.0.1:%d" % src, "--cluster-from",
                                        rc.node_id(src), "--cluster-to", rc.node_id(dst), "--cluster-slots", "100",
                                        "--cluster-yes"], capture_output=True, timeout=60)
                    assert r.returncode == 0, r.stdout.decode()[-2000:]
                    done_at = time.monotonic()
                elif done_at is not None and times[-1] - done_at >= 4.0:
                    break
                time.sleep(0.01)
            p.drain()
            p.close()
            n = len(times)
            assert all(rc.owner(keyslot("weft:" + c)) == dst for c in moving) and rc.owner(keyslot("weft:" + still)) == src
            report = []
            for s in sum(subs.values(), []):  # the last message comes 4 s after the reshard: each has it
                s.read(n, 20, until=lambda got: got[-1:] == [b"p-%d" % (n - 1)])
            assert not Sub.more_than(sum(subs.values(), [])), "a message after the last one"
            for w, ss in subs.items():
                lost_all = 0
                for c, s in zip(chans, ss):
                    got = s.got
                    seen = set(check_stream(got, ["p"], n, complete=False)["p"])
                    late = [i for i in range(n) if times[i] >= done_at + RESHARD_WITHIN and i not in seen]
                    assert not late, "%s %s: %d published after the reshard lost" % (w.args[1], c, len(late))
                    if c == still:
                        assert len(seen) == n, "%s: %d lost on a channel whose slot did not move" % (c, n - len(seen))
                    lost_all += n - len(seen)
                assert wait_for(lambda: w.metric("weft_cluster_gaps_total") == lost_all, 5 * slow_factor()), (
                    w.args[1], w.metric("weft_cluster_gaps_total"), lost_all)
                assert w.metric("weft_cluster_duplicates_dropped_total") == 0
                assert w.metric("weft_cluster_slot_moves_total") >= len(moving)
                report.append("%s lost %d" % (w.args[1], lost_all))
            for c in moving:
                engine_subs(rc, "weft:" + c, 2)
            print("  reshard of 100 slots %d -> %d took %.2f s; %d messages per channel; %s; publisher dropped "
                  "moved=%d down=%d" % (src, dst, done_at - began, n, ", ".join(report),
                                         nodes[0].metric("weft_cluster_dropped_total", 'reason="moved"'),
                                         nodes[0].metric("weft_cluster_dropped_total", 'reason="down"')))
            for ss in subs.values():
                for s in ss:
                    s.close()
        finally:
            stop_all(nodes)


FAILOVER_WITHIN = 8.0  # seconds after the kill: cluster-node-timeout 1 s, the election, the map refresh


def test_kill9_primary_replica_promoted(ctx):
    """kill -9 of the primary owning the channel: its replica is promoted
    (cluster-node-timeout 1 s); the nodes find it through the map, subscribe
    again and publish there: no duplicates, in order, losses counted, every
    message published more than FAILOVER_WITHIN seconds after the kill
    delivered."""
    with RedisCluster(ctx.tmpdir) as rc:
        ch = "failing"
        slot = rc.keyslot("weft:" + ch)
        victim = rc.owner(slot)
        seeds = [p for p in rc.ports if p != victim][:2]
        url = "redis-cluster://" + ",".join("127.0.0.1:%d" % p for p in [victim] + seeds)  # the map link's first seed dies too
        nodes = [node(m, url) for m in ("uring", "coro", "threads")]
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor())
            subs = [Sub(w, "resp", ch) for w in nodes[1:]]
            engine_subs(rc, "weft:" + ch, 2)
            n, times, done_at = stream_with_event(nodes, nodes[0], subs, ch, lambda: rc.kill9(victim),
                                                  after=FAILOVER_WITHIN + 3)
            rc.wait_ok()
            assert rc.owner(slot) not in (None, victim)
            res = check_recovery(nodes[1:], subs, n, times, done_at, FAILOVER_WITHIN)
            for w in nodes:
                assert w.metric("weft_cluster_shard_links_lost_total") >= 1
                assert wait_for(lambda: shards_up(w), 5 * slow_factor()), w.tail()
            print("  kill -9 of primary %d: %d published; per subscriber (lost, first delivery after the kill): %s;"
                  " publisher dropped down=%d moved=%d" % (
                      victim, n, res, nodes[0].metric("weft_cluster_dropped_total", 'reason="down"'),
                      nodes[0].metric("weft_cluster_dropped_total", 'reason="moved"')))
            for s in subs:
                s.close()
        finally:
            stop_all(nodes)


def test_rediss_cluster(ctx):
    """rediss-cluster://: a Redis Cluster on TLS only (clients, bus and
    replication), its certificate for 127.0.0.1 signed by a test CA: every
    shard's link verified with --cluster-ca, messages cross nodes on every
    shard; a wrong CA is refused on the map link, counted, and never up."""
    ca_key, ca = make_ca(ctx, "ca")
    _, wrong = make_ca(ctx, "wrong")
    key, cert = make_server_cert(ctx, ca_key, ca)
    with RedisCluster(ctx.tmpdir, tls=dict(cert=cert, key=key, ca=ca)) as rc:
        nodes = [node(m, rc.url(2), ["--cluster-ca", ca]) for m in ("coro", "threads")]
        try:
            assert wait_for(lambda: all(shards_up(w) for w in nodes), 10 * slow_factor()), nodes[0].tail()
            chans = channels_over_every_shard(rc, per_shard=1)
            subs = [Sub(nodes[1], "line", c) for c in chans]
            for c in chans:
                engine_subs(rc, "weft:" + c, 1)
            p = Pub(nodes[0])
            for c in chans:
                p.publish(c, b"tls-0")
            p.drain()
            for s in subs:
                assert s.read(1, 10) == [b"tls-0"], s.name
                s.close()
            p.close()
            bad = node("uring", rc.url(1), ["--cluster-ca", wrong])
            nodes.append(bad)
            assert wait_for(lambda: bad.metric("weft_cluster_connect_failures_total", 'reason="tls"') >= 2,
                            15 * slow_factor()), bad.tail()
            assert "certificate refused" in bad.log() and not shards_up(bad)
        finally:
            stop_all(nodes)


def test_one_redis_is_not_a_cluster(ctx):
    """redis-cluster:// at a Redis without cluster mode: CLUSTER NODES is
    refused; the node says what is wrong (rate-limited), never reports a
    link, serves its own clients, retries with back-off and exits 0."""
    with Redis(ctx.tmpdir) as r:
        w = node("coro", "redis-cluster://127.0.0.1:%d" % r.port)
        try:
            assert w.wait_log("needs a Redis Cluster node", 5), w.tail()
            time.sleep(2)
            assert w.metric("weft_cluster_link_up") == 0
            assert w.log().count("needs a Redis Cluster node") == 1, w.tail()
            s, p = Sub(w, "resp", "local"), Pub(w)
            p.publish("local", b"x-0")
            assert p.drain() == [1] and s.read(1, 5) == [b"x-0"]
            s.close()
            p.close()
        finally:
            stop_all([w])

def test_sigterm_cluster_unreachable_and_up(ctx):
    """SIGTERM exits 0 with the seeds unreachable (the map link backing off)
    and with every shard up (stop_all checks the exit and the log). The two
    nodes up are threads and pool (pool's only sharded test): before the
    SIGTERM each gets the other's publish on a channel of every shard, once."""
    from weftest import free_port
    down = node("coro", "redis-cluster://127.0.0.1:%d" % free_port())
    stop_all([down])
    with shared_cluster() as rc:
        up = [node(m, rc.url()) for m in ("threads", "pool")]
        try:
            assert wait_for(lambda: all(shards_up(w) for w in up), 10 * slow_factor())
            chans = channels_over_every_shard(rc, per_shard=1)
            subs = [Sub(w, "resp", c) for w in up for c in chans]
            for c in chans:
                engine_subs(rc, "weft:" + c, 2)
            pubs = [Pub(w) for w in up]
            for i, p in enumerate(pubs):
                for c in chans:
                    p.publish(c, b"from-%d" % i)
            for s in subs:
                assert sorted(s.read(2, 10)) == [b"from-0", b"from-1"], (s.name, s.got)
            assert not Sub.more_than(subs, 2), "a publish delivered twice"
            for s in subs + pubs:
                s.close()
        finally:
            stop_all(up)


def test_one_primary_cluster_names_itself_without_a_host(ctx):
    """A Redis Cluster of one primary (all 16384 slots on one node, valid and
    cluster_state:ok) that never met another node lists itself in CLUSTER NODES
    as ':PORT@CPORT myself,master' (no host: it learns its address from its
    peers). The map link's own node is meant: the shard is linked and a
    publish on one weft node reaches a subscriber on another."""
    rc = RedisCluster(ctx.tmpdir, n=1)
    port = rc.ports[0]
    rc.start_node(port)
    nodes = []
    try:
        assert wait_for(lambda: rc.cli(port, "PING") == "PONG", 10)
        assert rc.cli(port, "CLUSTER", "ADDSLOTSRANGE", "0", "16383") == "OK"
        rc.wait_ok()
        assert rc.cli(port, "CLUSTER", "NODES").split()[1].startswith(":%d@" % port)  # what is being tested
        nodes = [node(m, rc.url()) for m in ("threads", "coro")]
        assert wait_for(lambda: all(shards_up(w, 1) for w in nodes), 10 * slow_factor()), nodes[0].tail()
        s = Sub(nodes[1], "resp", "solo")
        engine_subs(rc, "weft:solo", 1)
        p = Pub(nodes[0])
        p.publish("solo", b"x-0")
        assert p.drain() == [0]
        assert s.read(1, 5) == [b"x-0"]
        s.close()
        p.close()
    finally:
        try:
            stop_all(nodes)
        finally:
            rc.stop()




def test_keyed_shard_link_lost_in_the_warmup(ctx):
    """A node that has not proved a's clock yet (warmup.h) holds a's genuine messages; its
    link to the channel's shard is lost and made again before they are
    judged, and the channel subscribed afresh. They came on the subscription
    made before: judged on the new one, they were refused as published
    before it (reason="before_subscribe"), genuine messages lost (over
    redis:// a link down judges the held ones at once; a shard's link lost
    did not). Now each is judged on the subscription it came on: all
    delivered, in order. The channel is on the beacon channel's shard (what
    is held waits for a's answer, or its deadline starts again when that
    shard is back). a is a real node: its answer to r's request usually
    proves it before the link is lost (the messages delivered at once),
    so the interleaving is exercised only when the answer is slow. ~8 s."""
    key = ctx.path("key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"k" * 40 + b"\n")
    os.close(fd)
    flags = ["--cluster-key-file", key]
    with RedisCluster(ctx.tmpdir) as rc:
        beacons = rc.owner(rc.keyslot("weft: clk"))
        ch = next(n for n in ("wl%d" % i for i in range(400)) if rc.owner(rc.keyslot("weft:" + n)) == beacons)
        a = node("coro", rc.url(), flags)
        r = p = sub = None
        try:
            assert wait_for(lambda: shards_up(a), 10 * slow_factor()), a.tail()
            p = Pub(a)
            r = node("coro", rc.url(), flags)
            assert wait_for(lambda: shards_up(r), 10 * slow_factor()), r.tail()
            sub = Sub(r, "resp", ch)
            engine_subs(rc, "weft:" + ch, 1)
            for k in range(3):
                p.publish(ch, b"m-%d" % k)
            p.drain()
            t0 = time.monotonic()
            assert wait_for(lambda: r.metric("weft_cluster_warmup_held_total") >= 3, 5 * slow_factor(), 0.02), \
                "not held: the warm-up was over (%r)" % sub.read(3, 0.1)
            # more than the 2-s slack after they came, well before they are due (WARMUP_MS after)
            time.sleep(max(0.0, t0 + 2.3 - time.monotonic()))
            conn = subscriber_conn_id(rc, beacons, r.pid)
            assert rc.cli(beacons, "CLIENT", "KILL", "ID", conn) == "1"
            assert wait_for(lambda: r.metric("weft_cluster_shard_links_lost_total") >= 1, 5 * slow_factor(), 0.02)
            engine_subs(rc, "weft:" + ch, 1)
            p.publish(ch, b"m-3")
            p.drain()
            got = sub.read(4, 12 * slow_factor())
            refused = r.metric("weft_cluster_replays_refused_total", 'reason="before_subscribe"')
            assert got == [b"m-0", b"m-1", b"m-2", b"m-3"] and refused == 0, \
                "%r, %d refused as before_subscribe\n%s" % (got, refused, r.tail())
            assert r.metric("weft_cluster_gaps_total") == 0
        finally:
            for x in (p, sub):
                if x:
                    x.close()
            stop_all([w for w in (r, a) if w])
