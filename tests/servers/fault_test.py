# SPDX-License-Identifier: MIT
"""Connection faults against an example server while healthy clients keep
being served, each of their answers checked byte for byte:

  resets mid-request and mid-response (SO_LINGER 0), half-close
  (shutdown(SHUT_WR) after whole requests: every answer still arrives),
  slow readers (one reads large answers a few KiB at a time and must get
  them whole; others never read and must be dropped by the idle timeout),
  500 slowloris connections (a partial request trickled a byte at a time:
  dropped by the request timeout; for echo, which has no requests, each
  byte is echoed), 10 000 short connections (connect, one request, close).

Afterwards the server is alive, its fd count is back to the baseline, and
every healthy answer was right.

  fault_test.py httpd|kv|echo SERVER_EXE

The kinds share the phases; a Proto class per kind says what a request,
its answer, a large answer and a partial request look like.  The loads fit
an ASan build as they are (the Python client is the slower side)."""
import functools
import hashlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (resp_cmd, DATE_HDR, Reader, Server, check, fds_settle, fd_count,  # noqa: E402
                    is_asan, raise_nofile, read_http_response, reset, server_holds)

KIND, EXE = sys.argv[1], sys.argv[2]
ASAN = is_asan(EXE)
IDLE_MS = 3000         # the server's idle / stuck-request timeout
SLOWLORIS = 500
SHORT_CONNS = 10000
BIG = 4 << 20          # a large answer: some MiB, more than the socket buffers hold
MID = 8 << 20          # what a slow reader reads: more than the kernel's socket
                       # buffers hold (tcp_wmem's 4 MiB and our 16 KiB), so the
                       # server's send waits on the reader for seconds

raise_nofile(SLOWLORIS + 200)


class Bad(Exception):
    """A wrong answer (not a fault we inflicted)."""


@functools.lru_cache(maxsize=8)
def big_payload(seed, n):
    return payload(seed, n)


def payload(seed, n):
    """Deterministic bytes, so an answer can be checked without keeping it."""
    out = bytearray()
    block = hashlib.sha256(b"%d" % seed).digest()
    while len(out) < n:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:n])


# ------------------------------------------------------------- protocols

class HttpProto:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="fault-httpd-")
        self.files = {}
        for name, n in [("small.txt", 11), ("f1.bin", 1000), ("f2.bin", 20000),
                        ("f3.bin", 70000), ("mid.bin", MID), ("big.bin", BIG)]:
            data = payload(n, n)
            with open(os.path.join(self.root, name), "wb") as f:
                f.write(data)
            self.files[name] = data
        self.small = ["small.txt", "f1.bin", "f2.bin", "f3.bin"]

    def args(self):
        return ["--root", self.root]

    def setup(self, srv):
        pass

    def request(self, i, close=False):
        name = self.small[i % len(self.small)] if not isinstance(i, str) else i
        req = b"GET /%s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (
            name.encode(), b"Connection: close\r\n" if close else b"")
        return req, (name, close)

    def check(self, r, want):
        name, close = want
        status, hdrs, body, head = read_http_response(r)
        data = self.files[name]
        ctype = b"text/plain" if name.endswith(".txt") else b"application/octet-stream"
        exp = (b"HTTP/1.1 200 OK\r\nServer: ursa\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
               b"%s\r\n" % (ctype, len(data), b"Connection: close\r\n" if close else b""))
        if status is None:
            raise Bad("%s: closed after %d head and %d body bytes" % (name, len(head), len(body)))
        if DATE_HDR.sub(b"", head) != exp or body != data:
            raise Bad("%s: wrong answer: head %r, body of %d bytes%s" % (
                name, head, len(body), "" if body == data else " (differs)"))

    def big(self):
        return self.request("big.bin")

    def mid(self):
        return self.request("mid.bin")

    def partial(self, k):
        """A request cut short: some of the head, or a head and half a body."""
        if k % 2:
            return b"GET /big.bin HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * (k % 500)
        return b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"b" * 50000

    def slowloris(self):
        return b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 200

    def quit(self, i):
        return self.request(i, close=True)


def resp_bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


class KvProto:
    def args(self):
        return []

    def setup(self, srv):
        # The 12 MiB built first: built after the connect, it took longer
        # than the idle timeout on a loaded machine, and the idle
        # connection was closed under the send (BrokenPipeError).
        data = resp_cmd("SET", "big", big_payload(1, BIG)) + resp_cmd("SET", "mid", big_payload(2, MID))
        s = srv.connect(60)
        r = Reader(s)
        s.sendall(data)
        check(r.exact(10) == b"+OK\r\n+OK\r\n", "kv setup")
        s.close()

    def request(self, i, tag="h"):
        # Each client (i // 10**6) has keys of its own.
        key = "%s:%d:%d" % (tag, i // 1000000, i % 5000)
        val = payload(i, 1 + (i * 7919) % 20000)
        req = resp_cmd("SET", key, val) + resp_cmd("GET", key)
        return req, b"+OK\r\n" + resp_bulk(val)

    def check(self, r, want):
        got = r.exact(len(want))
        if got != want:
            raise Bad("kv: %d bytes, want %d%s" % (len(got), len(want),
                                                   "" if len(got) < len(want) else " (differ)"))

    def big(self):
        return resp_cmd("GET", "big"), resp_bulk(big_payload(1, BIG))

    def mid(self):
        return resp_cmd("GET", "mid"), resp_bulk(big_payload(2, MID))

    def partial(self, k):
        if k % 2:
            return b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + b"v" * 50000
        return b"*2\r\n$3\r\nGET\r\n$" + b"%d" % (k % 100)

    def slowloris(self):
        return b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$200\r\n" + b"a" * 200

    def quit(self, i):
        req, want = self.request(i, "q")
        return req + resp_cmd("QUIT"), want + b"+OK\r\n"


class EchoProto:
    def args(self):
        return []

    def setup(self, srv):
        pass

    def request(self, i):
        data = payload(i, 1 + (i * 7919) % 20000)
        return data, data

    def check(self, r, want):
        got = r.exact(len(want))
        if got != want:
            raise Bad("echo: %d bytes, want %d%s" % (len(got), len(want),
                                                     "" if len(got) < len(want) else " (differ)"))

    def big(self):
        data = big_payload(3, BIG)
        return data, data

    def mid(self):
        data = big_payload(4, MID)
        return data, data

    def partial(self, k):
        return payload(k, 100000)

    def slowloris(self):
        return b"x" * 200

    def quit(self, i):
        return self.request(i)


proto = {"httpd": HttpProto, "kv": KvProto, "echo": EchoProto}[KIND]()
srv = Server(EXE, "--cores", "2", "--idle-ms", str(IDLE_MS), "--grace-ms", "5000",
             *proto.args())
proto.setup(srv)


def send_all_bg(s, data):
    """Send data from a thread: a large request (echo) must not wait for
    the caller to start reading the answer."""
    t = threading.Thread(target=lambda: s.sendall(data), daemon=True)
    t.start()
    return t


def exchange(s, r, req, want):
    """Send req and check the answer; a large request is sent from a
    thread so that the answer is read meanwhile."""
    if len(req) > 60000:
        t = send_all_bg(s, req)
        proto.check(r, want)
        t.join()
    else:
        s.sendall(req)
        proto.check(r, want)


# ------------------------------------------------------- healthy clients

class Healthy(threading.Thread):
    """Requests in a loop, each answer checked byte for byte; a fresh
    connection every 50 requests, or when the last was idle so long that the
    server may have closed it (then a close before the answer is allowed)."""

    def __init__(self, n):
        super().__init__(daemon=True)
        self.n = n
        self.count = 0
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        s = r = None
        last = 0.0
        i = (10 + self.n) * 1000000
        while not self.stop.is_set():
            try:
                if s is None or self.count % 50 == 0 or time.time() - last > IDLE_MS / 2000:
                    if s:
                        s.close()
                    s = srv.connect(30)
                    r = Reader(s)
                exchange(s, r, *proto.request(i))
                self.count += 1
                last = time.time()
                i += 1
            except (Bad, OSError) as e:
                self.errors.append("request %d: %s: %s" % (i, type(e).__name__, e))
                if len(self.errors) > 5:
                    return
                if s:
                    s.close()
                s = None
        if s:
            s.close()


def phase(name, fn):
    before = [h.count for h in healthy]
    t0 = time.time()
    fn()
    for h in healthy:
        check(not h.errors, "healthy client during %s: %s" % (name, h.errors))
    check(srv.alive(), "server died during %s" % name)
    # The healthy clients kept being served (give a starved one a moment).
    end = time.time() + 30
    while any(h.count <= b for h, b in zip(healthy, before)) and time.time() < end:
        time.sleep(0.1)
    check(all(h.count > b for h, b in zip(healthy, before)),
          "healthy clients stalled during %s" % name)
    print("%-28s %6.1f s  healthy answers so far: %s" % (
        name, time.time() - t0, [h.count for h in healthy]), flush=True)


# Warm up, then take the fd baseline: listeners, rings, signalfd and
# whatever the runtime opens lazily on first use.
for i in range(20):
    c = srv.connect()
    exchange(c, Reader(c), *proto.request(i))
    c.close()
time.sleep(0.5)
baseline = fds_settle(srv.p.pid, 0, allowance=10 ** 6, within=0)
time.sleep(0.5)
baseline = min(baseline, fd_count(srv.p.pid))
print("%s: fd baseline %d%s" % (KIND, baseline, " (ASan build)" if ASAN else ""))

healthy = [Healthy(k) for k in range(2)]
for h in healthy:
    h.start()


def resets_mid_request():
    for k in range(200):
        c = srv.connect()
        try:
            c.sendall(proto.partial(k))
        except OSError:
            pass
        reset(c)


def resets_mid_response():
    for k in range(60):
        c = srv.connect()
        t = send_all_bg(c, proto.big()[0])
        if k % 3:
            # Read part of the answer first (the others reset unread).
            try:
                c.recv(1 + k * 1000)
            except OSError:
                pass
        t.join(0.5)
        reset(c)


def half_close():
    for k in range(40):
        c = srv.connect(30)
        r = Reader(c)
        reqs = [proto.request(k * 10 + j) for j in range(5)] + ([proto.big()] if k % 4 == 0 else [])
        data = b"".join(req for req, _ in reqs)
        t = send_all_bg(c, data)
        t.join(30)
        c.shutdown(socket.SHUT_WR)
        for _, want in reqs:
            try:
                proto.check(r, want)
            except Bad as e:
                check(False, "half-close #%d: %s" % (k, e))
        c.settimeout(10)
        check(r.exact(1) == b"" and r.eof, "half-close #%d: not closed after the answers" % k)
        c.close()


def slow_readers():
    """Three clients read 8 MiB 16 KiB at a time (longer in total than the
    idle timeout, but never stalled): each must get it whole.  The idle
    timeout is for no progress, not for a whole answer.  A fourth slows
    down to 100 KB/s for longer than the idle timeout once the server's send
    queue has grown to its 4 MiB: one send of the server's then waits some
    10 s for room while the reader keeps taking bytes, and the server must
    not take that for a stall (it did, and cut the reader).  Ten more ask
    for large answers and never read: each must be dropped."""
    results = []
    slow_from, slow_for = 4 << 20, IDLE_MS / 1000 + 2.0

    def slow(k, slows=False):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.settimeout(30)
        c.connect(("127.0.0.1", srv.port))
        req, want = proto.mid()
        t = send_all_bg(c, req)
        got = bytearray()
        total = len(want) if KIND != "httpd" else None
        t0 = time.time()
        slow_until = None
        try:
            while True:
                if slows and slow_until is None and len(got) >= slow_from:
                    slow_until = time.time() + slow_for
                slowly = slow_until is not None and time.time() < slow_until
                chunk = c.recv(4096 if slowly else 16384)
                if not chunk:
                    break
                got += chunk
                if total is None and b"\r\n\r\n" in got:
                    h = bytes(got[:got.index(b"\r\n\r\n") + 4])
                    total = len(h) + MID
                if total is not None and len(got) >= total:
                    break
                time.sleep(0.04 if slowly else 0.01)
        except OSError as e:
            results.append("slow reader %d: %s after %d bytes" % (k, e, len(got)))
            return
        t.join()
        c.close()
        r = FakeReader(bytes(got))
        try:
            proto.check(r, want)
        except Bad as e:
            results.append("slow reader %d (%.1f s): %s" % (k, time.time() - t0, e))
            return
        results.append(None)
        results.append(time.time() - t0)

    readers = [threading.Thread(target=slow, args=(k, k == 3)) for k in range(4)]
    for t in readers:
        t.start()
    stuck = []
    for k in range(10):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.connect(("127.0.0.1", srv.port))
        c.setblocking(False)
        try:
            for _ in range(8):
                c.send(proto.big()[0][:65536] if KIND == "echo" else proto.big()[0])
        except BlockingIOError:
            pass
        stuck.append(c)
    for t in readers:
        t.join(120)
    errs = [x for x in results if isinstance(x, str)]
    check(not errs, "; ".join(errs))
    took = [x for x in results if isinstance(x, float)]
    check(len(took) == 4, "slow readers: %r" % results)
    # The stuck ones: dropped within the idle timeout (plus the sweep and
    # a loaded machine's slack), checked on the server's side.
    end = time.time() + IDLE_MS / 1000 + 15
    while server_holds(srv.p.pid, srv.port, stuck) and time.time() < end:
        time.sleep(0.25)
    held = server_holds(srv.p.pid, srv.port, stuck)
    check(not held, "%d of 10 never-reading clients still held" % len(held))
    for c in stuck:
        c.close()
    print("  slow readers took %s s (idle timeout %.1f s)" % (
        ", ".join("%.1f" % x for x in took), IDLE_MS / 1000))


class FakeReader(Reader):
    def __init__(self, data):
        self.s = None
        self.buf = bytearray(data)
        self.eof = False

    def _more(self):
        self.eof = True
        return False


def slowloris():
    """500 connections, each trickling a partial request a byte at a time.
    httpd and kv bound the time a request may take to arrive (the idle
    timeout, unless it makes real progress), so all are dropped; echo has no
    requests, so every byte comes back."""
    conns = []
    for _ in range(SLOWLORIS):
        c = srv.connect()
        c.setblocking(False)
        conns.append(c)
    msg = proto.slowloris()
    pos = 0
    t0 = time.time()
    # Trickle for longer than the timeout: a byte per connection each 0.25 s.
    alive = list(conns)
    echoed = {c: 0 for c in conns}
    # Trickle until every connection is dropped (httpd, kv) or for twice the
    # timeout (echo); the request timeout must drop them while they trickle.
    limit = IDLE_MS / 1000 * 2 + (2 if KIND == "echo" else 10)
    while time.time() - t0 < limit and alive:
        nxt = []
        for c in alive:
            try:
                c.send(msg[pos % len(msg):pos % len(msg) + 1])
                nxt.append(c)
            except OSError:
                pass  # the server dropped it (a reset on our send)
            if KIND == "echo":
                try:
                    echoed[c] += len(c.recv(4096))
                except BlockingIOError:
                    pass
        alive = nxt
        pos += 1
        time.sleep(0.25)
    if KIND == "echo":
        for _ in range(5):
            held = server_holds(srv.p.pid, srv.port, conns)
            if len(held) == SLOWLORIS:
                break
            time.sleep(0.2)
        check(len(held) == SLOWLORIS, "echo dropped %d trickling clients" % (SLOWLORIS - len(held)))
        for c in conns:
            c.setblocking(True)
            c.settimeout(20)
            while echoed[c] < pos:
                chunk = c.recv(4096)
                check(chunk, "echo closed a trickling client")
                echoed[c] += len(chunk)
            check(echoed[c] == pos, "echo of a trickle: %d bytes, sent %d" % (echoed[c], pos))
    else:
        held = server_holds(srv.p.pid, srv.port, conns)
        check(not held, "%d of %d slowloris connections still held after %.0f s of trickling" % (
            len(held), SLOWLORIS, time.time() - t0))
        print("  slowloris connections dropped after %.1f s (timeout %.1f s)" % (
            time.time() - t0, IDLE_MS / 1000))
    for c in conns:
        c.close()


def short_connections():
    """Connect, one request, close; half of them the server's close
    (Connection: close, QUIT)."""
    errors = []
    done = [0]
    lock = threading.Lock()

    def worker(w, n):
        for k in range(n):
            i = w * 1000000 + k
            try:
                c = srv.connect(30)
                r = Reader(c)
                exchange(c, r, *(proto.quit(i) if k % 2 else proto.request(i)))
                c.close()
            except (Bad, OSError) as e:
                with lock:
                    errors.append("short connection %d: %s: %s" % (i, type(e).__name__, e))
                return
            with lock:
                done[0] += 1

    nthreads = 4
    threads = [threading.Thread(target=worker, args=(w, SHORT_CONNS // nthreads))
               for w in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "; ".join(errors[:5]))
    check(done[0] == SHORT_CONNS, "short connections served: %d of %d" % (done[0], SHORT_CONNS))


phase("resets mid-request", resets_mid_request)
phase("resets mid-response", resets_mid_response)
phase("half-close", half_close)
phase("slow readers", slow_readers)
phase("%d slowloris" % SLOWLORIS, slowloris)
phase("%d short connections" % SHORT_CONNS, short_connections)

for h in healthy:
    h.stop.set()
for h in healthy:
    h.join(60)
    check(not h.errors, "healthy client: %s" % h.errors)
check(srv.alive(), "server died")
n = fds_settle(srv.p.pid, baseline + 2, allowance=4)
check(n <= baseline + 6, "fds: %d, baseline %d (+ 2 healthy-free slack)" % (n, baseline))
n = fds_settle(srv.p.pid, baseline, allowance=2)
print("%s: fds %d at the end (baseline %d); healthy answers %s, all exact" % (
    KIND, n, baseline, [h.count for h in healthy]))
check(n <= baseline + 2, "fd count %d did not settle to the baseline %d" % (n, baseline))
rc = srv.stop(signal.SIGTERM, timeout=30)
check(rc == 0, "exit code after SIGTERM: %r" % rc)
print("%s faults: all checks passed" % KIND)
