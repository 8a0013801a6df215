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
- ``GET /__down?bytes=N``, ``POST /__up``: Cloudflare's speed-test paths, with CORS, for
  ``@cloudflare/speedtest`` and the ``cloudflare`` engine (cloudflare.py)
- speedtest-cli ``--mini`` and LibreSpeed backend paths, so existing clients can measure against
  this server (compat.py, docs/engines.md)
- UDP echo on ``udp_port``    answers datagrams that start with ``GNC1`` with the same bytes
                              behind ``GNR1`` (same size, so it cannot amplify; never a
                              ``GNC1``, so two servers cannot bounce one datagram for ever),
                              for loss and jitter

Every request is framed by one strict HTTP/1.1 layer (http.py): a request it refuses gets a 4xx
with a one-line reason and the connection closes. Idle, header, body and write deadlines drop
clients that hold a connection by doing nothing (docs/serve.md lists the limits and the memory
they bound); ``tls`` serves HTTPS with the standard library's ssl. Routes are a table of
(method, path) -> handler, then the compatible protocols (compat.py), then 404. Clients that vanish mid-transfer
end their own connection and nothing else. One log line per transfer. No web framework: the hot
path is a write loop over one memoryview and a read loop that discards, and a framework's
per-chunk overhead is exactly what a measurement server must not add.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional, Union, cast

from giga_netcheck import __version__
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.protocol import SERVICE_NAME, UDP_MAGIC, UDP_REPLY_MAGIC
from giga_netcheck.server import cloudflare, collect, compat, ndt7
from giga_netcheck.server.http import (
    CHUNK_BYTES,
    BodyTooLarge,
    Connection,
    HttpError,
    Request,
    enforce_write_deadlines,
    read_request,
    respond,
)

log = logging.getLogger("giga_netcheck.server.app")

MAX_UDP_BYTES = 1472

Handler = Callable[[Request, asyncio.StreamWriter, str], Awaitable[bool]]
"""A route: serve one request, return False when the connection must close afterwards."""


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
    header_timeout_s: float = 10.0
    """Once a request's first byte arrived, the rest of its head must follow within this (408);
    with TLS also the handshake's deadline."""
    write_timeout_s: float = 30.0
    """A client that takes less than 16 KiB of a waiting answer in this long (a download it never
    reads, or trickles) is dropped, its connection and socket buffers released (http.py; checked
    every min(1, this/4) s)."""
    collector: Optional[collect.Collector] = None
    """Enables ``POST /results`` (``serve --collect``)."""
    tls: Optional[ssl.SSLContext] = None
    """Serve HTTPS with this context (:func:`tls_context`); the UDP echo stays plain."""
    reuse_port: bool = False
    """Bind with SO_REUSEPORT, so several worker processes share the port (``serve --workers``,
    workers.py): the kernel spreads connections and UDP datagrams over them."""
    ndt7_duration_s: float = 10.0
    """Length of an ndt7 download or upload test (the spec's 10 s; tests use less), ndt7.py."""
    ndt7_max_tests: int = 16
    """ndt7 tests at once (429 above): each may hold a 16 MiB message, the spec's limit."""


def tls_context(cert: Union[str, Path], key: Union[str, Path, None] = None) -> ssl.SSLContext:
    """A server context for ``serve --tls-cert/--tls-key`` (PEM files; the key may be in the
    certificate file): TLS 1.2 or later, the standard library's defaults. ConfigError saying
    which file is wrong."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key) if key is not None else None)
    except FileNotFoundError as exc:
        raise ConfigError(f"{exc.filename or cert}: no such file (--tls-cert/--tls-key)") from None
    except ssl.SSLError as exc:
        what = f"{cert} and {key}" if key is not None else str(cert)
        raise ConfigError(f"{what}: not a usable PEM certificate and private key ({exc.reason or exc})") from None
    except OSError as exc:
        raise ConfigError(f"{cert}: cannot read the TLS certificate or key: {exc.strerror or exc}") from None
    return ctx


class MeasurementServer:
    """The asyncio server; use :class:`ServerThread` to run it beside synchronous code."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        # Incompressible bytes, made once: every download is a slice of this.
        self._payload = memoryview(os.urandom(CHUNK_BYTES))
        self._server: Optional[asyncio.base_events.Server] = None
        self._udp: Optional[asyncio.DatagramTransport] = None
        self._echo: Optional[_UdpEcho] = None
        self._janitor: Optional[asyncio.Task[None]] = None
        self._live: set[Connection] = set()
        """Every open connection (for the write deadline)."""
        self._connections = 0
        self.port: int = config.port
        self.udp_port: Optional[int] = None
        self.transfers = 0
        """Completed or abandoned downloads/uploads served (for tests and logs)."""
        self.bytes_sent = 0
        """Payload bytes written to download clients so far (for tests and logs)."""
        self.ndt7 = ndt7.Ndt7Tests()
        """ndt7 tests running and finished (ndt7.py)."""
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/rtt"): self._rtt,
            ("GET", "/id"): self._id,
            ("GET", "/download"): self._download,
            ("POST", "/upload"): self._upload,
        }
        if config.collector is not None:
            self._routes[("POST", "/results")] = self._collect

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        tls: dict[str, Any] = {}
        if self.config.tls is not None:
            tls = {"ssl": self.config.tls, "ssl_handshake_timeout": self.config.header_timeout_s}
            if sys.version_info >= (3, 11):
                tls["ssl_shutdown_timeout"] = min(self.config.header_timeout_s, 10.0)
        self._server = await loop.create_server(
            lambda: Connection(self._handle, self._live, loop),
            self.config.host,
            self.config.port,
            backlog=1024,
            reuse_port=self.config.reuse_port or None,
            **tls,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._janitor = loop.create_task(enforce_write_deadlines(self._live, self.config.write_timeout_s))
        want = self.config.udp_port if self.config.udp_port is not None else self.port
        try:
            self._udp, self._echo = await loop.create_datagram_endpoint(
                _UdpEcho, local_addr=(self.config.host, want), reuse_port=self.config.reuse_port or None
            )
        except OSError as exc:
            log.warning("udp echo could not bind %s:%s (%s); using a free port", self.config.host, want, exc)
            self._udp, self._echo = await loop.create_datagram_endpoint(_UdpEcho, local_addr=(self.config.host, 0))
        self.udp_port = self._udp.get_extra_info("sockname")[1]
        log.info(
            "giga-netcheck %s measurement server on %s:%d (%s) udp-echo %d, download cap %d bytes",
            __version__,
            self.config.host,
            self.port,
            "https" if self.config.tls is not None else "http",
            self.udp_port,
            self.config.max_download_bytes,
        )

    @property
    def udp_answered(self) -> int:
        """UDP echo requests answered so far (for tests and logs)."""
        return self._echo.answered if self._echo is not None else 0

    @property
    def open_connections(self) -> int:
        """TCP connections open now (for tests and benchmarks)."""
        return len(self._live)

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()
        if self._janitor is not None:
            self._janitor.cancel()

    def identity(self) -> dict[str, Any]:
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
        # (high=1, not 0: a TLS transport pauses at size >= high, so 0 would pause it empty, for good)
        writer.transport.set_write_buffer_limits(high=1, low=0)
        try:
            while True:
                request: Optional[Request] = None
                try:
                    request = await read_request(
                        reader, idle_timeout=self.config.idle_timeout_s, header_timeout=self.config.header_timeout_s
                    )
                    if request is None:
                        return
                    keep = await self._route(request, writer, client) and request.keep_alive
                except HttpError as exc:
                    await self._refuse(writer, client, request, exc)
                    return
                if keep and not request.body.done:
                    # A route answered without reading the body: drop it now, or its bytes would
                    # be parsed as the next request. It was answered already, so a body that
                    # breaks the framing or the cap only closes the connection.
                    try:
                        await request.body.discard(self.config.max_upload_bytes)
                    except HttpError as exc:
                        log.info(
                            "%s %s %s: unread body refused %d %s: %s",
                            client,
                            request.method,
                            request.path,
                            exc.status,
                            exc.code,
                            exc.reason,
                        )
                        return
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass  # the client went away: its transfer was already logged as cut short
        except asyncio.CancelledError:
            # The server is shutting down. End the connection's task normally: Python 3.11's
            # stream callback asks a cancelled task for its exception and logs the error it gets.
            pass
        finally:
            self._connections -= 1
            writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, client: str, request: Optional[Request], exc: HttpError) -> None:
        """Answer a refused request (4xx, one-line reason) and let the caller close the connection."""
        method, path = (request.method, request.path) if request is not None else (exc.method, exc.path)
        what = f"{method} {path}" if method else "request"
        log.info("%s %s refused %d %s: %s", client, what, exc.status, exc.code, exc.reason)
        if path == "/results" and self.config.collector is not None:
            body, ctype = json.dumps({"error": exc.code, "reason": exc.reason}).encode(), "application/json"
        else:
            body, ctype = f"{exc.reason}\n".encode(), "text/plain"
        await respond(writer, exc.status, body, ctype=ctype, close=True)

    async def _route(self, request: Request, writer: asyncio.StreamWriter, client: str) -> bool:
        """Serve one request; return False when the connection must close afterwards."""
        if request.path in ndt7.PATHS:  # the WebSocket upgrade hands the connection to ndt7
            return await ndt7.serve(self, request, writer, client)
        handler = self._routes.get((request.method, request.path))
        if handler is not None:
            return await handler(request, writer, client)
        handled = await cloudflare.route(self, request, writer, client)  # /__down, /__up
        if handled is None:
            handled = await compat.route(self, request, writer, client)
        if handled is not None:
            return handled
        if request.method not in ("GET", "POST", "HEAD"):
            await respond(writer, 405, b"method not allowed\n", close=True)
            return False
        await request.body.discard(self.config.max_upload_bytes)
        await respond(writer, 404, b"not found\n")
        return True

    async def _rtt(self, request: Request, writer: asyncio.StreamWriter, client: str) -> bool:
        await respond(writer, 200, b"ok\n")
        return True

    async def _id(self, request: Request, writer: asyncio.StreamWriter, client: str) -> bool:
        await respond(writer, 200, json.dumps(self.identity()).encode(), ctype="application/json")
        log.info("%s id", client)
        return True

    async def _download(self, request: Request, writer: asyncio.StreamWriter, client: str) -> bool:
        try:
            want = int(request.query.get("bytes", ["0"])[0])
        except ValueError:
            await respond(writer, 400, b"bytes must be an integer\n")
            return True
        return await self._send_payload(writer, client, max(0, want))

    async def _send_payload(self, writer: asyncio.StreamWriter, client: str, want: int, extra: str = "", kind: str = "download") -> bool:
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
                self.bytes_sent += n
                await writer.drain()
        except (ConnectionError, RuntimeError):
            outcome = "client-gone"
        finally:
            self._log_transfer(client, kind, sent, time.perf_counter() - t0, outcome)
        return outcome == "complete"

    async def _upload(self, request: Request, writer: asyncio.StreamWriter, client: str) -> bool:
        t0 = time.perf_counter()
        outcome = "complete"
        refused: Optional[HttpError] = None
        try:
            await request.body.discard(self.config.max_upload_bytes)
        except BodyTooLarge as exc:
            outcome, refused = "too-large", exc
        except HttpError as exc:
            outcome, refused = "bad-chunking", exc
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            outcome = "client-gone"
        received = request.body.received
        seconds = time.perf_counter() - t0
        self._log_transfer(client, "upload", received, seconds, outcome)
        if outcome == "client-gone":
            return False
        answer: dict[str, Any] = {"bytes": received, "seconds": round(seconds, 6)}
        if refused is not None:
            answer.update(error=refused.code, reason=refused.reason)
        status = 200 if refused is None else refused.status
        await respond(writer, status, json.dumps(answer).encode(), ctype="application/json", close=refused is not None)
        return refused is None

    async def _collect(self, request: Request, writer: asyncio.StreamWriter, client: str) -> bool:
        assert self.config.collector is not None
        out = await collect.handle(self.config.collector, request)
        log.info("%s results %d %s", client, out.status, out.body.get("error") or out.body.get("status"))
        ok = out.status < 300  # a refused body may be unread: close rather than parse it as a request
        await respond(writer, out.status, json.dumps(out.body).encode(), ctype="application/json", close=not ok)
        return ok

    def _log_transfer(self, client: str, kind: str, nbytes: int, seconds: float, outcome: str) -> None:
        self.transfers += 1
        mbps = nbytes * 8 / seconds / 1e6 if seconds > 0 else 0.0
        log.info("%s %s bytes=%d seconds=%.3f mbps=%.1f %s", client, kind, nbytes, seconds, mbps, outcome)


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # Only our own probes are answered, never with more bytes than came in, and never with
        # a probe: the reply starts with UDP_REPLY_MAGIC, which no server answers, so a datagram
        # spoofed from one server to another dies after one answer instead of looping.
        if data.startswith(UDP_MAGIC) and len(data) <= MAX_UDP_BYTES:
            self.answered += 1
            self.transport.sendto(UDP_REPLY_MAGIC + data[len(UDP_MAGIC) :], addr)


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
        scheme = "https" if self.server.config.tls is not None else "http"
        return f"{scheme}://{host}:{self.server.port}"

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

    def __exit__(self, *exc: object) -> None:
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
