"""test_browser.py - the chat page in a real browser, once: headless Chromium
(Debian's `chromium`, driven by playwright-core, pinned in tests/node) opens
GET /chat twice beside an nc client; each sees the others' messages, a page
whose socket drops says so and reconnects; the CSP blocks nothing. Keeps a
screenshot at $WEFT_SCREENSHOT (build/chat-page.png)."""
import os
import shutil
import subprocess

from weftest import Weft

HERE = os.path.dirname(os.path.abspath(__file__))


def test_two_pages_and_nc(ctx):
    if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
        raise AssertionError("chromium is missing: scripts/deps.sh installs it")
    d = os.environ.get("WEFT_NODE_DIR") or os.path.join(HERE, "..", "..", "build", "node")
    subprocess.run([os.path.join(HERE, "..", "..", "scripts", "node-deps.sh"), d], check=True, timeout=900)
    shot = os.environ.get("WEFT_SCREENSHOT") or ctx.path("chat-page.png")
    with Weft(["--mode", "chat", "--model", "coro", "--poller", "epoll"]) as w:
        env = dict(os.environ, NODE_PATH=os.path.join(d, "node_modules"))
        p = subprocess.run(["node", os.path.join(HERE, "browser.js"), "http://127.0.0.1:%d/chat" % w.port,
                            str(w.port), shot], env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, "browser test: %s %s" % (p.stdout, p.stderr)
    assert os.path.getsize(shot) > 1000, "no screenshot"
