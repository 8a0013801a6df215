"""ndt7: ``serve``'s side (server/ndt7.py) and the ``ndt7`` engine (measure/engines/ndt7.py), on loopback.

Our engine against our serve, directly and through a stand-in locate API (a tiny HTTP server on
loopback answering as M-Lab's locate API v2 does, with URLs pointing at serve); the engine
against servers that are not ndt7 and locate APIs that answer garbage (one line, bounded time);
serve against hostile WebSocket clients (clean close or 4xx, bounded, no traceback). M-Lab's own
client (npm @m-lab/ndt7) is in test_ndt7_mlab_client.py.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from giga_netcheck.core.models import Target
from giga_netcheck.measure.engines import ThroughputPlan, registry
from giga_netcheck.measure.engines.ndt7 import (
    INITIAL_MESSAGE_BYTES,
    MAX_SCALED_MESSAGE_BYTES,
    SUBPROTOCOL,
    Ndt7Engine,
    is_locate_url,
    next_message_size,
    server_urls,
    tcp_info,
)
from giga_netcheck.server.app import ServerConfig, ServerThread

pytestmark = pytest.mark.usefixtures("no_tracebacks")

DURATION_S = 2.0


@pytest.fixture
def ndt7_server() -> Iterator[ServerThread]:
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, ndt7_duration_s=DURATION_S, idle_timeout_s=5, header_timeout_s=3)) as s:
        yield s


def ws_url(server: ServerThread, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def plan(direction: str, duration_s: float = 3.0) -> ThroughputPlan:
    return ThroughputPlan(direction, 4, duration_s, 0.5)


def target(url: str) -> Target:
    return Target("ndt7", "internet", "127.0.0.1", url, engine="ndt7")


# ------------------------------------------------------------------------------ pure pieces


def test_message_sizes_grow_as_the_spec_says_and_stop_at_one_mib():
    size, total, seen = INITIAL_MESSAGE_BYTES, 0, []
    for _ in range(5000):
        total += size
        size = next_message_size(size, total)
        seen.append(size)
    assert seen[0] == INITIAL_MESSAGE_BYTES  # 8 KiB is not yet below 1/16 of 8 KiB
    assert max(seen) == MAX_SCALED_MESSAGE_BYTES
    assert all(b in (a, 2 * a) for a, b in zip(seen, seen[1:]))  # doubles, never jumps
    assert next_message_size(1 << 13, 1 << 20) == 1 << 14


@pytest.mark.parametrize(
    "url, locate",
    [
        ("https://locate.measurementlab.net/v2/nearest/ndt/ndt7", True),
        ("http://127.0.0.1:9/v2/priority/nearest/ndt/ndt7", True),
        ("http://127.0.0.1:8080", False),
        ("wss://ndt.example.org/ndt/v7/download", False),
    ],
)
def test_locate_urls_are_told_from_server_urls(url, locate):
    assert is_locate_url(url) is locate


def test_server_urls_from_a_base_url():
    assert server_urls("http://127.0.0.1:8080") == {
        "download": "ws://127.0.0.1:8080/ndt/v7/download",
        "upload": "ws://127.0.0.1:8080/ndt/v7/upload",
    }
    assert server_urls("https://h.example/ndt/v7/upload")["download"] == "wss://h.example/ndt/v7/download"


def test_the_engine_is_registered():
    assert registry()["ndt7"] is Ndt7Engine


# ------------------------------------------------------------------ our engine against serve


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_engine_against_serve(ndt7_server, direction):
    t0 = time.monotonic()
    m = Ndt7Engine().measure(target(ndt7_server.url), plan(direction, duration_s=6.0), threading.Event())
    took = time.monotonic() - t0
    assert m.error is None, m.error
    assert m.engine == "ndt7" and m.streams == 1  # one connection, whatever the plan asked
    assert m.goodput_mbps and m.goodput_mbps > 0 and m.p50_mbps
    assert len(m.samples_mbps) >= 10  # 100 ms samples, counted as bytes arrive
    # the server ended the test after its duration, before the plan's 6 s
    assert took < 6.0 and m.engine_raw["server_closed"] is True
    wait_record(ndt7_server)  # serve records the test once its side of the close is done
    rec = [r for r in ndt7_server.server.ndt7.done if r.test == direction]
    assert len(rec) == 1 and rec[0].outcome == "complete"
    assert rec[0].measurements >= 4  # one every 250 ms
    # what the engine counted agrees with what serve counted (kernel counters include framing)
    assert 0.9 * rec[0].bytes <= m.bytes_total <= 1.1 * rec[0].bytes + 1_000_000
    raw = m.engine_raw
    assert raw["server_measurements"] >= 4
    assert raw["server_num_bytes"] is not None and 0 < raw["server_num_bytes"] <= rec[0].bytes
    if tcp_info(socket.socket()) is not None:  # Linux: serve's TCPInfo RTT reached the engine
        assert raw["server_tcpinfo_rtt_ms"] and all(r >= 0 for r in raw["server_tcpinfo_rtt_ms"])
        assert raw["server_tcpinfo_min_rtt_ms"] is not None


def test_engine_stops_at_the_plan_when_the_server_runs_longer():
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, ndt7_duration_s=10.0)) as srv:
        t0 = time.monotonic()
        m = Ndt7Engine().measure(target(srv.url), plan("upload", duration_s=1.5), threading.Event())
        took = time.monotonic() - t0
        deadline = time.monotonic() + 5
        while not srv.server.ndt7.done and time.monotonic() < deadline:
            time.sleep(0.05)
        rec = list(srv.server.ndt7.done)
    assert m.error is None and m.goodput_mbps
    assert took < 6.0, took
    assert rec and rec[0].outcome == "complete"  # the client's close frame ended it cleanly


def test_engine_stop_event_ends_the_test_early(ndt7_server):
    stop = threading.Event()
    threading.Timer(0.8, stop.set).start()
    t0 = time.monotonic()
    m = Ndt7Engine().measure(target(ndt7_server.url), plan("download", duration_s=6.0), stop)
    assert time.monotonic() - t0 < 4.0
    assert m.bytes_total > 0


# ---------------------------------------------------------------------- stand-in locate API


class _Locate(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.asked.append(self.path)  # type: ignore[attr-defined]
        self.server.agents.append(self.headers.get("User-Agent"))  # type: ignore[attr-defined]
        status, body = self.server.answer(self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def locate_api() -> Iterator[Callable[[Callable[[str], tuple[int, bytes]]], str]]:
    servers = []

    def start(answer: Callable[[str], tuple[int, bytes]]) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Locate)
        httpd.answer, httpd.asked, httpd.agents = answer, [], []  # type: ignore[attr-defined]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v2/nearest/ndt/ndt7"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def locate_answer(*bases: str, token: str = "tok123") -> bytes:
    results = []
    for i, base in enumerate(bases):
        host = base.split("://", 1)[1]
        results.append(
            {
                "machine": f"mlab{i}-test.example",
                "location": {"city": "Tokyo", "country": "JP"},
                "urls": {f"ws:///ndt/v7/{d}": f"ws://{host}/ndt/v7/{d}?access_token={token}" for d in ("download", "upload")},
            }
        )
    return json.dumps({"results": results}).encode()


def test_engine_through_a_stand_in_locate_api(ndt7_server, locate_api):
    url = locate_api(lambda path: (200, locate_answer(ndt7_server.url)))
    m = Ndt7Engine().measure(target(url), plan("download"), threading.Event())
    assert m.error is None, m.error
    assert m.goodput_mbps and m.goodput_mbps > 0
    assert m.server["machine"] == "mlab0-test.example" and m.server["location"]["country"] == "JP"
    assert "access_token" not in json.dumps(m.server) and "tok123" not in m.url  # a credential is not recorded
    assert m.engine_raw["located"] is True


def test_engine_tries_the_next_locate_result_when_one_refuses(ndt7_server, locate_api):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    try:
        url = locate_api(lambda path: (200, locate_answer(dead_url, ndt7_server.url)))
        m = Ndt7Engine().measure(target(url), plan("upload"), threading.Event())
    finally:
        dead.close()
    assert m.error is None, m.error
    assert m.server["machine"] == "mlab1-test.example"


def test_locate_url_override_on_the_engine(ndt7_server, locate_api):
    url = locate_api(lambda path: (200, locate_answer(ndt7_server.url)))
    public = target("https://locate.measurementlab.net/v2/nearest/ndt/ndt7")
    m = Ndt7Engine(locate_url=url).measure(public, plan("download"), threading.Event())
    assert m.error is None, m.error


def test_locate_request_names_the_client(ndt7_server, locate_api):
    asked: list[str] = []

    def answer(path: str) -> tuple[int, bytes]:
        asked.append(path)
        return 200, locate_answer(ndt7_server.url)

    url = locate_api(answer)
    m = Ndt7Engine().measure(target(url), plan("download", duration_s=1.0), threading.Event())
    assert m.error is None
    # the client's metadata goes with the locate request (the spec's SHOULD), one request per test
    assert len(asked) == 1 and asked[0].startswith("/v2/nearest/ndt/ndt7?") and "client_name=giga-netcheck" in asked[0]


@pytest.mark.parametrize(
    "answer, expect",
    [
        ((200, b"<html>captive portal</html>"), "not JSON"),
        ((200, b"[1, 2]"), "not a JSON object"),
        ((200, b'{"results": []}'), "no servers"),
        ((200, b'{"error": {"title": "rate limited", "status": 429}}'), "rate limited"),
        ((200, b'{"results": [{"urls": {"http:///x": "http://x"}}]}'), "no result has a ws:// or wss://"),
        ((204, b""), "capacity"),
        ((500, b"oops"), "HTTP 500"),
        ((200, b"x" * (300 * 1024)), "larger than"),
    ],
)
def test_locate_garbage_is_one_line(locate_api, answer, expect):
    url = locate_api(lambda path: answer)
    t0 = time.monotonic()
    m = Ndt7Engine().measure(target(url), plan("download"), threading.Event())
    assert time.monotonic() - t0 < 10
    assert m.goodput_mbps is None and m.error and expect in m.error, m.error
    assert "\n" not in m.error and "Traceback" not in m.error


def test_unreachable_locate_and_server_are_one_line():
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    try:
        for url in (f"http://127.0.0.1:{port}/v2/nearest/ndt/ndt7", f"http://127.0.0.1:{port}"):
            t0 = time.monotonic()
            m = Ndt7Engine(timeout_s=2.0).measure(target(url), plan("download"), threading.Event())
            assert time.monotonic() - t0 < 10
            assert m.goodput_mbps is None and m.error_kind == "refused", (m.error, m.error_kind)
            assert "\n" not in m.error
    finally:
        dead.close()


def test_a_server_that_is_not_ndt7_is_one_line(server):
    # the giga-netcheck server of conftest (no ndt7 duration change needed): a plain HTTP path
    m = Ndt7Engine(timeout_s=2.0).measure(target(server.url + "/not-here"), plan("download"), threading.Event())
    assert m.goodput_mbps is None and "not an ndt7 server" in m.error, m.error


def test_a_server_that_answers_http_not_websocket_is_one_line(locate_api):
    url = locate_api(lambda path: (200, b"{}"))  # any HTTP server: 200 to the upgrade
    base = url.split("/v2/")[0]
    m = Ndt7Engine(timeout_s=2.0).measure(target(base), plan("upload"), threading.Event())
    assert m.goodput_mbps is None and "not an ndt7 server" in m.error, m.error


def test_a_silent_tcp_server_is_bounded():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)  # accepts, never answers
    try:
        t0 = time.monotonic()
        m = Ndt7Engine(timeout_s=1.0).measure(target(f"http://127.0.0.1:{lsock.getsockname()[1]}"), plan("download"), threading.Event())
        assert time.monotonic() - t0 < 5
        assert m.goodput_mbps is None and m.error_kind == "timeout", (m.error, m.error_kind)
    finally:
        lsock.close()


# --------------------------------------------------------------------- serve's ndt7, hostile


def test_serve_refuses_an_upgrade_without_the_subprotocol(ndt7_server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(ndt7_server, "/ndt/v7/download"), proxy=None, open_timeout=5)
    assert info.value.response.status_code == 400


def test_serve_refuses_a_plain_get_on_the_ndt7_paths(ndt7_server):
    status, _ = raw_request(ndt7_server, b"GET /ndt/v7/upload HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status in (400, 426)


def test_serve_refuses_a_long_query(ndt7_server):
    status, _ = raw_request(ndt7_server, upgrade_head("/ndt/v7/download?" + "a=b&" * 1100))
    assert status == 400


def test_serve_refuses_http10_and_a_body_on_the_upgrade(ndt7_server):
    head = upgrade_head("/ndt/v7/download")
    assert raw_request(ndt7_server, head.replace(b"HTTP/1.1", b"HTTP/1.0", 1))[0] == 400
    assert raw_request(ndt7_server, head[:-2] + b"Content-Length: 3\r\n\r\nabc")[0] == 400
    status, body = raw_request(ndt7_server, head.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"))
    assert status in (400, 426), body


def test_serve_limits_ndt7_tests_at_once():
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, ndt7_duration_s=DURATION_S, ndt7_max_tests=1)) as srv:
        with connect(ws_url(srv, "/ndt/v7/upload"), subprotocols=[SUBPROTOCOL], proxy=None, compression=None):
            with pytest.raises(InvalidStatus) as info:
                connect(ws_url(srv, "/ndt/v7/upload"), subprotocols=[SUBPROTOCOL], proxy=None, compression=None)
            assert info.value.response.status_code == 429


def test_serve_closes_a_download_when_the_client_sends_binary(ndt7_server):
    with connect(ws_url(ndt7_server, "/ndt/v7/download"), subprotocols=[SUBPROTOCOL], proxy=None, compression=None, max_size=None) as ws:
        ws.send(b"\0" * 2048)
        t0 = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            while time.monotonic() - t0 < 10:
                ws.recv(timeout=5)
    assert info.value.rcvd is None or info.value.rcvd.code == 1008
    assert wait_record(ndt7_server).outcome == "client-error"


def frame(opcode: int, payload: bytes = b"", *, length: int | None = None, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked client frame, written by hand on purpose: the library would refuse to send these."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize(
    "frames, code",
    [
        (frame(0x2, length=1 << 40), 1009),  # a frame announcing 1 TiB
        (frame(0x2, length=(1 << 24) + 1), 1009),  # one byte above the spec's 16 MiB
        (frame(0x3, b"x"), 1002),  # reserved opcode
        (frame(0x2, b"x", rsv=0x40), 1002),  # compression bit, none negotiated
        (frame(0x0, b"x"), 1002),  # continuation of nothing
        (frame(0x9, b"p" * 200), 1002),  # a control frame longer than 125 bytes
        (b"\x82\x05hello", 1002),  # unmasked client frame
    ],
    ids=["1TiB", "16MiB+1", "reserved-opcode", "rsv1", "lone-continuation", "long-ping", "unmasked"],
)
def test_serve_closes_on_hostile_frames(ndt7_server, frames, code):
    sock, rest = upgraded(ndt7_server, "/ndt/v7/upload")
    with sock:
        sock.sendall(frames)
        data = rest + read_until_closed(sock, 10)
    assert close_codes(data) and close_codes(data)[-1] == code, data[-40:]
    assert wait_record(ndt7_server).outcome == "client-error"


def test_serve_ends_a_silent_upload_within_its_bound(ndt7_server):
    sock, rest = upgraded(ndt7_server, "/ndt/v7/upload")
    t0 = time.monotonic()
    with sock:
        data = rest + read_until_closed(sock, 15)  # sends nothing, never answers the close
    took = time.monotonic() - t0
    assert close_codes(data) == [1000]
    assert took < DURATION_S + 3.0 + 2.0, took  # duration + the close grace, then the connection ends


def test_serve_survives_a_client_that_vanishes_mid_download(ndt7_server):
    sock, _ = upgraded(ndt7_server, "/ndt/v7/download")
    sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset
    rec = wait_record(ndt7_server)
    assert rec.outcome in ("client-gone", "client-error")
    # and the server still serves
    m = Ndt7Engine().measure(target(ndt7_server.url), plan("download", 1.0), threading.Event())
    assert m.error is None and m.goodput_mbps


# ------------------------------------------------------------------------------------ helpers


def upgrade_head(path: str, subprotocol: bool = True) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {SUBPROTOCOL}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def raw_request(server: ServerThread, head: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as sock:
        sock.sendall(head)
        data = read_until_closed(sock, 10)
    return int(data.split(b" ", 2)[1]), data


def upgraded(server: ServerThread, path: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", server.server.port), timeout=10)
    sock.sendall(upgrade_head(path))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    assert f"sec-websocket-protocol: {SUBPROTOCOL}".encode() in head.lower()
    return sock, rest


def read_until_closed(sock: socket.socket, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    out = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


def close_codes(data: bytes) -> list[int]:
    """Close codes in a stream of server frames (unmasked), skipping text and binary frames."""
    codes, i = [], 0
    while i + 2 <= len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n = struct.unpack("!H", data[i : i + 2])[0]
            i += 2
        elif n == 127:
            n = struct.unpack("!Q", data[i : i + 8])[0]
            i += 8
        if op == 0x8 and n >= 2:
            codes.append(struct.unpack("!H", data[i : i + 2])[0])
        i += n
    return codes


def wait_record(server: ServerThread, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.server.ndt7.done:
            return server.server.ndt7.done[-1]
        time.sleep(0.05)
    raise AssertionError("serve recorded no ndt7 test")
