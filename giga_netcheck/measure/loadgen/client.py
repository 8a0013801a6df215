"""A minimal HTTP/1.1 client on asyncio streams, for many emulated devices in one event loop.

Why not httpx: one ``httpx.AsyncClient`` per device (so that every device has its own
connections, as a session table sees them) measured about 1 GB for 300 devices and kept only
~70% of their schedule. Here a device's connection is a StreamReader/StreamWriter pair and a
few counters: no TLS context, no pool, no per-client objects. We talk only to our own
measurement server (``/download?bytes=N``, ``/upload``, ``/rtt``), whose answers always carry
``Content-Length``, so the framing is a dozen lines.

Memory is bounded per connection: the reader's buffer pauses the socket at 2 x ``STREAM_LIMIT``
and bodies are read in slices of at most ``READ_BYTES`` and dropped at once; uploads are
slices of one shared buffer.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from dataclasses import dataclass, field
from typing import Optional

STREAM_LIMIT = 16 * 1024
"""StreamReader limit: enough for our response heads; the socket pauses at twice this."""
READ_BYTES = 64 * 1024
UPLOAD_BLOCK = memoryview(bytes(range(256)) * 256)  # 64 KiB, shared by every upload

ERROR_KINDS = ("refused", "reset", "timeout", "tls", "unreachable", "http", "local", "other")
"""How a device's connection failed. ``refused``: the handshake got a RST (a closed port, or a
session table answering SYNs with resets); ``reset``: an open connection was reset or closed
mid-answer; ``timeout``: no answer in time (a session table that drops SYNs); ``local``: this
machine ran out of sockets or ports (the measuring device, not the network)."""


TIMEOUTS = (TimeoutError, asyncio.TimeoutError)  # distinct classes before Python 3.11


async def until(aw, when: float):
    """Await ``aw`` until loop time ``when``; raise TimeoutError after. asyncio.timeout_at (3.11+)
    spawns no extra task; wait_for is the 3.10 fallback."""
    if hasattr(asyncio, "timeout_at"):
        async with asyncio.timeout_at(when):
            return await aw
    return await asyncio.wait_for(aw, max(0.0, when - asyncio.get_running_loop().time()))  # pragma: no cover


async def within(aw, seconds: float):
    return await until(aw, asyncio.get_running_loop().time() + seconds)


class LoadError(Exception):
    """A failed request, with its kind (one of :data:`ERROR_KINDS`)."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


def classify(exc: BaseException) -> str:
    """The error kind of an exception raised while connecting or talking to the server."""
    if isinstance(exc, LoadError):
        return exc.kind
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, asyncio.IncompleteReadError, EOFError)):
        return "reset"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, OSError):
        code = exc.errno
        if code == errno.ECONNREFUSED:
            return "refused"
        if code in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
            return "reset"
        if code == errno.ETIMEDOUT:
            return "timeout"
        if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable"
        if code in (errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.ENOMEM):
            return "local"
    return "other"


@dataclass
class Meter:
    """Bytes moved, counted as they cross the socket (shared by the devices of one step)."""

    down: int = 0
    up: int = 0


@dataclass
class Answer:
    status: int
    body_bytes: int
    ttfb_s: float
    """Request written -> response head read: a round trip on a loaded connection."""
    total_s: float


@dataclass
class HttpConn:
    """One keep-alive HTTP/1.1 connection of one device."""

    host: str
    port: int
    meter: Meter
    reader: Optional[asyncio.StreamReader] = None
    writer: Optional[asyncio.StreamWriter] = None
    connect_s: Optional[float] = None
    opened: int = field(default=0)

    @property
    def is_open(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    async def open(self) -> None:
        t0 = time.perf_counter()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=STREAM_LIMIT)
        self.connect_s = time.perf_counter() - t0
        self.opened += 1

    def abort(self) -> None:
        """Drop the connection at once (no FIN handshake to wait for)."""
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, upload_bytes: int = 0) -> Answer:
        """One request on this connection (opened first if needed). Raises on any failure,
        after which the connection is dropped; a non-200 answer raises ``LoadError('http')``."""
        if not self.is_open:
            await self.open()
        assert self.reader is not None and self.writer is not None
        reader, writer = self.reader, self.writer
        try:
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            if method == "POST":
                head += f"Content-Type: application/octet-stream\r\nContent-Length: {upload_bytes}\r\n"
            t0 = time.perf_counter()
            writer.write((head + "\r\n").encode("ascii"))
            left = upload_bytes
            while left > 0:
                n = min(left, len(UPLOAD_BLOCK))
                writer.write(UPLOAD_BLOCK[:n])
                await writer.drain()
                left -= n
                self.meter.up += n
            raw = await reader.readuntil(b"\r\n\r\n")
            ttfb = time.perf_counter() - t0
            status, length, close = _parse_head(raw)
            left = length
            while left > 0:
                data = await reader.read(min(left, READ_BYTES))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(data)
                self.meter.down += len(data)
            if close:
                self.close()
            if status != 200:
                raise LoadError("http", f"HTTP {status} for {method} {path}")
            return Answer(status, length, ttfb, time.perf_counter() - t0)
        except BaseException:
            self.abort()
            raise


def _parse_head(raw: bytes) -> tuple[int, int, bool]:
    try:
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if not parts[0].startswith("HTTP/1."):
            raise ValueError(lines[0])
        status = int(parts[1])
        length = 0
        close = parts[0] == "HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection":
                close = value.strip().lower() == "close"
            elif name == "transfer-encoding":
                raise ValueError("chunked answers are not expected from a measurement server")
        return status, length, close
    except (ValueError, IndexError) as exc:
        raise LoadError("http", f"not an HTTP answer from a measurement server: {exc}") from None
