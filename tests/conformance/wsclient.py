"""wsclient.py - a raw RFC 6455 client for the tests: it sends exactly the
frames a case asks for (unmasked, reserved bits, lying lengths, ...), which
no real client library will, and reads the server's frames strictly.

Frames are (fin, opcode, payload); close frames are decoded by close_code().
Everything has a timeout (weftest.recv_exact)."""
import base64
import hashlib
import os
import socket
import struct

from weftest import recv_exact, send_all

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def handshake_request(path="/", key=None, version="13", method="GET", extra=""):
    key = key or base64.b64encode(os.urandom(16)).decode()
    return ("%s %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n%s\r\n"
            % (method, path, key, version, extra)).encode(), key


def read_head(s, timeout=10.0):
    """The response head (bytes up to and with the empty line)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += recv_exact(s, 1, timeout)
        assert len(head) < 8192, "response head too long: %r" % head[:200]
    return head


def upgrade(s, path="/", extra=""):
    """Handshake on a connected socket; checks 101 and Sec-WebSocket-Accept."""
    req, key = handshake_request(path, extra=extra)
    send_all(s, req)
    head = read_head(s)
    assert head.startswith(b"HTTP/1.1 101 "), "no 101: %r" % head
    want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
    fields = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip()
              for l in head.split(b"\r\n")[1:] if b":" in l}
    assert fields.get(b"sec-websocket-accept") == want, "bad accept in %r" % head
    assert fields.get(b"upgrade", b"").lower() == b"websocket", head
    assert b"sec-websocket-extensions" not in fields, "an extension was accepted: %r" % head
    return s


def frame(op, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One frame's bytes; length overrides the declared payload length."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def send(s, op, payload=b"", **kw):
    send_all(s, frame(op, payload, **kw))


def recv_frame(s, timeout=10.0):
    """(fin, opcode, payload) of the next frame; server frames must be unmasked
    and have no reserved bits."""
    b0, b1 = recv_exact(s, 2, timeout)
    assert not b1 & 0x80, "server frame is masked"
    assert not b0 & 0x70, "server frame has reserved bits"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2, timeout))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8, timeout))[0]
    return bool(b0 & 0x80), b0 & 0x0F, recv_exact(s, n, timeout) if n else b""


def recv_message(s, timeout=10.0):
    """(opcode, payload) of the next data message, answering nothing; control
    frames on the way are returned as they are."""
    fin, op, data = recv_frame(s, timeout)
    while not fin:
        f2, op2, d2 = recv_frame(s, timeout)
        assert op2 == CONT, "opcode %d inside a fragmented message" % op2
        data += d2
        fin = f2
    return op, data


def close_code(payload):
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


# Whether expect_close() insists that the server closes TCP after its close
# frame. weft does at once; Node's ws (the reference the cases are checked
# against) waits up to 30 s for the peer, which RFC 6455 7.1.1 also allows.
WANT_EOF = True


def expect_close(s, codes, timeout=10.0):
    """The next frame is a close with one of codes (None = no code); we answer
    it as a client must, and the server then closes the TCP connection.
    Returns the code."""
    codes = codes if isinstance(codes, (tuple, list, set)) else (codes,)
    fin, op, data = recv_frame(s, timeout)
    assert op == CLOSE, "expected a close frame, got opcode %d %r" % (op, data[:60])
    code = close_code(data)
    assert code in codes, "close code %s, wanted %s (reason %r)" % (code, codes, data[2:])
    try:
        send(s, CLOSE, data[:2])
    except OSError:
        pass  # it may have closed already
    if not WANT_EOF:
        return code
    s.settimeout(timeout)
    try:
        rest = s.recv(1 << 16)
    except socket.timeout:
        raise AssertionError("server kept the connection open after its close")
    except OSError:
        rest = b""
    assert rest == b"", "bytes after the close frame: %r" % rest[:60]
    try:
        s.shutdown(socket.SHUT_WR)  # our FIN after the server's, as a browser closes at EOF (a drain lingers to it)
    except OSError:
        pass
    return code
