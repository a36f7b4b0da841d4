"""test_ws_hostile.py - what a script can do to weft's WebSocket path, on every
model: lengths that lie (2^63, huge-but-valid with no data), frames that break
the rules (unmasked, fragmented or oversized control frames, interleaved
messages, invalid UTF-8 split across fragments), a ping flood that never reads
its pongs, and an upgrade request trickled in, chat commands pipelined in WebSocket frames by
a client that never reads. Each closes only the attacker, with the right status
code, and a bystander keeps being served."""
import socket
import struct
import time

from weftest import SANITIZER, Weft, recv_exact, recv_until_closed, rss_kib, send_all, slow_factor
from wsclient import (BINARY, CLOSE, CONT, PING, TEXT, close_code, expect_close, frame, handshake_request, read_head,
                      recv_frame, recv_message, send, upgrade)


def bystander_ok(w, s):
    send(s, TEXT, b"still served")
    assert recv_message(s) == (TEXT, b"still served")


def raw_head(b0, length):
    """A masked frame head declaring `length` (64-bit form) and its mask key."""
    return struct.pack("!BBQ", b0, 0x80 | 127, length) + b"\x01\x02\x03\x04"


def test_lying_lengths(ctx):
    with Weft() as w:
        by = upgrade(w.connect())
        s = upgrade(w.connect())
        send_all(s, raw_head(0x82, 1 << 63) + b"x")   # top bit set: not a length
        expect_close(s, 1002)
        s = upgrade(w.connect())
        send_all(s, raw_head(0x82, 1 << 62) + b"x")   # valid, far over --max-message
        expect_close(s, 1009)
        s = upgrade(w.connect())
        send_all(s, struct.pack("!BBH", 0x81, 0x80 | 126, 5) + b"\x01\x02\x03\x04hello")  # not its shortest form
        expect_close(s, 1002)
        # A huge length and then silence: nothing is reserved for it.
        before = rss_kib(w.pid)
        idle = [upgrade(w.connect()) for _ in range(20)]
        for s in idle:
            send_all(s, raw_head(0x82, (1 << 62) + 7))
        bystander_ok(w, by)
        grew = rss_kib(w.pid) - before
        assert grew < 8 * 1024, "20 huge announced frames cost %d KiB" % grew
        for s in idle:
            s.close()


def test_rule_breakers(ctx):
    cases = [
        ("unmasked", [frame(TEXT, b"plain", mask=False)], 1002),
        ("fragmented ping", [frame(PING, b"a", fin=False), frame(CONT, b"b")], 1002),
        # an even control opcode too: wslay_is_ctrl_frame(op & 0x0f) once tested bit 0, not bit 3
        ("fragmented close", [frame(CLOSE, b"\x03\xe8", fin=False)], 1002),
        ("ping of 126 bytes", [frame(PING, b"p" * 126)], 1002),
        ("interleaved messages", [frame(TEXT, b"one", fin=False), frame(BINARY, b"two", fin=False)], 1002),
        ("continuation first", [frame(CONT, b"orphan")], 1002),
        # fails fast: the close comes before the message could end
        ("invalid UTF-8 across fragments", [frame(TEXT, b"ok \xf0\x9f", fin=False), frame(CONT, b"\x98", fin=False),
                                            frame(CONT, b"A", fin=False)], 1007),
        ("reserved bit", [frame(BINARY, b"x", rsv=4)], 1002),
    ]
    with Weft() as w:
        by = upgrade(w.connect())
        for name, frames, code in cases:
            s = upgrade(w.connect())
            send_all(s, b"".join(frames))
            try:
                expect_close(s, code)
            except AssertionError as e:
                raise AssertionError("%s: %s" % (name, e))
            bystander_ok(w, by)


def test_ping_flood_unread(ctx):
    """Pings sent as fast as possible, pongs never read: the pongs are bounded
    by back-pressure (--read-pause), the flood stalls in the socket buffers,
    the server's memory stays flat, others are served, and the flooder is
    dropped at --idle-timeout once it stalls."""
    with Weft(["--read-pause", "64k", "--idle-timeout", "1"]) as w:
        s = upgrade(w.connect())
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        before = rss_kib(w.pid)
        pings = frame(PING, b"p" * 125) * 64
        s.setblocking(False)
        sent, stalled, dropped, off = 0, None, False, 0
        end = time.monotonic() + 5 * slow_factor()
        while time.monotonic() < end:
            try:
                k = s.send(pings[off:])  # a short send leaves the rest of a frame to go first
                sent += k
                off = (off + k) % len(pings)
                stalled = None
            except BlockingIOError:
                stalled = stalled or time.monotonic()
                if time.monotonic() - stalled > 0.2:
                    break
                time.sleep(0.01)
            except (ConnectionResetError, BrokenPipeError):
                dropped = True  # cut at --idle-timeout while still trickling in
                break
        assert stalled or dropped, "a flood of %d bytes never stalled: the pongs are not bounded" % sent
        assert sent < 64 << 20, "the server took %d bytes of pings from a client that reads nothing" % sent
        grew = rss_kib(w.pid) - before
        limit = 8 if SANITIZER == "none" else 64  # MiB; ASan's quarantine keeps freed buffers
        assert grew < limit * 1024, "a ping flood grew the server by %d KiB" % grew
        # a fresh bystander: one idle since the start is dropped at
        # --idle-timeout (1 s) whenever the flood takes longer (a loaded machine)
        bystander_ok(w, upgrade(w.connect()))
        print("measured: ping flood stopped after %d bytes, server grew %d KiB" % (sent, grew))
        s.setblocking(True)
        try:
            recv_until_closed(s, timeout=10 * slow_factor(), limit=256 << 20)
        except ConnectionResetError:
            pass  # closed with our pings unread: a reset is how that ends
        bystander_ok(w, upgrade(w.connect()))  # the first one idled out meanwhile too


def test_trickled_upgrade(ctx):
    """An upgrade request whose fields come a byte at a time is cut at
    --header-timeout, however steadily it trickles (408). (A request line that
    never completes in time is not HTTP at all: it goes to the mode's protocol,
    docs/PROTOCOL.md.)"""
    with Weft(["--header-timeout", "0.5"]) as w:
        s = w.connect()
        req, _ = handshake_request()
        line_end = req.index(b"\r\n") + 2
        start = time.monotonic()
        send_all(s, req[:line_end])
        head = b""
        for b in req[line_end:]:
            try:
                s.send(bytes([b]))
            except OSError:
                break
            time.sleep(0.05)
            s.setblocking(False)
            try:
                head += s.recv(4096)
            except BlockingIOError:
                pass
            s.setblocking(True)
            if head:
                break
        took = time.monotonic() - start
        assert head.startswith(b"HTTP/1.1 408 "), "trickled upgrade got %r after %.1f s" % (head[:40], took)
        assert took < 0.5 + 2 * slow_factor(), "cut only after %.1f s" % took
        s.close()


def test_slow_consumer_frames_stay_whole(ctx):
    """A WebSocket subscriber that stops reading is dropped at --outbox-hard
    like any other; what it then reads is whole frames (none cut between its
    head and its payload by the drop), ending in the error line as a text
    message and a close frame with 1008 (policy violation)."""
    with Weft(["--mode", "chat", "--outbox-hard", "256k", "--read-pause", "64k"]) as w:
        sub = upgrade(w.connect())
        # (No tiny SO_RCVBUF: reading the backlog would crawl at one delayed
        # ACK per window, past the linger a dropped consumer gets for its error.)
        send(sub, TEXT, b"/join room")
        assert recv_message(sub)[1].startswith(b"OK join room")
        pub = w.connect()
        pub.settimeout(10)
        # ~1 KB frames: a 16 KiB output chunk fills up with room for a frame's
        # head but not its payload, so a cut there would show.
        line = b"/pub room " + b"m" * 1000 + b"\n"
        rd = pub.makefile("rb")
        for _ in range(200):  # up to 20 MB, far past the socket buffers; stops at the drop
            send_all(pub, line * 100)
            for _ in range(100):
                assert rd.readline().startswith(b"OK pub room")  # the publisher is never blocked
            if w.metric("weft_slow_consumer_disconnects_total"):
                break
        assert w.metric("weft_slow_consumer_disconnects_total", 'limit="hard"') == 1, w.metrics()
        last, closed = None, None
        try:
            while True:
                op, data = recv_message(sub)
                if op == CLOSE:
                    closed = data
                    break
                last = data
        except AssertionError as e:
            assert "EOF" in str(e), e  # recv_frame asserts every frame is well formed until then
        assert last and last.startswith(b"ERR slow consumer"), last[:80] if last else last
        # and then a close frame: 1008, a policy (the --outbox limits) was broken
        assert closed and close_code(closed) == 1008, closed
        pub.close()



def test_chat_commands_unread_bounded(ctx):
    """Chat over WebSocket keeps the line protocol's back-pressure: a command
    is acted on only while the output is below --read-pause, however many
    frames one read brought. Found by review: the codec pulled 4 KiB at a time
    and all of it was decoded and answered even with the output full, so 372
    "/list" frames in one 4 KiB write (1000 channels of 200 bytes: 200 KB a
    reply) queued 74 MB per connection; two such clients grew the server by
    142 MiB where the same commands as lines cost 2 MiB (issue 9's bound)."""
    from test_amplify import BOUND, MIB, Rss, attacker, server, settle
    with server(["--mode", "chat"]) as w:
        names = sorted(("c%05d" % i).encode() + b"x" * 194 for i in range(1000))
        j = w.connect()
        send_all(j, b"".join(b"/join " + n + b"\n" for n in names))
        want = b"".join(b"OK join " + n + b" 1\n" for n in names)
        assert recv_exact(j, len(want), 30.0 * slow_factor()) == want
        rss = Rss(w)
        attackers = [upgrade(attacker(w)) for _ in range(4)]
        for a in attackers:
            send_all(a, frame(TEXT, b"/list") * 372)  # 4092 bytes: one codec buffer
        settle(w)
        grown = rss.growth()
        print("measured: 4 x 372 /list over WebSocket unread: RSS +%.1f MiB" % (grown / MIB))
        assert grown < BOUND, "server RSS grew by %.1f MiB (bound %d MiB)" % (grown / MIB, BOUND // MIB)
        by = upgrade(w.connect())
        send(by, TEXT, b"/help")
        assert recv_message(by)[1].startswith(b"HELP ")
        # what was asked is still answered as the client reads (the first
        # replies: all 372 are 74 MB, too much reading for a per-model case)
        a = attackers[0]
        a.settimeout(30.0 * slow_factor())
        for i in range(20):
            op, data = recv_message(a, 30.0 * slow_factor())
            assert data.startswith(b"LIST 1000 c00000"), "reply %d: %r" % (i, data[:40])
        for s in attackers + [j, by]:
            s.close()


def test_stalled_subscribers_share_deliveries(ctx):
    """A publish is framed for WebSocket once and every WebSocket subscriber
    references that one frame, as line subscribers share the line form. Found
    by review (repro/ws_copies.py, now this case): each WebSocket subscriber
    framed its own copy of every delivery, so 8 subscribers that stop reading
    held 8 copies of 8 x 1 MB published: +50 MiB over WebSocket where lines
    cost +7.6 MiB."""
    from test_amplify import MIB, Rss, attacker, server, settle
    subs_n, count, size = 8, 8, 1000 * 1000

    def growth(ws):
        with server(["--mode", "chat", "--max-line", "2m"]) as w:
            subs = []
            for _ in range(subs_n):
                a = attacker(w)  # 4 KiB receive buffer: what it is sent waits in weft
                if ws:
                    upgrade(a)
                    send(a, TEXT, b"/join room")
                    assert recv_message(a)[1].startswith(b"OK join room")
                else:
                    send_all(a, b"/join room\n")
                    assert a.recv(100).startswith(b"OK join room")
                subs.append(a)
            rss = Rss(w)
            p = w.connect()
            p.settimeout(30 * slow_factor())
            for _ in range(count):
                send_all(p, b"/pub room " + b"x" * size + b"\n")
            got = b""
            while got.count(b"\n") < count:
                more = p.recv(4096)
                assert more, "the publisher was closed"
                got += more
            assert got.count(b"OK pub room %d" % subs_n) == count, got[:200]
            settle(w)
            assert not w.metric("weft_slow_consumer_disconnects_total"), "a limit cut in: nothing measured"
            grown = rss.growth()
            for s in subs + [p]:
                s.close()
            return grown

    line, ws = growth(False), growth(True)
    print("measured: %d stalled subscribers, %d x %d B published: line +%.1f MiB, WebSocket +%.1f MiB"
          % (subs_n, count, size, line / MIB, ws / MIB))
    # one copy of what was published, plus slack; 8 copies is 61 MiB
    assert ws <= 2 * max(line, size * count), "WebSocket subscribers hold %.1f MiB, lines %.1f MiB" % (
        ws / MIB, line / MIB)


def test_no_data_after_close_frame(ctx):
    """RFC 6455 5.5.1: after sending a Close frame an endpoint sends no more
    data frames. A WebSocket chat subscriber whose output waits in weft
    answers the client's close while publishes keep coming; what it reads
    after weft's close frame must be the end of the stream. Found by review:
    deliveries (one shared frame, EX_WS) went to the outbox after the close
    frame until the flush ended, so the client read data frames after Close."""
    from test_amplify import attacker
    with Weft(["--mode", "chat", "--read-pause", "16m"]) as w:
        sub = upgrade(attacker(w))  # 4 KiB receive buffer: its deliveries wait in weft
        send(sub, TEXT, b"/join room")
        assert recv_message(sub)[1].startswith(b"OK join room")
        pub = w.connect()
        pub.settimeout(10 * slow_factor())
        rd = pub.makefile("rb")
        before = b"/pub room " + b"b" * 1000 + b"\n"
        send_all(pub, before * 6000)  # 6 MB: under --read-pause, over the socket buffers (4 MB)
        for _ in range(6000):
            assert rd.readline().startswith(b"OK pub room 1")
        send(sub, CLOSE, struct.pack("!H", 1000))
        deadline = time.monotonic() + 2.0 * slow_factor()
        sent = 0
        while time.monotonic() < deadline:  # publishes while weft answers the close and flushes
            send_all(pub, b"/pub room after%d\n" % sent)
            if not rd.readline().startswith(b"OK pub room 1"):
                break  # the subscriber is gone: nothing more can follow
            sent += 1
            time.sleep(0.005)
        sub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # read the backlog at speed
        sub.settimeout(30 * slow_factor())
        closed = None
        while closed is None:
            fin, op, data = recv_frame(sub, 30 * slow_factor())
            if op == CLOSE:
                closed = data
        assert close_code(closed) == 1000, closed
        rest = b""
        while True:
            more = sub.recv(1 << 16)
            if not more:
                break
            rest += more
        assert rest == b"", "%d bytes after weft's close frame (%d published after ours): %r" % (
            len(rest), sent, rest[:60])
        pub.close()
