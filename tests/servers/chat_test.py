# SPDX-License-Identifier: MIT
"""examples/chat against Debian's python3-websockets and raw sockets: 200
clients x 100 messages each, every client receives every message exactly
once and in each sender's order; a fragmented message, ping/pong, the close
handshake, an oversized message (1009), an unmasked client frame (1002),
invalid UTF-8 (1007); the page and the answers to requests that are not a
WebSocket handshake (200, 426, 400, 405, 404); a client that stops reading
is dropped with a close frame (1008) while the others get every message;
an idle client is pinged, and closed (1008) if it stays silent;
the terminal client (--connect) sends and receives at once; SIGTERM closes
every client with 1001 and exits 0.

usage: chat_test.py URSA-CHAT [CLIENTS MESSAGES]"""
import asyncio
import os
import socket
import struct
import subprocess
import sys
import time

try:
    import websockets
except ImportError:
    # The Debian package is for the system's python3; another python3 first
    # on PATH (pyenv) does not see it.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: python3-websockets is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, check, fail, is_asan, raise_nofile, recv_exact  # noqa: E402

exe = sys.argv[1]
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 200
MESSAGES = int(sys.argv[3]) if len(sys.argv) > 3 else 100
raise_nofile(4 * CLIENTS + 64)

srv = Server(exe, "--max-msg-kib", "64", "--grace-ms", "3000")
url = "ws://127.0.0.1:%d/ws" % srv.port


# --- raw frames, for what a conforming client library will not send

def frame(opcode, payload, fin=True, mask=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def read_frame(s):
    """(fin, opcode, payload) of the next server frame; None at EOF."""
    h = recv_exact(s, 2)
    if len(h) < 2:
        return None
    check(not h[1] & 0x80, "a server frame is never masked")
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    return bool(h[0] & 0x80), h[0] & 0x0F, recv_exact(s, n)


def raw_ws(rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(20)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        c = s.recv(1)
        check(c, "handshake: EOF")
        head += c
    check(head.startswith(b"HTTP/1.1 101"), "handshake: %r" % head)
    # RFC 6455 section 1.3's own example key and answer.
    check(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head, "accept: %r" % head)
    return s


def close_code(s):
    """Read frames until a close; its status code (None at EOF first)."""
    while True:
        f = read_frame(s)
        if f is None:
            return None
        if f[1] == 8:
            return struct.unpack("!H", f[2][:2])[0] if len(f[2]) >= 2 else 1005


def http(req):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(req)
    out = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        out += c
    s.close()
    return out


# --- requests that are not a WebSocket handshake
page = http(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
check(page.startswith(b"HTTP/1.1 200") and b"new WebSocket(" in page, "page: %r" % page[:200])
r = http(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
check(r.startswith(b"HTTP/1.1 426") and b"Upgrade: websocket\r\n" in r, "plain GET /ws: %r" % r)
r = http(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
check(r.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13\r\n" in r, "version 8: %r" % r)
r = http(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Version: 13\r\n\r\n")
check(r.startswith(b"HTTP/1.1 400"), "no key: %r" % r)
r = http(b"POST /ws HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
check(r.startswith(b"HTTP/1.1 405"), "POST: %r" % r)
r = http(b"GET /nope HTTP/1.1\r\n\r\n")
check(r.startswith(b"HTTP/1.1 404"), "unknown path: %r" % r)
r = http(b"\x16\x03\x01 not http at all\r\n\r\n")
check(r.startswith(b"HTTP/1.1 400"), "garbage: %r" % r)

# --- the protocol, byte by byte (raw frames: a library would not misbehave)
s = raw_ws()
s.sendall(frame(9, b"are you there"))                                   # ping
check(read_frame(s) == (True, 10, b"are you there"), "pong with the ping's payload")
# A fragmented text message with a ping between its fragments.
s.sendall(frame(1, b"frag", fin=False) + frame(0, b"men", fin=False) + frame(9, b"p") +
          frame(0, b"ted", fin=True))
check(read_frame(s) == (True, 10, b"p"), "pong in the middle of a fragmented message")
check(read_frame(s) == (True, 1, b"fragmented"), "the fragments, as one message")
s.sendall(frame(1, b"unmasked", mask=False))
check(close_code(s) == 1002, "an unmasked client frame: close 1002")
check(s.recv(1) == b"", "then the connection closes")
s.close()
s = raw_ws()
s.sendall(frame(1, b"\xff\xfe not utf-8"))
check(close_code(s) == 1007, "invalid UTF-8 in a text message: close 1007")
s.close()
s = raw_ws()
s.sendall(frame(8, struct.pack("!H", 1000) + b"bye"))
check(close_code(s) == 1000, "the close handshake: the server answers 1000")
check(s.recv(1) == b"", "and closes the connection")
s.close()


# --- with the client library
async def library_checks():
    async with websockets.connect(url) as ws:
        pong = await ws.ping(b"lib")
        await asyncio.wait_for(pong, 10)
        # A fragmented message: send() with an iterable sends fragments.
        await ws.send(["one ", "two ", "three"])
        check(await asyncio.wait_for(ws.recv(), 10) == "one two three", "fragmented send")
        await ws.send(b"\x00\x01binary")
        check(await asyncio.wait_for(ws.recv(), 10) == b"\x00\x01binary", "binary message")
        await ws.close()
        check(ws.close_code == 1000, "close handshake: %s" % ws.close_code)
    async with websockets.connect(url, max_size=None) as ws:
        try:
            await ws.send("x" * (65 << 10))
            await asyncio.wait_for(ws.recv(), 10)
            fail("an oversized message was accepted")
        except websockets.ConnectionClosed as e:
            check(e.rcvd is not None and e.rcvd.code == 1009, "oversized: %s" % e)

asyncio.run(library_checks())


# --- the broadcast: CLIENTS clients x MESSAGES messages each
async def broadcast():
    conns = []
    for _ in range(CLIENTS):
        conns.append(await websockets.connect(url, max_queue=None, ping_interval=None))
    total = CLIENTS * MESSAGES
    ready = asyncio.Event()
    nready = 0

    async def client(i, ws):
        nonlocal nready
        last = {}
        got = 0
        # Everyone is connected before anyone sends: all see everything.
        nready += 1
        if nready == CLIENTS:
            ready.set()
        await ready.wait()

        async def send():
            for k in range(MESSAGES):
                await ws.send("%d %d" % (i, k))
        sender = asyncio.create_task(send())
        while got < total:
            m = await asyncio.wait_for(ws.recv(), 120)
            who, k = map(int, m.split())
            check(k == last.get(who, -1) + 1,
                  "client %d: from %d got %d after %d" % (i, who, k, last.get(who, -1)))
            last[who] = k
            got += 1
        await sender
        check(len(last) == CLIENTS and all(v == MESSAGES - 1 for v in last.values()),
              "client %d: not every message" % i)
        return got

    t0 = time.time()
    counts = await asyncio.gather(*(client(i, ws) for i, ws in enumerate(conns)))
    dt = time.time() - t0
    check(sum(counts) == total * CLIENTS, "deliveries")
    for ws in conns:
        await ws.close()
    print("broadcast: %d clients x %d messages: %d deliveries in %.1f s" %
          (CLIENTS, MESSAGES, total * CLIENTS, dt), flush=True)

asyncio.run(broadcast())


# --- a client that stops reading is dropped; the others get everything
slow_srv = Server(exe, "--queue-kib", "256", "--grace-ms", "3000")
slow_url = "ws://127.0.0.1:%d/ws" % slow_srv.port
srv, keep = slow_srv, srv
slow = raw_ws(rcvbuf=4096)


async def flood():
    # More than the kernel holds for the slow one (a 4 MiB send buffer at
    # most) and its queue (256 KiB): 18 MB.  The sender reads too
    # (max_queue=None): it gets its own messages back.  It keeps at most two
    # messages ahead of the reader, so the healthy clients' queues stay far
    # below the bound however slowly this process runs: only the client
    # that stops reading falls behind.
    n, body = 300, "y" * 60000
    got = 0
    async with websockets.connect(slow_url, max_queue=None) as rd, \
            websockets.connect(slow_url, max_queue=None) as wr:
        async def send():
            for k in range(n):
                while k - got > 2:
                    await asyncio.sleep(0.001)
                await wr.send("%d %s" % (k, body))
        sender = asyncio.create_task(send())
        for k in range(n):
            m = await asyncio.wait_for(rd.recv(), 60)
            check(m.startswith("%d " % k), "the reader's message %d: %r" % (k, m[:20]))
            got += 1
        await sender

asyncio.run(flood())
got, code = 0, None
while True:
    f = read_frame(slow)
    if f is None:
        break
    if f[1] == 8:
        code = struct.unpack("!H", f[2][:2])[0]
        break
    got += 1
check(code == 1008, "the slow client: close 1008 after %d messages (got %s)" % (got, code))
check(got < 300, "the slow client was dropped, not served everything")
slow.close()
check(slow_srv.stop() == 0, "the second server exits 0")
srv = keep

# --- idle clients: pinged after --idle-ms; one that answers stays, one that
# stays silent is closed with 1008 after another --idle-ms
idle_srv = Server(exe, "--idle-ms", "300", "--grace-ms", "3000")
srv, keep = idle_srv, srv
quiet, lively = raw_ws(), raw_ws()
check(read_frame(lively)[1] == 9, "an idle client is pinged")
lively.sendall(frame(10, b""))
check(read_frame(quiet)[1] == 9, "the quiet one is pinged too")
check(close_code(quiet) == 1008, "and closed with 1008 when it stays silent")
check(read_frame(lively)[1] == 9, "the one that answered is pinged again, not closed")
quiet.close()
lively.close()
check(idle_srv.stop() == 0, "the idle server exits 0")
srv = keep

# --- the terminal client: stdin lines out, messages in, at the same time
cli = subprocess.Popen([exe, "--connect", "127.0.0.1:%d" % srv.port], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
# Its stderr may start with a sanitizer's note (ucontext under ASan).
for _ in range(10):
    line = cli.stderr.readline()
    if b"connected" in line or not line:
        break
check(b"connected" in line, "the terminal client connects: %r" % line)


async def terminal():
    async with websockets.connect(url) as ws:
        await ws.send("from the library")
        cli.stdin.write(b"from the terminal\n")
        cli.stdin.flush()
        seen = set()
        while len(seen) < 2:
            seen.add(await asyncio.wait_for(ws.recv(), 10))
        check(seen == {"from the library", "from the terminal"}, "library side: %r" % seen)

asyncio.run(terminal())
lines = set()
while len(lines) < 2:
    line = cli.stdout.readline()
    check(line, "terminal client output ended early: %r" % lines)
    lines.add(line.decode().rstrip("\n"))
check(lines == {"from the library", "from the terminal"}, "terminal side: %r" % lines)
cli.stdin.close()  # end of input: close frame, the server's answer, exit
check(cli.wait(10) == 0, "the terminal client exits 0 at the end of its input")


# --- SIGTERM: every client is closed with 1001 ("going away")
async def shutdown():
    conns = [await websockets.connect(url) for _ in range(10)]
    code = srv.stop(timeout=60)  # a loaded machine runs ASan slowly
    check(code == 0, "SIGTERM: exit %s" % code)
    for ws in conns:
        await ws.wait_closed()
        check(ws.close_code == 1001, "SIGTERM: close %s" % ws.close_code)

asyncio.run(shutdown())
print("chat: all checks passed (%s)" % ("ASan" if is_asan(exe) else "release"))
