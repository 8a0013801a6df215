"""Debian's Chromium for the browser tests: where it is, and the flags every test starts it with.

Headless, no sandbox (root), no GPU, no QUIC, and none of the browser's own background traffic
(component updates, sync, network time), so that what crosses the network is what the page does.
"""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=NetworkTimeServiceQuerying",
)
LOOPBACK_ONLY = (
    # nothing leaves loopback: no name resolves but 127.0.0.1, and the proxy (which loopback
    # requests bypass) is a closed port
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
)
