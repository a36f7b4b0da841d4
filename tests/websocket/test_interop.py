"""test_interop.py - WebSocket with real clients and a reference server, run
once (not per model): the conformance cases of ws_cases.py against Node's ws
(which proves the cases right), Node's ws and Python's websockets (Debian)
as clients of weft over ws:// and wss://, and chat shared between a
WebSocket client, nc-style line clients and redis-cli.

Node's ws (pinned in tests/node/package-lock.json) is installed into
$WEFT_NODE_DIR (a build folder) by scripts/node-deps.sh: the ctest fixture
node.deps does it once before this test; run alone, the test calls it too."""
import asyncio
import os
import ssl
import subprocess

import ws_cases
import wsclient
from weftest import HOST, Weft, send_all
from wsclient import upgrade

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = ["--model", "coro", "--poller", "epoll"]


def node_dir():
    d = os.environ.get("WEFT_NODE_DIR") or os.path.join(HERE, "..", "..", "build", "node")
    subprocess.run([os.path.join(HERE, "..", "..", "scripts", "node-deps.sh"), d], check=True, timeout=900)
    return d


def node(script, *args, **kw):
    env = dict(os.environ, NODE_PATH=os.path.join(node_dir(), "node_modules"))
    return subprocess.Popen(["node", os.path.join(HERE, script)] + [str(a) for a in args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_cases_against_reference_server(ctx):
    """Every case passes against Node's ws: the cases say what RFC 6455 says."""
    p = node("ref_server.js", ws_cases.MAX_MESSAGE)
    try:
        port = int(p.stdout.readline())
        import socket
        wsclient.WANT_EOF = False  # ws waits for the peer after its close (RFC 6455 7.1.1 allows it)
        failures = ws_cases.run_all(lambda: upgrade(socket.create_connection((HOST, port), timeout=10)))
    finally:
        wsclient.WANT_EOF = True
        p.kill()
        p.wait()
    assert not failures, "\n".join("%s: %s" % f for f in failures)


def test_node_client(ctx):
    with Weft(MODEL) as w:
        for url in ("ws://127.0.0.1:%d/" % w.port, "wss://127.0.0.1:%d/" % w.tls_port):
            p = node("client.js", url, 40)
            out, err = p.communicate(timeout=30)
            assert p.returncode == 0, "%s: %s %s" % (url, out, err)


async def py_echo_and_chat(echo_url, chat_url, chat_port, sslctx):
    import websockets
    async with websockets.connect(echo_url, ssl=sslctx, compression=None) as ws:
        for msg in ("hello", "κόσμε" * 1000, b"\x00\xff" * 40000):
            await ws.send(msg)
            assert await ws.recv() == msg
    async with websockets.connect(chat_url, ssl=sslctx) as ws:
        await ws.send("/nick py")
        assert await ws.recv() == "OK nick py"
        await ws.send("/join room")
        assert (await ws.recv()).startswith("OK join room")
        r, wr = await asyncio.open_connection(HOST, chat_port)
        wr.write(b"/nick nc\n/join room\nfrom nc\n")
        assert await ws.recv() == "MSG room nc from nc"
        subprocess.run(["redis-cli", "-p", str(chat_port), "PUBLISH", "room", "from redis"], check=True,
                       stdout=subprocess.DEVNULL, timeout=10)
        got = await ws.recv()
        assert got.startswith("MSG room ") and got.endswith(" from redis"), got
        await ws.send("from py")
        assert await ws.recv() == "MSG room py from py"
        lines = []
        while len(lines) < 5:
            lines.append(await asyncio.wait_for(r.readline(), 10))
        assert b"MSG room py from py\n" in lines, lines
        wr.close()


def test_python_websockets_client(ctx):
    sslctx = ssl.create_default_context()
    sslctx.check_hostname = False
    sslctx.verify_mode = ssl.CERT_NONE
    with Weft(MODEL) as echo, Weft(MODEL + ["--mode", "chat"]) as chat:
        for scheme, ep, cp, c in (("ws", echo.port, chat.port, None), ("wss", echo.tls_port, chat.tls_port, sslctx)):
            asyncio.run(asyncio.wait_for(py_echo_and_chat("%s://127.0.0.1:%d/" % (scheme, ep),
                                                          "%s://127.0.0.1:%d/chat" % (scheme, cp), chat.port, c),
                                         30))
