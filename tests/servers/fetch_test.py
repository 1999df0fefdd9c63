# SPDX-License-Identifier: MIT
"""examples/fetch (libcurl on the ursa adapter) against ursa-httpd and nginx
on loopback, every body compared byte for byte; and against a server in
this script that counts its open connections and timestamps each request:
--parallel never exceeded (connections counted at the server), --rate held
within 5 %, 5xx answers retried after a growing backoff, a server that
stalls hits the deadline, a refused port fails fast.

usage: fetch_test.py URSA-FETCH URSA-HTTPD"""
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, check, tool  # noqa: E402

fetch, httpd = sys.argv[1], sys.argv[2]
scratch = tempfile.mkdtemp(prefix="fetch-test-")
os.chmod(scratch, 0o755)  # nginx's worker runs as nobody
root = os.path.join(scratch, "root")
os.mkdir(root)
os.chmod(root, 0o755)


def fetch_run(args, timeout=120):
    """ursa-fetch's exit code, its lines (split), its summary, its time."""
    t0 = time.time()
    r = subprocess.run([fetch] + args, capture_output=True, timeout=timeout)
    dt = time.time() - t0
    out = r.stdout.decode().splitlines()
    check(out and out[-1].startswith("fetched "), "no summary: %r %r" % (out[-3:], r.stderr))
    return r.returncode, [line.split() for line in out[:-1]], out[-1], dt


# --- bodies from ursa-httpd and nginx, byte for byte
sizes = [0, 1, 100, 4095, 4096, 65537, 300000, 1 << 20] + [1000 * k + 7 for k in range(40)]
files = {}
for i, n in enumerate(sizes):
    name = "f%d.bin" % i
    files[name] = os.urandom(n)
    with open(os.path.join(root, name), "wb") as f:
        f.write(files[name])
    os.chmod(os.path.join(root, name), 0o644)

servers = [("ursa-httpd", Server(httpd, "--root", root, "--cores", "1").port)]
nginx_bin = tool("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
if nginx_bin:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    nport = s.getsockname()[1]
    s.close()
    conf = os.path.join(scratch, "nginx.conf")
    with open(conf, "w") as f:
        f.write("worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
                "events { worker_connections 1024; }\nhttp {\n access_log off;\n"
                " client_body_temp_path %s/body;\n proxy_temp_path %s/proxy;\n"
                " fastcgi_temp_path %s/fcgi;\n uwsgi_temp_path %s/uwsgi;\n"
                " scgi_temp_path %s/scgi;\n server {\n  listen 127.0.0.1:%d;\n  root %s;\n }\n}\n"
                % ((scratch,) * 7 + (nport, root)))
    ng = subprocess.Popen([nginx_bin, "-c", conf, "-p", scratch], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", nport), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    servers.append(("nginx", nport))
else:
    print("note: nginx is not installed (Debian: nginx-light); its part is skipped")

names = sorted(files)
urls = ["http://127.0.0.1:%d/%s" % (port, n) for _, port in servers for n in names]
urls.append("http://127.0.0.1:%d/missing" % servers[0][1])
out = os.path.join(scratch, "out")
os.mkdir(out)
listing = os.path.join(scratch, "urls")
with open(listing, "w") as f:
    f.write("\n".join(urls) + "\n")
rc, lines, summary, _ = fetch_run(["--parallel", "8", "--out", out, "--file", listing])
check(rc == 1, "a 404 among them: exit 1, got %d" % rc)
check(len(lines) == len(urls), "a line per URL: %d of %d" % (len(lines), len(urls)))
byurl = {line[4]: line for line in lines}
for i, u in enumerate(urls[:-1]):
    check(byurl[u][0] == "200", "%s: %r" % (u, byurl[u]))
    with open(os.path.join(out, str(i)), "rb") as f:
        check(f.read() == files[u.rsplit("/", 1)[1]], "%s: the body differs" % u)
check(byurl[urls[-1]][0] == "404" and not os.path.exists(os.path.join(out, str(len(urls) - 1))),
      "the 404: %r" % byurl[urls[-1]])
check(re.search(r"fetched %d URLs: %d ok, 1 failed" % (len(urls), len(urls) - 1), summary),
      summary)
print("bodies: %d URLs from %s, byte for byte" % (len(urls), " and ".join(n for n, _ in servers)))
if nginx_bin:
    ng.terminate()
    ng.wait(10)


# --- a server that counts: open connections, request times, 503s on demand
class Counting:
    def __init__(self):
        self.open = self.max_open = 0
        self.starts = []   # (time, path)
        self.hits = {}
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        srv = self.loop.run_until_complete(asyncio.start_server(self._conn, "127.0.0.1", 0))
        self.port = srv.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _conn(self, r, w):
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                self.starts.append((time.monotonic(), path))
                self.hits[path] = self.hits.get(path, 0) + 1
                parts = path.strip("/").split("/")
                status, body = 200, ("body of %s\n" % path).encode()
                if parts[0] == "delay":            # /delay/MS/ID
                    await asyncio.sleep(int(parts[1]) / 1000)
                elif parts[0] == "flaky":          # /flaky/K/ID: K 503s, then 200
                    if self.hits[path] <= int(parts[1]):
                        status = 503
                elif parts[0] == "stall":          # never answers
                    await asyncio.sleep(3600)
                w.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) +
                        body)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            w.close()

    def reset(self):
        self.max_open = 0
        self.starts = []


cs = Counting()
base = "http://127.0.0.1:%d" % cs.port

# The limit: 60 slow requests, 5 at a time.
rc, lines, _, _ = fetch_run(["--parallel", "5"] + ["%s/delay/40/%d" % (base, i) for i in range(60)])
check(rc == 0 and len(lines) == 60 and all(line[0] == "200" for line in lines), "limit run")
check(1 <= cs.max_open <= 5, "--parallel 5: %d connections open at once at the server" %
      cs.max_open)
print("limit: --parallel 5, at most %d connections open at the server" % cs.max_open)

# The rate: 41 requests at 20/s are 40 intervals of 50 ms.
cs.reset()
rc, lines, _, _ = fetch_run(["--parallel", "10", "--rate", "20"] +
                            ["%s/delay/0/r%d" % (base, i) for i in range(41)])
check(rc == 0, "rate run")
t = sorted(s for s, _ in cs.starts)
measured = (len(t) - 1) / (t[-1] - t[0])
# The server stamps each start when it sees it, a delivery delay after the
# client sent it; a loaded machine stretches that delay for one request more
# than another (the first came 0.17 s late once: 21.9/s over the rest).  So
# the limit is judged on the whole span with that much slack: 40 intervals
# of 50 ms, less 0.25 s (at most 22.9/s; with no limit the 41 start within
# some ms), and not much slower than the rate either (15/s at least).
check(t[-1] - t[0] >= 40 * 0.05 - 0.25 and measured >= 15,
      "--rate 20: %.2f requests/s at the server, %d starts over %.2f s" % (
          measured, len(t), t[-1] - t[0]))
print("rate: --rate 20 held at %.2f/s" % measured)

# Retries: two 503s then a 200 (3 attempts); three 503s exhaust --retries 2.
cs.reset()
rc, lines, _, _ = fetch_run(["--retries", "2", "--backoff-ms", "100",
                             base + "/flaky/2/a", base + "/flaky/3/b"])
byurl = {line[4]: line for line in lines}
check(byurl[base + "/flaky/2/a"][0] == "200" and byurl[base + "/flaky/2/a"][3] == "3",
      "two 503s then 200: %r" % byurl[base + "/flaky/2/a"])
check(byurl[base + "/flaky/3/b"][0] == "503" and byurl[base + "/flaky/3/b"][3] == "3",
      "three 503s, two retries: %r" % byurl[base + "/flaky/3/b"])
check(rc == 1, "a URL that failed: exit 1")
a = [s for s, p in cs.starts if p == "/flaky/2/a"]
check(a[1] - a[0] >= 0.1 and a[2] - a[1] >= 0.2,
      "backoff 100 ms, doubling: gaps %.3f %.3f" % (a[1] - a[0], a[2] - a[1]))

# A stalled server hits the deadline (not retried); a refused port fails
# fast, after its retries, long before any deadline.
s = socket.socket()
s.bind(("127.0.0.1", 0))
refused = s.getsockname()[1]
s.close()  # nothing listens there now
rc, lines, _, dt = fetch_run(["--timeout-ms", "500", "--retries", "2", "--backoff-ms", "20",
                              base + "/stall", "http://127.0.0.1:%d/" % refused])
byurl = {line[4]: line for line in lines}
st = byurl[base + "/stall"]
check(st[0] == "timeout" and st[3] == "1" and float(st[2][:-2]) >= 500, "stall: %r" % st)
rf = byurl["http://127.0.0.1:%d/" % refused]
check(rf[0] == "refused" and rf[3] == "3" and float(rf[2][:-2]) < 500,
      "refused: %r (fails before the 500 ms deadline)" % rf)
check(rc == 1, "failures: exit 1")
shutil.rmtree(scratch, True)
print("fetch: all checks passed")
