#!/usr/bin/python3
"""ws_echo_server.py - a small threaded WebSocket echo server for weft-load's
own tests, correct or broken on purpose.

  --mode ok        echo each message as it came
  --mode flip      flip one payload byte of the 5th message of each connection
  --mode split     send each message back as two messages
  --mode accept    answer the upgrade with a wrong Sec-WebSocket-Accept
  --mode unmasked  send each message back with the mask bit set (servers must not)

It checks what a browser-like client must do: every client frame masked,
each with its own mask. On SIGTERM it prints "frames=N unmasked=U
distinct_masks=D" on stdout and exits. "ready: port=P" goes to stderr.
"""
import argparse
import base64
import hashlib
import signal
import socket
import socketserver
import struct
import sys
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
lock = threading.Lock()
stats = {"frames": 0, "unmasked": 0, "masks": set()}
MODE = "ok"


def read_exact(f, n):
    b = f.read(n)
    if len(b) != n:
        raise EOFError
    return b


def frame(op, payload, masked=False):
    n = len(payload)
    h = bytes([0x80 | op])
    mb = 0x80 if masked else 0
    if n < 126:
        h += bytes([mb | n])
    elif n < 65536:
        h += bytes([mb | 126]) + struct.pack("!H", n)
    else:
        h += bytes([mb | 127]) + struct.pack("!Q", n)
    if masked:
        h += b"\0\0\0\0"  # a zero mask: the payload bytes stay as they are
    return h + payload


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        req = b""
        while b"\r\n\r\n" not in req:
            line = self.rfile.readline()
            if not line:
                return
            req += line
        key = next(l.split(b":", 1)[1].strip() for l in req.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:"))
        acc = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if MODE == "accept":
            acc = base64.b64encode(hashlib.sha1(key).digest())
        self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        count = 0
        try:
            while True:
                b0, b1 = read_exact(self.rfile, 2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", read_exact(self.rfile, 2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", read_exact(self.rfile, 8))[0]
                mask = read_exact(self.rfile, 4) if b1 & 0x80 else None
                data = bytearray(read_exact(self.rfile, n))
                with lock:
                    stats["frames"] += 1
                    if mask is None:
                        stats["unmasked"] += 1
                    else:
                        stats["masks"].add(mask)
                if mask:
                    for i in range(n):
                        data[i] ^= mask[i & 3]
                op = b0 & 0x0F
                if op == 8:
                    self.wfile.write(frame(8, bytes(data[:2])))
                    return
                if op == 9:
                    self.wfile.write(frame(10, bytes(data)))
                    continue
                count += 1
                if MODE == "flip" and count == 5 and n:
                    data[n // 2] ^= 0x01
                if MODE == "split" and n > 1:
                    out = frame(op, bytes(data[:n // 2])) + frame(op, bytes(data[n // 2:]))
                else:
                    out = frame(op, bytes(data), masked=(MODE == "unmasked"))
                self.wfile.write(out)
        except (EOFError, OSError, ValueError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


def main():
    global MODE
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="ok", choices=("ok", "flip", "split", "accept", "unmasked"))
    MODE = ap.parse_args().mode
    srv = Server(("127.0.0.1", 0), Handler)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("ready: port=%d" % srv.server_address[1], file=sys.stderr, flush=True)
    done.wait()
    with lock:
        print("frames=%d unmasked=%d distinct_masks=%d" % (stats["frames"], stats["unmasked"], len(stats["masks"])),
              flush=True)
    srv.shutdown()


if __name__ == "__main__":
    main()
