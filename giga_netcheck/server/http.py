"""The one HTTP/1.1 framing layer behind every route of ``serve``.

Every request, whatever its route (measurement endpoints, the speedtest and LibreSpeed paths,
``POST /results``), is read here: :func:`read_request` parses the request line and headers and
decides the body's framing once; the route then either streams the body and discards it
(:meth:`Body.discard`, constant memory, for uploads that are only counted) or reads it into
memory up to a cap of its own (:meth:`Body.read`, 413 above it).

It is strict, because ``serve`` listens on school and board networks, often behind a TLS proxy
that frames requests its own way, and any leniency is where two parsers disagree (request
smuggling) or where one client takes the memory (a negative length read to the end):

- request line ``METHOD SP target SP HTTP/1.0|HTTP/1.1``; header lines ``name: value`` with a
  token name directly followed by the colon; no folded lines, no bare CR or LF, no control bytes;
- the head is at most :data:`MAX_HEADER_BYTES` (431 above) with at most :data:`MAX_HEADERS`
  fields (431), and must arrive within the header deadline once its first byte did (408);
- ``Content-Length`` is digits only (no sign, no ``0x``, no spaces inside, at most
  :data:`MAX_LENGTH_DIGITS` digits); repeated with differing values it is refused;
- ``Transfer-Encoding`` accepts ``chunked`` alone (no other coding, no ``xchunked``), only in
  HTTP/1.1, and never together with ``Content-Length`` (400, RFC 9112 section 6.3 allows the
  refusal and it closes the smuggling door);
- chunk sizes are hex digits only, at most :data:`MAX_CHUNK_SIZE_DIGITS` of them; each chunk
  ends in CRLF; trailers are bounded like headers.

Deadlines, so that no client holds a connection (and its buffers) by doing nothing, slowly:

- idle: between requests, the first byte of the next one within ``idle_timeout``;
- header: the rest of the head within ``header_timeout`` of its first byte (slowloris, 408);
- body: at least :data:`MIN_PROGRESS_BYTES` bytes of body (or its end) within every ``timeout``
  window, so a body trickled a byte at a time (a slow POST) is dropped after one window while
  any real upload (4 kbit/s and up) passes;
- write: likewise at least :data:`MIN_PROGRESS_BYTES` of an answer taken by the client (or all
  of it) within every ``write_timeout`` window, else the connection is aborted
  (:class:`Connection`, :func:`enforce_write_deadlines`): a client that asks for a large
  download and never reads does not keep its connection and socket buffers.

A refusal is an :class:`HttpError` with a 4xx status, a short code and a one-line reason; the
server answers it and closes the connection (the rest of what the client sent is not read).

Why not h11: it parses correctly and strictly, but it passes every received byte through its own
buffer and event objects. On this machine feeding 1 GiB of upload through ``h11.Connection``
alone costs 3.3 s of CPU (a ceiling of 2.6 Gbit/s before any socket work) where the counting
loop here costs nothing measurable; and the download path would have to bypass it anyway to
keep writing slices of one buffer. A measurement server must not add that, so the parser is
small, hand-written and tested from a table of hostile requests (tests/test_http_framing.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

MAX_HEADER_BYTES = 16 * 1024
"""The request head (request line and every header) and, separately, the trailer section."""
MAX_HEADERS = 100
MAX_LENGTH_DIGITS = 18
"""A Content-Length of 19 digits or more is beyond any cap (and its int() would be the first cost)."""
MAX_CHUNK_SIZE_DIGITS = 15
"""Hex digits of a chunk size: below 2**60, far above any cap, and bounded before int()."""
CHUNK_BYTES = 256 * 1024
"""The most one read takes from the stream (and so the most one body read holds at a time)."""
MIN_PROGRESS_BYTES = 16 * 1024
"""Bytes a client must send of a body, or take of an answer, within each deadline window (or
finish): 16 KiB in 30 s is 4.4 kbit/s, below any real client, and N connections held by clients
that trickle more than that cost them N times that bandwidth."""

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e\x80-\xff]+) HTTP/1\.([01])")
# name ":" OWS value OWS, the value free of control bytes but HTAB (so no bare CR or LF either)
_FIELD = re.compile(rf"({_TOKEN}):([^\x00-\x08\x0a-\x1f\x7f]*)")
_FIELDS = re.compile(rf"(?:{_TOKEN}:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_EXT_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    507: "Insufficient Storage",
}

T = TypeVar("T")


class HttpError(Exception):
    """A request refused by the framing layer or a route: 4xx, a short code, a one-line reason."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.method: Optional[str] = None
        self.path: Optional[str] = None
        """Set when the request line was read before the refusal (a route may shape the answer)."""


class BodyTooLarge(HttpError):
    """The body is larger than the route's cap; ``received`` bytes were read (and dropped) first."""

    def __init__(self, cap: int, received: int = 0) -> None:
        super().__init__(413, "too-large", f"the body is larger than {cap} bytes")
        self.received = received


def _bad(reason: str, code: str = "bad-request") -> HttpError:
    return HttpError(400, code, reason)


async def within(aw: Awaitable[T], seconds: float) -> T:
    """Await with a deadline. asyncio.timeout (3.11+) spawns no extra task, unlike wait_for,
    whose orphaned inner task logs noise when a client resets mid-read."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await aw
    return await asyncio.wait_for(aw, seconds)  # pragma: no cover - Python 3.10


@dataclass
class Body:
    """A request body as framed by its headers: read it once, by one of the two methods."""

    reader: asyncio.StreamReader
    chunked: bool = False
    length: int = 0
    """The Content-Length (0 when chunked or absent)."""
    declared: bool = False
    """Content-Length or Transfer-Encoding was sent (a route may require one: 411)."""
    timeout: float = 30.0
    """The body deadline: at least MIN_PROGRESS_BYTES bytes (or the end) in every window of this
    many seconds, else asyncio.TimeoutError (the connection is dropped)."""
    received: int = 0
    max_chunks: int = 0
    """A chunked body of more chunks than this, or of more than 64 framing bytes (size lines) per
    allowed chunk, is refused (413 too-many-chunks); 0: no bound. Set by a route (the collector)
    that keeps the body: 300k one-byte chunks cost far more than 300 kB of data."""
    chunks: int = field(default=0, init=False)
    framing: int = field(default=0, init=False)
    done: bool = field(default=False, init=False)
    _window_end: Optional[float] = field(default=None, init=False, repr=False)
    _window_bytes: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.done = not self.chunked and self.length == 0

    def _left(self) -> float:
        """Seconds left in the current window (the first read opens it)."""
        now = asyncio.get_running_loop().time()
        if self._window_end is None:
            self._window_end = now + self.timeout
        return max(0.0, self._window_end - now)

    def _progress(self, nbytes: int) -> None:
        self._window_bytes += nbytes
        if self._window_bytes >= MIN_PROGRESS_BYTES:
            self._window_bytes = 0
            self._window_end = asyncio.get_running_loop().time() + self.timeout

    async def discard(self, cap: int) -> int:
        """Read and drop the body in pieces (constant memory); return its size. BodyTooLarge above ``cap``."""
        await self._consume(cap, None)
        return self.received

    async def read(self, cap: int, *, drain_up_to: int = 0) -> bytes:
        """The whole body, at most ``cap`` bytes; BodyTooLarge above it.

        ``drain_up_to``: a Content-Length body above ``cap`` but at most this size is read and
        dropped before the refusal, so a client still sending gets the 413 and its reason rather
        than a reset; anything larger is refused at once."""
        if not self.chunked and cap < self.length <= drain_up_to:
            await self._consume(self.length, None)
            raise BodyTooLarge(cap, self.received)
        out = bytearray()
        await self._consume(cap, out)
        return bytes(out)

    async def _consume(self, cap: int, keep: Optional[bytearray]) -> None:
        if self.done:
            return
        if not self.chunked:
            if self.length > cap:
                raise BodyTooLarge(cap)
            await self._copy(self.length, keep)
            self.done = True
            return
        reader = self.reader
        while True:
            try:
                line = await within(reader.readuntil(b"\r\n"), self._left())
            except asyncio.LimitOverrunError:
                raise _bad("chunk size line too long", "bad-chunking") from None
            size = chunk_size(line)
            self.chunks += 1
            self.framing += len(line) + 2
            if self.max_chunks and (self.chunks > self.max_chunks or self.framing > 64 * self.max_chunks):
                raise HttpError(
                    413, "too-many-chunks", f"more than {self.max_chunks} chunks or {64 * self.max_chunks} bytes of chunk framing"
                )
            if size == 0:
                await self._trailers()
                self.done = True
                return
            if self.received + size > cap:
                raise BodyTooLarge(cap, self.received)
            await self._copy(size, keep)
            if await within(reader.readexactly(2), self._left()) != b"\r\n":
                raise _bad("chunk data not followed by CRLF", "bad-chunking")

    async def _copy(self, size: int, keep: Optional[bytearray]) -> None:
        left = size
        reader = self.reader
        while left:
            data = await within(reader.read(min(left, CHUNK_BYTES)), self._left())
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(data)
            self.received += len(data)
            self._progress(len(data))
            if keep is not None:
                keep += data

    async def _trailers(self) -> None:
        total = count = 0
        while True:
            try:
                line = await within(self.reader.readuntil(b"\r\n"), self._left())
            except asyncio.LimitOverrunError:
                raise HttpError(431, "trailers-too-large", "a trailer line is too long") from None
            if line == b"\r\n":
                return
            total += len(line)
            count += 1
            if total > MAX_HEADER_BYTES or count > MAX_HEADERS:
                raise HttpError(431, "trailers-too-large", "the trailer section is too large")
            _field(line[:-2].decode("latin-1"))


def chunk_size(line: bytes) -> int:
    """The size in a chunk-size line (``1a2b;ext=1\\r\\n``): hex digits only, bounded."""
    size, sep, ext = line[:-2].partition(b";")
    if sep:
        size = size.rstrip(b" \t")  # chunk-ext = *( BWS ";" ... )
        if _EXT_BAD.search(ext):
            raise _bad("control byte in a chunk extension", "bad-chunking")
    if not _HEX.fullmatch(size):
        raise _bad("chunk size must be hex digits", "bad-chunking")
    if len(size) > MAX_CHUNK_SIZE_DIGITS:
        raise _bad(f"chunk size longer than {MAX_CHUNK_SIZE_DIGITS} hex digits", "bad-chunking")
    return int(size, 16)


@dataclass
class Request:
    """One parsed request head; ``body`` is framed but not yet read."""

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-case names; repeated fields joined with ", " (Content-Length and Transfer-Encoding are checked first)."""
    http11: bool
    keep_alive: bool
    body: Body


def _field(line: str) -> tuple[str, str]:
    """``name: value`` -> (lower-case name, value); HttpError (400) saying what is wrong otherwise."""
    m = _FIELD.fullmatch(line)
    if m is not None:
        return m.group(1).lower(), m.group(2).strip(" \t")
    if "\r" in line or "\n" in line:
        raise _bad("bare CR or LF in the request head")
    if line[:1] in (" ", "\t"):
        raise _bad("folded header line")
    name, colon, _ = line.partition(":")
    if colon and re.fullmatch(_TOKEN, name):
        raise _bad(f"control character in header {name}")
    # includes "Content-Length : 5": no space before the colon (RFC 9112 section 5.1)
    raise _bad("malformed header line")


def request_line(line: str) -> tuple[str, str, bool]:
    """``METHOD SP target SP HTTP/1.x`` -> (method, target, is HTTP/1.1)."""
    m = _REQUEST_LINE.fullmatch(line)
    if m is None:
        parts = line.split(" ")
        if len(parts) == 3 and parts[2].startswith("HTTP/") and re.fullmatch(_TOKEN, parts[0]):
            raise _bad("only HTTP/1.0 and HTTP/1.1 are served")
        raise _bad("malformed request line")
    return m.group(1), m.group(2), m.group(3) == "1"


def parse_head(head: bytes, reader: asyncio.StreamReader, timeout: float = 30.0) -> Request:
    """Parse a request head (ending in CRLF CRLF) and frame its body; HttpError when refused."""
    text = head.decode("latin-1")
    if not text.endswith("\r\n\r\n"):
        raise _bad("request head not terminated")
    # RFC 9112 section 2.2: empty lines before a request line are ignored
    line, _, block = text.lstrip("\r\n").partition("\r\n")
    if not line:
        raise _bad("empty request")
    method, target, http11 = request_line(line)
    try:
        parts = urlsplit(target)
    except ValueError:  # "http://[::1": an unclosed IPv6 literal
        raise _bad("malformed request target") from None
    try:
        headers, lengths, codings = _fields(block[:-2])
        body = _framing(reader, lengths, codings, http11, timeout)
    except HttpError as exc:
        exc.method, exc.path = method, parts.path
        raise
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    return Request(
        method=method,
        target=target,
        path=parts.path,
        query=parse_qs(parts.query),
        headers=headers,
        http11=http11,
        keep_alive=http11 and "close" not in tokens,
        body=body,
    )


def _fields(block: str) -> tuple[dict[str, str], list[str], list[str]]:
    """The header lines, each ending in CRLF -> (headers, every Content-Length value, every Transfer-Encoding value)."""
    if block.count("\r\n") > MAX_HEADERS:
        raise HttpError(431, "headers-too-large", f"more than {MAX_HEADERS} header fields")
    lines = block.split("\r\n")[:-1]
    if not _FIELDS.fullmatch(block):  # one regex for the whole section; line by line only to say what is wrong
        for line in lines:
            _field(line)
        raise _bad("malformed header section")  # pragma: no cover - _field raised for one of the lines
    headers: dict[str, str] = {}
    lengths: list[str] = []
    codings: list[str] = []
    for line in lines:
        name, _, value = line.partition(":")
        name, value = name.lower(), value.strip(" \t")
        if name == "content-length":
            lengths.append(value)
        elif name == "transfer-encoding":
            codings.append(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers, lengths, codings


def _framing(reader: asyncio.StreamReader, lengths: list[str], codings: list[str], http11: bool, timeout: float) -> Body:
    if codings:
        if lengths:
            raise _bad("Content-Length together with Transfer-Encoding", "ambiguous-length")
        if not http11:
            raise _bad("Transfer-Encoding in an HTTP/1.0 request", "bad-transfer-encoding")
        names = [c.strip().lower() for value in codings for c in value.split(",")]
        if names != ["chunked"]:
            raise _bad("only Transfer-Encoding: chunked is accepted", "bad-transfer-encoding")
        return Body(reader, chunked=True, declared=True, timeout=timeout)
    if not lengths:
        return Body(reader, timeout=timeout)
    for value in lengths:
        if not _DIGITS.fullmatch(value):
            raise _bad("Content-Length must be digits only", "bad-length")
        if len(value.lstrip("0")) > MAX_LENGTH_DIGITS:
            raise HttpError(413, "too-large", f"Content-Length longer than {MAX_LENGTH_DIGITS} digits")
    values = {int(v) for v in lengths}
    if len(values) > 1:
        raise _bad("differing Content-Length headers", "bad-length")
    return Body(reader, length=values.pop(), declared=True, timeout=timeout)


async def read_request(reader: asyncio.StreamReader, *, idle_timeout: float, header_timeout: float) -> Optional[Request]:
    """The next request on a connection, or None when the client closed or stayed idle.

    The first byte may take ``idle_timeout`` (a keep-alive connection between requests); the
    rest of the head must follow within ``header_timeout`` (408), so a client dribbling a
    header a byte at a time holds a connection for seconds, not for ever."""
    first = b""
    try:
        if hasattr(asyncio, "timeout"):
            # one deadline, moved once the first byte is in: a timer per request, not two
            async with asyncio.timeout(idle_timeout) as deadline:
                first = await reader.readexactly(1)
                deadline.reschedule(asyncio.get_running_loop().time() + header_timeout)
                rest = await reader.readuntil(b"\r\n\r\n")
        else:  # pragma: no cover - Python 3.10
            first = await asyncio.wait_for(reader.readexactly(1), idle_timeout)
            rest = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), header_timeout)
    except asyncio.TimeoutError:
        if not first:
            return None
        raise HttpError(408, "header-timeout", f"the request head did not arrive within {header_timeout:g} s") from None
    except asyncio.IncompleteReadError:
        if not first:
            return None
        raise
    except asyncio.LimitOverrunError:
        raise HttpError(431, "headers-too-large", f"request head larger than {MAX_HEADER_BYTES} bytes") from None
    return parse_head(first + rest, reader, idle_timeout)


async def respond(
    writer: asyncio.StreamWriter, status: int, body: bytes, *, ctype: str = "text/plain", close: bool = False, extra: str = ""
) -> None:
    """Write one complete answer with a Content-Length (``extra``: header lines, each ending CRLF)."""
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        f"Cache-Control: no-store\r\n{extra}{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()


log = logging.getLogger("giga_netcheck.server.app")  # one logger for every line serve writes

try:  # bytes in the kernel's send queue the peer has not acknowledged (Linux SIOCOUTQ)
    import fcntl
    import termios

    _OUTQ: Optional[int] = getattr(termios, "TIOCOUTQ", None) if sys.platform.startswith("linux") else None
except ImportError:  # pragma: no cover - Windows
    _OUTQ = None


class Connection(asyncio.StreamReaderProtocol):
    """``asyncio.start_server``'s protocol plus the write deadline's bookkeeping.

    While an answer waits on the client (the transport paused writing), the bytes not yet taken
    by the client (the transport's buffer plus, on Linux, the kernel's unacknowledged send queue)
    are watched: the client must take :data:`MIN_PROGRESS_BYTES` of them (or all) within every
    window of the deadline, else :func:`enforce_write_deadlines` aborts the connection. The
    connection is in ``live`` from connect to close."""

    def __init__(
        self,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        live: set[Connection],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(asyncio.StreamReader(limit=MAX_HEADER_BYTES, loop=loop), handler, loop=loop)
        self._live = live
        self._conn: Optional[asyncio.WriteTransport] = None
        self._fd = -1
        self.window_start: Optional[float] = None
        """Loop time the current deadline window opened (None: no answer waits on the client)."""
        self.taken = 0
        """Bytes the client took in the current window."""
        self.unsent = 0
        self.waiting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn = cast(asyncio.WriteTransport, transport)
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None and _OUTQ is not None else -1
        self._live.add(self)
        super().connection_made(transport)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._live.discard(self)
        self.window_start, self.waiting, self._fd = None, False, -1
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self.waiting = True
        if self.window_start is None:
            self.window_start, self.taken = self._loop.time(), 0
        self.unsent = self._unsent()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.waiting = False
        self.taken += max(0, self.unsent - self._unsent())

    def _unsent(self) -> int:
        """Bytes written and not yet taken by the client: ours in the transport, the kernel's."""
        n = self._conn.get_write_buffer_size() if self._conn is not None else 0
        if self._fd >= 0:
            try:
                n += struct.unpack("i", fcntl.ioctl(self._fd, cast(int, _OUTQ), b"\0\0\0\0"))[0]
            except (OSError, ValueError):
                pass
        return n

    def check_write_deadline(self, now: float, limit: float) -> bool:
        """Abort the connection if its client took too little for ``limit`` seconds; True if so."""
        if self.window_start is None or self._conn is None:
            return False
        if not self.waiting:  # nothing waits on the client now: the window closes
            self.window_start = None
            return False
        unsent = self._unsent()
        self.taken += max(0, self.unsent - unsent)
        self.unsent = unsent
        if self.taken >= MIN_PROGRESS_BYTES:  # it reads: a new window
            self.window_start, self.taken = now, 0
            return False
        if now - self.window_start < limit:
            return False
        peer: Any = self._conn.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if peer else "?"
        log.info(
            "%s dropped: took %d bytes of the answer in %.0f s (write deadline: %d bytes in %g s)",
            client,
            self.taken,
            now - self.window_start,
            MIN_PROGRESS_BYTES,
            limit,
        )
        self.window_start = None
        sock = self._conn.get_extra_info("socket")
        if sock is not None:
            try:  # close with a reset: the kernel drops its send queue now instead of still
                # offering it to a client that does not read (megabytes, for minutes)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self._conn.abort()  # the pending write ends with ConnectionResetError; our buffers are freed
        return True


async def enforce_write_deadlines(live: set[Connection], limit: float) -> None:
    """Run for the server's lifetime: every ``limit / 4`` s (at most 1 s) drop the connections
    whose client took fewer than MIN_PROGRESS_BYTES of a waiting answer in ``limit`` seconds
    (so within ``limit`` plus one period). One sweep for every connection, not a timer per
    write: a fast download waits on every chunk, and must not pay for it."""
    period = min(1.0, limit / 4)
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(period)
        now = loop.time()
        for conn in [c for c in live if c.window_start is not None]:
            conn.check_write_deadline(now, limit)
