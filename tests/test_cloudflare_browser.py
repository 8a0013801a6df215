"""Cloudflare's own engine (npm ``@cloudflare/speedtest``) in headless Chromium against serve.

The page comes from one origin (a small static server on loopback), serve from another (another
port), so every request the library makes is cross-origin: it completes only if serve answers
CORS, and its timings are real only if serve sends ``Timing-Allow-Origin`` (without it the
browser hides ``transferSize`` and the request phases) and exposes ``Server-Timing``. The
library's TURN packet-loss test and its results logging are left out of the configuration; every
URL is on loopback, and Chromium is told to resolve no other name and to use a dead proxy.

The library is loaded as published (an ES module with no imports), from
``tests/js/cloudflare/node_modules``: ``npm ci --prefix tests/js/cloudflare`` installs it. Without
it the test fails, it does not skip.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from giga_netcheck.server.app import ServerConfig, ServerThread
from tests.chromium import CHROMIUM, HEADLESS, LOOPBACK_ONLY

LIBRARY = Path(__file__).parent / "js" / "cloudflare" / "node_modules" / "@cloudflare" / "speedtest" / "dist" / "speedtest.js"
TIME_LIMIT_S = 60.0
FLAGS = (*HEADLESS, *LOOPBACK_ONLY)
# Small transfers, each direction in three sizes; the latency set first, as the library does.
MEASUREMENTS = [
    {"type": "latency", "numPackets": 5},
    {"type": "download", "bytes": 100_000, "count": 3, "bypassMinDuration": True},
    {"type": "upload", "bytes": 100_000, "count": 3, "bypassMinDuration": True},
    {"type": "download", "bytes": 1_000_000, "count": 3, "bypassMinDuration": True},
    {"type": "upload", "bytes": 1_000_000, "count": 3, "bypassMinDuration": True},
    {"type": "download", "bytes": 10_000_000, "count": 2, "bypassMinDuration": True},
    {"type": "upload", "bytes": 10_000_000, "count": 2, "bypassMinDuration": True},
]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>cf</title></head><body>
<script type="module">
import SpeedTest from "./speedtest.js";
const report = (doc) => fetch("/result", {method: "POST", body: JSON.stringify(doc)});
const t = new SpeedTest(%(config)s);
t.onError = (e) => report({error: String(e)});
t.onFinish = (r) => report({
  summary: r.getSummary(),
  down: r.getDownloadBandwidthPoints(),
  up: r.getUploadBandwidthPoints(),
  latency: r.getUnloadedLatencyPoints(),
  origin: location.origin,
});
</script></body></html>
"""


class _Static(BaseHTTPRequestHandler):
    """The page's origin: the page, the library, and a slot for the page's report."""

    page: bytes = b""
    reports: list[dict[str, Any]] = []
    got = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/":
            body, ctype = self.page, "text/html; charset=utf-8"
        elif self.path == "/speedtest.js":
            body, ctype = LIBRARY.read_bytes(), "text/javascript"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        n = min(int(self.headers.get("Content-Length", "0")), 1 << 20)
        type(self).reports.append(json.loads(self.rfile.read(n) or b"{}"))
        type(self).got.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _served(text: str, kind: str) -> list[int]:
    return sorted(int(n) for n in re.findall(rf"{kind} bytes=(\d+) seconds=\S+ mbps=\S+ complete", text))


def test_cloudflare_speedtest_library_measures_serve_from_another_origin(caplog):
    if not LIBRARY.is_file():
        pytest.fail(f"{LIBRARY} is missing: run `npm ci --prefix tests/js/cloudflare` (CI must)")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    caplog.set_level(logging.INFO, logger="giga_netcheck.server.app")
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, max_download_bytes=20_000_000, max_upload_bytes=20_000_000)) as serve:
        config = {
            "autoStart": True,
            "downloadApiUrl": f"{serve.url}/__down",
            "uploadApiUrl": f"{serve.url}/__up",
            "logMeasurementApiUrl": None,
            "logAimApiUrl": None,  # no results report (the library's default posts to Cloudflare)
            "turnServerCredsApiUrl": None,
            "measurements": MEASUREMENTS,  # no packetLoss (TURN) measurement
            "bandwidthMinRequestDuration": 0,  # loopback transfers take a few ms
            "loadedRequestMinDuration": 0,
            # No parallel latency requests during the transfers: the library clears the page's
            # Resource Timing entries when it moves to the next set, and a latency request that
            # finishes in that instant finds no entry and fails as "Connection failed" (a race in
            # the library that loopback's millisecond sets make likely on a busy host).
            "measureDownloadLoadedLatency": False,
            "measureUploadLoadedLatency": False,
        }
        handler = type(
            "Static", (_Static,), {"page": (PAGE % {"config": json.dumps(config)}).encode(), "reports": [], "got": threading.Event()}
        )
        static = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=static.serve_forever, daemon=True).start()
        page_url = f"http://127.0.0.1:{static.server_address[1]}/"
        assert page_url.rstrip("/") != serve.url  # two origins
        with tempfile.TemporaryDirectory(prefix="gnc-chromium-") as profile:
            proc = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", page_url],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            t0 = time.monotonic()
            try:
                finished = handler.got.wait(TIME_LIMIT_S)
            finally:
                proc.kill()
                proc.wait(10)
                static.shutdown()
                static.server_close()
        elapsed = time.monotonic() - t0
    assert finished, f"the page reported nothing within {TIME_LIMIT_S:g} s"
    report = handler.reports[0]
    assert "error" not in report, report.get("error")
    assert elapsed < TIME_LIMIT_S

    down, up, summary = report["down"], report["up"], report["summary"]
    # every transfer the library timed is one serve logged, byte for byte
    assert (
        sorted(p["bytes"] for p in down)
        == _served(caplog.text, "cloudflare-download")
        == sorted(m["bytes"] for m in MEASUREMENTS if m["type"] == "download" for _ in range(m["count"]))
    )
    assert sorted(p["bytes"] for p in up) == _served(caplog.text, "cloudflare-upload")
    assert len(up) == sum(m["count"] for m in MEASUREMENTS if m["type"] == "upload")
    # Timing-Allow-Origin: the browser let the other origin see the response's size and phases;
    # Access-Control-Expose-Headers: the library read serve's Server-Timing
    assert all(p["transferSize"] >= p["bytes"] for p in down), [p["transferSize"] for p in down]
    # (it ignores a duration of 0.01 ms or less, which a loopback download's is: serve's time
    # before the answer starts; an upload's is the time reading the body, never that short)
    assert all(p["serverTime"] > 0 for p in up), [p["serverTime"] for p in up]
    # the figures it reports come from the bytes serve sent and received over the browser's times
    for points, key in ((down, "download"), (up, "upload")):
        rates = [8 * p["bytes"] / (p["duration"] / 1000) for p in points if p["duration"] > 0]
        assert rates, key
        assert 0 < summary[key] <= max(rates) * 1.06, (key, summary[key], max(rates))
        assert summary[key] >= min(rates) * 0.99, (key, summary[key], min(rates))
    assert len(report["latency"]) == 5 and all(x >= 0 for x in report["latency"])
    assert summary["latency"] >= 0
