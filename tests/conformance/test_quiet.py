"""test_quiet.py - quiet subscribers are not idle (issue 20 item 4), on every
model: with --idle-timeout 1 a RESP SUBSCRIBE client, a PSUBSCRIBE client and
a line /join client stay connected well past the timeout and still receive a
PUBLISH; a client that UNSUBSCRIBEs (or /leaves) its last channel is closed by
the idle timeout again; a client without subscriptions is closed as before.
Dead subscribers are found by TCP keepalive (--tcp-keepalive, on by
default): `ss` shows the keepalive timer on the server's accepted socket, and
none with --tcp-keepalive 0. Everything runs at once: about 3 s a variant."""
import re
import socket
import subprocess
import time

import weftest
from weftest import Weft, is_closed, resp_cmd, send_all, slow_factor, wait_for
from test_chat import Reader

CHAT = ["--mode", "chat"]


def test_subscribers_outlive_idle_timeout(ctx):
    with Weft(extra_args=CHAT + ["--idle-timeout", "1", "--outbox-soft", "64m", "--outbox-hard", "128m"]) as w:
        def client(req):
            s = w.connect()
            send_all(s, req)
            return s, Reader(s)
        # One after another: the join counts depend on the order.
        sub, rsub = client(resp_cmd("SUBSCRIBE", "quiet"))
        assert rsub.value() == [b"subscribe", b"quiet", 1]
        psub, rpsub = client(resp_cmd("PSUBSCRIBE", "qu*"))
        assert rpsub.value() == [b"psubscribe", b"qu*", 1]
        line, rline = client(b"/join quiet\n")
        assert rline.line() == b"OK join quiet 2"
        leaver, rleaver = client(resp_cmd("SUBSCRIBE", "gone"))
        assert rleaver.value() == [b"subscribe", b"gone", 1]
        lleaver, rlleaver = client(b"/join gone\n")
        assert rlleaver.line() == b"OK join gone 2"
        plain, rplain = client(resp_cmd("PING"))
        assert rplain.value() == b"PONG"
        start = time.monotonic()
        # Past the timeout, still subscribed: the leavers now leave, and from
        # then on the idle timeout counts for them again.
        time.sleep(1.5)
        send_all(leaver, resp_cmd("UNSUBSCRIBE", "gone"))
        send_all(lleaver, b"/leave gone\n")
        assert rleaver.value() == [b"unsubscribe", b"gone", 0]
        assert rlleaver.line() == b"OK leave gone"
        left = time.monotonic()
        # The one without subscriptions went at about 1 s.
        assert is_closed(plain, 2 * slow_factor()), "an idle client without subscriptions stayed open"
        for s, who in ((leaver, "RESP"), (lleaver, "line")):
            assert is_closed(s, 3 * slow_factor()), "%s client stayed open after leaving its last channel" % who
        assert time.monotonic() - left >= 0.5, "closed before its idle timeout after the UNSUBSCRIBE"
        time.sleep(max(0.0, start + 2.6 - time.monotonic()))
        # 2.6 s without a byte from them: the subscribers are still here and get a PUBLISH.
        pub, rpub = client(resp_cmd("PUBLISH", "quiet", "still here"))
        assert rpub.value() == 3
        assert rsub.value() == [b"message", b"quiet", b"still here"]
        assert rpsub.value() == [b"pmessage", b"qu*", b"quiet", b"still here"]
        assert rline.line().endswith(b" still here")
        # A subscriber that reads slowly is not stuck: 10 MB for it (past the
        # kernel's socket buffers, under --outbox-soft), then 1.8 s before it
        # reads on; its output waits unsent in weft for longer than the idle
        # limit meanwhile, yet it stays.
        big = b"q" * 65536
        send_all(pub, resp_cmd("PUBLISH", "quiet", big) * 160)
        for _ in range(160):
            assert rpub.value() == 3
        time.sleep(1.8)
        for _ in range(160):
            assert rsub.value() == [b"message", b"quiet", big]
            assert rpsub.value() == [b"pmessage", b"qu*", b"quiet", big]
            assert rline.line().endswith(big)
        # the three above, and the publisher (no subscription) during the 1.8 s
        assert w.metric("weft_connections_closed_total", 'reason="idle"') == 4
        for s in (sub, psub, line, pub):
            s.close()


def test_stuck_subscriber_with_output_unsent_is_not_exempt(ctx):
    """The exemption is for a quiet channel: nothing to send. A subscriber
    that stopped reading (output unsent, no progress; TCP keepalive cannot
    see it, its kernel answers the probes) held that output for ever: above
    --outbox-soft past --outbox-soft-secs it is cut only when another message
    comes, and none may. --idle-timeout counts for it again."""
    with Weft(extra_args=CHAT + ["--idle-timeout", "1", "--outbox-soft", "64k", "--outbox-soft-secs", "1"]) as w:
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((weftest.HOST, w.port))
        send_all(stuck, resp_cmd("SUBSCRIBE", "firehose"))
        assert wait_for(lambda: w.metric("weft_chat_subscriptions") == 1, 5 * slow_factor())
        pub = w.connect()
        rpub = Reader(pub)
        # 8 MB for a reader that reads nothing: past what the kernel's socket
        # buffers take (tcp_wmem's 4 MB), so weft holds the rest
        for _ in range(16):
            send_all(pub, resp_cmd("PUBLISH", "firehose", "x" * 500000))
            assert rpub.value() == 1
        pub.close()
        assert wait_for(lambda: w.metric("weft_connections_closed_total", 'reason="idle"') >= 1, 6 * slow_factor()), \
            "a subscriber with MBs unsent and no progress stayed open past --idle-timeout 1"
        stuck.close()


def keepalive_timers(port):
    """The ss timer field of every established TCP socket whose local port is
    `port` (the server's side of each connection), e.g. 'keepalive,4min59sec,0'."""
    out = subprocess.run(["ss", "-tnoH", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True, timeout=10).stdout
    timers = []
    for ln in out.splitlines():
        m = re.search(r"timer:\(([^)]*)\)", ln)
        timers.append(m.group(1) if m else "")
    return timers


def timer_secs(timer):
    """Seconds until an ss timer fires: 'keepalive,4min59sec,0', '6sec', and
    newer ss's '6.996ms' (seconds with a fraction) or '500ms'."""
    m = re.match(r"[a-z]+,(?:(\d+)min)?(?:([\d.]+)(sec|ms))?,", timer + ",")
    assert m, timer
    secs = float(m.group(2) or 0)
    if m.group(3) == "ms" and "." not in (m.group(2) or ""):
        secs /= 1000
    return int(m.group(1) or 0) * 60 + secs


def test_tcp_keepalive_on_accepted_sockets(ctx):
    for flag, want in (([], "keepalive"), (["--tcp-keepalive", "7"], "keepalive"), (["--tcp-keepalive", "0"], None)):
        with Weft(extra_args=CHAT + flag, tls_listener=False) as w:
            s = w.connect()
            send_all(s, resp_cmd("SUBSCRIBE", "k"))
            Reader(s).value()  # the server has accepted and served it
            timers = []
            assert wait_for(lambda: len(timers.extend(keepalive_timers(w.port)) or timers) >= 1, 5), \
                "no server-side socket on port %d in ss" % w.port
            if want:
                assert all(t.startswith("keepalive,") for t in timers), (flag, timers)
                due = timer_secs(timers[0])
                if flag:  # 7 s: the first probe is due within 7 s
                    assert 0 < due <= 7, timers
                else:  # the default, 300 s
                    assert 200 < due <= 300, timers
            else:
                assert not any(t.startswith("keepalive") for t in timers), timers
            s.close()
