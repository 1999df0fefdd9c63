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
    def __init__(self, exe, *args):
        self.p = subprocess.Popen(
            [exe, "--host", "127.0.0.1", "--port", "0"] + list(args),
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
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
