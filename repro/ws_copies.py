"""ws_copies.py - what a subscriber that stops reading costs over WebSocket,
against the same subscriber on the line protocol (review of issue 19, not yet
fixed, so a probe here rather than a failing suite case).

A line subscriber's unsent deliveries are references to the one message a
publish encodes for its wire format; a WebSocket subscriber's are copies,
framed per subscriber (session_write_msg -> ws_write_lines), each a fresh
outbox append. So N WebSocket subscribers that stop reading hold N copies of
everything published, up to --outbox-hard (32m) each: 100 stalled browser
tabs on a busy channel can hold 3.2 GB where 100 netcats hold the messages
once. Measured on 1e6602a: 8 subscribers, 8 x 1 MB published: line +7.6 MiB,
WebSocket +50.7 MiB.

    cd tests/conformance && WEFT_BIN=../../build/weft python3 ../../repro/ws_copies.py

Exits 1 while a WebSocket subscriber costs more than twice a line one."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests", "conformance"), os.path.join(HERE, "..", "tests", "hostile")]

import test_amplify as A  # noqa: E402
from weftest import send_all  # noqa: E402
from wsclient import TEXT, recv_message, send, upgrade  # noqa: E402

SUBS, MESSAGES, SIZE = 8, 8, 1000 * 1000


def growth(ws):
    with A.server(["--mode", "chat", "--max-line", "2m"]) as w:
        subs = []
        for _ in range(SUBS):
            a = A.attacker(w)  # 4 KiB receive buffer: what it is sent waits in weft
            if ws:
                upgrade(a)
                send(a, TEXT, b"/join room")
                recv_message(a)
            else:
                send_all(a, b"/join room\n")
                a.recv(100)
            subs.append(a)
        rss = A.Rss(w)
        p = w.connect()
        for _ in range(MESSAGES):
            send_all(p, b"/pub room " + b"x" * SIZE + b"\n")
        A.settle(w)
        assert not w.metric("weft_slow_consumer_disconnects_total"), "a limit cut in: the probe measures nothing"
        for s in subs + [p]:
            s.close()
        return rss.growth()


line, ws = growth(False), growth(True)
print("%d subscribers not reading, %d x %d bytes published: line +%.1f MiB, WebSocket +%.1f MiB"
      % (SUBS, MESSAGES, SIZE, line / A.MIB, ws / A.MIB))
sys.exit(0 if ws <= 2 * max(line, SIZE * MESSAGES) else 1)
