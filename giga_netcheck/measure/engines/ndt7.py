"""The ``ndt7`` engine: M-Lab's ndt7 protocol (the one UNICEF Giga's school fleet uses), our own client.

Written from M-Lab's specification (m-lab/ndt-server, spec/ndt7-protocol.md) and the locate
API's documentation (m-lab/locate, USAGE.md and api/v2); no code of theirs is used. WebSocket
is the ``websockets`` library's synchronous client (no compression: it would distort the count).

- Server: a target URL whose path is a locate API's (``/v2/nearest/ndt/ndt7``, by default
  M-Lab's ``https://locate.measurementlab.net/v2/nearest/ndt/ndt7``; or a stand-in, or an
  ``Ndt7Engine(locate_url=...)``) is asked for the nearest servers: its answer's
  ``results[].urls["wss:///ndt/v7/download"]`` (or ``ws:///``) carry access tokens. Each result is
  tried in turn until one accepts (the locate documentation: "continuing with the next returned
  result"). Any other URL is an ndt7 server itself (``ws(s)://`` or ``http(s)://host:port``, as
  ``giga-netcheck serve`` is): ``/ndt/v7/download`` and ``/ndt/v7/upload`` under it.
- One stream: ndt7 is one TCP connection by design, whatever the plan asks (``max_streams``);
  the result says ``streams: 1``.
- Counting bytes as they arrive, not as whole messages (a message can be 1 MiB, longer than a
  sample at a few Mbit/s): download, the bytes the kernel has received on the connection
  (Linux ``TCP_INFO`` ``bytes_received``); upload, the bytes the server acknowledged (the own
  engine's reader, ``http.bytes_delivered``). Both include the WebSocket (and TLS) framing, a
  few bytes per message. Elsewhere the count falls back to the messages received or sent.
- The test is the plan's duration or the server's, whichever ends first (a server closes after
  its 10 s); the warm-up is discarded and the figures reduced as every engine's
  (``_summary.summarize``). The server's measurement messages are kept in ``engine_raw``: its
  ``TCPInfo`` RTT and MinRTT during the transfer (the queue our load built, seen by the server)
  and its own byte count.
- Failures (locate unreachable or answering garbage, a server that is not ndt7, no data) are
  one line in the result, within the connect timeout plus the test's duration.

M-Lab publishes every test, the client's IP address included, as open data (docs/engines.md).
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from typing import Any, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from websockets.exceptions import ConnectionClosedOK, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from giga_netcheck import __version__
from giga_netcheck.core.errors import ProbeError, ProtocolFailure
from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.measure.engines._summary import failed, one_line, summarize
from giga_netcheck.measure.engines.base import ThroughputEngine, ThroughputPlan, run_streams, stream_errors
from giga_netcheck.measure.engines.http import bytes_delivered
from giga_netcheck.measure.failures import map_exception

# The wire vocabulary (the spec), shared with serve's side (server/ndt7.py).
SUBPROTOCOL = "net.measurementlab.ndt.v7"
DOWNLOAD_PATH = "/ndt/v7/download"
UPLOAD_PATH = "/ndt/v7/upload"
PATHS = frozenset({DOWNLOAD_PATH, UPLOAD_PATH})
INITIAL_MESSAGE_BYTES = 1 << 13
MAX_SCALED_MESSAGE_BYTES = 1 << 20
MAX_MESSAGE_BYTES = 1 << 24
"""The largest message either side accepts (the spec: a limit "MUST NOT be smaller than 1 << 24")."""
SCALING_FRACTION = 16
MEASUREMENT_INTERVAL_S = 0.25


def next_message_size(size: int, total: int, cap: int = MAX_SCALED_MESSAGE_BYTES) -> int:
    """The spec's scaling: double a message while it is smaller than 1/16 of the bytes queued so far."""
    if size >= cap or size >= total / SCALING_FRACTION:
        return size
    return min(size * 2, cap)


# ----------------------------------------------------------------------------------- TCP_INFO

_TCP_INFO: Optional[int] = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
# Linux's ``struct tcp_info`` (include/uapi/linux/tcp.h), native order: field -> (offset, format).
# A kernel older than a field returns a shorter struct: the field is left out, as the spec asks.
_TCP_FIELDS: dict[str, tuple[int, str]] = {
    "snd_mss": (16, "I"),
    "sacked": (28, "I"),
    "rtt": (68, "I"),
    "rttvar": (72, "I"),
    "bytes_acked": (120, "Q"),
    "bytes_received": (128, "Q"),
    "min_rtt": (148, "I"),
    "busy_time": (168, "Q"),
    "rwnd_limited": (176, "Q"),
    "sndbuf_limited": (184, "Q"),
    "bytes_sent": (200, "Q"),
    "bytes_retrans": (208, "Q"),
}
SPEC_TCPINFO = {
    "BusyTime": "busy_time",
    "BytesAcked": "bytes_acked",
    "BytesReceived": "bytes_received",
    "BytesSent": "bytes_sent",
    "BytesRetrans": "bytes_retrans",
    "MinRTT": "min_rtt",
    "RTT": "rtt",
    "RTTVar": "rttvar",
    "RWndLimited": "rwnd_limited",
    "SndBufLimited": "sndbuf_limited",
}
"""ndt7's ``TCPInfo`` names -> ``struct tcp_info`` fields (times in µs, as the kernel gives them)."""


def tcp_info(sock: Any) -> Optional[dict[str, int]]:
    """The ``TCP_INFO`` fields above this kernel gives for ``sock`` (Linux), or None."""
    if sock is None or _TCP_INFO is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 256)
    except (OSError, ValueError, AttributeError):  # closed meanwhile, or not a TCP socket
        return None
    return {
        name: struct.unpack_from("=" + fmt, raw, off)[0]
        for name, (off, fmt) in _TCP_FIELDS.items()
        if off + struct.calcsize(fmt) <= len(raw)
    }


def spec_tcpinfo(info: Optional[dict[str, int]], elapsed_us: int) -> Optional[dict[str, int]]:
    """``tcp_info`` as the spec's ``TCPInfo`` object."""
    if not info:
        return None
    out = {k: info[v] for k, v in SPEC_TCPINFO.items() if v in info}
    out["ElapsedTime"] = elapsed_us
    return out


LOCATE_URL = "https://locate.measurementlab.net/v2/nearest/ndt/ndt7"
"""M-Lab's locate API (v2): the nearest ndt7 servers, with access tokens."""
MAX_LOCATE_BYTES = 256 * 1024
MAX_RESULTS = 4
"""Locate results tried at most (the API returns up to four)."""
MAX_SERVER_MEASUREMENTS = 400
MAX_TEXT_BYTES = 64 * 1024
"""A text message longer than this is not a measurement: ignored."""
USER_AGENT = f"giga-netcheck/{__version__} (ndt7)"
METADATA = {"client_name": "giga-netcheck", "client_version": __version__}
_PAYLOAD = bytes(range(256)) * (MAX_MESSAGE_BYTES // 256 // 16)  # 1 MiB: the largest message we send


def is_locate_url(url: str) -> bool:
    """A locate API URL (``.../v2/nearest/...`` or ``.../v2/priority/nearest/...``), not a server."""
    path = urlsplit(url).path
    return "/v2/nearest/" in path or "/v2/priority/nearest/" in path


def server_urls(base: str) -> dict[str, str]:
    """``ws(s)://`` download and upload URLs of an ndt7 server given as its base URL."""
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ProtocolFailure(f"{base}: not an ndt7 server URL (ws://, wss://, http:// or https://host[:port])")
    path = parts.path.rstrip("/")
    for suffix in (DOWNLOAD_PATH, UPLOAD_PATH):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    return {
        d: urlunsplit((scheme, parts.netloc, path + p, parts.query, "")) for d, p in (("download", DOWNLOAD_PATH), ("upload", UPLOAD_PATH))
    }


def with_metadata(url: str) -> str:
    """The URL with the client's metadata in the query (the spec: "SHOULD send metadata")."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    have = {k for k, _ in query}
    query += [(k, v) for k, v in METADATA.items() if k not in have]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def public_url(url: str) -> str:
    """A URL as recorded: without its query (a locate access token is a credential)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def locate(url: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The locate API's results (each ``{"urls": {...}, "machine": ..., "location": ...}``);
    ProbeError in one line when it cannot be reached or does not answer as the locate API does."""
    where = public_url(url)
    try:
        with httpx.Client(timeout=timeout_s, trust_env=False, follow_redirects=True, max_redirects=3) as client:
            with client.stream("GET", with_metadata(url), headers={"User-Agent": USER_AGENT, "Accept": "application/json"}) as resp:
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_LOCATE_BYTES:
                        raise ProtocolFailure(
                            f"locate API {where}: answer larger than {MAX_LOCATE_BYTES // 1024} KiB: not M-Lab's locate API"
                        )
                status = resp.status_code
    except ProbeError:
        raise
    except Exception as exc:
        raise type(map_exception(exc))(one_line(f"locate API {where}: {map_exception(exc)}")) from exc
    if status == 204:
        raise ProtocolFailure(f"locate API {where}: no server has capacity now (204 No Content); try again later")
    if status != 200:
        raise ProtocolFailure(f"locate API {where} answered HTTP {status}")
    try:
        doc = json.loads(body)
    except ValueError:
        raise ProtocolFailure(f"locate API {where} answered {one_line(body[:60].decode('utf-8', 'replace'))!r}: not JSON") from None
    if not isinstance(doc, dict):
        raise ProtocolFailure(f"locate API {where}: the answer is not a JSON object")
    error = doc.get("error")
    results = doc.get("results")
    if not isinstance(results, list) or not results:
        detail = ""
        if isinstance(error, dict):
            detail = ": " + one_line(str(error.get("title") or "") + " " + str(error.get("detail") or ""), 160)
        raise ProtocolFailure(f"locate API {where}: no servers in the answer{detail}")
    out = [r for r in results[:MAX_RESULTS] if isinstance(r, dict) and isinstance(r.get("urls"), dict)]
    if not out:
        raise ProtocolFailure(f"locate API {where}: no result carries urls")
    return out


def _result_url(result: dict[str, Any], direction: str) -> Optional[str]:
    urls = result["urls"]
    for scheme in ("wss", "ws"):
        u = urls.get(f"{scheme}:///ndt/v7/{direction}")
        if isinstance(u, str) and u.lower().startswith(f"{scheme}://"):
            return u
    return None


def _server_record(result: Optional[dict[str, Any]], url: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "ndt7", "url": public_url(url)}
    if result is not None:
        for key in ("machine", "hostname"):
            if isinstance(result.get(key), str):
                rec[key] = result[key][:200]
        loc = result.get("location")
        if isinstance(loc, dict):
            rec["location"] = {k: str(v)[:100] for k, v in loc.items() if k in ("city", "country")}
    return rec


class _Stream(threading.Thread):
    """One ndt7 test on an open WebSocket: read (download) or send (upload) until told to stop
    or the server closes, keeping the server's measurement messages."""

    def __init__(self, ws: ClientConnection, direction: str, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="gnc-ndt7")
        self.ws, self.direction, self.stop = ws, direction, stop
        self.sock = ws.socket
        self.error: Optional[BaseException] = None
        self.app_bytes = 0
        """Binary message bytes received (download) or handed to the socket (upload)."""
        self.server_closed = False
        self.measurements: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._last: Optional[int] = None
        self._base = self._kernel_count()

    def _kernel_count(self) -> Optional[int]:
        if self.direction == "download":
            info = tcp_info(self.sock)
            return None if not info or "bytes_received" not in info else info["bytes_received"]
        return bytes_delivered(self.sock)

    @property
    def bytes(self) -> int:
        """Bytes moved so far, as they arrive (kernel counters, never backwards), else the messages'."""
        with self._lock:
            now = self._kernel_count()
            if now is not None and self._base is not None:
                self._last = max(self._last or 0, now - self._base)
            elif self._last is not None and self.direction == "download" and self.server_closed:
                # the connection is closed: every message that arrived has been read since the
                # kernel's last reading, so the messages' count is the final one
                self._last = max(self._last, self.app_bytes)
            return self.app_bytes if self._last is None else self._last

    def run(self) -> None:
        reader = threading.Thread(target=self._read, daemon=True, name="gnc-ndt7-read")
        reader.start()
        try:
            if self.direction == "upload":
                self._send()
                self.bytes  # the last reading, before the close  # noqa: B018
                if not self.server_closed:
                    self._close()  # a close frame after the last message: the spec's clean end
            reader.join()
        except BaseException as exc:  # recorded: the result carries it
            if not self.stop.is_set() and not self.server_closed:
                self.error = exc
        finally:
            self.bytes  # the last reading, before the connection closes  # noqa: B018
            self.stop.set()
            reader.join(2.0)

    def _send(self) -> None:
        size = INITIAL_MESSAGE_BYTES
        while not self.stop.is_set() and not self.server_closed:
            try:
                self.ws.send(_PAYLOAD[:size])
            except ConnectionClosedOK:
                self.server_closed = True  # the server ended the test: normal
                return
            self.app_bytes += size
            size = next_message_size(size, self.app_bytes)

    def _read(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    msg = self.ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                if isinstance(msg, bytes):
                    if self.direction == "upload":
                        raise ProtocolFailure("the server sent a binary message during the upload: not an ndt7 server")
                    self.app_bytes += len(msg)
                elif len(msg) <= MAX_TEXT_BYTES:
                    self._measurement(msg)
        except ConnectionClosedOK:
            self.server_closed = True
        except BaseException as exc:
            if not self.stop.is_set() and self.error is None:
                self.error = exc
            self.stop.set()
        finally:
            if self.direction == "download" and not self.server_closed:
                self.bytes  # the last reading, before the close  # noqa: B018
                self._close()

    def _close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass

    def _measurement(self, text: str) -> None:
        try:
            doc = json.loads(text)
        except ValueError:
            return
        if not isinstance(doc, dict) or len(self.measurements) >= MAX_SERVER_MEASUREMENTS:
            return
        app, tcp = doc.get("AppInfo"), doc.get("TCPInfo")
        m: dict[str, Any] = {}
        if isinstance(app, dict):
            m.update(elapsed_s=_num(app.get("ElapsedTime"), 1e-6), num_bytes=_num(app.get("NumBytes")))
        if isinstance(tcp, dict):
            m.update(
                rtt_ms=_num(tcp.get("RTT"), 1e-3),
                min_rtt_ms=_num(tcp.get("MinRTT"), 1e-3),
                rtt_var_ms=_num(tcp.get("RTTVar"), 1e-3),
                bytes_retrans=_num(tcp.get("BytesRetrans")),
                bytes_sent=_num(tcp.get("BytesSent")),
            )
        if any(v is not None for v in m.values()):
            self.measurements.append(m)


def _num(value: Any, scale: float = 1.0) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) > 2**63:
        return None
    return round(value * scale, 3) if scale != 1.0 else value


def _abort(ws: ClientConnection) -> None:
    """Reset the connection: what the kernel still holds for it is dropped, not sent at the link's rate."""
    try:
        ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Ndt7Engine(ThroughputEngine):
    """M-Lab's ndt7: the nearest M-Lab server (locate API), or an ndt7 server by URL."""

    name = "ndt7"
    max_streams = 1
    """ndt7 is one connection by design: a plan's streams beyond one are not used."""

    def __init__(self, locate_url: Optional[str] = None, timeout_s: float = 5.0) -> None:
        self.locate_url = locate_url
        self.timeout_s = timeout_s

    def _candidates(self, target: Target, direction: str) -> list[tuple[str, Optional[dict[str, Any]]]]:
        url = target.url or self.locate_url or LOCATE_URL
        if self.locate_url and (not target.url or is_locate_url(target.url)):
            url = self.locate_url
        if not is_locate_url(url):
            return [(with_metadata(server_urls(url)[direction]), None)]
        out: list[tuple[str, Optional[dict[str, Any]]]] = []
        for result in locate(url, self.timeout_s):
            u = _result_url(result, direction)
            if u is not None:
                out.append((with_metadata(u), result))
        if not out:
            raise ProtocolFailure(f"locate API {public_url(url)}: no result has a ws:// or wss:// ndt7 {direction} URL")
        return out

    def _connect(self, url: str) -> ClientConnection:
        where = public_url(url)
        try:
            ws = connect(
                url,
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                compression=None,
                proxy=None,
                open_timeout=self.timeout_s,
                close_timeout=2.0,
                ping_interval=None,
                max_size=MAX_MESSAGE_BYTES,
                user_agent_header=USER_AGENT,
            )
        except InvalidStatus as exc:
            raise ProtocolFailure(
                f"{where} answered HTTP {exc.response.status_code} to the ndt7 WebSocket upgrade: not an ndt7 server"
            ) from exc
        except InvalidHandshake as exc:
            raise ProtocolFailure(one_line(f"{where}: not an ndt7 server ({exc})")) from exc
        except Exception as exc:
            mapped = map_exception(exc)
            raise type(mapped)(one_line(f"{where}: {mapped}")) from exc
        if ws.subprotocol != SUBPROTOCOL:
            ws.close()
            raise ProtocolFailure(f"{where}: the WebSocket server did not take the subprotocol {SUBPROTOCOL}: not an ndt7 server")
        return ws

    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        one = ThroughputPlan(plan.direction, 1, plan.duration_s, plan.warmup_s, plan.interval_s)
        try:
            candidates = self._candidates(target, plan.direction)
        except ProbeError as exc:
            return failed(target, one, self.name, str(exc), exc.kind)
        errors: list[ProbeError] = []
        for url, result in candidates:
            if stop.is_set():
                break
            try:
                ws = self._connect(url)
            except ProbeError as exc:
                errors.append(exc)
                continue
            with ws:  # closed on the way out, whatever happened
                return self._run(target, one, stop, ws, url, result)
        if not errors:
            return failed(target, one, self.name, "interrupted before the test", "interrupted")
        text = errors[0].args[0] if len(errors) == 1 else f"{len(errors)} servers refused; first: {errors[0]}"
        return failed(target, one, self.name, str(text), errors[0].kind, url=public_url(candidates[0][0]))

    def _run(
        self, target: Target, plan: ThroughputPlan, stop: threading.Event, ws: ClientConnection, url: str, result: Optional[dict[str, Any]]
    ) -> BandwidthMeasurement:
        local_stop = threading.Event()
        stream = _Stream(ws, plan.direction, local_stop)
        t0 = time.perf_counter()
        try:
            _, points = run_streams([stream], plan.duration_s, plan.interval_s, stop, local_stop)
        finally:
            stream.join(3.0)
            if stream.is_alive():  # a send blocked on a slow link: reset rather than drain it
                _abort(ws)
        where = public_url(url)
        err_text, err_kind = stream_errors([stream.error] if stream.error is not None else [], 1)
        if err_text is None and stream.bytes == 0:
            err_text, err_kind = f"{where}: no data moved in {time.perf_counter() - t0:.1f} s", ProtocolFailure.kind
        elif err_text is not None:
            err_text = one_line(f"{where}: {map_exception(stream.error) if stream.error else err_text}")
        ms = stream.measurements
        rtts = [m["rtt_ms"] for m in ms if m.get("rtt_ms") is not None]
        last = ms[-1] if ms else {}
        raw: dict[str, Any] = {
            "protocol": "ndt7",
            "server_closed": stream.server_closed,
            "app_bytes": stream.app_bytes,
            "server_measurements": len(ms),
            "server_tcpinfo_rtt_ms": rtts[-100:],
            "server_tcpinfo_min_rtt_ms": last.get("min_rtt_ms"),
            "server_num_bytes": last.get("num_bytes"),
            "server_elapsed_s": last.get("elapsed_s"),
            "server_bytes_retrans": last.get("bytes_retrans"),
            "located": result is not None,
        }
        return summarize(
            target,
            plan,
            self.name,
            points,
            per_stream_bytes=[stream.bytes],
            url=where,
            error=err_text,
            error_kind=err_kind,
            server=_server_record(result, url),
            engine_raw=raw,
        )
