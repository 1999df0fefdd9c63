# SPDX-License-Identifier: MIT
"""What the server tests share: start a server on a free loopback port (it
picks one and prints it), always kill it at exit, raw-socket helpers, and
checks that fail the test with a message."""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def tool(name):
    """The path of a client program, or None (and a note) when missing."""
    path = shutil.which(name)
    if path is None:
        print("note: %s not installed; its part is skipped" % name, flush=True)
    return path


class Server:
    def __init__(self, exe, *args, stderr=None, env=None):
        """stderr: a file to send the server's stderr to (default: ours)."""
        self.p = subprocess.Popen(
            [exe, "--host", "127.0.0.1", "--port", "0"] + list(args),
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=stderr, env=env)
        atexit.register(self.kill)
        line = self.p.stdout.readline().decode(errors="replace")
        m = re.search(r"listening on port (\d+)", line)
        if not m:
            fail("server did not start: %r (exit %s)" % (line, self.p.poll()))
        self.port = int(m.group(1))

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Send sig; the exit code (None if it did not exit in time)."""
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_until_closed(s, limit=1 << 26):
    """Everything until the peer closes (or resets: then what came first)."""
    buf = bytearray()
    try:
        while len(buf) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return bytes(buf)


def closed_by_peer(s, within):
    """True if the peer closes (or resets) s within `within` seconds; data
    that arrives meanwhile is discarded."""
    s.settimeout(0.2)
    end = time.time() + within
    while time.time() < end:
        try:
            if not s.recv(1 << 20):
                return True
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def reset(s):
    """Close s with an RST (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def run(cmd, timeout=60, input=None):
    return subprocess.run(cmd, capture_output=True, timeout=timeout, input=input)


# --- what the fault, soak and shutdown tests add

def raise_nofile(want):
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (servers
    started afterwards inherit it); fail if even that is below want."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    check(soft == resource.RLIM_INFINITY or soft >= want,
          "RLIMIT_NOFILE is %d, the test needs %d (raise ulimit -Hn)" % (soft, want))


def is_asan(exe):
    """Whether exe was built with AddressSanitizer: loads scale down there
    (the duration stays)."""
    with open(exe, "rb") as f:
        return b"__asan_init" in f.read()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def signal_state(pid):
    """The signal lines of /proc/PID/status, for a diagnosis."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return " ".join(line.strip() for line in f
                            if line.startswith(("SigPnd", "ShdPnd", "SigBlk")))
    except OSError:
        return "(gone)"


def fds_settle(pid, baseline, allowance=4, within=20):
    """Poll until the server's fd count is back to baseline (+ allowance for
    closes still in flight); the last count seen."""
    end = time.time() + within
    n = fd_count(pid)
    while n > baseline + allowance and time.time() < end:
        time.sleep(0.2)
        n = fd_count(pid)
    return n


class Reader:
    """Buffered reads on a socket, for protocols parsed on the client side
    (a pipelined stream must not be over-read into the next answer)."""

    def __init__(self, s):
        self.s = s
        self.buf = bytearray()
        self.eof = False

    def _more(self):
        chunk = self.s.recv(65536)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def until(self, sep):
        """Bytes up to and including sep; what there was at EOF otherwise."""
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            start = max(0, len(self.buf) - len(sep) + 1)
            if not self._more():
                out = bytes(self.buf)
                self.buf.clear()
                return out

    def exact(self, n):
        """n bytes, or fewer at EOF."""
        while len(self.buf) < n and self._more():
            pass
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


DATE_HDR = re.compile(rb"Date: [^\r]*\r\n")


def parse_http_head(head):
    """A response's status line and headers: (status, headers by lower-case name)."""
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        if line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs


def read_http_response(r, head_only=False):
    """One response from Reader r: (status, headers dict, body, raw head);
    status is None when the peer closed before the whole response came."""
    head = r.until(b"\r\n\r\n")
    if not head.endswith(b"\r\n\r\n"):
        return None, {}, b"", head
    status, hdrs = parse_http_head(head)
    n = 0 if head_only else int(hdrs.get("content-length", "0"))
    body = r.exact(n)
    return (status if len(body) == n else None), hdrs, body, head


# A RESP command as redis-cli sends it: an array of bulk strings.
def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def _socket_inodes(pid):
    out = set()
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


TCP_CLOSE = 7  # include/net/tcp_states.h


def _tcp_state(sock):
    """The socket's TCP state (struct tcp_info's first byte)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


def server_holds(pid, server_port, clients):
    """Which of the client sockets `clients` the server process pid still
    holds open: its end of the connection (the /proc/net/tcp row from the
    server port to the client's port) has an inode among its fds.  A
    connection it closed is gone from the table or orphaned (inode 0).
    The table is not read atomically: a row can show twice (counted once)
    or be missed while connections come and go, so a caller that expects
    every client held should look again before failing.

    A client socket the server reset is skipped: it is in TCP's CLOSE
    state, and the kernel has released its port, which a new connection to
    the same server (a healthy client's) may take while the reset socket is
    still open -- its row would then name the wrong connection (issue 22's
    "1 of 500 slowloris connections still held")."""
    want = {}
    for c in clients:
        try:
            if _tcp_state(c) == TCP_CLOSE:
                continue
            want[c.getsockname()[1]] = c
        except OSError:
            pass
    inodes = _socket_inodes(pid)
    held = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            lport = int(parts[1].split(":")[1], 16)
            rport = int(parts[2].split(":")[1], 16)
            inode = int(parts[9])
            if lport == server_port and rport in want and inode in inodes:
                held[rport] = want[rport]
    return list(held.values())
