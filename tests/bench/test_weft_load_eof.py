#!/usr/bin/python3
"""test_weft_load_eof.py - weft-load notices a server closing right after its last bytes.

weft-load skips the read that would only say EAGAIN after a short plain read
(edge-triggered epoll reports the next bytes). A FIN that arrived together
with those bytes brings no later edge, so that read is the only way to see
it. Here a line-protocol server answers each subscriber's /join and closes
at once, the reply and the FIN corked into one segment: every subscriber
must be counted as an error (a closed connection), and the publisher, which
is answered as usual, keeps the run going. Over --ws the same, framed.

usage: test_weft_load_eof.py WEFT_LOAD
"""
import base64
import hashlib
import json
import socket
import subprocess
import sys
import threading

from checks import check, done

LOAD = sys.argv[1]
SUBS = 3


def ws_frame(text):
    b = text.encode()
    assert len(b) < 126
    return bytes([0x81, len(b)]) + b


class Conn:
    """A connection's line reader, over raw TCP or a WebSocket (client frames masked)."""

    def __init__(self, s, ws):
        self.s, self.ws, self.buf = s, ws, b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def upgrade(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n") if ln.lower().startswith(b"sec-websocket-key:")][0]
        acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        self.s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n")

    def line(self):
        if not self.ws:
            while b"\n" not in self.buf:
                self.fill()
            ln, self.buf = self.buf.split(b"\n", 1)
            return ln.decode()
        while True:
            if len(self.buf) >= 2:
                n, hl = self.buf[1] & 0x7F, 2
                if n == 126:
                    n, hl = int.from_bytes(self.buf[2:4], "big"), 4
                if len(self.buf) >= hl + 4 + n:
                    mask, p = self.buf[hl:hl + 4], self.buf[hl + 4:hl + 4 + n]
                    self.buf = self.buf[hl + 4 + n:]
                    return bytes(c ^ mask[i % 4] for i, c in enumerate(p)).decode().rstrip("\n")
            self.fill()

    def reply(self, text):
        return ws_frame(text) if self.ws else (text + "\n").encode()


def serve(lst, ws):
    while True:
        try:
            s, _ = lst.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(s, ws), daemon=True).start()


def handle(s, ws):
    c = Conn(s, ws)
    try:
        if ws:
            c.upgrade()
        first = c.line()
        if first.startswith("/join "):
            # The reply and the FIN in one segment: the FIN tags onto the corked data.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            s.sendall(c.reply("OK join %s 1" % first.split()[1]))
            s.close()
            return
        ln = first
        while True:  # a publisher: every /pub answered, nothing delivered
            s.sendall(c.reply("OK pub %s %d" % (ln.split()[1], SUBS)))
            ln = c.line()
    except (EOFError, OSError, IndexError):
        pass
    s.close()


def run(ws):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    threading.Thread(target=serve, args=(lst, ws), daemon=True).start()
    args = [LOAD, "chat", "--port", str(lst.getsockname()[1]), "-q", "--subscribers", str(SUBS),
            "--publishers", "1", "-n", "20", "--timeout", "1"] + (["--ws"] if ws else [])
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    lst.close()
    j = json.loads(p.stdout)
    errors = j["errors"]["errors"]
    check(p.returncode == 1 and errors >= SUBS,
          "%s: every subscriber the server closed is counted (rc=%d errors=%d of %d)" %
          ("ws" if ws else "line", p.returncode, errors, SUBS))


run(False)
run(True)
done()
