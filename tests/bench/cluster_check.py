#!/usr/bin/python3
"""cluster_check.py LB_PORT NODE_PORT... - carry a chat message through a TCP
load balancer from a client on one weft node to a client on another
(docker/cluster.yml; run by test_docker.sh). Exit 0 when it arrived.

Client A joins `lobby` through the balancer; clients are added through the
balancer until one lands on a node other than A's (each node's /metrics tells
where the line-protocol connections are); that one publishes, A must get it."""
import socket
import sys
import time

HOST = "127.0.0.1"


def metrics_lines(port):
    s = socket.create_connection((HOST, port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return data.decode(errors="replace").splitlines()


def line_conns(port):
    for l in metrics_lines(port):
        if l.startswith("weft_connections_by_protocol_total{") and 'protocol="chat_line"' in l:
            return int(l.rsplit(" ", 1)[1])
    return 0


def link_up(port):
    return any(l.startswith("weft_cluster_link_up{") and l.endswith(" 1") for l in metrics_lines(port))


def readline(s, end):
    buf = b""
    while not buf.endswith(b"\n"):
        s.settimeout(max(0.01, end - time.monotonic()))
        b = s.recv(1)
        if not b:
            raise EOFError("closed")
        buf += b
    return buf.rstrip(b"\n")


def main():
    lb, nodes = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
    end = time.monotonic() + 60
    while not all(link_up(p) for p in nodes):
        if time.monotonic() > end:
            print("cluster_check: not every node's link came up")
            return 1
        time.sleep(0.2)
    before = {p: line_conns(p) for p in nodes}
    a = socket.create_connection((HOST, lb), timeout=10)
    a.sendall(b"/nick alice\n/join lobby\n")
    readline(a, time.monotonic() + 10)
    readline(a, time.monotonic() + 10)
    where = lambda: [p for p in nodes if line_conns(p) > before[p]]
    a_node = where()
    assert len(a_node) == 1, a_node
    others = []
    for _ in range(6):
        b = socket.create_connection((HOST, lb), timeout=10)
        b.sendall(b"/nick bob\n")
        readline(b, time.monotonic() + 10)
        now = {p: line_conns(p) for p in nodes}
        grown = [p for p in nodes if now[p] > before[p] + (1 if p == a_node[0] else 0)]
        before = {p: now[p] - (1 if p == a_node[0] else 0) for p in nodes}
        if grown and grown[0] != a_node[0]:
            b_node = grown[0]
            break
        others.append(b)
    else:
        print("cluster_check: the balancer never put a second client on another node")
        return 1
    # Alice's node subscribes on redis asynchronously: publish until one arrives (bounded).
    got = None
    for i in range(20):
        b.sendall(b"/pub lobby hello through the balancer %d\n" % i)
        reply = readline(b, time.monotonic() + 10)
        try:
            got = readline(a, time.monotonic() + 0.5)
            break
        except socket.timeout:
            continue
    print("cluster_check: alice on node :%d, bob on node :%d; bob got %r, alice got %r"
          % (a_node[0], b_node, reply, got))
    ok = got is not None and got.startswith(b"MSG lobby bob hello through the balancer ")
    for s in [a, b] + others:
        s.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
