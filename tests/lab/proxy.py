"""A small HTTP forward proxy for the lab's center, with a configurable wait before each request.

A board's proxy (authentication, content filtering, a busy session table) makes every request
wait before it leaves for the server; that wait is what ``proxy-overhead`` detects. This proxy
reproduces it and nothing else:

- absolute-URI requests (``GET http://host:port/path HTTP/1.1``): wait ``--delay-ms``, open a
  connection to the server, send the request in origin form, relay the answer. With a
  ``Content-Length`` answer the client's connection stays open for the next request (as a real
  proxy keeps it alive); otherwise the answer runs to the server's end and the connection closes.
- request bodies (``Content-Length`` or chunked) are relayed as they arrive, not buffered;
  ``requests``, ``bytes_up`` and ``bytes_down`` count what went through (tests read them).
- ``CONNECT host:port``: wait ``--delay-ms``, connect, answer 200, relay both ways.

Only addresses inside the lab (198.18.0.0/15, 2001:2::/48) are forwarded to; anything else gets
403, so a misconfigured test can never reach beyond the lab through it.

    python -m tests.lab.proxy --host 0.0.0.0 --port 3128 --delay-ms 300
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
from typing import Callable, Optional
from urllib.parse import urlsplit

LAB_NETWORKS = (
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("2001:2::/48"),
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
MAX_HEAD = 64 * 1024
RELAY_CHUNK = 256 * 1024
HOP_BY_HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive", "te", "trailer", "upgrade"}


def _allowed(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # names are not resolved here: the lab's URLs are addresses
    return any(ip in n for n in LAB_NETWORKS)


async def _read_head(reader: asyncio.StreamReader) -> Optional[bytes]:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None


async def _copy_exact(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, count: Callable[[int], None]) -> bool:
    """Relay exactly ``n`` bytes, passing each piece's size to ``count`` as it goes (a client
    that stops a download early has still moved what it moved); False if the sender closed early."""
    left = n
    while left > 0:
        data = await reader.read(min(RELAY_CHUNK, left))
        if not data:
            return False
        writer.write(data)
        count(len(data))
        left -= len(data)
        await writer.drain()
    return True


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


class Proxy:
    def __init__(self, delay_ms: float) -> None:
        self.delay_s = delay_ms / 1000.0
        self.requests = 0
        """Requests forwarded (absolute-URI requests and CONNECTs): tests check traffic went through."""
        self.bytes_down = 0
        """Answer body bytes relayed to clients of absolute-URI requests."""
        self.bytes_up = 0
        """Request body bytes relayed to servers (Content-Length or chunked)."""

    def _count_up(self, n: int) -> None:
        self.bytes_up += n

    def _count_down(self, n: int) -> None:
        self.bytes_down += n

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await _read_head(reader)
                if not head:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = [ln for ln in lines[1:] if ln]
                if method == "CONNECT":
                    await self._connect(target, reader, writer)
                    return
                if not await self._forward(method, target, version, headers, reader, writer):
                    return
        except Exception:
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _connect(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, _, port = target.rpartition(":")
        if not _allowed(host) or not port.isdigit():
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        self.requests += 1
        await asyncio.sleep(self.delay_s)
        up_r, up_w = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))

    async def _forward(
        self, method: str, target: str, version: str, headers: list[str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Forward one request; True when the client's connection may carry another."""
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname or not _allowed(parts.hostname):
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return True
        length = 0
        chunked = False
        kept = []
        for h in headers:
            name, _, value = h.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
            if name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            if name.strip().lower() not in HOP_BY_HOP:
                kept.append(h)
        self.requests += 1
        await asyncio.sleep(self.delay_s)  # the proxy's own work: what proxy-overhead measures
        up_r, up_w = await asyncio.open_connection(parts.hostname, parts.port or 80)
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            req = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode("latin-1")
            up_w.write(req)
            if chunked:  # relay the chunked body as it comes, framing included
                await self._relay_chunked(reader, up_w)
            else:
                if not await _copy_exact(reader, up_w, length, self._count_up):
                    return False
            await up_w.drain()
            head = await _read_head(up_r)
            if not head:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return True
            lines = head.decode("latin-1").split("\r\n")
            out_headers = [ln for ln in lines[1:] if ln and ln.split(":", 1)[0].strip().lower() not in HOP_BY_HOP]
            clen = next((int(ln.split(":", 1)[1]) for ln in out_headers if ln.lower().startswith("content-length:")), None)
            keep = clen is not None
            writer.write(
                "\r\n".join([lines[0], *out_headers, "Connection: keep-alive" if keep else "Connection: close", "", ""]).encode("latin-1")
            )
            if keep:
                if not await _copy_exact(up_r, writer, clen, self._count_down):
                    return False
            else:
                while data := await up_r.read(RELAY_CHUNK):
                    writer.write(data)
                    self.bytes_down += len(data)
                    await writer.drain()
            await writer.drain()
            return keep
        finally:
            up_w.close()

    async def _relay_chunked(self, reader: asyncio.StreamReader, up_w: asyncio.StreamWriter) -> None:
        """Copy a chunked request body (sizes, data, the last chunk and trailers) to the server."""
        while True:
            line = await reader.readuntil(b"\r\n")
            up_w.write(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    up_w.write(trailer)
                    if trailer == b"\r\n":
                        return
            left = size + 2  # the data and its CRLF
            while left > 0:
                data = await reader.read(min(RELAY_CHUNK, left))
                if not data:
                    raise ConnectionError("client closed inside a chunk")
                up_w.write(data)
                left -= len(data)
            self.bytes_up += size
            await up_w.drain()


async def serve(host: str, port: int, delay_ms: float, stop: asyncio.Event) -> None:
    server = await asyncio.start_server(Proxy(delay_ms).handle, host, port, limit=MAX_HEAD, backlog=512)
    async with server:
        await stop.wait()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab.proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3128)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.host, args.port, args.delay_ms, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
