"""ws_cases.py - RFC 6455 conformance cases for an echo server, after
Autobahn|Testsuite's case list (1 framing, 2 ping/pong, 3 reserved bits,
4 opcodes, 5 fragmentation, 6 UTF-8, 7 close, 9 limits). Each case takes
connect(), which returns a socket with the handshake done, and asserts what
the RFC says the server must do.

The same cases run against weft (test_websocket.py, every model) and once
against Node's ws as a reference server (tests/websocket/test_reference.py),
which proves the cases right. The server must echo each message with its
opcode, allow messages of MAX_MESSAGE bytes and refuse longer ones (1009)."""
from wsclient import (BINARY, CLOSE, CONT, PING, PONG, TEXT, expect_close, recv_frame, recv_message, send,
                      send_all, frame)

MAX_MESSAGE = 65536


def echo(s, op, data):
    send(s, op, data)
    assert recv_message(s) == (op, data), "echo of %d bytes (opcode %d) differs" % (len(data), op)


# -- 1: framing --

def case_1_text_sizes(connect):
    s = connect()
    for n in (0, 1, 125, 126, 127, 65535, 65536):
        echo(s, TEXT, b"*" * n)
    s.close()


def case_1_binary_sizes(connect):
    s = connect()
    for n in (0, 1, 125, 126, 65535, 65536):
        echo(s, BINARY, bytes(range(256)) * (n // 256) + bytes(range(n % 256)))
    s.close()


def case_1_frames_in_one_write_and_byte_by_byte(connect):
    s = connect()
    send_all(s, b"".join(frame(TEXT, b"m%d" % i) for i in range(20)))
    for i in range(20):
        assert recv_message(s) == (TEXT, b"m%d" % i)
    for b in frame(BINARY, b"trickled"):
        send_all(s, bytes([b]))
    assert recv_message(s) == (BINARY, b"trickled")
    s.close()


# -- 2: ping/pong --

def case_2_ping_gets_pong(connect):
    s = connect()
    for payload in (b"", b"hello", bytes(range(125))):
        send(s, PING, payload)
        assert recv_frame(s) == (True, PONG, payload)
    s.close()


def case_2_unsolicited_pong_ignored(connect):
    s = connect()
    send(s, PONG, b"nobody asked")
    echo(s, TEXT, b"still here")
    s.close()


def case_2_ping_too_long(connect):
    s = connect()
    send(s, PING, b"x" * 126)
    expect_close(s, 1002)


def case_2_ping_fragmented(connect):
    s = connect()
    send(s, PING, b"half", fin=False)
    expect_close(s, 1002)


# -- 3: reserved bits --

def case_3_reserved_bits(connect):
    for rsv in (1, 2, 4, 7):
        s = connect()
        send(s, TEXT, b"rsv", rsv=rsv)
        expect_close(s, 1002)


def case_3_reserved_bits_on_ping(connect):
    s = connect()
    send(s, PING, b"", rsv=4)
    expect_close(s, 1002)


# -- 4: opcodes --

def case_4_reserved_opcodes(connect):
    for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        s = connect()
        send(s, op, b"what")
        expect_close(s, 1002)


def case_4_unmasked_frame(connect):
    s = connect()
    send(s, TEXT, b"no mask", mask=False)
    expect_close(s, 1002)


# -- 5: fragmentation --

def case_5_fragmented_text(connect):
    s = connect()
    send(s, TEXT, b"frag", fin=False)
    send(s, CONT, b"men", fin=False)
    send(s, CONT, b"ted", fin=True)
    assert recv_message(s) == (TEXT, b"fragmented")
    s.close()


def case_5_ping_between_fragments(connect):
    s = connect()
    send(s, BINARY, b"one", fin=False)
    send(s, PING, b"in between")
    send(s, CONT, b"two", fin=True)
    assert recv_frame(s) == (True, PONG, b"in between")
    assert recv_message(s) == (BINARY, b"onetwo")
    s.close()


def case_5_continuation_without_message(connect):
    s = connect()
    send(s, CONT, b"orphan")
    expect_close(s, 1002)


def case_5_new_message_inside_fragmented(connect):
    s = connect()
    send(s, TEXT, b"first", fin=False)
    send(s, TEXT, b"second")
    expect_close(s, 1002)


def case_5_empty_fragments(connect):
    s = connect()
    send(s, TEXT, b"", fin=False)
    send(s, CONT, b"", fin=False)
    send(s, CONT, b"", fin=True)
    assert recv_message(s) == (TEXT, b"")
    s.close()


# -- 6: UTF-8 --

VALID = "κόσμε ✓ 𝄞 €".encode()


def case_6_valid_utf8_split_everywhere(connect):
    s = connect()
    for cut in range(1, len(VALID)):
        send(s, TEXT, VALID[:cut], fin=False)
        send(s, CONT, VALID[cut:])
        assert recv_message(s) == (TEXT, VALID)
    s.close()


def case_6_invalid_utf8(connect):
    bad = (b"\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xce\xba\xe1",
           b"a\x80b")
    for b in bad:
        s = connect()
        send(s, TEXT, b)
        expect_close(s, 1007)


def case_6_invalid_utf8_split_across_fragments(connect):
    s = connect()
    send(s, TEXT, b"ok \xe2\x82", fin=False)   # the start of U+20AC ...
    send(s, CONT, b"\x28 broken")             # ... broken in the next fragment
    expect_close(s, 1007)


def case_6_truncated_utf8_at_end(connect):
    s = connect()
    send(s, TEXT, b"ends in the middle \xf0\x9d", fin=False)
    send(s, CONT, b"")
    expect_close(s, 1007)


def case_6_utf8_in_long_text(connect):
    """Past the first eight bytes: a server may check ASCII a word at a time,
    so the multi-byte and the invalid sequences sit at each offset of the
    second word, whole and split into two fragments mid-sequence."""
    s = connect()
    for pre in range(7, 18):
        m = b"a" * pre + "€𝄞".encode() + b"b" * (pre % 5)
        echo(s, TEXT, m)
        send(s, TEXT, m[:pre + 1], fin=False)
        send(s, CONT, m[pre + 1:])
        assert recv_message(s) == (TEXT, m)
    s.close()
    for pre, bad in ((7, b"\xed\xa0\x80"), (8, b"\xc0\xaf"), (13, b"\xf4\x90\x80\x80"), (15, b"\x80"),
                     (16, b"\xe0\x80\xaf"), (9, b"\xf0\x9d")):
        s = connect()
        send(s, TEXT, b"a" * pre + bad[:1], fin=False)
        send(s, CONT, bad[1:] + (b"" if bad == b"\xf0\x9d" else b"b" * 9))
        expect_close(s, 1007)

def case_6_binary_is_not_checked(connect):
    s = connect()
    echo(s, BINARY, b"\xff\xfe\xc0\x80")
    s.close()


# -- 7: close --

def case_7_close_codes_echoed(connect):
    for code in (1000, 1001, 1003, 1011, 3000, 4999):
        s = connect()
        send(s, CLOSE, code.to_bytes(2, "big") + b"bye")
        expect_close(s, code)


def case_7_close_empty(connect):
    s = connect()
    send(s, CLOSE, b"")
    expect_close(s, (None, 1000))


def case_7_close_invalid_codes(connect):
    for code in (0, 999, 1004, 1005, 1006, 1016, 2999, 5000, 65535):
        s = connect()
        send(s, CLOSE, code.to_bytes(2, "big"))
        expect_close(s, 1002)


def case_7_close_one_byte(connect):
    s = connect()
    send(s, CLOSE, b"\x03")
    expect_close(s, 1002)


def case_7_close_reason_not_utf8(connect):
    s = connect()
    send(s, CLOSE, (1000).to_bytes(2, "big") + b"\xff\xfe")
    expect_close(s, 1007)


def case_7_nothing_after_close(connect):
    s = connect()
    send_all(s, frame(CLOSE, (1000).to_bytes(2, "big")) + frame(TEXT, b"too late"))
    expect_close(s, 1000)


# -- 9: limits --

def case_9_message_at_limit(connect):
    s = connect()
    echo(s, BINARY, b"L" * MAX_MESSAGE)
    s.close()


def case_9_frame_over_limit(connect):
    """Refused from the declared length: only a first few payload bytes are
    sent (the server closes before the rest could arrive)."""
    s = connect()
    send_all(s, frame(BINARY, b"L" * (MAX_MESSAGE + 1))[:32])
    expect_close(s, 1009)


def case_9_fragments_over_limit(connect):
    s = connect()
    half = MAX_MESSAGE // 2 + 1
    send(s, TEXT, b"a" * half, fin=False)
    send_all(s, frame(CONT, b"b" * half)[:32])
    expect_close(s, 1009)


CASES = [(name, fn) for name, fn in sorted(globals().items(), key=lambda kv: getattr(kv[1], "__code__", None)
                                            and kv[1].__code__.co_firstlineno or 0)
         if name.startswith("case_")]


def run_all(connect, only=None):
    """Run every case (or those whose name contains `only`); returns the
    failures as (name, message)."""
    failures = []
    for name, fn in CASES:
        if only and only not in name:
            continue
        try:
            fn(connect)
        except Exception as e:  # noqa: BLE001 - each case reports, the run goes on
            failures.append((name, "%s: %s" % (type(e).__name__, e)))
    return failures
