# SPDX-License-Identifier: MIT
"""Graceful shutdown under load, repeated (a SIGTERM that is lost shows up
as a server that outlives its grace period).

  shutdown_test.py kv|httpd SERVER_EXE [ROUNDS]

kv keeps nothing on disk, so an acknowledged write cannot be checked by
restarting it.  What "no acknowledged write is lost" means here is the
drain: every command the server executed was answered, whole, before its
connection closed, and nothing was answered that was not executed.  Writers
pipeline SETs of unique keys as fast as they can, SIGTERM arrives mid
stream, and then: every writer's stream is whole "+OK" replies (no reply
cut), the process exits 0 within the grace period, and the number of keys
the store held at exit (kv prints it) equals the number of "+OK" replies
the writers received, so every write it made was acknowledged and every
acknowledgement stands for a write it made.

httpd: slow readers are part-way through large files, keep-alive clients
ask one request after another, a pipelining client keeps ten requests in
flight, idle keep-alive connections wait; SIGTERM.  Every response that
started completes byte for byte, idle connections close at once, new
connections are refused while the last responses drain, and the process
exits 0 within the grace period."""
import hashlib
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (resp_cmd, DATE_HDR, Reader, Server, check, closed_by_peer, fail,  # noqa: E402
                    is_asan, raise_nofile, signal_state)

KIND, EXE = sys.argv[1], sys.argv[2]
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 6
ASAN = is_asan(EXE)
GRACE_S = 30  # generous: under a loaded machine the slow readers slow down too
raise_nofile(200)


def start(*args):
    log = tempfile.TemporaryFile()
    srv = Server(EXE, "--cores", "2", "--grace-ms", str(GRACE_S * 1000), "--idle-ms", "20000",
                 *args, stderr=log)
    return srv, log


def stop(srv, log, what):
    """SIGTERM; the exit code, the seconds it took, and the server's stderr.
    A server still running after the grace period and then some either lost
    the signal or hung in the drain: say which, from its signal state."""
    t0 = time.time()
    srv.p.send_signal(signal.SIGTERM)
    try:
        rc = srv.p.wait(GRACE_S + 20)
    except Exception:
        state = signal_state(srv.p.pid)
        log.seek(0)
        err = log.read().decode(errors="replace")
        srv.kill()
        fail("%s: still running %d s after SIGTERM (%s); its stderr: %r" % (
            what, GRACE_S + 20, state, err[-2000:]))
    took = time.time() - t0
    log.seek(0)
    return rc, took, log.read().decode(errors="replace")


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# --------------------------------------------------------------------- kv

class Writer:
    """SETs of unique keys, 32 at a time, sent by one thread while another
    reads every reply until the server closes."""

    def __init__(self, srv, w, rnd, slow=False):
        self.slow = slow
        if slow:
            # A small receive buffer read slowly: replies back up into the
            # server's send queue, which a reset at close would throw away.
            self.s = socket.socket()
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            self.s.settimeout(30)
            self.s.connect(("127.0.0.1", srv.port))
        else:
            self.s = srv.connect(30)
        self.w, self.rnd = w, rnd
        self.got = bytearray()
        self.sent = 0
        self.end = None
        self.done = threading.Event()
        self.ts = threading.Thread(target=self.send, daemon=True)
        self.tr = threading.Thread(target=self.recv, daemon=True)
        self.ts.start()
        self.tr.start()

    def send(self):
        n = 0
        try:
            while not self.done.is_set():
                self.s.sendall(b"".join(
                    resp_cmd("SET", "r%d:w%d:%d" % (self.rnd, self.w, n + j), "v%d" % (n + j))
                    for j in range(32)))
                n += 32
                self.sent = n
        except OSError:
            pass

    def recv(self):
        try:
            while True:
                chunk = self.s.recv(1024 if self.slow else 65536)
                if not chunk:
                    self.end = "EOF"
                    break
                self.got += chunk
                if self.slow:
                    time.sleep(0.005)
        except OSError as e:
            self.end = type(e).__name__
        self.done.set()
        # As a client does on EOF: close (the sender's next send fails).
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def finish(self):
        self.tr.join(GRACE_S + 20)
        self.done.set()
        self.ts.join(30)
        self.s.close()


def kv_round(rnd):
    srv, log = start()
    writers = [Writer(srv, w, rnd, slow=w % 2 == 1) for w in range(4 if ASAN else 8)]
    # Every writer under way first (on a loaded machine a writer's first
    # reply took longer than the random pause alone), then the pause.
    ready_by = time.time() + 60
    while any(not w.got for w in writers) and time.time() < ready_by:
        time.sleep(0.05)
    time.sleep(random.uniform(0.5, 2.0))
    before = [len(w.got) for w in writers]
    rc, took, err = stop(srv, log, "kv round %d" % rnd)
    for w in writers:
        w.finish()
    check(rc == 0, "kv round %d: exit code %r; stderr %r" % (rnd, rc, err[-2000:]))
    check(took <= GRACE_S + 3, "kv round %d: exit took %.1f s" % (rnd, took))
    check("grace period over" not in err, "kv round %d: connections dropped: %r" % (rnd, err))
    acked = 0
    for w, b in zip(writers, before):
        check(b > 0, "kv round %d: writer %d had no reply before SIGTERM" % (rnd, w.w))
        n = len(w.got) // 5
        check(bytes(w.got) == b"+OK\r\n" * n,
              "kv round %d: writer %d: replies cut or wrong: %d bytes, ends %r (%s)" % (
                  rnd, w.w, len(w.got), bytes(w.got[-20:]), w.end))
        check(n <= w.sent, "kv round %d: more replies than commands" % rnd)
        # A FIN after the last reply, never a reset: the server shuts its
        # side before closing and reads what is still coming (a reset could
        # discard replies still queued to a slow reader).
        check(w.end == "EOF", "kv round %d: writer %d: the server closed with %s" % (
            rnd, w.w, w.end))
        acked += n
    keys = [line for line in err.splitlines() if "keys at exit" in line]
    check(keys, "kv round %d: no key count in %r" % (rnd, err))
    held = int(keys[0].split()[1])
    check(held == acked, "kv round %d: %d keys at exit, %d writes acknowledged; per writer "
          "(sent, acked, end): %r; the server's stderr: %r" % (
              rnd, held, acked, [(w.sent, len(w.got) // 5, w.end) for w in writers], err[-2000:]))
    return "%d writes acked, all held at exit; %.1f s to exit" % (acked, took)


# ------------------------------------------------------------------ httpd

ROOT = tempfile.mkdtemp(prefix="shutdown-httpd-")
FILES = {"big.bin": os.urandom(4 << 20), "small.txt": b"small file\n", "mid.bin": os.urandom(100000)}
for name, data in FILES.items():
    with open(os.path.join(ROOT, name), "wb") as f:
        f.write(data)


class Cut(Exception):
    pass


def read_resp(r, name):
    """One response on Reader r: True if whole and right, False if none
    started (the server closed first); Cut if one started and was cut."""
    try:
        head = r.until(b"\r\n\r\n")
    except OSError:
        if r.buf:
            raise Cut("reset after %d bytes of a head" % len(r.buf))
        return False
    if not head:
        return False
    if not head.endswith(b"\r\n\r\n"):
        raise Cut("closed after %d bytes of a head" % len(head))
    data = FILES[name]
    want = (b"HTTP/1.1 200 OK\r\nServer: ursa\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
        b"text/plain" if name.endswith(".txt") else b"application/octet-stream", len(data)))
    h = DATE_HDR.sub(b"", head)
    if h not in (want + b"\r\n", want + b"Connection: close\r\n\r\n"):
        raise Cut("wrong head %r" % head)
    try:
        body = r.exact(len(data))
    except OSError as e:
        raise Cut("%s in the body" % e)
    if body != data:
        raise Cut("body of %d bytes, want %d%s" % (len(body), len(data),
                                                 " (differs)" if len(body) == len(data) else ""))
    return True


def get(name):
    return b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n" % name.encode()


def httpd_round(rnd):
    srv, log = start("--root", ROOT)
    errors, stats = [], {"slow": 0, "seq": 0, "pipe": 0}
    lock = threading.Lock()
    ready = [0]  # clients that have had an answer: they are accepted

    def is_ready():
        with lock:
            ready[0] += 1

    def slow_reader(k):
        """4 MiB read 16 KiB at a time: about two and a half seconds."""
        try:
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            c.settimeout(20)
            c.connect(("127.0.0.1", srv.port))
            c.sendall(get("big.bin"))
            r = Reader(c)
            head = r.until(b"\r\n\r\n")
            is_ready()
            got = bytearray(r.buf)  # what came with the head
            while len(got) < len(FILES["big.bin"]):
                chunk = c.recv(16384)
                if not chunk:
                    break
                got += chunk
                time.sleep(0.01)
            if not head.startswith(b"HTTP/1.1 200") or bytes(got) != FILES["big.bin"]:
                raise Cut("slow reader %d: %d of %d bytes%s" % (
                    k, len(got), len(FILES["big.bin"]),
                    " (differ)" if len(got) == len(FILES["big.bin"]) else ""))
            c.settimeout(5)
            if c.recv(1) != b"":
                raise Cut("slow reader %d: not closed after its response" % k)
            c.close()
            with lock:
                stats["slow"] += 1
        except (Cut, OSError) as e:
            with lock:
                errors.append("slow reader %d: %s" % (k, e))

    def sequential(k):
        """One request after another on one connection until it closes."""
        try:
            c = srv.connect(20)
            r = Reader(c)
            i = 0
            while True:
                name = ["small.txt", "mid.bin"][i % 2]
                try:
                    c.sendall(get(name))
                except OSError:
                    break
                if not read_resp(r, name):
                    break
                if i == 0:
                    is_ready()
                i += 1
            with lock:
                stats["seq"] += i
            c.close()
        except (Cut, OSError) as e:
            with lock:
                errors.append("keep-alive client %d: %s" % (k, e))

    def pipeliner():
        """Ten to twenty requests in flight: the next batch of ten goes out
        before the last is read."""
        try:
            c = srv.connect(20)
            r = Reader(c)
            names = ["small.txt", "mid.bin"] * 5
            batch = b"".join(get(x) for x in names)
            c.sendall(batch)
            sent, n = 10, 0
            while True:
                if n % 10 == 0 and sent - n <= 10:
                    try:
                        c.sendall(batch)
                        sent += 10
                    except OSError:
                        pass
                if not read_resp(r, names[n % 10]):
                    break
                if n == 0:
                    is_ready()
                n += 1
            with lock:
                stats["pipe"] += n
            c.close()
        except (Cut, OSError) as e:
            with lock:
                errors.append("pipelining client: %s" % e)

    idle = []
    for _ in range(5):
        c = srv.connect(20)
        c.sendall(get("small.txt"))
        check(read_resp(Reader(c), "small.txt"), "idle client's first response")
        idle.append(c)
    threads = ([threading.Thread(target=slow_reader, args=(k,)) for k in range(6)] +
               [threading.Thread(target=sequential, args=(k,)) for k in range(3)] +
               [threading.Thread(target=pipeliner)])
    for t in threads:
        t.daemon = True
        t.start()
    # SIGTERM only once every client has been accepted and answered (one
    # still in the listener's backlog when it closes is reset, rightly).
    end = time.time() + 60
    while ready[0] < len(threads) and time.time() < end and not errors:
        time.sleep(0.02)
    check(ready[0] == len(threads), "httpd round %d: clients not started: %d of %d; %s" % (
        rnd, ready[0], len(threads), errors))
    time.sleep(random.uniform(0.3, 0.8))
    box = []
    stopper = threading.Thread(target=lambda: box.append(stop(srv, log, "httpd round %d" % rnd)))
    stopper.start()
    t0 = time.time()
    # Idle keep-alive connections close at once; new connections are
    # refused (the listeners close first) while the slow readers drain.
    for c in idle:
        if not closed_by_peer(c, 10):
            log.seek(0)
            fail("httpd round %d: an idle connection stayed open 10 s after SIGTERM (%s; "
                 "stderr %r)" % (rnd, signal_state(srv.p.pid), log.read()[-1000:]))
        c.close()
    while not refused(srv.port) and time.time() - t0 < 5:
        time.sleep(0.05)
    draining = sum(t.is_alive() for t in threads[:6])
    check(refused(srv.port), "httpd round %d: still accepting %.1f s after SIGTERM" % (
        rnd, time.time() - t0))
    for t in threads:
        t.join(GRACE_S + 30)
    stopper.join()
    rc, took, err = box[0]
    check(not errors, "httpd round %d: %s" % (rnd, "; ".join(errors)))
    check(stats["slow"] == 6, "httpd round %d: slow readers done: %d" % (rnd, stats["slow"]))
    check(rc == 0, "httpd round %d: exit code %r; stderr %r" % (rnd, rc, err[-2000:]))
    check(took <= GRACE_S + 3, "httpd round %d: exit took %.1f s" % (rnd, took))
    check("grace period over" not in err, "httpd round %d: connections dropped: %r" % (rnd, err))
    return ("%.1f s to exit; refused new connections with %d slow responses still draining; "
            "keep-alive answers %d, pipelined %d" % (took, draining, stats["seq"], stats["pipe"]))


for rnd in range(ROUNDS):
    print("%s round %d: %s" % (KIND, rnd, (kv_round if KIND == "kv" else httpd_round)(rnd)),
          flush=True)
print("%s shutdown: all checks passed" % KIND)
