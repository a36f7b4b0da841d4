"""test_drain.py - a client that pauses mid-transfer during a SIGTERM drain.

The client sends 256 KiB of echo without reading (the smallest receive buffer
the kernel allows, so most of the echo waits in the server's socket), the
server is told to stop, and the client pauses past the drain's quiet interval
(SESSION_DRAIN_QUIET_MS, 200 ms): the server finds it quiet and ends it. Then
the client sends a few bytes more and reads. A server that close()s the
socket there answers those bytes with an RST, and the kernel throws away the
echo the client has not received yet; one that half-closes and reads until
the client's EOF (or its kernel has acknowledged everything) delivers all of
it (issue 17 item 6). Plain TCP, every model; about a second each."""
import signal
import socket
import time

from weftest import TLS, Weft, payload, recv_until_closed, send_all, slow_factor

QUIET_S = 0.2  # SESSION_DRAIN_QUIET_MS


def test_pause_mid_transfer_during_drain(ctx):
    if TLS:
        ctx.skip("plain TCP: the RST is the kernel's")
    data = payload(256 << 10)
    with Weft(["--drain-timeout", 20 * slow_factor()]) as w:
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", w.port))
        send_all(c, data)
        time.sleep(QUIET_S)  # let the server read it all and echo it into its socket
        w.proc.send_signal(signal.SIGTERM)
        pause = 3 * QUIET_S + 0.2 * slow_factor()
        time.sleep(pause)  # the pause: the server finds the client quiet
        try:
            c.sendall(b"late bytes the server may drop")
        except OSError:
            pass  # already reset: the read below says what was lost
        got = recv_until_closed(c, 20 * slow_factor())
        c.close()
        assert got[:len(data)] == data[:len(got)], "the echo differs at byte %d" % next(
            i for i in range(min(len(got), len(data))) if got[i] != data[i])
        assert len(got) >= len(data), ("the client received %d of %d echoed bytes before the connection ended "
                                       "(reset after a close with input unread)" % (len(got), len(data)))
        assert w.stop(timeout=30 * slow_factor()) == 0
        print("measured: paused %.1f s mid-transfer during the drain: all %d echoed bytes arrived"
              % (pause, len(data)))


def test_linger_does_not_spin(ctx):
    """A client that never reads keeps the server lingering until the drain's
    end: it waits in poll/epoll/the ring, not in a loop (threads and pool once
    spun a core for the whole linger: their retry counted from the last
    traffic, so poll() got a timeout of 0)."""
    if TLS:
        ctx.skip("plain TCP")
    with Weft(["--drain-timeout", 2]) as w:  # the linger ends at the drain's end: 2 s after the signal
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", w.port))
        send_all(c, payload(256 << 10))
        time.sleep(QUIET_S)
        w.proc.send_signal(signal.SIGTERM)
        time.sleep(3 * QUIET_S)  # quiet now: lingering
        window = 0.5
        cpu0 = w.cpu_seconds()
        time.sleep(window)
        used = w.cpu_seconds() - cpu0
        assert w.stop(timeout=30 * slow_factor()) == 0
        c.close()
        print("measured: lingering for a client that does not read: %.2f s of CPU in %.1f s" % (used, window))
        assert used < 0.3 * window, "the server used %.2f s of CPU in %.1f s while lingering" % (used, window)
