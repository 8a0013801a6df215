"""The measurement server (``giga-netcheck serve``).

A board runs it in its data center, or an IT person on a second laptop in the school. It is a
small HTTP/1.1 server on asyncio streams, written for throughput and bounded memory:

- ``GET /id``                 identifies itself as a giga-netcheck measurement server (JSON)
- ``GET /download?bytes=N``   streams N bytes (capped by ``max_download_bytes``) from one
                              preallocated buffer, so memory stays flat whatever the client count
- ``POST /upload``            counts and discards the body (Content-Length or chunked), answers
                              JSON with the byte count and the server-side duration
- ``GET /rtt``                a tiny answer for HTTP round trips
- ``POST /results``          with ``serve --collect DIR`` only: a school's uploaded result, checked
                              and stored once (collect.py)
- speedtest-cli ``--mini`` and LibreSpeed backend paths, so existing clients can measure against
  this server (server_compat.py, docs/engines.md)
- UDP echo on ``udp_port``    echoes datagrams that start with ``GNC1`` (same size back, so it
                              cannot amplify), for loss and jitter

Clients that vanish mid-transfer end their own connection and nothing else. One log line per
transfer. We hand-write the HTTP framing rather than use a framework because the hot path is a
write loop over one memoryview and a read loop that discards, and a framework's per-chunk
overhead is exactly what a measurement server must not add.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from giga_netcheck import __version__
from giga_netcheck.core.protocol import SERVICE_NAME, UDP_MAGIC

log = logging.getLogger("giga_netcheck.server.app")

CHUNK_BYTES = 256 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_UDP_BYTES = 1472


@dataclass(frozen=True)
class ServerConfig:
    """How ``serve`` runs; every limit is a bound on what one client can make it do."""

    host: str = "0.0.0.0"
    port: int = 8080
    udp_port: Optional[int] = None
    """UDP echo port; None means the same number as the TCP port."""
    max_download_bytes: int = 1 << 30
    max_upload_bytes: int = 1 << 30
    max_connections: int = 4096
    idle_timeout_s: float = 30.0
    """A connection that sends nothing for this long is closed (slow or vanished clients)."""
    collector: Optional[object] = None
    """A :class:`giga_netcheck.server.collect.Collector`: enables ``POST /results`` (``serve --collect``)."""


class MeasurementServer:
    """The asyncio server; use :class:`ServerThread` to run it beside synchronous code."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        # Incompressible bytes, made once: every download is a slice of this.
        self._payload = memoryview(os.urandom(CHUNK_BYTES))
        self._server: Optional[asyncio.base_events.Server] = None
        self._udp: Optional[asyncio.DatagramTransport] = None
        self._connections = 0
        self.port: int = config.port
        self.udp_port: Optional[int] = None
        self.transfers = 0
        """Completed or abandoned downloads/uploads served (for tests and logs)."""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.config.host, self.config.port, limit=MAX_HEADER_BYTES, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        want = self.config.udp_port if self.config.udp_port is not None else self.port
        try:
            self._udp, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=(self.config.host, want))
        except OSError as exc:
            log.warning("udp echo could not bind %s:%s (%s); using a free port", self.config.host, want, exc)
            self._udp, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=(self.config.host, 0))
        self.udp_port = self._udp.get_extra_info("sockname")[1]
        log.info(
            "giga-netcheck %s measurement server on %s:%d (tcp) udp-echo %d, download cap %d bytes",
            __version__,
            self.config.host,
            self.port,
            self.udp_port,
            self.config.max_download_bytes,
        )

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()

    def identity(self) -> dict:
        return {
            "service": SERVICE_NAME,
            "role": "measurement-server",
            "version": __version__,
            "udp_echo_port": self.udp_port,
            "max_download_bytes": self.config.max_download_bytes,
            "max_upload_bytes": self.config.max_upload_bytes,
            "endpoints": {"download": "/download?bytes=N", "upload": "/upload", "rtt": "/rtt"},
        }

    # ------------------------------------------------------------------ connection handling

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if peer else "?"
        if self._connections >= self.config.max_connections:
            writer.close()
            return
        self._connections += 1
        # drain() waits until the kernel took everything: at most one chunk per connection is
        # ever held in user space, so memory stays flat however many clients download at once
        # (the kernel socket buffers, not our heap, absorb the bandwidth-delay product).
        writer.transport.set_write_buffer_limits(high=0, low=0)
        try:
            while True:
                try:
                    head = await _within(reader.readuntil(b"\r\n\r\n"), self.config.idle_timeout_s)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError):
                    return
                except asyncio.LimitOverrunError:
                    await self._respond(writer, 431, b"header too large\n", close=True)
                    return
                request = _parse_head(head)
                if request is None:
                    await self._respond(writer, 400, b"bad request\n", close=True)
                    log.info("%s bad request line", client)
                    return
                method, path, query, headers, http11 = request
                keep = http11 and headers.get("connection", "").lower() != "close"
                keep = await self._route(reader, writer, client, method, path, query, headers) and keep
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass  # the client went away: its transfer was already logged as cut short
        finally:
            self._connections -= 1
            writer.close()

    async def _route(self, reader, writer, client, method, path, query, headers) -> bool:
        """Serve one request; return False when the connection must close afterwards."""
        if method == "GET" and path == "/rtt":
            await self._respond(writer, 200, b"ok\n")
            return True
        if method == "GET" and path == "/id":
            body = json.dumps(self.identity()).encode()
            await self._respond(writer, 200, body, ctype="application/json")
            log.info("%s id", client)
            return True
        if method == "GET" and path == "/download":
            return await self._download(writer, client, query)
        if method == "POST" and path == "/upload":
            return await self._upload(reader, writer, client, headers)
        if method == "POST" and path == "/results" and self.config.collector is not None:
            return await self._collect(reader, writer, client, headers)
        from giga_netcheck.server.compat import route as compat_route  # speedtest mini and LibreSpeed paths

        handled = await compat_route(self, reader, writer, client, method, path, query, headers)
        if handled is not None:
            return handled
        if method not in ("GET", "POST", "HEAD"):
            await self._respond(writer, 405, b"method not allowed\n", close=True)
            return False
        await _drain_body(reader, headers, self.config.max_upload_bytes)
        await self._respond(writer, 404, b"not found\n")
        return True

    async def _download(self, writer, client: str, query: dict) -> bool:
        try:
            want = int(query.get("bytes", ["0"])[0])
        except ValueError:
            await self._respond(writer, 400, b"bytes must be an integer\n")
            return True
        return await self._send_payload(writer, client, max(0, want))

    async def _send_payload(self, writer, client: str, want: int, extra: str = "", kind: str = "download") -> bool:
        """Stream ``want`` bytes (capped) of the preallocated payload, one chunk in flight at a time."""
        size = min(want, self.config.max_download_bytes)
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\nCache-Control: no-store\r\n{extra}\r\n"
        ).encode()
        writer.write(head)
        sent = 0
        t0 = time.perf_counter()
        outcome = "complete"
        payload = self._payload
        try:
            while sent < size:
                n = min(CHUNK_BYTES, size - sent)
                writer.write(payload[:n])
                sent += n
                await writer.drain()
        except (ConnectionError, RuntimeError):
            outcome = "client-gone"
        finally:
            self._log_transfer(client, kind, sent, time.perf_counter() - t0, outcome)
        return outcome == "complete"

    async def _upload(self, reader, writer, client: str, headers: dict) -> bool:
        t0 = time.perf_counter()
        outcome = "complete"
        received = 0
        try:
            received = await _drain_body(reader, headers, self.config.max_upload_bytes, self.config.idle_timeout_s)
        except _BodyTooLarge as exc:
            received = exc.received
            outcome = "too-large"
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            outcome = "client-gone"
        except ValueError:
            outcome = "bad-chunking"
        seconds = time.perf_counter() - t0
        self._log_transfer(client, "upload", received, seconds, outcome)
        if outcome == "client-gone":
            return False
        status = {"complete": 200, "too-large": 413, "bad-chunking": 400}[outcome]
        body = json.dumps({"bytes": received, "seconds": round(seconds, 6)}).encode()
        await self._respond(writer, status, body, ctype="application/json", close=status != 200)
        return status == 200

    async def _collect(self, reader, writer, client: str, headers: dict) -> bool:
        from giga_netcheck.server.collect import handle

        out = await handle(self.config.collector, reader, headers, self.config.idle_timeout_s)
        log.info("%s results %d %s", client, out.status, out.body.get("error") or out.body.get("status"))
        ok = out.status < 300  # a refused body may be unread: close rather than parse it as a request
        await self._respond(writer, out.status, json.dumps(out.body).encode(), ctype="application/json", close=not ok)
        return ok

    def _log_transfer(self, client: str, kind: str, nbytes: int, seconds: float, outcome: str) -> None:
        self.transfers += 1
        mbps = nbytes * 8 / seconds / 1e6 if seconds > 0 else 0.0
        log.info("%s %s bytes=%d seconds=%.3f mbps=%.1f %s", client, kind, nbytes, seconds, mbps, outcome)

    @staticmethod
    async def _respond(writer, status: int, body: bytes, *, ctype: str = "text/plain", close: bool = False, extra: str = "") -> None:
        reason = {
            200: "OK",
            201: "Created",
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            409: "Conflict",
            411: "Length Required",
            413: "Payload Too Large",
            422: "Unprocessable Content",
            431: "Request Header Fields Too Large",
            507: "Insufficient Storage",
        }.get(status, "OK")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Cache-Control: no-store\r\n{extra}{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        ).encode()
        writer.write(head + body)
        await writer.drain()


async def _within(aw, seconds: float):
    """Await with a deadline. asyncio.timeout (3.11+) spawns no extra task, unlike wait_for,
    whose orphaned inner task logs noise when a client resets mid-read."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await aw
    return await asyncio.wait_for(aw, seconds)  # pragma: no cover - Python 3.10


class _BodyTooLarge(Exception):
    def __init__(self, received: int) -> None:
        self.received = received


def _parse_head(head: bytes):
    """Request line and headers, or None when they are not HTTP/1.x."""
    try:
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        method, target, version = lines[0].split(" ")
        if not version.startswith("HTTP/1."):
            return None
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            if not _ or not name.strip():
                return None
            headers[name.strip().lower()] = value.strip()
        parts = urlsplit(target)
        return method, parts.path, parse_qs(parts.query), headers, version == "HTTP/1.1"
    except ValueError:
        return None


async def _drain_body(reader: asyncio.StreamReader, headers: dict, cap: int, timeout: float = 30.0) -> int:
    """Read and discard a request body; return its size. Bounded by ``cap`` bytes."""
    received = 0
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = await _within(reader.readuntil(b"\r\n"), timeout)
            size = int(line.split(b";")[0].strip() or b"x", 16)
            if size == 0:
                # trailers end with an empty line
                while (await _within(reader.readuntil(b"\r\n"), timeout)) != b"\r\n":
                    pass
                return received
            left = size
            while left:
                data = await _within(reader.read(min(left, CHUNK_BYTES)), timeout)
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(data)
            received += size
            if received > cap:
                raise _BodyTooLarge(received)
            if await _within(reader.readexactly(2), timeout) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
    length = int(headers.get("content-length", "0") or 0)
    if length > cap:
        raise _BodyTooLarge(0)
    left = length
    while left:
        data = await _within(reader.read(min(left, CHUNK_BYTES)), timeout)
        if not data:
            raise asyncio.IncompleteReadError(b"", left)
        left -= len(data)
        received += len(data)
    return received


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        # Only our own probes are echoed, and never more bytes than came in.
        if data.startswith(UDP_MAGIC) and len(data) <= MAX_UDP_BYTES:
            self.transport.sendto(data, addr)


class ServerThread:
    """Runs a :class:`MeasurementServer` on its own event loop in a daemon thread.

    Used by tests and benchmarks: ``with ServerThread(ServerConfig(host="127.0.0.1", port=0)) as s:``
    then ``s.url``.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.server = MeasurementServer(config)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="gnc-server", daemon=True)

    @property
    def url(self) -> str:
        host = self.server.config.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self.server.close()
            pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run_server(config: ServerConfig) -> None:
    """Run until interrupted (the CLI's ``serve``)."""

    async def main() -> None:
        server = MeasurementServer(config)
        await server.start()
        try:
            await server.serve_forever()
        finally:
            server.close()

    asyncio.run(main())
