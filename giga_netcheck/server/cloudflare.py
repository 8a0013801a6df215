"""The Cloudflare speed-test paths ``serve`` answers, so Cloudflare-style clients measure against it.

speed.cloudflare.com serves two paths, and npm ``@cloudflare/speedtest`` (the engine behind that
page) asks for nothing else unless told to (its TURN packet-loss test and its results logging are
other URLs, which a page pointing it at ``serve`` turns off):

- ``GET /__down?bytes=N``   N bytes of payload (capped by ``max_download_bytes``, like
                            ``/download``); ``bytes=0`` is its latency request: an empty answer
- ``POST /__up``            the body is read and discarded by the server's one bounded body reader
                            (413 above ``max_upload_bytes``); an empty answer

Other query parameters (``measId``, ``during``) are accepted and ignored. Every answer, refusals
of these paths included, carries what the library and a browser on another origin need:

- ``Access-Control-Allow-Origin: *`` and ``Access-Control-Expose-Headers`` (the library reads
  ``Server-Timing`` through ``fetch``; a cross-origin page sees only exposed headers);
- ``Timing-Allow-Origin: *``: the library times each request with the browser's Resource Timing
  entries, which hide their phases and ``transferSize`` from another origin without it;
- ``Server-Timing: cfRequestDuration;dur=<ms>``: the server's own time on the request (for a
  download, until the answer starts; for an upload, reading the body), which the library takes
  off its time-to-first-byte to get the network's round trip;
- ``cf-meta-ip`` (the client's address as the server saw it) and ``cf-meta-request-time`` (when
  the request arrived, ms since the epoch), as Cloudflare sends; no ``cf-meta-colo``, which would
  name a Cloudflare data center.

``OPTIONS`` on either path answers a CORS preflight (methods GET, POST, OPTIONS; the headers a
client may send: Content-Type, Content-Encoding, Authorization), for pages that add a header.
"""

from __future__ import annotations

import asyncio
import time
from typing import Optional

from giga_netcheck.server.compat import Server, log
from giga_netcheck.server.http import BodyTooLarge, HttpError, Request, respond

DOWN, UP = "/__down", "/__up"
PATHS = (DOWN, UP)
EXPOSED = "Server-Timing, cf-meta-ip, cf-meta-request-time"
CORS = f"Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: {EXPOSED}\r\nTiming-Allow-Origin: *\r\n"
PREFLIGHT = (
    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
    "Access-Control-Allow-Headers: Content-Type, Content-Encoding, Authorization\r\n"
    "Access-Control-Max-Age: 600\r\n"
)
MAX_BYTES_DIGITS = 18
"""A ``bytes`` value longer than this is refused before ``int()`` (it is beyond any cap anyway)."""


def _meta(writer: asyncio.StreamWriter, arrived_s: float, dur_ms: float) -> str:
    ip = str((writer.get_extra_info("peername") or ("",))[0])
    if ip.startswith("::ffff:"):
        ip = ip[7:]
    return (
        f"{CORS}Server-Timing: cfRequestDuration;dur={dur_ms:.3f}\r\ncf-meta-ip: {ip}\r\ncf-meta-request-time: {int(arrived_s * 1000)}\r\n"
    )


def _want(request: Request) -> Optional[int]:
    """The ``bytes`` parameter as a count (absent: 0), None when it is not digits."""
    raw = request.query.get("bytes", ["0"])[0]
    if not raw.isdigit() or len(raw) > MAX_BYTES_DIGITS or not raw.isascii():
        return None
    return int(raw)


async def route(srv: Server, request: Request, writer: asyncio.StreamWriter, client: str) -> Optional[bool]:
    """Serve ``/__down`` or ``/__up``; None when the path is neither (the caller goes on).

    Returns like ``MeasurementServer._route``: False when the connection must close."""
    if request.path not in PATHS:
        return None
    arrived, t0 = time.time(), time.perf_counter()
    method = request.method
    if method == "OPTIONS":
        try:
            await request.body.discard(0)  # a preflight has no body
        except HttpError as exc:
            return await _refuse(writer, client, request, exc)
        await respond(writer, 200, b"", extra=CORS + PREFLIGHT)
        return True
    if request.path == DOWN and method == "GET":
        want = _want(request)
        if want is None:
            return await _refuse(writer, client, request, HttpError(400, "bad-bytes", "bytes must be a non-negative integer"))
        extra = _meta(writer, arrived, (time.perf_counter() - t0) * 1000)
        if want == 0:
            await respond(writer, 200, b"", ctype="application/octet-stream", extra=extra)
            return True
        return await srv._send_payload(writer, client, want, extra=extra, kind="cloudflare-download")
    if request.path == UP and method == "POST":
        return await _upload(srv, request, writer, client, arrived, t0)
    # the body, if any, stays unread: the refusal closes the connection
    return await _refuse(writer, client, request, HttpError(405, "method-not-allowed", f"{method} is not served on {request.path}"))


async def _upload(srv: Server, request: Request, writer: asyncio.StreamWriter, client: str, arrived: float, t0: float) -> bool:
    try:
        received = await request.body.discard(srv.config.max_upload_bytes)
    except BodyTooLarge as exc:
        srv._log_transfer(client, "cloudflare-upload", exc.received, time.perf_counter() - t0, "too-large")
        return await _refuse(writer, client, request, exc)
    except HttpError as exc:
        srv._log_transfer(client, "cloudflare-upload", request.body.received, time.perf_counter() - t0, "bad-framing")
        return await _refuse(writer, client, request, exc)
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        srv._log_transfer(client, "cloudflare-upload", request.body.received, time.perf_counter() - t0, "client-gone")
        return False
    seconds = time.perf_counter() - t0
    srv._log_transfer(client, "cloudflare-upload", received, seconds, "complete")
    await respond(writer, 200, b"", extra=_meta(writer, arrived, seconds * 1000))
    return True


async def _refuse(writer: asyncio.StreamWriter, client: str, request: Request, exc: HttpError) -> bool:
    """A refusal with the CORS headers (so a page on another origin can read why), connection closed."""
    log_refusal(client, request, exc)
    await respond(writer, exc.status, f"{exc.reason}\n".encode(), close=True, extra=CORS)
    return False


def log_refusal(client: str, request: Request, exc: HttpError) -> None:
    log.info("%s %s %s refused %d %s: %s", client, request.method, request.path, exc.status, exc.code, exc.reason)
