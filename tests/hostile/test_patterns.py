"""test_patterns.py - long channel names against many glob patterns (issue 9,
item 2). A PUBLISH runs its pattern matching under the exchange lock (and,
on the event models, on the loop thread), so a matcher that costs pattern x
channel lets one PUBLISH of a 1 MB channel name stall every other client.

One client PSUBSCRIBEs 4 patterns of 200 bytes shaped to make a backtracking
matcher try every offset; another PUBLISHes on a 1 MB channel that matches
exactly one of them. Right after the PUBLISH arrives, a third client sends
PING (is the loop free?) and a fourth PUBLISHes on a short channel (is the
exchange lock free? on threads and pool a PING never waits for it). Both
must be answered well under 100 ms after the PUBLISH (x slow_factor under
sanitizers; the best of up to three tries), and the subscriber must get the
one pmessage whole, and only that one, each time.

And a netcat client flooding /psub (the line protocol's patterns, the same
table): bounded by --max-subs, an ERR line each past it, all freed on close."""
import os
import time

from weftest import Weft, resp_cmd, rss_kib, send_all, slow_factor, wait_for

CHANNEL_LEN = 1 << 20
PATTERN_LEN = 200


class Resp:
    """Bounded reads of RESP2 values from one socket."""

    def __init__(self, sock, timeout=10.0):
        self.s = sock
        self.buf = bytearray()
        self.timeout = timeout * slow_factor()

    def _need(self, pred):
        end = time.monotonic() + self.timeout
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("timeout; have %r" % bytes(self.buf[:100]))
            self.s.settimeout(left)
            b = self.s.recv(1 << 20)
            if not b:
                raise AssertionError("EOF; have %r" % bytes(self.buf[:100]))
            self.buf += b

    def value(self):
        self._need(lambda: b"\r\n" in self.buf)
        i = self.buf.index(b"\r\n")
        t, rest = self.buf[:1], bytes(self.buf[1:i])
        del self.buf[:i + 2]
        if t == b"*":
            return [self.value() for _ in range(int(rest))]
        if t == b"$":
            n = int(rest)
            self._need(lambda: len(self.buf) >= n + 2)
            out = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return out
        if t == b":":
            return int(rest)
        return rest if t == b"+" else ("err", rest)


def patterns():
    """4 x 200 bytes: '*' + a run of 'a' + a tag. The first two end the
    pattern (a suffix), the last two are followed by '*' (found anywhere)."""
    out = []
    for i, tail in enumerate((b"N1", b"N2", b"N3*", b"N4*")):
        p = b"*" + b"a" * (PATTERN_LEN - 1 - len(tail)) + tail
        assert len(p) == PATTERN_LEN, i
        out.append(p)
    return out


def attack(pub, rpub, pinger, rping, prober, rprobe, publish):
    """One 1 MB PUBLISH; (ms to the PING's answer, ms to the other PUBLISH's
    answer), both from when the PUBLISH's last bytes were sent."""
    # All of it but its last bytes, given time to be read: the command then
    # completes (and its matching starts) when they arrive.
    send_all(pub, publish[:-4])
    time.sleep(0.3 * slow_factor())
    t0 = time.monotonic()
    send_all(pub, publish[-4:])
    time.sleep(0.01)  # so the server has it before the probes
    send_all(pinger, resp_cmd(b"PING"))
    send_all(prober, resp_cmd(b"PUBLISH", b"probe", b"x"))
    assert rping.value() == b"PONG"
    ping_ms = (time.monotonic() - t0) * 1000
    assert rprobe.value() == 0
    probe_ms = (time.monotonic() - t0) * 1000
    assert rpub.value() == 1, "the 1 MB channel matches exactly one pattern"
    return ping_ms, probe_ms


def adversarial(i):
    """Pattern i of the many: 200 bytes of the same backtracking shape."""
    tag = b"%04d" % i
    return b"*" + b"a" * (PATTERN_LEN - 1 - len(tag)) + tag


def test_many_patterns_against_the_longest_channel(ctx):
    """Bounded overall: with the defaults, one connection may hold --max-subs
    (1024) patterns and a PUBLISH may name a --max-channel (4k) channel; the
    worst PUBLISH then still leaves other clients served at once, and a
    longer channel name is refused with an error, the connection kept."""
    n = 1024
    limit = 100 * slow_factor()
    with Weft(["--mode", "chat"]) as w:
        sub, pub, pinger, prober = (w.connect() for _ in range(4))
        rsub, rpub, rping, rprobe = (Resp(s) for s in (sub, pub, pinger, prober))
        send_all(sub, resp_cmd(b"PSUBSCRIBE", *(adversarial(i) for i in range(n))))
        for i in range(n):
            assert rsub.value()[2] == i + 1
        for s, r in ((pinger, rping), (prober, rprobe)):
            send_all(s, resp_cmd(b"PING"))
            assert r.value() == b"PONG"
        channel = b"a" * (4096 - 4) + b"0007"  # the longest allowed; matches pattern 7
        publish = resp_cmd(b"PUBLISH", channel, b"x")
        best = None
        for _ in range(3):
            ping_ms, probe_ms = attack(pub, rpub, pinger, rping, prober, rprobe, publish)
            if best is None or max(ping_ms, probe_ms) < max(best):
                best = (ping_ms, probe_ms)
            msg = rsub.value()
            assert msg[:3] == [b"pmessage", adversarial(7), channel], "wrong pmessage"
            if max(best) < limit:
                break
        print("measured: 4 KiB channel vs 1024x200B patterns: PING delayed %.0f ms, other PUBLISH %.0f ms" % best)
        assert max(best) < limit, "answers %.0f / %.0f ms after the PUBLISH (limit %d)" % (best + (limit,))
        send_all(pub, resp_cmd(b"PUBLISH", channel + b"0", b"x") + resp_cmd(b"PING"))
        err = rpub.value()
        assert err[0] == "err" and err[1].startswith(b"ERR channel name too long: 4097 bytes"), err
        assert rpub.value() == b"PONG", "the connection must stay usable"
        assert w.metric("weft_client_errors_total", 'kind="chat_channel_too_long"') == 1
        for s in (sub, pub, pinger, prober):
            s.close()


def test_long_channel_against_patterns(ctx):
    pats = patterns()
    channel = b"a" * (CHANNEL_LEN - 2) + b"N2"  # matches pats[1] only
    publish = resp_cmd(b"PUBLISH", channel, b"x")
    limit = 100 * slow_factor()
    with Weft(["--mode", "chat", "--max-message", "2m", "--max-channel", "2m"]) as w:
        sub, pub, pinger, prober = (w.connect() for _ in range(4))
        rsub, rpub, rping, rprobe = (Resp(s) for s in (sub, pub, pinger, prober))
        send_all(sub, resp_cmd(b"PSUBSCRIBE", *pats))
        for i, p in enumerate(pats):
            assert rsub.value() == [b"psubscribe", p, i + 1]
        for s, r in ((pinger, rping), (prober, rprobe)):  # RESP detected, warm
            send_all(s, resp_cmd(b"PING"))
            assert r.value() == b"PONG"
        # The best of up to 3 tries: a busy machine can delay one answer,
        # but a server that holds its lock for the matching delays them all.
        best = None
        for _ in range(3):
            ping_ms, probe_ms = attack(pub, rpub, pinger, rping, prober, rprobe, publish)
            if best is None or max(ping_ms, probe_ms) < max(best):
                best = (ping_ms, probe_ms)
            msg = rsub.value()
            assert msg[:2] == [b"pmessage", pats[1]] and msg[2] == channel and msg[3] == b"x", \
                "wrong pmessage: %r" % ([m[:40] for m in msg],)
            send_all(sub, resp_cmd(b"PING"))
            assert rsub.value() == [b"pong", b""], "a pmessage for a pattern that does not match"
            if max(best) < limit:
                break
        print("measured: 1 MB channel vs 4x200B patterns: PING delayed %.0f ms, other PUBLISH %.0f ms" % best)
        assert best[0] < limit, "PING answered %.0f ms after a 1 MB PUBLISH (limit %d)" % (best[0], limit)
        assert best[1] < limit, "PUBLISH answered %.0f ms after a 1 MB PUBLISH (limit %d)" % (best[1], limit)
        for s in (sub, pub, pinger, prober):
            s.close()


def line_pattern(i):
    """Pattern i of a line client's flood: 200 bytes, distinct for each i,
    and every one matches any channel holding an 'x'."""
    head = b"*[x%d" % i
    return head + b"y" * (PATTERN_LEN - len(head) - 2) + b"]*"


def test_line_psub_flood_is_bounded(ctx):
    """The line protocol's /psub is the exchange's pattern table too: one
    netcat client sends 3 x --max-subs /psub lines of distinct 200-byte
    patterns. It holds exactly --max-subs (1024) of them, each command past
    that gets one ERR line and the connection stays; a PUBLISH matching them
    all reaches it once per pattern (1024 PMSG lines) and other clients are
    still served; when it goes, every pattern goes with it."""
    n, cap = 3 * 1024, 1024
    err = b"ERR too many subscriptions: 1024 channels and patterns at most (weft --max-subs)"
    with Weft(["--mode", "chat"]) as w:
        sub, pub = w.connect(), w.connect()
        rpub = Resp(pub)
        send_all(pub, resp_cmd(b"PING"))
        assert rpub.value() == b"PONG"
        rss0 = rss_kib(w.pid)
        f = sub.makefile("rb")
        sub.settimeout(30 * slow_factor())
        oks = errs = 0
        for start in range(0, n, 256):  # read as we go: the replies stay under --read-pause
            send_all(sub, b"".join(b"/psub " + line_pattern(i) + b"\n" for i in range(start, start + 256)))
            for i in range(start, start + 256):
                line = f.readline().rstrip(b"\n")
                if i < cap:
                    assert line == b"OK psub " + line_pattern(i) + b" %d" % (i + 1), line[:80]
                    oks += 1
                else:
                    assert line == err, line[:120]
                    errs += 1
        assert (oks, errs) == (cap, n - cap)
        grown = rss_kib(w.pid) - rss0
        assert w.metric("weft_chat_patterns") == cap
        assert w.metric("weft_client_errors_total", 'kind="chat_max_subs"') == n - cap
        send_all(pub, resp_cmd(b"PUBLISH", b"xx", b"boom") + resp_cmd(b"PING"))
        assert rpub.value() == cap, "one receiver per pattern"
        assert rpub.value() == b"PONG"
        for i in range(cap):
            line = f.readline().rstrip(b"\n")
            assert line.startswith(b"PMSG " + line_pattern(i) + b" xx guest") and line.endswith(b" boom"), line[:80]
        send_all(sub, b"/numpat\n")
        assert f.readline() == b"NUMPAT %d\n" % cap, "the connection stays usable"
        print("measured: %d /psub of 200 B from one line client: %d held, RSS +%d KiB" % (n, cap, grown))
        assert grown < 32 * 1024, "RSS grew %d KiB for %d patterns" % (grown, cap)
        f.close()
        sub.close()
        assert wait_for(lambda: w.metric("weft_chat_patterns") == 0, 10 * slow_factor()), "patterns left behind"
        send_all(pub, resp_cmd(b"PUBLISH", b"xx", b"gone"))
        assert rpub.value() == 0
        pub.close()


def test_crafted_channel_cannot_forge_a_pmsg_line(ctx):
    """A RESP PUBLISH may name any channel (up to --max-channel bytes), but a
    line client joins and publishes only names without spaces or control
    bytes, so before /psub no line or WebSocket subscriber ever got one. A
    /psub * subscriber gets them all: a channel holding a newline must not
    end its PMSG line early and forge a second one (a fake MSG from a nick
    of the attacker's choosing), and one holding a space must not shift the
    nick and text words. Such a name arrives with the text's escapes (a
    space as \\x20), one line of exactly five words; a name a line client
    could use (a backslash included) arrives as it is."""
    from wsclient import TEXT, recv_message, send, upgrade
    crafted = (  # channel published -> as the PMSG line names it
        (b"x\nMSG admin root pwned", b"x\\nMSG\\x20admin\\x20root\\x20pwned"),
        (b"a b", b"a\\x20b"),
        (b"c\r\n", b"c\\r\\n"),
        (b"\x7f\x00\t\\", b"\\x7f\\x00\\x09\\\\"),
        (b"d\\e", b"d\\e"),  # a valid name: verbatim, as MSG has it
    )
    with Weft(["--mode", "chat"]) as w:
        sub, pub = w.connect(), w.connect()
        f = sub.makefile("rb")
        sub.settimeout(10 * slow_factor())
        send_all(sub, b"/nick sub\n/psub *\n")
        assert f.readline() == b"OK nick sub\n"
        assert f.readline() == b"OK psub * 1\n"
        ws = upgrade(w.connect())
        send(ws, TEXT, b"/psub *")
        assert recv_message(ws) == (TEXT, b"OK psub * 1")
        rpub = Resp(pub)
        for ch, _ in crafted:
            send_all(pub, resp_cmd(b"PUBLISH", ch, b"hi"))
            assert rpub.value() == 2, "the line and the WebSocket subscriber"
        send_all(pub, resp_cmd(b"PUBLISH", b"end", b"bye"))
        assert rpub.value() == 2
        for ch, shown in crafted:
            line = f.readline()
            words = line.rstrip(b"\n").split(b" ")
            assert len(words) == 5 and words[:3] == [b"PMSG", b"*", shown], line
            assert words[3].startswith(b"guest") and words[4] == b"hi", line
            assert recv_message(ws) == (TEXT, line.rstrip(b"\n"))
        line = f.readline()
        assert line.startswith(b"PMSG * end guest") and line.endswith(b" bye\n"), "no forged line before it: %r" % line
        assert recv_message(ws)[1].startswith(b"PMSG * end guest")
        f.close()
        for s in (sub, pub, ws):
            s.close()


def test_condemned_psub_subscriber_costs_no_encoding(ctx):
    """Each matching pattern has its own delivery form (PMSG names the
    pattern, as pmessage does), so a PUBLISH of 8 MB (--max-message 8m) to
    a client holding --max-subs (1024) matching patterns would encode 8 GB
    under the exchange lock. A client that does not read is refused at
    --outbox-hard (4 MB here) by the first of them; the rest of that PUBLISH
    must not encode forms nobody can take: the server spends well under
    400 ms of CPU (x slow_factor; the best of three subscribers) from the
    PUBLISH to its answer, where encoding 8 GB takes seconds. CPU time, not
    the answer's wall time: a CI run on two loaded CPUs answered in 126 ms
    three times over, past the 100-ms wall bound this test had. Its reply
    still counts every pattern (Redis' count), another client's PUBLISH is
    answered meanwhile, and the subscriber is cut with all its patterns
    freed."""
    n = 1024
    limit = 400 * slow_factor()

    def cpu_ms():
        with open("/proc/%d/stat" % w.pid) as st:
            v = st.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    with Weft(["--mode", "chat", "--outbox-hard", "4m", "--max-message", "8m"]) as w:
        pub, prober = w.connect(), w.connect()
        rpub, rprobe = Resp(pub), Resp(prober)
        for s, r in ((pub, rpub), (prober, rprobe)):
            send_all(s, resp_cmd(b"PING"))
            assert r.value() == b"PONG"
        publish = resp_cmd(b"PUBLISH", b"xx", b"y" * 8000000)
        best = None
        for _ in range(3):
            sub = w.connect()
            f = sub.makefile("rb")
            sub.settimeout(30 * slow_factor())
            for start in range(0, n, 256):
                send_all(sub, b"".join(b"/psub " + line_pattern(i) + b"\n" for i in range(start, start + 256)))
                for i in range(start, start + 256):
                    assert f.readline().startswith(b"OK psub "), "pattern %d" % i
            # from here on the subscriber reads nothing
            send_all(pub, publish[:-4])
            time.sleep(0.3 * slow_factor())
            t0, c0 = time.monotonic(), cpu_ms()
            send_all(pub, publish[-4:])
            time.sleep(0.01)
            send_all(prober, resp_cmd(b"PUBLISH", b"probe", b"x"))
            assert rprobe.value() == 0
            probe_ms = (time.monotonic() - t0) * 1000
            assert rpub.value() == n, "one receiver per pattern"
            pub_ms, used = (time.monotonic() - t0) * 1000, cpu_ms() - c0
            assert wait_for(lambda: w.metric("weft_chat_patterns") == 0, 10 * slow_factor()), "not cut"
            f.close()
            sub.close()
            if best is None or used < best[2]:
                best = (pub_ms, probe_ms, used)
            if best[2] < limit:
                break
        print("measured: 8 MB PUBLISH to 1024 /psub of a non-reader: answered in %.0f ms, other PUBLISH %.0f ms, "
              "server CPU %.0f ms" % best)
        assert best[2] < limit, "%.0f ms of server CPU from the PUBLISH to its answer (limit %d)" % (best[2], limit)
        for s in (pub, prober):
            s.close()
