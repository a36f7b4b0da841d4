"""shardlib.py - a real Redis Cluster for the sharded engine's tests
(redis-cluster://): six `redis-server --cluster-enabled yes` on free loopback
ports in a temp dir, made a cluster of three primaries with a replica each by
`redis-cli --cluster create ... --cluster-replicas 1`. Every process started
here is stopped by its PID; every wait is bounded."""
import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from weftest import Skip, slow_factor, wait_for


def _free(port):
    for p in (port, port + 10000):  # the cluster bus is the port + 10000
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _below_ephemeral():
    """The highest port + 1 that no outgoing connection is given (the
    kernel's ephemeral range starts there; 32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_cluster_ports(n):
    # Both a node's port and its bus port (+ 10000) stay below the ephemeral
    # range: a free port in it can be handed to any test's outgoing connection
    # between this check and redis-server's bind (seen: "redis-server on 43462
    # did not answer" while the rest of the suite ran).
    top = _below_ephemeral() - 10000 - 1
    if top < 11000:
        raise Skip("the ephemeral port range leaves no room for a Redis Cluster's port pairs")
    ports = []
    for _ in range(2000):
        p = random.randint(10000, top)
        if p not in ports and _free(p):
            ports.append(p)
            if len(ports) == n:
                return ports
    raise Skip("no free port pairs for a Redis Cluster")


def crc16(data):
    """CRC16/XMODEM, as the cluster spec (to pick channel names in given slots
    without asking redis-cli for each)."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def keyslot(key):
    k = key.encode()
    i = k.find(b"{")
    if i >= 0:
        j = k.find(b"}", i + 1)
        if j > i + 1:
            k = k[i + 1:j]
    return crc16(k) % 16384


def cli(port, *args, timeout=10, tls=None):
    extra = ["--tls", "--cacert", tls["ca"]] if tls else []
    r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + extra + [str(a) for a in args],
                       capture_output=True, timeout=timeout)
    return r.stdout.decode(errors="replace").strip()


class RedisCluster:
    def __init__(self, tmp, n=6, node_timeout=1000, tls=None):
        """tls=dict(cert=, key=, ca=): TLS only, for clients, the cluster bus
        and replication (--tls-cluster, --tls-replication)."""
        self.tls = tls
        self.tmp = tmp
        self.ports = free_cluster_ports(n)
        self.node_timeout = node_timeout
        self.procs = {}
        self.logs = {}

    def start_node(self, port):
        d = os.path.join(self.tmp, "rc-%d" % port)
        os.makedirs(d, exist_ok=True)
        self.logs[port] = open(os.path.join(d, "redis.log"), "ab")
        if self.tls:
            t = self.tls
            ports = ["--port", "0", "--tls-port", str(port), "--tls-cluster", "yes", "--tls-replication", "yes",
                     "--tls-cert-file", t["cert"], "--tls-key-file", t["key"], "--tls-ca-cert-file", t["ca"],
                     "--tls-auth-clients", "no"]
        else:
            ports = ["--port", str(port)]
        self.procs[port] = subprocess.Popen(
            ["redis-server"] + ports + ["--bind", "127.0.0.1", "--protected-mode", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(self.node_timeout), "--cluster-replica-validity-factor", "0",
             "--save", "", "--appendonly", "no", "--dir", d,
             # A replica's first sync starts at once: the default waits 5 s
             # for more replicas to share one diskless transfer.
             "--repl-diskless-sync-delay", "0"],
            stdin=subprocess.DEVNULL, stdout=self.logs[port], stderr=subprocess.STDOUT)

    def start(self):
        for p in self.ports:
            self.start_node(p)
        try:
            for p in self.ports:
                if not wait_for(lambda: self.cli(p, "PING") == "PONG" or self.procs[p].poll() is not None,
                                10 * slow_factor()) or self.procs[p].poll() is not None:
                    self.logs[p].flush()
                    log = open(os.path.join(self.tmp, "rc-%d" % p, "redis.log"), "rb").read()[-600:]
                    raise AssertionError("redis-server on %d did not answer (exit %s): %s" %
                                         (p, self.procs[p].poll(), log.decode(errors="replace")))
            tls = ["--tls", "--cacert", self.tls["ca"]] if self.tls else []
            r = subprocess.run(["redis-cli"] + tls + ["--cluster", "create"] + ["127.0.0.1:%d" % p for p in self.ports]
                               + ["--cluster-replicas", "1", "--cluster-yes"], capture_output=True, timeout=60)
            if r.returncode != 0:
                raise AssertionError("redis-cli --cluster create: %s" % r.stdout.decode()[-2000:])
            self.wait_ok()
            # A replica can take over only once it has synced with its primary.
            if not wait_for(self.replicas_synced, 20 * slow_factor(), 0.1):
                raise AssertionError("the replicas did not sync")
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, timeout=20):
        ok = wait_for(lambda: all("cluster_state:ok" in self.cli(p, "CLUSTER", "INFO") for p in self.live()),
                      timeout * slow_factor(), 0.1)
        if not ok:
            raise AssertionError("the cluster is not ok")

    def cli(self, port, *args):
        return cli(port, *args, tls=self.tls)

    def replicas_synced(self):
        n = 0
        for p in self.live():
            info = self.cli(p, "INFO", "replication")
            if "role:slave" in info:
                if "master_link_status:up" not in info:
                    return False
                n += 1
        return n == len(self.ports) // 2

    def live(self):
        return [p for p, pr in self.procs.items() if pr.poll() is None]

    def nodes(self, via=None):
        """[(id, port, flags, master_id, [slot ranges])] as one node sees it."""
        via = via or self.live()[0]
        out = []
        for line in self.cli(via, "CLUSTER", "NODES").splitlines():
            f = line.split()
            port = int(f[1].split("@")[0].rsplit(":", 1)[1])
            out.append((f[0], port, f[2].split(","), f[3], [s for s in f[8:] if not s.startswith("[")]))
        return out

    def primaries(self, via=None):
        """{port: [(lo, hi), ...]} of the primaries owning slots."""
        out = {}
        for _, port, flags, _, slots in self.nodes(via):
            if "master" in flags and slots and "fail" not in flags:
                out[port] = [(int(s.split("-")[0]), int(s.split("-")[-1])) for s in slots]
        return out

    def owner(self, slot, via=None):
        for port, ranges in self.primaries(via).items():
            if any(lo <= slot <= hi for lo, hi in ranges):
                return port
        return None

    def node_id(self, port):
        return self.cli(port, "CLUSTER", "MYID")

    def keyslot(self, key):
        return int(self.cli(self.live()[0], "CLUSTER", "KEYSLOT", key))

    def kill9(self, port):
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait(10)

    def url(self, n=1):
        return ("rediss-cluster://" if self.tls else "redis-cluster://") + ",".join("127.0.0.1:%d" % p for p in self.ports[:n])

    def stop(self):
        for p, pr in self.procs.items():
            if pr.poll() is None:
                pr.terminate()
        for p, pr in self.procs.items():
            try:
                pr.wait(10)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait(10)
            self.logs[p].close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class _Shared:
    """One Redis Cluster for the tests that leave it as they found it (no
    kill, SIGSTOP, CONFIG SET or slot move: they only start nodes, publish
    and subscribe), so a suite starts it once, not once per such test (each
    start is ~2.5 s of process start, `--cluster create` and the masters'
    writable delay, more under ASan's load). `with shared_cluster() as rc:`
    hands it out; it is checked before each test (six nodes live, state ok,
    replicas synced, no shard subscriptions left by the last one) and is
    started afresh when the check fails or when the last test using it
    failed. Stopped by PID at the suite's exit."""
    rc = None

    def __enter__(self):
        rc = _Shared.rc
        try:
            clean = rc is not None and self._clean(rc)
        except Exception:  # a redis-cli that timed out, say: not fit to share
            clean = False
        if rc is not None and not clean:
            _Shared.discard()
            rc = None
        if rc is None:
            tmp = tempfile.mkdtemp(prefix="weft-shared-rc-")
            try:
                rc = RedisCluster(tmp).start()
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _Shared.rc = rc
        return rc

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:  # whatever state it failed in: the next test gets a new one
            _Shared.discard()
        return False

    @staticmethod
    def _clean(rc):
        if len(rc.live()) != len(rc.ports):
            return False
        try:
            rc.wait_ok(5)
        except AssertionError:
            return False
        if not rc.replicas_synced():
            return False

        def unsubscribed():  # the last test's nodes are stopped: their shard subscriptions go with them
            return all(rc.cli(p, "PUBSUB", "SHARDCHANNELS") == "" for p in rc.ports)
        return wait_for(unsubscribed, 5 * slow_factor(), 0.05)

    @staticmethod
    def discard():
        rc, _Shared.rc = _Shared.rc, None
        if rc is not None:
            rc.stop()
            shutil.rmtree(rc.tmp, ignore_errors=True)


atexit.register(_Shared.discard)


def shared_cluster():
    return _Shared()


def channels_over_every_shard(rc, prefix="weft:", per_shard=3):
    """Channel names whose engine names (prefix + name) land on each primary,
    per_shard of each: {name: primary port}."""
    prim = rc.primaries()
    got, counts = {}, {p: 0 for p in prim}
    for i in range(1000):
        name = "room%d" % i
        owner = rc.owner(rc.keyslot(prefix + name))
        if counts.get(owner, per_shard) < per_shard:
            counts[owner] += 1
            got[name] = owner
        if all(c == per_shard for c in counts.values()):
            return got
    raise AssertionError("could not spread channels over %s" % counts)
