"""weftest.py - the conformance test framework: start the real weft binary on
ephemeral loopback ports, talk to it with bounded, verifying clients, and fail
on any sanitizer report in its log.

Environment (set by ctest, see CMakeLists.txt beside this file):
  WEFT_BIN         the binary to run (weft, weft-asan or weft-tsan)
  WEFT_MODEL_ARGS  the model variant, e.g. "--model coro --poller epoll"
  WEFT_TLS=1       w.connect() talks TLS to the TLS port, so one test runs both ways
  WEFT_SANITIZER   none | asan | tsan: tests scale their load down with ctx.scale()

A suite is a file test_<area>.py of functions `def test_<case>(ctx)`; run.py
runs them. Everything here has a timeout: no helper can block forever.
"""
import contextlib
import ctypes
import os
import re
import resource
import selectors
import shlex
import signal
import socket
import ssl
import subprocess
import threading
import time

SANITIZER = os.environ.get("WEFT_SANITIZER", "none") or "none"
TLS = os.environ.get("WEFT_TLS", "0") == "1"
MODEL_ARGS = shlex.split(os.environ.get("WEFT_MODEL_ARGS", ""))
HOST = "127.0.0.1"

# Lines that mean a sanitizer found a bug; any of them fails the test.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                   "LeakSanitizer", "ERROR: ThreadSanitizer")

# First bytes that make common/net/detect.c wait for an HTTP request line.
HTTP_INITIALS = b"GHPDOTC"


class Skip(Exception):
    """Raised by ctx.skip(reason): the test does not apply to this variant."""


def _arg(args, name, default):
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


MODEL = _arg(MODEL_ARGS, "--model", "coro")
POLLER = _arg(MODEL_ARGS, "--poller", "epoll") if MODEL == "coro" else None
THREADS = int(_arg(MODEL_ARGS, "--threads", "1"))


def scale(n, asan=4, tsan=8, minimum=1):
    """n under the plain binary, n/asan or n/tsan under a sanitizer."""
    div = {"asan": asan, "tsan": tsan}.get(SANITIZER, 1)
    return max(minimum, n // div)


def slow_factor():
    """How much longer things take under this binary (for timeouts only)."""
    return {"asan": 3, "tsan": 6}.get(SANITIZER, 1)


def rss_kib(pid):
    """The resident set of process pid now, in KiB (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def raise_nofile(n):
    """Raise this process's soft RLIMIT_NOFILE to at least n (capped at the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


# ---- daemons: --daemon double-forks away from the test ----

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """The daemon double-forks away from us; as a subreaper we inherit it and
    can reap it ourselves (pid 1 in a container may never reap it, and an
    unreaped zombie still answers kill(pid, 0))."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def reap_later(pid, limit=120.0):
    """Reap the daemon once it is our child. It becomes ours only when the
    intermediate process of its double fork exits, which may be after
    start_daemon() returned: until then waitpid() says "not a child", so keep
    trying (bounded) instead of leaving a zombie that answers kill(pid, 0)."""
    def reap():
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                os.waitpid(pid, 0)
                return
            except ChildProcessError:
                if not os.path.exists("/proc/%d" % pid):
                    return
                time.sleep(0.05)
    t = threading.Thread(target=reap, daemon=True)
    t.start()
    return t


def pid_alive(pid):
    """True while pid runs (a zombie, which still answers kill(pid, 0), does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(pred, timeout=10.0, interval=0.02):
    """Poll pred() until it is true or timeout passes; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def payload(n, rng=None, seed=None):
    """n pseudo-random bytes that do not look like the start of an HTTP
    request (so echo detection never waits for more)."""
    if n <= 0:
        return b""
    b = bytearray(os.urandom(n) if seed is None else _seeded(n, seed))
    if b[0] in HTTP_INITIALS or b[0] == ord("*"):
        b[0] = 0x01
    return bytes(b)


def _seeded(n, seed):
    import random
    return random.Random(seed).randbytes(n)


# ---- the server ---------------------------------------------------------------

_live = []          # every Weft started and not yet reaped (run.py cleans up after a test)
_live_lock = threading.Lock()


class Weft:
    """A weft server process on ephemeral ports; a context manager.

    Weft(extra_args=[...]) runs: $WEFT_BIN $WEFT_MODEL_ARGS --port 0
    [--tls-port 0] extra_args. The TLS listener is on unless tls_listener=False
    or extra_args name --tls-port. Leaving the `with` block stops it with
    SIGTERM and fails if it does not exit with expect_exit (default 0; None =
    any) or if its log holds a sanitizer report."""

    def __init__(self, extra_args=(), model_args=None, tls_listener=True, env=None,
                 preexec_fn=None, ready_timeout=None, expect_exit=0, binary=None, wait_ready=True):
        self.binary = binary or os.environ.get("WEFT_BIN", "weft")
        self.args = list(MODEL_ARGS if model_args is None else model_args)
        self.args += ["--port", "0"]
        extra = [str(a) for a in extra_args]
        if tls_listener and not any(a.startswith("--tls-port") for a in extra):
            self.args += ["--tls-port", "0"]
        self.args += extra
        # Under TSan each pool worker thread is costly to start and join, and
        # every test starts a server: 128 of them made the pool TSan suites
        # the slowest of all (40 s for HTTP). 32 still race each other; a test
        # that needs more says --workers itself.
        if (SANITIZER == "tsan" and "pool" in self.args[:2] and "--workers" not in self.args):
            self.args += ["--workers", "32"]
        self.env = dict(os.environ, **(env or {}))
        self.preexec_fn = preexec_fn
        self.ready_timeout = ready_timeout or 10.0 * slow_factor()
        self.expect_exit = expect_exit
        self.wait_ready = wait_ready
        self.proc = None
        self.port = self.tls_port = self.pid = None
        self.returncode = None
        self._lines = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._reader = None

    # -- lifecycle --

    def start(self):
        self.proc = subprocess.Popen([self.binary] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=self.env, preexec_fn=self.preexec_fn)
        with _live_lock:
            _live.append(self)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.wait_ready:
            return self
        end = time.monotonic() + self.ready_timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                self._reap()
                raise AssertionError("weft exited with %d before it was ready:\n%s"
                                     % (self.proc.returncode, self.log()))
            if time.monotonic() > end:
                self.kill()
                raise AssertionError("weft not ready within %.0fs:\n%s" % (self.ready_timeout, self.log()))
        return self

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._lock:
                self._lines.append(line)
            if not self._ready.is_set() and " ready: " in line:
                m = re.search(r"port=(\d+) tls_port=(-?\d+) pid=(\d+)", line)
                if m:
                    self.port, self.tls_port, self.pid = (int(x) for x in m.groups())
                    self._ready.set()
        self.proc.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if self.proc is None:
            return False
        if self.returncode is not None:
            self.check_sanitizers()
            return False
        if exc_type is not None:
            self.kill()
            return False
        rc = self.stop()
        if self.expect_exit is not None and rc != self.expect_exit:
            raise AssertionError("weft exited with %d on SIGTERM, expected %d:\n%s"
                                 % (rc, self.expect_exit, self.tail()))
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Send sig, wait for the exit (bounded), check the log; returns the exit code."""
        timeout = timeout or 15.0 * slow_factor()
        if self.alive():
            self.proc.send_signal(sig)
        try:
            if SANITIZER == "tsan" and sig in (signal.SIGTERM, signal.SIGINT):
                # Under TSan a process sometimes never runs the handler of a
                # signal that came just after it started (coro, one thread in
                # epoll_wait, nothing pending or blocked: 3-4 in 40 starts on a
                # loaded machine; 0 in 60 plain, 0 in 30 ASan; a second signal
                # always ended it). Plain and ASan runs of every test keep the
                # one-signal check; here a second one is sent, and said.
                try:
                    self.proc.wait(min(10.0, timeout / 2))
                except subprocess.TimeoutExpired:
                    print("tsan: weft pid %d did not act on signal %d within 10 s: sent again" % (self.proc.pid, sig))
                    self.proc.send_signal(sig)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("weft did not exit within %.0fs of signal %d:\n%s"
                                 % (timeout, sig, self.tail()))
        self._reap()
        self.check_sanitizers()
        return self.returncode

    def kill(self):
        """SIGKILL without checks (cleanup after a failure)."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self._reap()

    def _reap(self):
        self.returncode = self.proc.returncode
        if self._reader is not None:
            self._reader.join(5)
        with _live_lock:
            if self in _live:
                _live.remove(self)

    def check_sanitizers(self):
        log = self.log()
        for mark in SANITIZER_MARKS:
            if mark in log:
                raise AssertionError("sanitizer report in the weft log (%s):\n%s" % (mark, log[-20000:]))

    # -- the log --

    def log(self):
        with self._lock:
            return "".join(self._lines)

    def tail(self, n=40):
        with self._lock:
            return "".join(self._lines[-n:])

    def wait_log(self, text, timeout=5.0):
        """True once text (a substring) appears in the log."""
        return bool(wait_for(lambda: text in self.log(), timeout * slow_factor()))

    def cpu_seconds(self):
        """utime + stime of the server process, from /proc."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # -- clients --

    def connect(self, tls=None, timeout=10.0):
        """A connected socket to the plain port, or (tls=True, or WEFT_TLS=1
        when tls is None) a TLS socket to the TLS port, handshake done."""
        tls = TLS if tls is None else tls
        if not tls:
            return socket.create_connection((HOST, self.port), timeout=timeout)
        if self.tls_port is None or self.tls_port < 0:
            raise AssertionError("TLS wanted but the server has no TLS port")
        raw = socket.create_connection((HOST, self.tls_port), timeout=timeout)
        # Python's ssl writes a large sendall() as several records, one send()
        # each: with Nagle the tail waits for the server's delayed ACK (40 ms
        # per request/response round trip).
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return client_ssl_context().wrap_socket(raw, server_hostname="localhost")
        except Exception:
            raw.close()
            raise

    def http(self, path="/metrics", method="GET", body=b"", timeout=10.0):
        """One HTTP/1.1 request on the plain port with Connection: close; (status, headers, body)."""
        s = socket.create_connection((HOST, self.port), timeout=timeout)
        try:
            head = "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (method, path)
            if body or method == "POST":
                head += "Content-Length: %d\r\n" % len(body)
            send_all(s, head.encode() + b"\r\n" + body, timeout)
            data = recv_until_closed(s, timeout)
        finally:
            s.close()
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines or not lines[0].startswith("HTTP/1."):
            raise AssertionError("not an HTTP response: %r" % data[:200])
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, rest

    def metrics(self):
        """GET /metrics parsed: {'name{labels}': value} ('name' when no labels)."""
        status, _, body = self.http("/metrics")
        if status != 200:
            raise AssertionError("/metrics answered %d" % status)
        return parse_prometheus(body.decode())

    def metric(self, name, label=""):
        """Sum of every series of name whose labels contain label (0 if none)."""
        total = 0
        for key, value in self.metrics().items():
            if key.split("{", 1)[0] == name and label in key:
                total += value
        return total


def parse_prometheus(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        v = float(value)
        out[key.strip()] = int(v) if v.is_integer() else v
    return out


# The text exposition format (0.0.4), as strict as Prometheus reads it.
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABELS = r'\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\}'
_SAMPLE = re.compile(r"^(%s)(%s)? (-?[0-9.e+-]+|NaN|[+-]Inf)$" % (_NAME, _LABELS))
_HELP = re.compile(r"^# HELP (%s) \S.*$" % _NAME)
_TYPE = re.compile(r"^# TYPE (%s) (counter|gauge)$" % _NAME)


def parse_exposition(text):
    """{'name{labels}': value}, after checking the text format: each line is
    HELP, TYPE or a sample; one HELP and one TYPE per family, the TYPE before
    its samples; a family's samples are contiguous and never repeated; a
    counter's name ends in _total."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    types, helps, done, out = {}, set(), set(), {}
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        m = _HELP.match(line)
        if m:
            assert m.group(1) not in helps, "second HELP, " + where
            helps.add(m.group(1))
            continue
        m = _TYPE.match(line)
        if m:
            name, kind = m.groups()
            assert name not in types, "second TYPE, " + where
            assert kind != "counter" or name.endswith("_total"), "a counter not named _total, " + where
            types[name] = kind
            continue
        m = _SAMPLE.match(line)
        assert m, "neither HELP, TYPE nor a sample, " + where
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        assert name in types, "a sample before its TYPE, " + where
        if name != current:
            assert name not in done, "family %s split in two, %s" % (name, where)
            if current:
                done.add(current)
            current = name
        key = name + labels
        assert key not in out, "the same series twice, " + where
        v = float(value)
        assert types[name] != "counter" or v >= 0, "a negative counter, " + where
        out[key] = int(v) if v.is_integer() else v
    assert set(types) == set(helps), "families without HELP or TYPE: %s" % (set(types) ^ set(helps))
    return out


def client_ssl_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def cleanup_all():
    """Kill every server still running (run.py calls this after each test)."""
    with _live_lock:
        left = list(_live)
    for w in left:
        w.kill()
    return left


# ---- bounded socket helpers ------------------------------------------------------

def send_all(s, data, timeout=10.0):
    """Send every byte of data within timeout (works on blocking sockets)."""
    s.settimeout(timeout)
    s.sendall(data)


def recv_exact(s, n, timeout=10.0):
    """Exactly n bytes, or AssertionError saying how many came before EOF/timeout."""
    end = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < n:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("timeout: got %d of %d bytes" % (len(buf), n))
        s.settimeout(left)
        try:
            chunk = s.recv(min(n - len(buf), 1 << 20))
        except socket.timeout:
            raise AssertionError("timeout: got %d of %d bytes" % (len(buf), n))
        if not chunk:
            raise AssertionError("EOF: got %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def recv_until_closed(s, timeout=10.0, limit=64 << 20):
    """Everything until EOF or a reset; AssertionError on timeout."""
    end = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < limit:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("timeout waiting for close after %d bytes" % len(buf))
        s.settimeout(left)
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            raise AssertionError("timeout waiting for close after %d bytes" % len(buf))
        except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError):
            break
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def is_closed(s, timeout=5.0):
    """True if the peer closed (EOF or reset) within timeout with no data."""
    try:
        return recv_until_closed(s, timeout, limit=1) == b""
    except AssertionError:
        return False


def connect_many(w, n, tls=None, timeout=10.0):
    """n connected sockets (closed again if one fails)."""
    socks = []
    try:
        for _ in range(n):
            socks.append(w.connect(tls=tls, timeout=timeout))
    except Exception:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


class _Conv:
    """One client's conversation: send data (in chunks), read it back, verify."""

    def __init__(self, sock, data, chunk, half_close):
        self.sock = sock
        self.data = memoryview(data)
        self.chunk = chunk
        self.half_close = half_close
        self.sent = 0
        self.got = 0
        self.error = None
        self.shut = False

    def done(self):
        return self.error is not None or self.got == len(self.data)

    def want_write(self):
        return self.sent < len(self.data)

    def on_write(self):
        try:
            n = self.sock.send(self.data[self.sent:self.sent + self.chunk])
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError as e:
            self.error = "send after %d bytes: %s" % (self.sent, e)
            return
        self.sent += n
        if self.sent == len(self.data) and self.half_close and not self.shut:
            self.sock.shutdown(socket.SHUT_WR)
            self.shut = True

    def on_read(self):
        while not self.done():
            try:
                b = self.sock.recv(1 << 18)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError as e:
                self.error = "recv after %d bytes: %s" % (self.got, e)
                return
            if not b:
                self.error = "EOF after %d of %d bytes" % (self.got, len(self.data))
                return
            n = len(b)
            if self.got + n > len(self.data) or self.data[self.got:self.got + n] != b:
                self.error = "wrong bytes at offset %d..%d" % (self.got, self.got + n)
                return
            self.got += n


def echo_many(socks, datas, chunk=65536, timeout=60.0, half_close=False, on_progress=None):
    """Every socket sends its data and must get exactly it back; all at once,
    driven by one selector. Returns nothing; raises AssertionError naming the
    first failures. Sockets stay open (the caller closes them).
    on_progress(bytes_echoed, bytes_total, bytes_sent) is called between
    selector rounds."""
    convs = [_Conv(s, d, chunk, half_close) for s, d in zip(socks, datas)]
    sel = selectors.DefaultSelector()
    for c in convs:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    end = time.monotonic() + timeout * slow_factor()
    pending = len(convs)
    total = sum(len(c.data) for c in convs)
    try:
        while pending:
            if on_progress:
                on_progress(sum(c.got for c in convs), total, sum(c.sent for c in convs))
            left = end - time.monotonic()
            if left <= 0:
                break
            for key, ev in sel.select(min(left, 1.0)):
                c = key.data
                if ev & selectors.EVENT_WRITE and c.want_write():
                    c.on_write()
                if ev & selectors.EVENT_READ or isinstance(c.sock, ssl.SSLSocket):
                    c.on_read()
                if c.done():
                    sel.unregister(c.sock)
                    pending -= 1
                elif not c.want_write():
                    sel.modify(c.sock, selectors.EVENT_READ, c)
    finally:
        sel.close()
        for c in convs:
            c.sock.setblocking(True)
    bad = [(i, c.error) for i, c in enumerate(convs) if c.error]
    slow = [(i, "timeout: sent %d, got %d of %d" % (c.sent, c.got, len(c.data)))
            for i, c in enumerate(convs) if not c.done()]
    if bad or slow:
        raise AssertionError("%d of %d clients failed, %d timed out; first: %s"
                             % (len(bad), len(convs), len(slow), (bad + slow)[:3]))


def echo_clients(w, sizes, tls=None, chunk=65536, timeout=60.0):
    """Connect len(sizes) clients, echo a random payload of each size on all of
    them concurrently, verify every byte, close them."""
    socks = connect_many(w, len(sizes), tls=tls)
    try:
        echo_many(socks, [payload(n) for n in sizes], chunk=chunk, timeout=timeout)
    finally:
        close_all(socks)


class Ctx:
    """What a test gets: the variant it runs under and a few conveniences."""

    def __init__(self, name, tmpdir):
        self.name = name
        self.tmpdir = tmpdir
        self.model = MODEL
        self.poller = POLLER
        self.threads = THREADS
        self.model_args = list(MODEL_ARGS)
        self.sanitizer = SANITIZER
        self.tls = TLS

    @staticmethod
    def skip(reason):
        raise Skip(reason)

    @staticmethod
    def scale(n, asan=4, tsan=8, minimum=1):
        return scale(n, asan, tsan, minimum)

    def path(self, name):
        return os.path.join(self.tmpdir, name)


def resp_cmd(*args):
    """One RESP command: an array of bulk strings."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def free_port():
    """A loopback port nothing listens on now (for a server to bind next)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@contextlib.contextmanager
def redis_server(*args, cwd=None):
    """A real redis-server on a free loopback port, without persistence (args
    added to its command line); yields its port. Skips the test when it does
    not start within 10 s, or exits at start (another process took the free
    port meanwhile, and what answered was that). Stopped by PID on the way out."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
                            + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)

    def up():
        if proc.poll() is not None:
            raise Skip("redis-server exited at start (port %d taken meanwhile?)" % port)
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return True
        except OSError:
            return False
    try:
        if not wait_for(up, 10):
            raise Skip("redis-server did not start")
        time.sleep(0.05)
        if proc.poll() is not None:
            raise Skip("redis-server exited at start (port %d taken meanwhile?)" % port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
