# SPDX-License-Identifier: MIT
"""examples/chat in a real browser: two headless Chromium runs load the
page at once, each says hello through its WebSocket, and each one's DOM
(--dump-dom) must show the other's message; a python3-websockets client in
the room sees both.  Skips (exit 77, saying why) when Chromium is not
installed or cannot start here -- never passes without a browser.

usage: chat_browser_test.py URSA-CHAT"""
import asyncio
import html
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import websockets
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: python3-websockets is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, check  # noqa: E402

browser = shutil.which("chromium") or shutil.which("chromium-browser")
if not browser:
    print("SKIP: Chromium is not installed (Debian: chromium; tools/run test installs it)")
    sys.exit(77)
profiles = tempfile.mkdtemp(prefix="chat-browser-")


def chromium(url, name):
    # --no-sandbox: the sandbox needs user namespaces, and refuses root.
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--user-data-dir=" + os.path.join(profiles, name),
            "--dump-dom", url]


try:
    probe = subprocess.run(chromium("about:blank", "probe"), capture_output=True,
                           timeout=120)
    ok = probe.returncode == 0 and b"<html" in probe.stdout
except (OSError, subprocess.TimeoutExpired) as e:
    ok, probe = False, e
if not ok:
    tail = getattr(probe, "stderr", b"") or b""
    print("SKIP: Chromium cannot run here (%s): %s" %
          (getattr(probe, "returncode", probe), tail.decode(errors="replace")[-500:]))
    sys.exit(77)

srv = Server(sys.argv[1])
base = "http://127.0.0.1:%d/" % srv.port


async def main():
    # The pages' load event waits for an image from this hold server, which
    # answers once the room has heard both browsers and a second more: the
    # DOM is dumped at the load event, after the exchange.
    release = asyncio.Event()

    async def hold(r, w):
        await r.readuntil(b"\r\n\r\n")
        await release.wait()
        w.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await w.drain()
        w.close()
    hs = await asyncio.start_server(hold, "127.0.0.1", 0)
    hold_url = "http://127.0.0.1:%d/hold" % hs.sockets[0].getsockname()[1]
    async with websockets.connect("ws://127.0.0.1:%d/ws" % srv.port) as observer:
        runs = [await asyncio.create_subprocess_exec(
                    *chromium(base + "?name=%s&send=%s&hold=%s" % (n, m, hold_url), n),
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                for n, m in (("ann", "hello"), ("bob", "hi"))]
        heard = set()
        while len(heard) < 2:
            heard.add(await asyncio.wait_for(observer.recv(), 90))
        await asyncio.sleep(1)
        release.set()
        outs = await asyncio.wait_for(asyncio.gather(*(r.communicate() for r in runs)), 90)
    hs.close()
    return [html.unescape(o[0].decode(errors="replace")) for o in outs], heard

doms, heard = asyncio.run(main())
check({"ann: hello", "bob: hi"} <= heard, "the observer heard %r" % heard)
check("<li>bob: hi</li>" in doms[0], "ann's page shows bob's message:\n%s" % doms[0][doms[0].find("<p id"):][:600])
check("<li>ann: hello</li>" in doms[1], "bob's page shows ann's message:\n%s" % doms[1][doms[1].find("<p id"):][:600])
check(srv.stop() == 0, "the server exits 0")
shutil.rmtree(profiles, True)
print("chat in Chromium: two browser runs exchanged messages, read from their DOMs")
