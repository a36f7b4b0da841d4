"""wss_idle.py - what an idle wss:// connection costs weft after one
message, against what an idle https:// keep-alive connection costs nginx
after one request (issue 19: "an idle wss:// connection, after one message,
costs <= nginx's idle TLS connection after one request").

The way bench/compare's idle-memory cell measures: the server's VmRSS (for
nginx its one worker's) before and with N connections held open, divided by
N. weft runs in echo mode; each connection does the TLS handshake, the
WebSocket upgrade, one 64-byte message and its echo, then stays idle. nginx
(worker_processes 1, bench/compare's settings) gets one GET on each
keep-alive connection. Both use the same P-256 certificate.

    python3 repro/wss_idle.py build/weft [N] [weft model args ...]
    python3 repro/wss_idle.py nginx [N]

Prints one line: bytes per connection."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests", "conformance")]

from wsclient import TEXT, frame, handshake_request  # noqa: E402

NGINX_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile 30000;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    ssl_session_cache shared:SSL:10m;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        location / {{ return 200 "Hello, World!\\n"; }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_port(port, limit=20):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def recv_until(s, pred):
    b = b""
    while not pred(b):
        more = s.recv(65536)
        if not more:
            raise RuntimeError("closed early: %r" % b[:100])
        b += more
    return b


def main():
    target = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    margs = sys.argv[3:]
    tmp = tempfile.mkdtemp(prefix="wss-idle-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", tmp + "/key.pem", "-out", tmp + "/cert.pem", "-days", "1", "-subj",
                    "/CN=localhost"], check=True, capture_output=True)
    port = free_port()
    nginx = os.path.basename(target) == "nginx"
    if nginx:
        with open(tmp + "/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, tls_port=port))
        argv = ["nginx", "-p", tmp, "-e", tmp + "/error.log", "-c", tmp + "/nginx.conf"]
        if os.geteuid() == 0:
            argv += ["-g", "user root;"]
    else:
        argv = [target] + margs + ["--mode", "echo", "--port", "0", "--tls-port", str(port), "--cert",
                                   tmp + "/cert.pem", "--key", tmp + "/key.pem", "--max-conns", "30000",
                                   "--idle-timeout", "600", "--ws-ping", "0"]
    srv = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(tmp + "/server.log", "w"))
    socks = []
    try:
        wait_port(port)
        pid = srv.pid
        if nginx:  # its one worker holds the connections
            time.sleep(0.3)
            kids = open("/proc/%d/task/%d/children" % (srv.pid, srv.pid)).read().split()
            pid = int(kids[0])
        time.sleep(0.3)
        base = rss_kib(pid)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        msg = b"m" * 64
        for _ in range(n):
            raw = socket.create_connection(("127.0.0.1", port), 10)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            if nginx:
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                recv_until(s, lambda b: b.endswith(b"Hello, World!\n"))
            else:
                s.sendall(handshake_request()[0])
                recv_until(s, lambda b: b"\r\n\r\n" in b)
                s.sendall(frame(TEXT, msg))
                recv_until(s, lambda b: len(b) >= 2 + len(msg))
            socks.append(s)
        time.sleep(0.5)
        held = rss_kib(pid)
        print("%s %s: %d idle TLS connections after one %s: RSS %d -> %d KiB, %.0f B per connection"
              % (os.path.basename(target), " ".join(margs), n, "request" if nginx else "WebSocket message",
                 base, held, (held - base) * 1024.0 / n))
    finally:
        for s in socks:
            s.close()
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)


main()
