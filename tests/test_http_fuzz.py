"""Hypothesis on the HTTP framing layer (server/http.py): whatever bytes arrive, the only ways out
are a request, an HttpError with a 4xx and a one-line reason, or the client's end of stream.

Three levels: a head and body read from an in-memory stream (the parser and the body reader
together, thousands of inputs a second), chunked bodies built to be nearly right, and a few
raw exchanges with a live server on 127.0.0.1 (nothing logged as a traceback, still serving).
Examples are bounded and the deadline is off: a loaded 2-core machine must not turn slowness
into failures.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from giga_netcheck.server.app import ServerConfig, ServerThread
from giga_netcheck.server.http import MAX_HEADER_BYTES, HttpError, read_request

CAP = 4096
FRAGMENTS = [
    b"GET /rtt HTTP/1.1\r\n",
    b"POST /upload HTTP/1.1\r\n",
    b"POST /upload HTTP/1.0\r\n",
    b"Host: x\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Content-Length:5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked, gzip\r\n",
    b"Connection: close\r\n",
    b"\r\n",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    b"fffffffffffffff\r\n",
    b"-1\r\n",
    b"1;a=b\r\nx\r\n",
    b"X-T: t\r\n",
    b" folded\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"hello",
]
STREAMS = st.one_of(
    st.binary(max_size=600),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map(b"".join),
    st.tuples(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(b"".join), st.binary(max_size=80)).map(b"".join),
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_LOOP: list[asyncio.AbstractEventLoop] = []


@pytest.fixture(scope="module", autouse=True)
def _one_loop():
    """One event loop for every example (a new one each costs more than the example)."""
    _LOOP.append(asyncio.new_event_loop())
    yield
    _LOOP.pop().close()


def _run(coro):
    return _LOOP[0].run_until_complete(coro)


async def _serve_stream(data: bytes, keep: bool) -> list[tuple[str, object]]:
    """Read requests from ``data`` (then end of stream) as a connection does; what came out of each."""
    reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)
    reader.feed_data(data)
    reader.feed_eof()
    out: list[tuple[str, object]] = []
    for _ in range(8):  # a stream holds a bounded number of requests
        try:
            request = await read_request(reader, idle_timeout=5, header_timeout=5)
            if request is None:
                out.append(("end", None))
                return out
            body = request.body
            got = await (body.read(CAP) if keep else body.discard(CAP))
            size = len(got) if isinstance(got, bytes) else got
            assert 0 <= size <= CAP and size == body.received
            if not body.chunked:
                assert size == body.length
            out.append(("request", size))
            if not request.keep_alive:
                return out
        except HttpError as exc:
            assert 400 <= exc.status < 500, exc.status
            assert exc.reason and "\n" not in exc.reason and exc.code
            out.append(("refused", exc.status))
            return out
        except asyncio.IncompleteReadError:
            out.append(("client-gone", None))  # the stream ended inside a head or a body
            return out
    return out


@FUZZ
@given(STREAMS, st.booleans())
def test_any_byte_stream_is_requests_refusals_or_the_end(data, keep):
    out = _run(_serve_stream(data, keep))
    assert out and out[-1][0] in ("end", "refused", "client-gone", "request")


@st.composite
def chunked_bodies(draw) -> tuple[bytes, int | None]:
    """A chunked body, well formed or with one defect; with the size it carries when well formed."""
    sizes = draw(st.lists(st.integers(1, 1000), max_size=8))
    parts = []
    for n in sizes:
        ext = draw(st.sampled_from([b"", b";x", b";x=y", b" ;x"]))
        parts.append(b"%x" % n + ext + b"\r\n" + b"z" * n + b"\r\n")
    trailer = draw(st.sampled_from([b"", b"X-T: t\r\n"]))
    body = b"".join(parts) + b"0\r\n" + trailer + b"\r\n"
    defect = draw(st.sampled_from([None, "cut", "flip", "insert"]))
    if defect is None:
        return body, sum(sizes)
    at = draw(st.integers(0, max(0, len(body) - 1)))
    if defect == "cut":
        return body[:at], None
    if defect == "flip":
        return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :], None
    return body[:at] + draw(st.sampled_from([b"\r\n", b"-", b"0x", b"\n", b";\x00", b"g"])) + body[at:], None


@FUZZ
@given(chunked_bodies(), st.booleans())
def test_chunked_bodies_are_counted_exactly_or_refused(body_and_size, keep):
    body, size = body_and_size
    head = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    out = _run(_serve_stream(head + body, keep))
    if size is not None:
        assert out == [("request", size)] if size <= CAP else out == [("refused", 413)]
    else:  # a defect may still leave a valid stream (a flipped hex digit): any outcome but an exception
        assert out[-1][0] in ("request", "refused", "client-gone", "end")


@pytest.fixture(scope="module")
def live():
    config = ServerConfig(host="127.0.0.1", port=0, idle_timeout_s=1.0, header_timeout_s=1.0, max_upload_bytes=1 << 20)
    with ServerThread(config) as s:
        yield s


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=STREAMS)
def test_a_live_server_answers_or_closes_and_keeps_serving(live, caplog, data):
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused and closed before it took everything
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    for line in [a for a in answer.split(b"\r\n") if a.startswith(b"HTTP/1.1 ")]:
        status = int(line.split(b" ")[1])
        assert 200 <= status < 500, line
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert httpx.get(f"{live.url}/rtt", timeout=5, trust_env=False).text == "ok\n"
