"""What ``serve`` answers for clients that are not giga-netcheck: speedtest-cli and LibreSpeed.

A board that already uses speedtest-cli or a LibreSpeed page can point them at a giga-netcheck
server, and the ``speedtest`` and ``librespeed`` engines are tested against these paths offline.
Downloads go through the server's one payload loop (``MeasurementServer._send_payload``: one
preallocated buffer, one chunk in user space per connection, drain before the next); uploads are
read and discarded by the same bounded body reader as ``POST /upload``.

speedtest-cli ``--mini URL`` (speedtest.py 2.1.3, ``Speedtest.set_mini_server`` and friends):

- ``GET /``                              the page it scrapes for ``upload_extension: "php"``
- ``GET /speedtest/upload.php``          ``size=0``: its fallback probe for the extension
- ``GET /speedtest/latency.txt``         ``test=test``: its latency check (``get_best_server``)
- ``GET /speedtest/random{N}x{N}.jpg``   its download files, N = 350 ... 4000; about 2·N² bytes,
                                         what Ookla's mini images weigh
- ``POST /speedtest/upload.php``         its upload; answers ``size=<bytes read>``

speedtest-cli fetches speedtest.net's configuration even in ``--mini`` mode. For closed and
offline networks (and the tests), ``serve`` also answers ``GET /speedtest-config.php`` and
``GET /speedtest-servers-static.php`` (and ``speedtest-servers.php``) with a configuration and a
one-server list naming itself, so ``http_proxy=http://SERVER:PORT speedtest-cli --mini ...``
runs with no internet; the ``speedtest`` engine needs neither (it carries the configuration).

LibreSpeed backends, as LibreSpeed documents them (https://github.com/librespeed/speedtest/blob/master/doc.md,
"backend files" and "Alternative backends"), under ``/backend/`` and at the top level (a server
list entry may put the backend folder in ``server`` and name the files bare, ``dlURL: "garbage.php"``),
with or without ``.php`` (the Go backend's names):

- ``GET garbage.php?ckSize=N``   N chunks of 1 MiB of incompressible data (doc: "accepts a ckSize
                                 GET parameter ... in megabytes"; default 4, at most 1024)
- ``GET|POST empty.php``         200 and no body, keep-alive (doc: "An empty file used for the
                                 upload and ping test. It only sends headers"); a POST body is discarded
- ``GET getIP.php``              the client's address as text; with ``isp`` a JSON object with
                                 ``processedString`` and ``rawIspInfo`` (doc: "If isp is set, the output
                                 is a JSON string containing processedString ... rawIspInfo")
- ``cors=true`` adds the three CORS headers the doc lists; ``OPTIONS`` answers a browser preflight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any, Optional, Protocol

from giga_netcheck import __version__
from giga_netcheck.server.http import BodyTooLarge, HttpError, Request, respond

log = logging.getLogger("giga_netcheck.server.app")  # one logger for every route of serve


class Server(Protocol):
    """What these routes use of ``MeasurementServer`` (app.py imports this module, not the reverse)."""

    config: Any
    port: int

    async def _send_payload(
        self, writer: asyncio.StreamWriter, client: str, want: int, extra: str = "", kind: str = "download"
    ) -> bool: ...

    def _log_transfer(self, client: str, kind: str, nbytes: int, seconds: float, outcome: str) -> None: ...


MINI_SIZES = (350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000)
"""The image sizes speedtest-cli asks for (its ``sizes['download']``)."""
_RANDOM = re.compile(r"/speedtest/random(\d{1,4})x(\d{1,4})\.jpg")
MINI_PAGE = (
    b"<!doctype html><html><head><title>giga-netcheck measurement server</title></head><body>"
    b"<p>giga-netcheck measurement server: speedtest mini paths under /speedtest/, LibreSpeed under /backend/.</p>"
    b'<script>var upload_extension: "php";</script></body></html>\n'
)
# speedtest-cli reads upload_extension with the pattern upload_?[Ee]xtension: "([^"]+)"; the text
# above carries it (the script line is never run by anything: it is there to be read).

CKSIZE_DEFAULT, CKSIZE_MAX, MIB = 4, 1024, 1 << 20
_LS_NAMES = frozenset({"garbage", "empty", "getIP"})
CORS = (
    "Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET, POST\r\n"
    "Access-Control-Allow-Headers: Content-Encoding, Content-Type\r\n"
)

# What speedtest.net's configuration gives speedtest-cli (speedtest-config.php): 4 download
# threads per URL, 4 server threads (x2 = 8 download threads), 2 upload threads, upload ratio 5
# (sizes 512 KiB, 1 MiB, 7 MiB), at most 50 upload chunks, 10 s per direction.
SPEEDTEST_CONFIG_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<settings>\n'
    '<client ip="{ip}" lat="0" lon="0" isp="giga-netcheck serve (offline)" isprating="3.7" rating="0" '
    'ispdlavg="0" ispulavg="0" loggedin="0" country="ZZ"/>\n'
    '<server-config threadcount="4" ignoreids="" notonmap="" forcepingid="" preferredserverid=""/>\n'
    '<download testlength="10" initialtest="250K" mintestsize="250K" threadsperurl="4"/>\n'
    '<upload testlength="10" ratio="5" initialtest="0" mintestsize="32K" threads="2" maxchunksize="512K" '
    'maxchunkcount="50" threadsperurl="4"/>\n</settings>\n'
)
SPEEDTEST_SERVERS_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<settings>\n<servers>\n'
    '<server url="http://{host}/speedtest/upload.php" lat="0" lon="0" name="giga-netcheck serve" country="lab" '
    'cc="ZZ" sponsor="giga-netcheck {version}" id="{sid}" host="{host}"/>\n</servers>\n</settings>\n'
)
SERVE_OOKLA_ID = 1
"""The server id ``serve`` gives itself in its offline server list."""


def _librespeed(path: str) -> Optional[str]:
    """``garbage``, ``empty`` or ``getIP`` for a LibreSpeed backend path, else None."""
    for prefix in ("/backend/", "/"):
        if path.startswith(prefix):
            name = path[len(prefix) :]
            name = name[:-4] if name.endswith(".php") else name
            if name in _LS_NAMES and "/" not in name:
                return name
    return None


async def route(srv: Server, request: Request, writer: asyncio.StreamWriter, client: str) -> Optional[bool]:
    """Serve a compatibility path; None when ``path`` is not one (the caller answers 404).

    Returns like ``MeasurementServer._route``: False when the connection must close."""
    method, path = request.method, request.path
    ls = _librespeed(path)
    if ls is not None:
        return await _librespeed_route(srv, request, writer, client, ls)
    if method == "GET" and path in ("/", "/index.html"):
        await respond(writer, 200, MINI_PAGE, ctype="text/html; charset=utf-8")
        return True
    if path == "/speedtest/upload.php":
        if method == "GET":
            await respond(writer, 200, b"size=0")
            return True
        if method == "POST":
            return await _mini_upload(srv, request, writer, client)
        return None
    if method == "GET" and path == "/speedtest/latency.txt":
        await respond(writer, 200, b"test=test\n")
        return True
    m = _RANDOM.fullmatch(path)
    if method == "GET" and m:
        n, n2 = int(m.group(1)), int(m.group(2))
        if n != n2 or not 1 <= n <= max(MINI_SIZES):
            return None
        return await srv._send_payload(writer, client, 2 * n * n, kind="mini-download")
    if method == "GET" and path == "/speedtest-config.php":
        ip = writer.get_extra_info("peername", ("0.0.0.0", 0))[0]
        body = SPEEDTEST_CONFIG_XML.format(ip=ip).encode()
        await respond(writer, 200, body, ctype="text/xml")
        log.info("%s speedtest config (offline stand-in)", client)
        return True
    if method == "GET" and path in ("/speedtest-servers-static.php", "/speedtest-servers.php"):
        sock = writer.get_extra_info("sockname", ("127.0.0.1", srv.port))
        host = f"[{sock[0]}]:{sock[1]}" if ":" in sock[0] else f"{sock[0]}:{sock[1]}"
        body = SPEEDTEST_SERVERS_XML.format(host=host, version=__version__, sid=SERVE_OOKLA_ID).encode()
        await respond(writer, 200, body, ctype="text/xml")
        return True
    return None


async def _mini_upload(srv: Server, request: Request, writer: asyncio.StreamWriter, client: str) -> bool:
    t0 = time.perf_counter()
    try:
        received = await request.body.discard(srv.config.max_upload_bytes)
    except BodyTooLarge as exc:
        srv._log_transfer(client, "mini-upload", exc.received, time.perf_counter() - t0, "too-large")
        raise  # answered like every refusal: 413, its reason, connection closed
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        # speedtest-cli cuts its uploads short when its timer runs out: that ends the connection
        srv._log_transfer(client, "mini-upload", request.body.received, time.perf_counter() - t0, "client-gone")
        return False
    srv._log_transfer(client, "mini-upload", received, time.perf_counter() - t0, "complete")
    await respond(writer, 200, f"size={received}".encode())
    return True


async def _librespeed_route(srv: Server, request: Request, writer: asyncio.StreamWriter, client: str, name: str) -> Optional[bool]:
    method, query = request.method, request.query
    cors = CORS if "cors" in query else ""
    if method == "OPTIONS":
        await request.body.discard(0)  # a preflight has no body; one sent anyway is refused (413)
        await respond(writer, 200, b"", extra=CORS)
        return True
    if name == "garbage" and method == "GET":
        try:
            chunks = int(query.get("ckSize", [str(CKSIZE_DEFAULT)])[0])
        except ValueError:
            chunks = CKSIZE_DEFAULT
        chunks = CKSIZE_DEFAULT if chunks <= 0 else min(chunks, CKSIZE_MAX)
        return await srv._send_payload(writer, client, chunks * MIB, extra=cors, kind="librespeed-download")
    if name == "empty" and method in ("GET", "POST", "HEAD"):
        t0 = time.perf_counter()
        try:
            received = await request.body.discard(srv.config.max_upload_bytes)
        except HttpError as exc:  # answered here, not by the server, to carry the CORS headers a browser needs to read it
            log.info("%s %s %s refused %d %s: %s", client, method, request.path, exc.status, exc.code, exc.reason)
            await respond(writer, exc.status, f"{exc.reason}\n".encode(), close=True, extra=cors)
            return False
        if received:
            srv._log_transfer(client, "librespeed-upload", received, time.perf_counter() - t0, "complete")
        await respond(writer, 200, b"", extra=cors + "Connection: keep-alive\r\n")
        return True
    if name == "getIP" and method == "GET":
        ip = writer.get_extra_info("peername", ("", 0))[0]
        if ip.startswith("::ffff:"):
            ip = ip[7:]
        if "isp" in query:
            body = json.dumps({"processedString": f"{ip} - giga-netcheck measurement server", "rawIspInfo": ""}).encode()
            await respond(writer, 200, body, ctype="application/json", extra=cors)
        else:
            await respond(writer, 200, ip.encode(), extra=cors)
        return True
    return None
