"""serve's Cloudflare speed-test paths (/__down, /__up) and the ``cloudflare`` engine against them.

Everything on loopback: the engine's default base URL (speed.cloudflare.com) is only checked as a
value, never contacted."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import httpx
import pytest

from giga_netcheck.config.site import ENGINES
from giga_netcheck.core.models import Target
from giga_netcheck.measure.engines import ThroughputPlan, registry
from giga_netcheck.measure.engines.cloudflare import (
    DEFAULT_URL,
    CloudflareEngine,
    base_url,
    cloudflare_target,
    server_time_ms,
)
from giga_netcheck.server.app import ServerConfig, ServerThread

pytestmark = pytest.mark.usefixtures("no_tracebacks")


@contextmanager
def _serve(host: str = "127.0.0.1", **limits: Any) -> Iterator[ServerThread]:
    """A serve on loopback that, before it stops, lets its clients' connections close: a handler
    still running when the loop stops is cancelled, and asyncio logs that as an error."""
    with ServerThread(ServerConfig(host=host, port=0, **limits)) as s:
        yield s
        deadline = time.monotonic() + 10
        while s.server.open_connections and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with _serve() as s:
        yield s


def _get(url: str, **kw) -> httpx.Response:
    return httpx.get(url, timeout=10, trust_env=False, **kw)


def _raw(port: int, data: bytes, wait_s: float = 10.0) -> bytes:
    """Send raw bytes, read the answer until the server closes (or ``wait_s``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


# --------------------------------------------------------------------------- serve's paths


def _cors(h: httpx.Headers) -> None:
    assert h["access-control-allow-origin"] == "*"
    assert h["timing-allow-origin"] == "*"
    exposed = {x.strip().lower() for x in h["access-control-expose-headers"].split(",")}
    assert "server-timing" in exposed


def test_latency_request_is_empty_and_carries_what_the_library_reads(server):
    r = _get(server.url + "/__down?bytes=0&measId=123&during=idle")
    assert r.status_code == 200 and r.content == b""
    _cors(r.headers)
    # @cloudflare/speedtest's own pattern for the server's time
    m = re.search(r"(?:^|,\s*)cfReq(?:uest)?Dur(?:ation)?;\s*dur=([0-9.]+)", r.headers["server-timing"], re.I)
    assert m is not None and 0 <= float(m.group(1)) < 1000
    assert server_time_ms(r.headers["server-timing"]) == float(m.group(1))
    assert r.headers["cf-meta-ip"] == "127.0.0.1"
    assert abs(int(r.headers["cf-meta-request-time"]) / 1000 - time.time()) < 60


def test_download_is_the_size_asked_for_and_capped_by_the_server():
    with _serve(max_download_bytes=300_000) as s:
        r = _get(s.url + "/__down?bytes=123457")
        assert r.status_code == 200 and len(r.content) == 123457
        _cors(r.headers)
        r = _get(s.url + "/__down?bytes=5000000")
        assert r.status_code == 200 and len(r.content) == 300_000
        for bad in ("-1", "abc", "1e6", "9" * 40, " 5"):
            r = _get(s.url + f"/__down?bytes={bad}")
            assert r.status_code == 400 and r.headers["connection"] == "close"
            _cors(r.headers)  # a page on another origin can read why


def test_upload_is_counted_and_capped_with_cors_on_the_refusal(caplog):
    caplog.set_level(logging.INFO)
    with _serve(max_upload_bytes=200_000) as s:
        r = httpx.post(s.url + "/__up?measId=1", content=b"0" * 150_000, trust_env=False)
        assert r.status_code == 200 and r.content == b""
        _cors(r.headers)
        assert server_time_ms(r.headers["server-timing"]) is not None
        # chunked, as a streaming client sends it
        r = httpx.post(s.url + "/__up", content=iter([b"1" * 50_000] * 3), trust_env=False)
        assert r.status_code == 200
        r = httpx.post(s.url + "/__up", content=b"0" * 250_000, trust_env=False)
        assert r.status_code == 413 and r.headers["connection"] == "close"
        _cors(r.headers)
    logged = [int(m) for m in re.findall(r"cloudflare-upload bytes=(\d+) .* complete", caplog.text)]
    assert logged == [150_000, 150_000]


def test_preflight_is_answered(server):
    r = httpx.request(
        "OPTIONS",
        server.url + "/__up",
        headers={"Origin": "http://127.0.0.2:9", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
        trust_env=False,
    )
    assert r.status_code == 200
    _cors(r.headers)
    assert {"GET", "POST", "OPTIONS"} <= {x.strip() for x in r.headers["access-control-allow-methods"].split(",")}
    assert "content-type" in r.headers["access-control-allow-headers"].lower()
    r = httpx.request("OPTIONS", server.url + "/__down?bytes=0", trust_env=False)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_other_methods_are_refused(server):
    r = httpx.put(server.url + "/__up", content=b"x", trust_env=False)
    assert r.status_code == 405
    r = httpx.post(server.url + "/__down?bytes=10", content=b"x", trust_env=False)
    assert r.status_code == 405


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"POST /__up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"400"),
        (b"POST /__up HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello", b"400"),
        (b"POST /__up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", b"400"),
        (b"POST /__up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", b"400"),
        (b"POST /__up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", b"400"),
        (b"POST /__up HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", b"413"),
        (b"GET /__down?bytes=0 HTTP/1.1\r\nHost: x\r\n folded: yes\r\n\r\n", b"400"),
        (b"GET /__down?bytes=0 HTTP/2.0\r\nHost: x\r\n\r\n", b"400"),
    ],
)
def test_hostile_framing_is_refused(server, request_bytes, status):
    answer = _raw(server.server.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]


def test_a_smuggled_request_after_a_latency_request_is_not_served(server):
    # a body on a GET is read as the body (its Content-Length), not as a second request
    smuggled = b"GET /__down?bytes=7 HTTP/1.1\r\nHost: x\r\n\r\n"
    head = f"GET /__down?bytes=0 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(smuggled)}\r\nConnection: close\r\n\r\n".encode()
    answer = _raw(server.server.port, head + smuggled)
    assert answer.count(b"HTTP/1.1 200") == 1


# --------------------------------------------------------------------------- the engine


def test_engine_is_registered_and_defaults_to_cloudflare():
    assert "cloudflare" in ENGINES and registry()["cloudflare"] is CloudflareEngine
    t = cloudflare_target()
    assert t.engine == "cloudflare" and t.url == DEFAULT_URL == "https://speed.cloudflare.com" and t.host == "speed.cloudflare.com"
    assert base_url(Target("x", "internet", "h", "http://h:1/__down")) == "http://h:1"
    assert server_time_ms("cfRequestDuration;dur=12.5, other;dur=3") == 12.5
    assert server_time_ms("cfReqDur;dur=x") is None and server_time_ms(None) is None


@pytest.fixture
def counted_server(caplog) -> Iterator[ServerThread]:
    caplog.set_level(logging.INFO)
    with _serve() as s:
        yield s


def _uploaded(text: str) -> int:
    return sum(int(n) for n in re.findall(r"cloudflare-upload bytes=(\d+)", text))


def test_engine_download_goodput_matches_what_serve_sent(counted_server):
    s = counted_server
    engine = CloudflareEngine()
    target = cloudflare_target(url=s.url)
    engine.session(target)  # the preflight's bytes are not the test's
    before = s.server.bytes_sent
    m = engine.measure(target, ThroughputPlan("download", 3, 2.5, 0.5), threading.Event())
    sent = s.server.bytes_sent - before
    assert m.error is None and m.engine == "cloudflare" and m.url.endswith("/__down")
    assert m.goodput_mbps is not None and m.goodput_mbps > 0
    # counted as they arrived: never more than serve wrote, short of it by at most the socket buffers
    assert 0 < m.bytes_total <= sent
    assert m.bytes_total >= sent - 3 * 16 * 1024 * 1024
    # the headline (after the warm-up) cannot exceed all bytes over the time after the warm-up
    assert m.goodput_mbps <= m.bytes_total * 8 / (m.duration_s - m.warmup_s) / 1e6 * 1.01
    assert len(m.samples_mbps) >= 5 and len(m.per_stream_mbps) == 3
    assert m.server is not None and m.server["kind"] == "cloudflare" and m.server["client_ip"] == "127.0.0.1"
    assert m.engine_raw is not None and len(m.engine_raw["ping_ms"]) == 5


def test_engine_upload_counts_what_serve_received(counted_server, caplog):
    s = counted_server
    m = CloudflareEngine().measure(cloudflare_target(url=s.url), ThroughputPlan("upload", 2, 2.5, 0.5), threading.Event())
    assert m.error is None and m.goodput_mbps is not None and m.goodput_mbps > 0 and m.url.endswith("/__up")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and s.server.open_connections:
        time.sleep(0.05)  # the aborted uploads' connections close, and serve logs what it read
    received = _uploaded(caplog.text)
    # counted from the server's acknowledgements: what serve read, give or take its socket buffers
    assert 0 < m.bytes_total
    assert abs(m.bytes_total - received) <= 2 * 8 * 1024 * 1024 + 0.02 * received, (m.bytes_total, received)


def test_engine_stops_when_told():
    with _serve() as s:
        stop = threading.Event()
        threading.Timer(1.0, stop.set).start()
        t0 = time.monotonic()
        m = CloudflareEngine().measure(cloudflare_target(url=s.url), ThroughputPlan("download", 2, 30.0, 0.5), stop)
        assert time.monotonic() - t0 < 10 and m.bytes_total > 0


class _Garbage(BaseHTTPRequestHandler):
    mode = "page"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.mode == "page":  # a captive portal or a proxy's block page, for every URL
            body = b"<html><body>" + b"Please log in to the school network. " * 40 + b"</body></html>"
            self.send_response(200)
        elif self.mode == "empty":  # 200 and nothing, whatever was asked
            body = b""
            self.send_response(200)
        else:
            body = b"not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    "mode, says", [("page", "not a Cloudflare speed-test endpoint"), ("empty", "answered 0 bytes"), ("404", "HTTP 404")]
)
def test_engine_refuses_a_server_that_answers_garbage(mode, says):
    handler = type("H", (_Garbage,), {"mode": mode})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        for direction in ("download", "upload"):
            m = CloudflareEngine().measure(cloudflare_target(url=url), ThroughputPlan(direction, 2, 1.0, 0.2), threading.Event())
            assert m.goodput_mbps is None and m.bytes_total == 0
            assert m.error is not None and says in m.error and "\n" not in m.error and "Traceback" not in m.error
            assert m.error_kind == "protocol"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_engine_refuses_an_unreachable_server_in_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        engine = CloudflareEngine()
        m = engine.measure(cloudflare_target(url=f"http://127.0.0.1:{port}"), ThroughputPlan("download", 2, 1.0, 0.2), threading.Event())
        assert m.goodput_mbps is None and m.error_kind == "refused" and "\n" not in (m.error or "")
        assert m.error is not None and m.error.startswith(f"internet (http://127.0.0.1:{port})")
        # asked once per run: the next test on the target fails the same way at once
        t0 = time.monotonic()
        again = engine.measure(cloudflare_target(url=f"http://127.0.0.1:{port}"), ThroughputPlan("upload", 2, 1.0, 0.2), threading.Event())
        assert again.error == m.error and time.monotonic() - t0 < 1.0


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_engine_pins_a_family():
    with _serve() as s:
        plan = ThroughputPlan("download", 2, 1.0, 0.2)
        m = CloudflareEngine(family="ipv4").measure(cloudflare_target(url=s.url), plan, threading.Event())
        assert m.error is None and m.goodput_mbps and m.engine_raw and m.engine_raw["family"] == "ipv4"
        # an IPv4-only server over IPv6: not measured, one line, no traceback
        m = CloudflareEngine(family="ipv6").measure(cloudflare_target(url=s.url), plan, threading.Event())
        assert m.goodput_mbps is None and m.error and "\n" not in m.error
    if not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    with _serve("::1") as s:
        m = CloudflareEngine(family="ipv6").measure(cloudflare_target(url=s.url), plan, threading.Event())
        assert m.error is None and m.goodput_mbps and m.server and m.server["client_ip"] == "::1"
    with pytest.raises(ValueError):
        CloudflareEngine(family="ipx")
