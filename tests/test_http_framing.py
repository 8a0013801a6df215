"""The one HTTP/1.1 framing layer (server/http.py), table-driven, against a real server on 127.0.0.1.

Each hostile request is sent raw to every route that reads a body (measurement upload, the
speedtest and LibreSpeed uploads, an unknown path, the collector): it must get its 4xx with a
one-line reason, the server must keep serving, nothing may be logged as a traceback, and a
request that claims an endless body must not make the server's memory grow with what is sent.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from giga_netcheck.server.app import ServerConfig, ServerThread
from giga_netcheck.server.collect import Collector, Tokens
from giga_netcheck.server.http import MAX_CHUNK_SIZE_DIGITS, MAX_HEADER_BYTES, MAX_HEADERS, HttpError, chunk_size, parse_head

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "framing-test-token-0123"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"
BODY_ROUTES = ["/upload", "/speedtest/upload.php", "/backend/empty.php", "/nothing/here", "/results"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A server with every route on, the collector included (the token below may upload for a board)."""
    tmp = tmp_path_factory.mktemp("framing")
    (tmp / "tokens.yaml").write_text(yaml.safe_dump({"tokens": [{"token": TOKEN, "board": "b"}]}), encoding="utf-8")
    (tmp / "tokens.yaml").chmod(0o600)  # a world-readable tokens file is refused (collect.py)
    collector = Collector(tmp / "store", Tokens.load(tmp / "tokens.yaml"), max_bytes=64 * 1024)
    config = ServerConfig(host="127.0.0.1", port=0, collector=collector, idle_timeout_s=3, header_timeout_s=1.0, max_upload_bytes=8 << 20)
    with ServerThread(config) as s:
        yield s


pytestmark = pytest.mark.usefixtures("no_tracebacks")  # tests/conftest.py


def _exchange(port: int, raw: bytes, timeout: float = 3.0) -> bytes:
    """Send ``raw``, half-close, and return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server refused and closed before taking everything: its answer is still there to read
        got = b""
        try:
            while data := sock.recv(65536):
                got += data
        except (TimeoutError, ConnectionResetError):
            pass
        return got


def _status(answer: bytes) -> int:
    line = answer.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), answer[:200]
    return int(line.split(b" ")[1])


def _still_up(s) -> None:
    assert httpx.get(f"{s.url}/rtt", timeout=5, trust_env=False).text == "ok\n"


def _head(path: str, *lines: str, version: str = "HTTP/1.1") -> bytes:
    return (f"POST {path} {version}\r\nHost: x\r\n{AUTH}" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


# (id, head lines, body after the head, expected status): refused whatever the route
HEAD_CASES = [
    ("negative-length", ["Content-Length: -1"], b"x" * 100, 400),
    ("signed-length", ["Content-Length: +5"], b"hello", 400),
    ("hex-length", ["Content-Length: 0x5"], b"hello", 400),
    ("space-inside-length", ["Content-Length: 5 5"], b"hello", 400),
    ("list-length", ["Content-Length: 5, 5"], b"hello", 400),
    ("empty-length", ["Content-Length: "], b"", 400),
    ("word-length", ["Content-Length: abc"], b"", 400),
    ("5000-digit-length", ["Content-Length: " + "9" * 5000], b"", 413),
    ("differing-lengths", ["Content-Length: 5", "Content-Length: 6"], b"hello!", 400),
    ("space-before-colon", ["Content-Length : 5"], b"hello", 400),
    ("length-and-chunked", ["Content-Length: 5", "Transfer-Encoding: chunked"], b"0\r\n\r\n", 400),
    ("chunked-and-length", ["Transfer-Encoding: chunked", "Content-Length: 5"], b"0\r\n\r\n", 400),
    ("xchunked", ["Transfer-Encoding: xchunked"], b"0\r\n\r\n", 400),
    ("gzip-chunked", ["Transfer-Encoding: gzip, chunked"], b"0\r\n\r\n", 400),
    ("chunked-twice", ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], b"0\r\n\r\n", 400),
    ("identity", ["Transfer-Encoding: identity"], b"", 400),
    ("folded-header", ["Content-Length: 5", " continued"], b"hello", 400),
    ("nul-in-value", ["X-Note: a\x00b", "Content-Length: 5"], b"hello", 400),
    ("too-many-headers", [f"X-H{i}: v" for i in range(MAX_HEADERS + 1)], b"", 431),
    ("huge-header", ["X-Big: " + "a" * (MAX_HEADER_BYTES + 10)], b"", 431),
]

# chunked bodies (after "Transfer-Encoding: chunked") that break the chunk framing
CHUNK_CASES = [
    ("negative-chunk", b"-1\r\n" + b"x" * 100, 400),
    ("hex-prefix-chunk", b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("signed-chunk", b"+5\r\nhello\r\n0\r\n\r\n", 400),
    ("leading-space-chunk", b" 5\r\nhello\r\n0\r\n\r\n", 400),
    ("empty-chunk-size", b"\r\nhello\r\n0\r\n\r\n", 400),
    ("word-chunk", b"zz\r\n", 400),
    ("too-many-digits", b"0" * (MAX_CHUNK_SIZE_DIGITS + 1) + b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-over-cap", b"f" * MAX_CHUNK_SIZE_DIGITS + b"\r\nhello", 413),
    ("no-crlf-after-data", b"5\r\nhelloXX0\r\n\r\n", 400),
    ("bare-lf-chunk-line", b"5\nhello\r\n0\r\n\r\n", 400),
    ("bad-trailer", b"5\r\nhello\r\n0\r\nnot a trailer\r\n\r\n", 400),
]


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize(("lines", "body", "want"), [c[1:] for c in HEAD_CASES], ids=[c[0] for c in HEAD_CASES])
def test_hostile_heads_are_refused_on_every_route(srv, path, lines, body, want):
    answer = _exchange(srv.server.port, _head(path, *lines) + body)
    assert _status(answer) == want
    text = answer.decode("latin-1")
    assert "Connection: close" in text
    reason = text.split("\r\n\r\n", 1)[1]
    assert reason.strip() and "\n" not in reason.strip(), reason  # one line
    assert text.count("HTTP/1.1 ") == 1
    _still_up(srv)


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize(("chunks", "want"), [c[1:] for c in CHUNK_CASES], ids=[c[0] for c in CHUNK_CASES])
def test_bad_chunking_is_refused_on_every_route(srv, path, chunks, want):
    answer = _exchange(srv.server.port, _head(path, "Transfer-Encoding: chunked") + chunks)
    assert _status(answer) == want
    assert answer.count(b"HTTP/1.1 ") == 1
    _still_up(srv)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x16\x03\x01 not http at all\r\n\r\n",
        b"GET /rtt HTTP/2.0\r\n\r\n",
        b"GET  /rtt HTTP/1.1\r\n\r\n",
        b"GET /rtt HTTP/1.1 extra\r\n\r\n",
        b"GET /r\x01tt HTTP/1.1\r\n\r\n",
        b"GET /rtt HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
        b"GET /rtt HTTP/1.1\r\nHost x\r\n\r\n",
        b"POST /upload HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    ids=["tls-hello", "http2", "double-space", "four-parts", "control-in-target", "bare-lf", "no-colon", "chunked-in-1.0"],
)
def test_malformed_request_lines_and_headers_get_400(srv, raw):
    assert _status(_exchange(srv.server.port, raw)) == 400
    _still_up(srv)


def test_smuggled_request_after_a_refused_one_is_never_answered(srv):
    smuggled = b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = _head("/upload", "Content-Length: 5", "Transfer-Encoding: chunked") + b"0\r\n\r\n" + smuggled
    answer = _exchange(srv.server.port, raw)
    assert _status(answer) == 400 and answer.count(b"HTTP/1.1 ") == 1 and b"measurement-server" not in answer


def test_a_body_a_route_ignores_is_not_read_as_the_next_request(srv):
    inner = b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = f"GET /rtt HTTP/1.1\r\nHost: x\r\nContent-Length: {len(inner)}\r\n\r\n".encode() + inner + b"GET /rtt HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _exchange(srv.server.port, raw)
    assert answer.count(b"HTTP/1.1 200") == 2 and b"measurement-server" not in answer


def test_well_framed_bodies_still_pass(srv):
    port = srv.server.port
    # the same Content-Length twice is one length (RFC 9110 section 8.6)
    answer = _exchange(port, _head("/upload", "Content-Length: 5", "Content-Length: 5") + b"hello")
    assert _status(answer) == 200 and b'"bytes": 5' in answer
    # chunk extensions, upper-case hex, a trailer, case-insensitive coding name
    chunks = b"A;name=value\r\n0123456789\r\n5 ;x\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
    answer = _exchange(port, _head("/upload", "Transfer-Encoding: Chunked") + chunks)
    assert _status(answer) == 200 and b'"bytes": 15' in answer
    # an empty line before the request line is ignored (RFC 9112 section 2.2)
    assert _status(_exchange(port, b"\r\nGET /rtt HTTP/1.1\r\nHost: x\r\n\r\n")) == 200


def test_results_refusals_are_json_with_a_reason(srv):
    answer = _exchange(srv.server.port, _head("/results", "Content-Length: -1"))
    assert _status(answer) == 400
    assert b'"error": "bad-length"' in answer and b'"reason": ' in answer


# ------------------------------------------------------------------------------ deadlines


def test_a_head_sent_a_byte_at_a_time_meets_the_header_deadline(srv):
    """slowloris: every byte arrives well within the idle timeout, the head as a whole does not."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.server.port), timeout=5) as sock:
        try:
            for b in b"GET /rtt HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered
                sock.send(bytes([b]))
                time.sleep(0.05)
        except OSError:
            pass  # closed under us: that is the point
        answer = sock.recv(4096)
    took = time.monotonic() - t0
    assert _status(answer) == 408 and b"did not arrive" in answer
    assert took < srv.server.config.header_timeout_s + 1.0  # well before the idle timeout or the 5 s it would take
    _still_up(srv)


def test_a_partial_head_is_dropped_after_the_header_deadline(srv):
    with socket.create_connection(("127.0.0.1", srv.server.port), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nContent-Len")
        t0 = time.monotonic()
        assert _status(sock.recv(4096)) == 408
        assert sock.recv(10) == b""  # and closed
        assert time.monotonic() - t0 < srv.server.config.header_timeout_s + 1.0


def test_a_body_that_stops_is_dropped_after_the_idle_timeout(srv):
    with socket.create_connection(("127.0.0.1", srv.server.port), timeout=10) as sock:
        sock.sendall(_head("/upload", "Content-Length: 1000") + b"x" * 10)
        t0 = time.monotonic()
        assert sock.recv(4096) == b""
        assert time.monotonic() - t0 < srv.server.config.idle_timeout_s + 1.5
    _still_up(srv)


# ------------------------------------------------------------------------------ memory


def _hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server_process(tmp_path_factory):
    """``serve`` in its own process, so its peak resident memory (VmHWM) is its alone."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's peak memory")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    code = (
        "import asyncio, logging, sys\n"
        "from giga_netcheck.server.app import MeasurementServer, ServerConfig\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "async def main():\n"
        "    s = MeasurementServer(ServerConfig(host='127.0.0.1', port=0, udp_port=0))\n"
        "    await s.start()\n"
        "    print(s.port, flush=True)\n"
        "    await s.serve_forever()\n"
        "asyncio.run(main())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=err, env=env, text=True)
    try:
        port = int(proc.stdout.readline())
        yield proc, port, log
    finally:
        proc.terminate()
        proc.wait(5)
    assert "Traceback" not in log.read_text()


def _push(sock: socket.socket, nbytes: int) -> int:
    """Send up to ``nbytes`` from one reused buffer; stop when the server closes. Bytes sent."""
    block = memoryview(b"x" * (1 << 20))
    sent = 0
    try:
        while sent < nbytes:
            sent += sock.send(block[: min(len(block), nbytes - sent)])
    except OSError:
        pass
    return sent


ENDLESS = [
    ("/upload", b"Content-Length: -1\r\n\r\n"),
    ("/nothing/here", b"Content-Length: -1\r\n\r\n"),
    ("/backend/empty.php", b"Content-Length: -1\r\n\r\n"),
    ("/speedtest/upload.php", b"Content-Length: -1\r\n\r\n"),
    ("/upload", b"Transfer-Encoding: chunked\r\n\r\n-1\r\n"),
    ("/backend/empty.php", b"Transfer-Encoding: chunked\r\n\r\n-1\r\n"),
]


@pytest.mark.parametrize(("path", "framing"), ENDLESS, ids=[f"{p}:{f.split(b':')[0].decode()}" for p, f in ENDLESS])
def test_an_endless_body_does_not_grow_server_memory(server_process, path, framing):
    proc, port, _ = server_process
    assert httpx.get(f"http://127.0.0.1:{port}/rtt", timeout=5, trust_env=False).status_code == 200
    before = _hwm_kb(proc.pid)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + framing)
        try:
            first = sock.recv(4096)
        except (TimeoutError, ConnectionResetError):
            first = b""
        _push(sock, 50 << 20)
    grown_mb = (_hwm_kb(proc.pid) - before) / 1024
    assert grown_mb < 4, f"server peak memory grew {grown_mb:.1f} MB"
    assert first.startswith(b"HTTP/1.1 400"), first[:100]
    assert proc.poll() is None
    assert httpx.get(f"http://127.0.0.1:{port}/rtt", timeout=5, trust_env=False).status_code == 200


@pytest.mark.parametrize("chunked", [False, True])
def test_a_large_upload_is_counted_in_constant_memory(server_process, chunked):
    proc, port, _ = server_process
    nbytes = 100 << 20
    before = _hwm_kb(proc.pid)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if chunked:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            block = b"%x\r\n" % (1 << 20) + b"x" * (1 << 20) + b"\r\n"
            for _ in range(nbytes >> 20):
                sock.sendall(block)
            sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {nbytes}\r\n\r\n".encode())
            assert _push(sock, nbytes) == nbytes
        answer = sock.recv(4096)
    assert _status(answer) == 200 and f'"bytes": {nbytes}'.encode() in answer
    grown_mb = (_hwm_kb(proc.pid) - before) / 1024
    assert grown_mb < 4, f"server peak memory grew {grown_mb:.1f} MB while counting {nbytes >> 20} MiB"


def test_many_tiny_chunks_to_the_collector_stay_within_its_cap(tmp_path):
    """Read-into-memory bodies are bounded by the route's cap, not by the chunk count."""
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump({"tokens": [{"token": TOKEN, "board": "b"}]}), encoding="utf-8")
    (tmp_path / "tokens.yaml").chmod(0o600)  # a world-readable tokens file is refused (collect.py)
    collector = Collector(tmp_path / "store", Tokens.load(tmp_path / "tokens.yaml"), max_bytes=10_000)
    with ServerThread(ServerConfig(host="127.0.0.1", port=0, collector=collector)) as s:
        answer = _exchange(s.server.port, _head("/results", "Transfer-Encoding: chunked") + b"1\r\nx\r\n" * 20_000 + b"0\r\n\r\n")
        # the collector also bounds the chunk count (collect.max_chunks_for: 256 here), which trips first
        assert _status(answer) == 413 and (b"too-large" in answer or b"too-many-chunks" in answer)
        _still_up(s)


# ------------------------------------------------------------------------------ the parser alone


@pytest.mark.parametrize(
    ("line", "want"),
    [
        (b"0\r\n", 0),
        (b"a\r\n", 10),
        (b"FF\r\n", 255),
        (b"10;ext\r\n", 16),
        (b"10 \t;ext=v\r\n", 16),
        (b"f" * MAX_CHUNK_SIZE_DIGITS + b"\r\n", 16**15 - 1),
    ],
)
def test_chunk_size_accepts(line, want):
    assert chunk_size(line) == want


@pytest.mark.parametrize(
    "line", [b"\r\n", b"-1\r\n", b"+1\r\n", b"0x1\r\n", b" 1\r\n", b"1 \r\n", b"g\r\n", b"1;\x00\r\n", b"1" * 16 + b"\r\n"]
)
def test_chunk_size_refuses(line):
    with pytest.raises(HttpError) as err:
        chunk_size(line)
    assert err.value.status == 400


FRAGMENTS = [
    b"POST /upload HTTP/1.1",
    b"GET http://[::1 HTTP/1.1",
    b"HTTP/1.0",
    b"\r\n",
    b"\n",
    b"\r",
    b":",
    b" ",
    b"\t",
    b",",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Connection",
    b"chunked",
    b"close",
    b"-1",
    b"+5",
    b"0x5",
    b"5",
    b"9" * 30,
    b"\x00",
    b"\xff",
]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join)))
def test_any_head_parses_or_is_refused_with_a_4xx(data):
    for head in (data + b"\r\n\r\n", b"POST /upload HTTP/1.1\r\n" + data + b"\r\n\r\n"):
        try:
            request = parse_head(head, reader=None)  # type: ignore[arg-type]  # the body is not read here
        except HttpError as exc:
            assert 400 <= exc.status < 500 and exc.reason and "\n" not in exc.reason
        else:
            assert request.body.length >= 0 and not (request.body.chunked and request.body.length)
