"""ndt7 on ``serve``: M-Lab's download and upload tests over WebSocket.

Written from M-Lab's published specification (m-lab/ndt-server, spec/ndt7-protocol.md, v0.11.0);
no code of theirs is used. The WebSocket layer is the ``websockets`` library's sans-I/O
:class:`websockets.server.ServerProtocol`: the request was already read by ``serve``'s one HTTP
layer (http.py), so it is handed to ``accept`` as a ``websockets`` request, and from then on the
bytes of the connection are fed to the protocol and what it has to send is written back. No
framing is written here.

- ``GET /ndt/v7/download`` and ``GET /ndt/v7/upload`` with ``Upgrade: websocket`` and the
  subprotocol ``net.measurementlab.ndt.v7`` (without it: 400, the spec's "4xx failure if the
  request does not look correct"); a query string above 4096 bytes is refused (400).
- Download: binary messages of random bytes, 8 KiB at first, doubled while a message is smaller
  than a sixteenth of what was sent so far, up to 1 MiB (the spec's appendix; the reference
  server stops scaling at 1 MiB too); a measurement (text, JSON) every 250 ms.
- Upload: binary messages are read and counted (up to 16 MiB each, the spec's floor for a
  receive limit; larger: close 1009), a measurement every 250 ms.
- Measurements: ``AppInfo`` (``ElapsedTime`` in µs, ``NumBytes`` at application level),
  ``ConnectionInfo`` (``Client``, ``Server``, ``StartTime``), ``Origin``, ``Test`` and, on Linux,
  ``TCPInfo`` from the socket's ``TCP_INFO`` (``RTT``, ``MinRTT``, ``RTTVar``, ``BytesAcked``,
  ``BytesReceived``, ``BytesSent``, ``BytesRetrans``, ``BusyTime``, ``RWndLimited``,
  ``SndBufLimited``, ``ElapsedTime``: those the kernel gives).
- After ``ServerConfig.ndt7_duration_s`` (the spec's 10 s by default) the server sends a close
  frame and waits at most :data:`CLOSE_GRACE_S` for the client's, then closes the connection:
  no test holds a connection longer than that. A client that sends a binary message during a
  download, a frame above the limit, a bad opcode or bad framing gets a close frame with the
  matching code and the connection ends; one log line, never a traceback.
- At most ``ServerConfig.ndt7_max_tests`` tests at once (429 above): each can hold a 16 MiB
  message (and the library's copies of it) while a client sends one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from websockets.datastructures import Headers
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from giga_netcheck.measure.engines.ndt7 import (
    DOWNLOAD_PATH,
    INITIAL_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_SCALED_MESSAGE_BYTES,
    MEASUREMENT_INTERVAL_S,
    PATHS as PATHS,  # app.py routes these here
    SUBPROTOCOL,
    next_message_size,
    spec_tcpinfo,
    tcp_info,
)
from giga_netcheck.server.http import Request, respond, within

log = logging.getLogger("giga_netcheck.server.app")  # one logger for every route of serve
_WS_LOG = logging.getLogger("giga_netcheck.server.ndt7.websockets")
_WS_LOG.setLevel(logging.WARNING)  # the library's "connection open/closed" lines: ours say more

DEFAULT_DURATION_S = 10.0
CLOSE_GRACE_S = 3.0
"""After the test's duration: the wait for the client's close frame (10 + 3 s: the spec's 13 s bound)."""
MAX_QUERY_BYTES = 4096
READ_BYTES = 256 * 1024


# ------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Ndt7Record:
    """One ndt7 test as ``serve`` saw it (for logs and tests)."""

    test: str
    client: str
    bytes: int
    """Application bytes sent (download) or received (upload) within the test's duration."""
    seconds: float
    outcome: str
    tcp: Optional[dict[str, int]] = None
    """The last TCPInfo sent to the client."""
    measurements: int = 0
    """Measurement messages sent."""


@dataclass
class Ndt7Tests:
    """The server's ndt7 bookkeeping: tests running now, the last ones finished."""

    running: int = 0
    done: deque[Ndt7Record] = field(default_factory=lambda: deque(maxlen=256))


class Server(Protocol):
    """What this module uses of ``MeasurementServer`` (app.py imports this module, not the reverse)."""

    config: Any
    ndt7: Ndt7Tests

    def _log_transfer(self, client: str, kind: str, nbytes: int, seconds: float, outcome: str) -> None: ...


_PAYLOAD = memoryview(os.urandom(MAX_SCALED_MESSAGE_BYTES))
"""Random bytes, made once: every download message is a slice of it."""


def _endpoint(addr: Any) -> str:
    if not addr:
        return "?"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


# ---------------------------------------------------------------------------------- the route


async def serve(server: Server, request: Request, writer: asyncio.StreamWriter, client: str) -> bool:
    """Serve one request on an ndt7 path; the connection always ends with it (returns False)."""
    test = "download" if request.path == DOWNLOAD_PATH else "upload"
    cfg = server.config
    query = request.target.partition("?")[2]
    refusal = None
    if not request.http11:
        refusal = "an ndt7 test is an HTTP/1.1 WebSocket upgrade"
    elif len(query.encode("latin-1", "replace")) > MAX_QUERY_BYTES:
        refusal = f"query string longer than {MAX_QUERY_BYTES} bytes"
    elif request.body.declared:
        refusal = "a WebSocket upgrade has no body"
    if refusal is not None:
        log.info("%s ndt7 %s refused 400: %s", client, test, refusal)
        await respond(writer, 400, f"{refusal}\n".encode(), close=True)
        return False
    if server.ndt7.running >= cfg.ndt7_max_tests:
        log.info("%s ndt7 %s refused 429: %d tests running", client, test, server.ndt7.running)
        await respond(writer, 429, b"too many ndt7 tests at once; try again shortly\n", close=True, extra="Retry-After: 5\r\n")
        return False
    protocol = ServerProtocol(subprotocols=[SUBPROTOCOL], max_size=MAX_MESSAGE_BYTES, logger=_WS_LOG)  # type: ignore[list-item]
    # The head was read by serve's HTTP layer; the protocol reads it again from its serialised
    # form, as it would from the socket, so its parser moves on to frames after the handshake.
    protocol.receive_data(WsRequest(request.target, Headers(list(request.headers.items()))).serialize())
    parsed = [e for e in protocol.events_received() if isinstance(e, WsRequest)]
    if not parsed:  # pragma: no cover - our own serialisation of a head http.py accepted
        log.info("%s ndt7 %s refused 400: %s", client, test, protocol.handshake_exc)
        await respond(writer, 400, b"not a WebSocket upgrade request\n", close=True)
        return False
    response = protocol.accept(parsed[0])
    protocol.send_response(response)
    if response.status_code != 101:
        reason = str(protocol.handshake_exc or response.reason_phrase)
        log.info("%s ndt7 %s refused %d: %s", client, test, response.status_code, " ".join(reason.split())[:200])
        await _Session(protocol, request, writer, test).flush()
        return False
    server.ndt7.running += 1
    session = _Session(protocol, request, writer, test)
    t0 = time.perf_counter()
    outcome = "complete"
    try:
        await within(session.run(cfg.ndt7_duration_s), cfg.ndt7_duration_s + CLOSE_GRACE_S)
        outcome = session.outcome
    except asyncio.TimeoutError:
        outcome = session.outcome if session.outcome != "complete" else "close-timeout"
    except (ConnectionError, RuntimeError, InvalidState):
        outcome = "client-gone"
    finally:
        server.ndt7.running -= 1
        session.stop()
        if outcome not in ("complete", "close-timeout"):
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()
    record = Ndt7Record(
        test, client, session.counted, round(time.perf_counter() - t0, 3), outcome, session.last_tcp, session.sent_measurements
    )
    server.ndt7.done.append(record)
    server._log_transfer(client, f"ndt7-{test}", session.counted, min(session.elapsed, time.perf_counter() - t0), outcome)
    if session.problem:
        log.info("%s ndt7 %s: %s", client, test, session.problem)
    return False


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()


class _Session:
    """One WebSocket session: the sans-I/O protocol, fed from the connection's reader."""

    def __init__(self, protocol: ServerProtocol, request: Request, writer: asyncio.StreamWriter, test: str) -> None:
        self.protocol = protocol
        self.reader = request.body.reader
        self.writer = writer
        self.test = test
        self.sock = writer.get_extra_info("socket")
        self.peer = _endpoint(writer.get_extra_info("peername"))
        self.local = _endpoint(writer.get_extra_info("sockname"))
        self.started = dt.datetime.now(dt.timezone.utc).isoformat()
        self.t0 = 0.0
        self.sent = 0
        """Application bytes sent (download)."""
        self.received = 0
        """Application bytes of binary messages received (upload) until the test ended."""
        self.counted = 0
        self.elapsed = 0.0
        self.ended = False
        self.outcome = "complete"
        self.problem: Optional[str] = None
        self.last_tcp: Optional[dict[str, int]] = None
        self.sent_measurements = 0
        self._binary = False
        self._tasks: list[asyncio.Task[None]] = []

    async def flush(self) -> None:
        """Write what the protocol has to send; its empty item is the end of our side (EOF)."""
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
            elif self.writer.can_write_eof():
                self.writer.write_eof()
        await self.writer.drain()

    def _now_us(self) -> int:
        return int((time.perf_counter() - self.t0) * 1e6)

    def measurement(self) -> str:
        elapsed = self._now_us()
        n = self.sent if self.test == "download" else self.received
        doc: dict[str, Any] = {
            "AppInfo": {"ElapsedTime": elapsed, "NumBytes": n},
            "ConnectionInfo": {"Client": self.peer, "Server": self.local, "StartTime": self.started},
            "Origin": "server",
            "Test": self.test,
        }
        tcp = spec_tcpinfo(tcp_info(self.sock), elapsed)
        if tcp is not None:
            doc["TCPInfo"] = self.last_tcp = tcp
        self.sent_measurements += 1
        return json.dumps(doc)

    async def run(self, duration_s: float) -> None:
        await self.flush()  # the 101 answer
        self.t0 = time.perf_counter()
        pump = asyncio.ensure_future(self._pump())
        ticker = asyncio.ensure_future(self._measurements())
        self._tasks = [pump, ticker]
        for task in self._tasks:  # a client gone mid-write ends a task with ConnectionError: seen, not logged
            task.add_done_callback(_retrieve)
        try:
            if self.test == "download":
                await self._download(duration_s, pump)
            else:
                await asyncio.wait([pump], timeout=duration_s)
            self._end()
            ticker.cancel()
            if self.protocol.state is State.OPEN:
                self.protocol.send_text(self.measurement().encode())
                self.protocol.send_close(1000)
                await self.flush()
            await pump  # until the client's close frame (and our EOF), or the caller's deadline
        finally:
            self._end()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self.elapsed = time.perf_counter() - self.t0
            self.counted = self.sent if self.test == "download" else self.received

    async def _download(self, duration_s: float, pump: asyncio.Future[None]) -> None:
        size = INITIAL_MESSAGE_BYTES
        deadline = self.t0 + duration_s
        while time.perf_counter() < deadline and not pump.done() and self.protocol.state is State.OPEN:
            self.protocol.send_binary(_PAYLOAD[:size])
            self.sent += size
            await self.flush()
            size = next_message_size(size, self.sent)

    async def _measurements(self) -> None:
        while True:
            await asyncio.sleep(MEASUREMENT_INTERVAL_S)
            if self.protocol.state is not State.OPEN:
                return
            self.protocol.send_text(self.measurement().encode())
            await self.flush()

    async def _pump(self) -> None:
        """Read the client until its close frame (or EOF, or a protocol error)."""
        while self.protocol.state is not State.CLOSED:
            try:
                data = await self.reader.read(READ_BYTES)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                if self.protocol.close_rcvd is None and not self.ended and self.outcome == "complete":
                    self.outcome = "client-gone"  # no close frame: the client vanished
                self._end()
                self.protocol.receive_eof()
                await self.flush()
                return
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Frame):
                    self._on_frame(event)
                    if event.opcode is Opcode.CLOSE:
                        self._end()  # the client ended the test (before our duration, or answering our close)
            await self.flush()
            exc = self.protocol.parser_exc
            if exc is not None and self.protocol.close_rcvd is not None:
                # A close frame between the fragments of a message (RFC 6455 allows control frames
                # there; browsers do it when asked to close mid-upload): the library calls it an
                # incomplete message, but the client did close the test.
                self._end()
                return
            if exc is not None:
                self.outcome, self.problem = "client-error", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                return

    def _on_frame(self, frame: Frame) -> None:
        op = frame.opcode
        if op in (Opcode.BINARY, Opcode.TEXT):
            self._binary = op is Opcode.BINARY
        elif op is not Opcode.CONT:
            return  # ping (answered by the protocol), pong, close (answered by the protocol)
        if not self._binary:
            return  # measurements a client may send: optional, ignored
        if self.test == "download":
            # "During the download test ... the client MUST NOT send" binary messages.
            self.outcome, self.problem = "client-error", "binary message from the client during a download"
            if self.protocol.state is State.OPEN:
                self.protocol.fail(1008, "binary message during the download")
            return
        if not self.ended:
            self.received += len(frame.data)

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
