"""test_slow.py - slow consumers dropped while sends are in flight.

A subscriber with a tiny receive buffer stops reading while a publisher floods
its channel, until weft drops it (--outbox-hard). Other connections then make
traffic that reuses freed memory (/pub on another channel, GET /metrics). When
the slow subscriber finally reads, its stream must be a clean prefix of its own
stream: whole deliveries in order, then (if it read in time) the error line.
A model that frees or recycles a message the kernel (an io_uring send) or
OpenSSL may still read shows up here as foreign bytes: heap pointers, lines of
another connection's replies, broken sequences. Runs plain and over TLS."""
import socket
import time

from weftest import TLS, Weft, client_ssl_context, recv_until_closed, send_all, slow_factor

NICK = b"p"
CHAN = b"a"
# exchange.c allocates 8 + len("a") + len("p") + len(text) bytes for "MSG a p
# <text>\n": 4096, the size msg.c caches and recycles for outbox chunks, so a
# freed delivery is reused at once by some other connection's reply.
TEXT_LEN = 4096 - 10
HARD = 1 << 20


_ALPHA = bytes(range(0x41, 0x41 + 26)) * (TEXT_LEN // 26 + 2)


def text(seq):
    """Message seq: its number, then letters shifted by it (each one distinct)."""
    head = b"%08d:" % seq
    return head + _ALPHA[seq % 26:seq % 26 + TEXT_LEN - len(head)]


def expected_line(seq):
    return b"MSG " + CHAN + b" " + NICK + b" " + text(seq) + b"\n"


def slow_subscriber(w):
    """Connected, joined, with the smallest receive buffer the kernel allows."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", w.tls_port if TLS else w.port))
    s = client_ssl_context().wrap_socket(raw, server_hostname="localhost") if TLS else raw
    send_all(s, b"/join " + CHAN + b"\n")
    got = b""
    while not got.endswith(b"\n"):
        got += s.recv(100)
    assert got == b"OK join a 1\n", got
    return s


def line_client(w):
    c = w.connect()
    send_all(c, b"/nick " + NICK + b"\n")
    got = b""
    while not got.endswith(b"\n"):
        got += c.recv(100)
    assert got == b"OK nick p\n", got
    return c


def flood_until_dropped(w, pub):
    """Publish numbered messages until the server drops the subscriber; returns
    how many were published. Fast, so the drop comes while the subscriber's
    last send is still in flight (a dropped consumer lingers only briefly)."""
    pub.settimeout(10)
    seq, batch = 0, 64
    end = time.monotonic() + 30 * slow_factor()
    while time.monotonic() < end:
        send_all(pub, b"".join(b"/pub a " + text(seq + i) + b"\n" for i in range(batch)))
        replies = b""
        while replies.count(b"\n") < batch:
            replies += pub.recv(1 << 16)
        seq += batch
        if w.metric("weft_slow_consumer_disconnects_total", 'limit="hard"') >= 1:
            return seq
    raise AssertionError("the subscriber was never dropped after %d messages" % seq)


def other_traffic(w):
    """Traffic that allocates (and frees) 4 KiB chunks on other connections."""
    b = line_client(w)
    send_all(b, b"/join b\n")
    for i in range(50):
        send_all(b, b"/pub b " + b"x" * 3000 + b"\n")
    b.settimeout(10)
    got = b""
    deadline = time.monotonic() + 10 * slow_factor()
    while got.count(b"\n") < 101 and time.monotonic() < deadline:
        got += b.recv(1 << 16)
    b.close()
    for _ in range(5):
        w.metrics()


def check_prefix(stream):
    """stream must be: deliveries 0..k-1 in order, possibly a cut last one,
    possibly the slow-consumer error line; nothing else."""
    pos, seq = 0, 0
    while pos < len(stream):
        want = expected_line(seq)
        chunk = stream[pos:pos + len(want)]
        if chunk == want:
            pos += len(want)
            seq += 1
            continue
        rest = stream[pos:]
        if rest.startswith(b"ERR slow consumer") and rest.endswith(b"disconnecting\n") and rest.count(b"\n") == 1:
            return seq, True
        if want.startswith(rest):
            return seq, False  # closed in the middle of a delivery: still a clean prefix
        raise AssertionError("foreign bytes after %d deliveries (offset %d): %r (expected %r...)"
                             % (seq, pos, rest[:120], want[:40]))
    return seq, False


def test_slow_consumer_dropped_with_sends_in_flight(ctx):
    with Weft(["--mode", "chat", "--outbox-hard", str(HARD), "--outbox-soft", "0"]) as w:
        sub = slow_subscriber(w)
        pub = line_client(w)
        published = flood_until_dropped(w, pub)
        other_traffic(w)
        stream = recv_until_closed(sub, 20 * slow_factor())
        delivered, error_line = check_prefix(stream)
        print("measured: slow consumer dropped with sends in flight: clean prefix of %d of %d messages "
              "(%d KiB)%s" % (delivered, published, len(stream) >> 10, ", then the error line" if error_line else ""))
        assert delivered > 0, "nothing delivered before the drop: the test did not exercise sends in flight"
        assert delivered < published, "every message arrived: the subscriber was not dropped"
        sub.close()
        pub.close()
