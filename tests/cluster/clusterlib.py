"""clusterlib.py - what the cluster suite needs beside weftest: a real
redis-server on a free loopback port (killable with -9 and restartable on the
same port), weft nodes of given models joined to it, and subscriber /
publisher clients that check what they get.

Every wait is bounded; every process started here is stopped by its PID."""
import os
import signal
import socket
import subprocess
import time

import weftest
from weftest import Weft, free_port, send_all, slow_factor, wait_for

# One node per model; pool gets few workers (each serves one connection).
MODELS = {
    "threads": ["--model", "threads"],
    "pool": ["--model", "pool", "--workers", "32"],
    "coro": ["--model", "coro", "--poller", "epoll"],
    "uring": ["--model", "uring"],
}


class Redis:
    """redis-server on 127.0.0.1:port (plain), or with tls=dict(cert=, key=, ca=)
    on a TLS port only."""

    def __init__(self, tmp, port=None, tls=None):
        self.tmp = tmp
        self.port = port or free_port()
        self.tls = tls
        self.proc = None

    def start(self):
        args = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.tmp, "--protected-mode", "no"]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.tls["cert"],
                     "--tls-key-file", self.tls["key"], "--tls-ca-cert-file", self.tls["ca"],
                     "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        self.log = open(os.path.join(self.tmp, "redis-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for(self.answers, 10 * slow_factor()):
            self.stop()
            raise AssertionError("redis-server did not answer on port %d" % self.port)
        return self

    def cli(self, *args):
        cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        if self.tls:
            cmd += ["--tls", "--cacert", self.tls["ca"]]
        r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, timeout=10)
        return r.stdout.decode(errors="replace").strip()

    def answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited with %d" % self.proc.returncode)
        try:
            return self.cli("PING") == "PONG"
        except subprocess.TimeoutExpired:
            return False

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc:
            self.log.close()

    def numsub(self, channel):
        out = self.cli("PUBSUB", "NUMSUB", channel).split()
        return int(out[1]) if len(out) == 2 else -1

    def numpat(self):
        """Pattern subscriptions summed over every client (PUBSUB NUMPAT
        counts distinct patterns)."""
        out = self.cli("CLIENT", "LIST")
        return sum(int(f[5:]) for f in out.split() if f.startswith("psub="))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def node(model, url, extra=(), **kw):
    """A started weft chat node of this model joined to url."""
    args = ["--mode", "chat", "--cluster", url] + [str(a) for a in extra]
    return Weft(extra_args=args, model_args=MODELS[model], tls_listener=False, **kw).start()


def stop_all(nodes):
    """SIGTERM every node; each must exit 0 (and have no sanitizer report)."""
    errors = []
    for w in nodes:
        if w.proc is not None and w.returncode is None:
            rc = w.stop()
            if rc != 0:
                errors.append("%s exited %d:\n%s" % (w.args, rc, w.tail()))
    if errors:
        raise AssertionError("\n".join(errors))


resp = weftest.resp_cmd


class Sub:
    """A subscriber: kind 'resp' (SUBSCRIBE ch), 'pat' (PSUBSCRIBE pat),
    'line' (/join ch) or 'lpat' (the line protocol's /psub pat). Collects
    message texts in arrival order."""

    def __init__(self, w, kind, name):
        self.kind, self.name, self.w = kind, name, w
        self.s = w.connect(tls=False)
        self.buf = bytearray()
        self.got = []
        if kind == "line":
            send_all(self.s, b"/join " + name.encode() + b"\n")
            self._line()  # OK join
        elif kind == "lpat":
            send_all(self.s, b"/psub " + name.encode() + b"\n")
            ok = self._line()
            assert ok == b"OK psub %s 1" % name.encode(), ok
        else:
            send_all(self.s, resp("PSUBSCRIBE" if kind == "pat" else "SUBSCRIBE", name))
            self._value()  # the confirmation

    def _fill(self, end):
        left = end - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.s.settimeout(left)
        b = self.s.recv(1 << 16)
        if not b:
            raise EOFError("closed by weft")
        self.buf += b

    def _line(self, end=None, sep=b"\n"):
        end = end or time.monotonic() + 10 * slow_factor()
        while sep not in self.buf:
            self._fill(end)
        i = self.buf.index(sep)
        out = bytes(self.buf[:i])
        del self.buf[:i + len(sep)]
        return out

    def _value(self, end=None):
        head = self._line(end, b"\r\n")
        if head[:1] == b"*":
            return [self._value(end) for _ in range(int(head[1:]))]
        if head[:1] == b"$":
            n = int(head[1:])
            while len(self.buf) < n + 2:
                self._fill(end or time.monotonic() + 10 * slow_factor())
            out = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return out
        return head

    def read(self, want, timeout, idle=None, until=None):
        """Collect until len(got) >= want, or timeout, or (idle) nothing came
        for that long, or until(got) is true; returns got."""
        end = time.monotonic() + timeout * slow_factor()
        try:
            while len(self.got) < want and not (until and until(self.got)):
                if idle is not None:
                    end = min(end, time.monotonic() + idle * slow_factor())
                if self.kind == "line":
                    line = self._line(end)
                    if not line.startswith(b"MSG "):
                        raise AssertionError("unexpected line %r" % line)
                    _, ch, nick, text = line.split(b" ", 3)
                    assert ch == self.name.encode(), line
                    self.got.append(text)
                elif self.kind == "lpat":
                    line = self._line(end)
                    if not line.startswith(b"PMSG "):
                        raise AssertionError("unexpected line %r" % line)
                    _, pat, ch, nick, text = line.split(b" ", 4)
                    assert pat == self.name.encode(), line
                    self.got.append(text)
                else:
                    v = self._value(end)
                    if self.kind == "pat":
                        assert v[0] == b"pmessage" and v[1] == self.name.encode(), v
                        self.got.append(v[3])
                    else:
                        assert v[0] == b"message" and v[1] == self.name.encode(), v
                        self.got.append(v[2])
        except socket.timeout:
            pass
        return self.got

    @staticmethod
    def more_than(subs, want=None, quiet=0.3):
        """Once every sub holds its want messages (None: what it holds now): one
        quiet window for all of them (scaled like read's), then the subs that
        got more than that (a duplicate). One window, not one after another:
        cluster.sharded.asan's 36 subscribers waited 0.9 s each (32 s)."""
        wants = [len(s.got) if want is None else want for s in subs]
        time.sleep(quiet * slow_factor())
        return [s for s, n in zip(subs, wants) if len(s.read(n + 1, 0.005)) > n]

    def close(self):
        self.s.close()


class Pub:
    """A publisher: RESP (PUBLISH) or line (/pub) on one node."""

    def __init__(self, w, line=False):
        self.w, self.line = w, line
        self.s = w.connect(tls=False)
        if line:
            send_all(self.s, b"/nick pub%d\n" % w.port)
            r = b""
            end = time.monotonic() + 10 * slow_factor()
            while b"\n" not in r and time.monotonic() < end:
                self.s.settimeout(max(0.01, end - time.monotonic()))
                r += self.s.recv(4096)
        self.s.settimeout(30 * slow_factor())
        self.pending = 0

    def publish(self, ch, text):
        if self.line:
            send_all(self.s, b"/pub %s %s\n" % (ch.encode(), text))
        else:
            send_all(self.s, resp("PUBLISH", ch, text))
        self.pending += 1

    def drain(self):
        """Read every reply; returns the receiver counts."""
        counts, buf = [], b""
        end = time.monotonic() + 30 * slow_factor()
        sep = b"\n" if self.line else b"\r\n"
        while len(counts) < self.pending:
            if time.monotonic() > end:
                raise AssertionError("publisher: %d of %d replies" % (len(counts), self.pending))
            self.s.settimeout(max(0.01, end - time.monotonic()))
            buf += self.s.recv(1 << 16)
            *lines, buf = buf.split(sep)
            for l in lines:
                counts.append(int(l.rsplit(b" ", 1)[1]) if self.line else int(l[1:]))
        self.pending = 0
        return counts

    def close(self):
        self.s.close()


def wait_engine_subs(redis, channel, nsub, npat, timeout=10):
    """Until redis holds nsub subscriptions of channel and npat patterns."""
    ok = wait_for(lambda: redis.numsub(channel) == nsub and redis.numpat() == npat, timeout * slow_factor(), 0.05)
    if not ok:
        raise AssertionError("engine has %d subscribers of %s and %d patterns; wanted %d and %d"
                             % (redis.numsub(channel), channel, redis.numpat(), nsub, npat))


def engine_publish(r, channel, payload):
    """PUBLISH payload (bytes, as is) on the engine with redis-cli, as anyone
    with access to the engine could."""
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(r.port), "-x", "PUBLISH", channel],
                   input=payload, capture_output=True, timeout=10, check=True)


def spy_envelope(spy, text):
    """The raw envelope (head and data) carrying text, read off a socket
    that SUBSCRIBEd on the engine."""
    buf = b""
    while text not in buf:
        chunk = spy.recv(65536)
        assert chunk, "the engine closed the spy"
        buf += chunk
    i = buf.index(text)
    return buf[buf.rindex(b"weft1 ", 0, i):i + len(text)]


def link_up(w):
    return w.metric("weft_cluster_link_up") == 1
