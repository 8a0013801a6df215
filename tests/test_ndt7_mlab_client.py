"""``serve``'s ndt7 against M-Lab's own client: npm ``@m-lab/ndt7`` (tests/js/ndt7), which runs its
tests in Web Workers, so it runs where it is made to run, in a browser (Debian's headless
``chromium``).

A page on a loopback HTTP server loads the package's files from ``tests/js/ndt7/node_modules``,
runs ``ndt7.test`` (download, then upload) against ``serve`` on loopback with 2 s tests, and posts
what the client reported. The client must finish both without an error, and its figures must
agree with what ``serve`` counted. Chromium resolves no host name but 127.0.0.1 and its proxy is a
closed loopback port, so nothing leaves the machine.

The npm packages are installed by ``npm ci --prefix tests/js/ndt7`` (CI does it); without them
the test fails, it does not skip.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import pytest

from giga_netcheck.server.app import ServerConfig, ServerThread
from tests.chromium import CHROMIUM, HEADLESS, LOOPBACK_ONLY

JS = Path(__file__).parent / "js" / "ndt7"
LIB = JS / "node_modules" / "@m-lab" / "ndt7" / "src"
FILES = {
    "/index.html": JS / "index.html",
    "/node_modules/@m-lab/ndt7/src/ndt7.js": LIB / "ndt7.js",
    "/node_modules/@m-lab/ndt7/src/ndt7-download-worker.js": LIB / "ndt7-download-worker.js",
    "/node_modules/@m-lab/ndt7/src/ndt7-upload-worker.js": LIB / "ndt7-upload-worker.js",
}
FLAGS = (*HEADLESS, *LOOPBACK_ONLY)
DURATION_S = 2.0


class _Page(BaseHTTPRequestHandler):
    """The page and the package's three files; ``POST /result`` takes the client's report."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = FILES.get(self.path.split("?")[0])
        if path is None:
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if path.suffix == ".html" else "text/javascript")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, 1 << 20))
        self.send_response(204)
        self.end_headers()
        self.server.result = json.loads(body)  # type: ignore[attr-defined]
        self.server.got.set()  # type: ignore[attr-defined]


def run_mlab_client(server_url: str, timeout_s: float = 90.0) -> dict[str, Any]:
    """Run ndt7-js in headless Chromium against ``server_url``; its report (or fail the test)."""
    page = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    page.result, page.got = None, threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=page.serve_forever, daemon=True).start()
    host = server_url.split("://", 1)[1]
    url = f"http://127.0.0.1:{page.server_address[1]}/index.html?server={host}"
    proc: Optional[subprocess.Popen[bytes]] = None
    try:
        with tempfile.TemporaryDirectory(prefix="gnc-ndt7-chromium-") as profile:
            assert CHROMIUM is not None
            proc = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", url],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own group: the browser's helpers end with it
            )
            got = page.got.wait(timeout_s)  # type: ignore[attr-defined]
            _stop(proc)
    finally:
        if proc is not None and proc.poll() is None:
            _stop(proc)
        page.shutdown()
        page.server_close()
    assert got, f"ndt7-js posted no result within {timeout_s:g} s"
    return page.result  # type: ignore[attr-defined,no-any-return]


MAX_MEASUREMENT_BYTES = 2048
"""Above what one of serve's measurement messages (JSON: AppInfo, ConnectionInfo, TCPInfo) takes."""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the Chromium we started (and the helpers in its process group), by its id."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def test_the_npm_package_and_chromium_are_there():
    """CI installs them (npm ci --prefix tests/js/ndt7, apt chromium): a missing one fails here."""
    if not all(p.is_file() for p in FILES.values()):
        pytest.fail(f"@m-lab/ndt7 is not installed in {JS}: run `npm ci --prefix tests/js/ndt7`")
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")


@pytest.mark.skipif(
    not all(p.is_file() for p in FILES.values()) or CHROMIUM is None, reason="see test_the_npm_package_and_chromium_are_there"
)
def test_mlab_ndt7_js_completes_against_serve_and_agrees_with_its_counts():
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, ndt7_duration_s=DURATION_S)) as srv:
        t0 = time.monotonic()
        out = run_mlab_client(srv.url)
        took = time.monotonic() - t0
        deadline = time.monotonic() + 5  # serve records a test once its side of the close is done
        while len(srv.server.ndt7.done) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        records = {r.test: r for r in srv.server.ndt7.done}
    assert out["errors"] == [] and out["code"] == 0, out
    assert set(records) == {"download", "upload"}, records
    assert all(r.outcome == "complete" for r in records.values()), records
    assert took < 60, f"{took:.0f} s: the client did not end with the server's 2 s tests"

    # download: what the client received, by its own count, against what serve sent
    down, rec = out["download"], records["download"]
    client = down["LastClientMeasurement"]
    # ndt7-js counts every message it receives, serve's measurement messages (text, well under
    # 2 KiB each) too; serve's record counts the binary payload
    assert 0 < client["NumBytes"] <= rec.bytes + rec.measurements * MAX_MEASUREMENT_BYTES, (client["NumBytes"], rec)
    # its last measurement is up to 250 ms before the end: the mean rates agree, not the totals
    served_mbps = rec.bytes * 8 / rec.seconds / 1e6
    assert 0.5 * served_mbps <= client["MeanClientMbps"] <= 1.5 * served_mbps, (client, served_mbps)
    # serve's own measurement message, parsed by their client, carries serve's figures
    server_msg = down["LastServerMeasurement"]
    assert server_msg["AppInfo"]["NumBytes"] == rec.bytes
    assert server_msg["Test"] == "download" and server_msg["ConnectionInfo"]["Client"]

    # upload: what the client sent (less what it still buffered) against what serve received
    up, rec = out["upload"], records["upload"]
    client = out["lastClient"]["upload"]
    assert rec.bytes > 0 and client["NumBytes"] > 0
    assert 0.5 <= rec.bytes / client["NumBytes"] <= 2.0, (rec.bytes, client)
    received_mbps = rec.bytes * 8 / rec.seconds / 1e6
    assert 0.5 * received_mbps <= client["MeanClientMbps"] <= 1.5 * received_mbps, (client, received_mbps)
    assert up["LastServerMeasurement"]["AppInfo"]["NumBytes"] == rec.bytes
    if "TCPInfo" in up["LastServerMeasurement"]:  # Linux: the kernel's count is at least ours
        assert up["LastServerMeasurement"]["TCPInfo"]["BytesReceived"] >= rec.bytes
