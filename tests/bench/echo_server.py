#!/usr/bin/python3
"""echo_server.py - a small selectors-based echo server for weft-load's own tests.

With --drop-at N it is deliberately broken: on every connection it silently
drops byte number N of the stream (0-based), so a correct load generator must
report a mismatch. With --stall-after N it stops answering after N bytes, so
the load generator must report timeouts. It prints "ready: port=P" on stderr
once listening and exits on SIGTERM/SIGINT.
"""
import argparse
import selectors
import signal
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--drop-at", type=int, default=-1)
    ap.add_argument("--stall-after", type=int, default=-1)
    a = ap.parse_args()

    sel = selectors.DefaultSelector()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(512)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
    running = [True]

    def stop(*_):
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready: port=%d" % ls.getsockname()[1], file=sys.stderr, flush=True)

    state = {}  # sock -> [bytes seen, pending output]
    while running[0]:
        for key, _ in sel.select(0.2):
            s = key.fileobj
            if s is ls:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                state[c] = [0, bytearray()]
                sel.register(c, selectors.EVENT_READ, None)
                continue
            st = state[s]
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                del state[s]
                continue
            seen = st[0]
            st[0] += len(data)
            if 0 <= a.drop_at and seen <= a.drop_at < seen + len(data):
                k = a.drop_at - seen
                data = data[:k] + data[k + 1:]
            if 0 <= a.stall_after:
                keep = max(0, a.stall_after - seen)
                data = data[:keep]
            st[1] += data
            try:
                while st[1]:
                    n = s.send(st[1])
                    del st[1][:n]
            except (BlockingIOError, InterruptedError):
                pass  # the test clients never outrun this for long; good enough
            except OSError:
                pass
    for s in list(state):
        s.close()
    ls.close()


if __name__ == "__main__":
    main()
