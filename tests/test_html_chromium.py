"""The HTML report in a real browser (Debian's ``chromium``, headless): renders offline, asks for
nothing from the network, logs no console message, prints on A4; screenshots of both languages.

How a request would be seen: Chromium writes a net log (``--log-net-log``); every URL request
the *page* starts carries the page's origin as initiator (``null`` for a file), while the
browser's own background traffic says "not an origin". Console messages (CSP violations, script
errors) go to stderr with ``--enable-logging=stderr``. Everything Chromium sends, page or
browser, goes to a recording proxy on 127.0.0.1 and host names resolve to nothing, so no packet
leaves loopback. The two ``*_can_fail`` tests show both detectors catching a page with an
external ``<img>``.

Screenshots land in pytest's tmp folder, or in ``$GNC_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import json
import os
import re
import socketserver
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.results import load
from giga_netcheck.render import html as html_render
from tests.chromium import CHROMIUM, HEADLESS

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium fonts-noto-cjk)")

RESULT = Path(__file__).parent / "golden" / "results" / "uplink-capacity.json"
FLAGS = (
    *HEADLESS,
    "--hide-scrollbars",
    "--no-pdf-header-footer",
)
BROWSER_OWN_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients2.google.com", "redirector.gvt1.com"}
"""Hosts Chromium itself calls at start-up (component updater, account check) despite the flags above."""
OUTSIDE = "http://198.18.0.7"
"""An 'external' address for the negative controls; the proxy answers for it, nothing is sent there."""


class _Recorder(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(8192).decode("latin-1").strip()
        if line:
            self.server.requests.append(line)  # type: ignore[attr-defined]
        try:
            while self.rfile.readline(8192).strip():
                pass
        except OSError:
            pass
        self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class RecordingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy on loopback that records each request line and answers 404 to all."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def proxy() -> Iterator[RecordingProxy]:
    p = RecordingProxy()
    t = threading.Thread(target=p.serve_forever, daemon=True)
    t.start()
    yield p
    p.shutdown()
    p.server_close()


@dataclass
class Visit:
    returncode: int
    stdout: str
    console: list[str]
    page_requests: list[str]
    proxied: list[str]


def _page_requests(netlog: Path) -> list[str]:
    text = netlog.read_text(encoding="utf-8", errors="replace")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # cut short: close the event list
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    found = []
    for e in log.get("events", []):
        p = e.get("params") or {}
        if names.get(e.get("type")) != "URL_REQUEST_START_JOB" or not p.get("url"):
            continue
        if p.get("initiator") == "not an origin":
            continue  # the browser's own traffic, not the page's
        if p["url"].split(":", 1)[0] in ("file", "data", "chrome", "about"):
            continue
        found.append(p["url"])
    return found


def browse(page: Path, proxy: RecordingProxy, *extra: str) -> Visit:
    """Open ``page`` in headless Chromium, all traffic to the loopback proxy; report what happened."""
    before = len(proxy.requests)
    with tempfile.TemporaryDirectory() as profile:
        netlog = Path(profile) / "net.json"
        cmd = [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}/p",
            f"--proxy-server={proxy.url}",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={netlog}",
            *extra,
            page.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "LANG": "C.UTF-8"})
        requests = _page_requests(netlog) if netlog.exists() else ["(no net log written)"]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return Visit(proc.returncode, proc.stdout, console, requests, proxy.requests[before:])


def _proxied_hosts(lines: list[str]) -> set[str]:
    hosts = set()
    for line in lines:
        parts = line.split()
        target = parts[1] if len(parts) > 1 else ""
        if "://" in target:
            target = target.split("://", 1)[1]
        hosts.add(target.split("/", 1)[0].split(":", 1)[0])
    return hosts


def report(tmp_path: Path, lang: str, inject: str = "") -> Path:
    text = html_render.render(load(RESULT), Messages(lang))
    if inject:
        text = text.replace("</main>", inject + "</main>")
    p = tmp_path / f"report-{lang}.html"
    p.write_text(text, encoding="utf-8")
    return p


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_report_renders_offline_with_no_console_message_and_no_request(tmp_path, proxy, lang):
    v = browse(report(tmp_path, lang), proxy, "--dump-dom")
    assert v.returncode == 0
    assert 'id="verdict"' in v.stdout and 'id="path-diagram"' in v.stdout and f'lang="{lang}"' in v.stdout, "the page did not render"
    assert v.console == [], "console messages:\n" + "\n".join(v.console)
    assert v.page_requests == [], f"the page asked the network for {v.page_requests}"
    assert _proxied_hosts(v.proxied) <= BROWSER_OWN_HOSTS, f"requests beyond the browser's own: {v.proxied}"


def test_console_detector_can_fail(tmp_path, proxy):
    # the real report with an external image slipped in: its CSP blocks the load and says so
    v = browse(report(tmp_path, "en", f'<img src="{OUTSIDE}/leak.png" alt="">'), proxy, "--dump-dom")
    assert any("Content Security Policy" in line and "leak.png" in line for line in v.console), v.console
    assert v.page_requests == []


def test_request_detector_can_fail(tmp_path, proxy):
    # a page without the CSP: the request is made, the net log and the proxy both see it
    page = tmp_path / "leaky.html"
    page.write_text(f'<!DOCTYPE html><html><body><p>x</p><img src="{OUTSIDE}/leak.png" alt=""></body></html>', encoding="utf-8")
    v = browse(page, proxy, "--dump-dom")
    assert f"{OUTSIDE}/leak.png" in v.page_requests
    assert any(f"{OUTSIDE}/leak.png" in line for line in v.proxied)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_screenshot(tmp_path, proxy, lang):
    out_dir = Path(os.environ.get("GNC_SCREENSHOT_DIR") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / f"report-{lang}.png"
    v = browse(report(tmp_path, lang), proxy, f"--screenshot={shot}", "--window-size=1200,2000")
    assert v.returncode == 0 and shot.exists()
    assert _png_size(shot) == (1200, 2000)
    assert shot.stat().st_size > 50_000, "a blank page compresses to almost nothing"
    assert v.console == [] and v.page_requests == []


def test_prints_on_a4(tmp_path, proxy):
    pdf = tmp_path / "report-ja.pdf"
    v = browse(report(tmp_path, "ja"), proxy, f"--print-to-pdf={pdf}")
    assert v.returncode == 0 and pdf.exists()
    data = pdf.read_bytes()
    boxes = {tuple(round(float(x)) for x in b.split()) for b in (m.decode() for m in re.findall(rb"/MediaBox \[([0-9. ]+)\]", data))}
    assert boxes == {(0, 0, 595, 842)}, f"pages are not A4 (595 x 842 pt): {boxes}"
    assert v.console == [] and v.page_requests == []
