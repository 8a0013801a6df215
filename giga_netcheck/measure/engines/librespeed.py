"""The ``librespeed`` engine: LibreSpeed backends (garbage/empty/getIP), our own client on httpx.

Boards often host LibreSpeed (https://github.com/librespeed/speedtest) in their data centers.
This engine speaks its backend protocol as LibreSpeed documents it in doc.md
(https://github.com/librespeed/speedtest/blob/master/doc.md); written from that text, no code of
theirs is used:

- Download, ``GET garbage.php?ckSize=N``: "garbage.php ... accepts a ckSize GET parameter, which
  specifies how much garbage data to generate in megabytes (4-1024)"; the client default
  ("garbagePhp_chunkSize ... Default: 100") is ours too. "The test uses multiple streams. If a
  stream finishes the download, it is restarted." So does ours.
- Upload, ``POST empty.php``: "A large blob of garbage data is generated and it is sent to the
  server repeatedly using multiple streams"; the blob is "xhr_ul_blob_megabytes ... Default: 20".
  empty.php "only sends headers"; its replacement "must simply respond with a HTTP code 200".
- Ping, ``GET empty.php`` on one persistent connection: "repeatedly downloading an empty file, and
  measuring how long it takes between the request and the response" (count_ping default 10).
- ``GET getIP.php``: "If isp is not set, the output is just a string containing the client's IP
  address"; with ``isp`` "a JSON string containing processedString ... rawIspInfo".
- Server lists ("Multiple Points of Test"): a JSON array of objects with ``name``, ``server``,
  ``dlURL``, ``ulURL``, ``pingURL``, ``getIpURL``; "None of these parameters can be omitted";
  ``server`` may start with ``//`` ("it will be replaced with http:// or https://"); the paths are
  relative to ``server``. The selector picks "the server with the lowest ping". Public lists also
  carry an ``id``, which ``server_id`` matches (or the ``name``).

Where we differ, on purpose: streams start together (LibreSpeed staggers them by 300 ms), and
the headline figure is the engine-wide one (bytes after the warm-up over the time after it)
with no overhead compensation factor (LibreSpeed multiplies by 1.06 by default); its own way of
reporting is not reproduced, the ping samples and the chosen server are kept in ``engine_raw``.
A target's ``url`` alone is one server: its ``backend/`` files, or the files themselves when the
URL ends in ``/backend``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Optional

import httpx

from giga_netcheck.config.serverlist import MAX_LIST_BYTES, LibreSpeedServer, parse_server_list, read_server_list_file
from giga_netcheck.core.errors import ProbeError, ProtocolFailure
from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.core.stats import percentile
from giga_netcheck.measure.engines._summary import failed, one_line, summarize
from giga_netcheck.measure.engines.base import SessionCache, ThroughputEngine, ThroughputPlan, named_stream_errors, run_streams
from giga_netcheck.measure.failures import map_exception

CK_SIZE = 100
"""MiB per garbage.php request (LibreSpeed's garbagePhp_chunkSize default)."""
UL_BLOB_BYTES = 20 * 1024 * 1024
"""Bytes per upload request (LibreSpeed's xhr_ul_blob_megabytes default)."""
PING_COUNT = 10
READ_CHUNK = 256 * 1024
_BLOCK = memoryview(os.urandom(READ_CHUNK))


def single_server(url: str, name: str) -> LibreSpeedServer:
    """A target URL as a one-entry list: ``<url>/backend/*.php``, or ``<url>/*.php`` for ``.../backend``."""
    base = url.rstrip("/")
    prefix = "" if base.endswith("/backend") else "backend/"
    return LibreSpeedServer(name, base + "/", f"{prefix}garbage.php", f"{prefix}empty.php", f"{prefix}empty.php", f"{prefix}getIP.php")


def load_server_list(source: str, timeout_s: float = 5.0) -> list[LibreSpeedServer]:
    """A server list from a file path or an http(s) URL (at most 1 MiB)."""
    if source.startswith(("http://", "https://")):
        with httpx.Client(timeout=timeout_s, trust_env=False) as client:
            with client.stream("GET", source) as resp:
                resp.raise_for_status()
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_LIST_BYTES:
                        raise ValueError(f"{source}: larger than {MAX_LIST_BYTES // 1024} KiB: not a server list")
        return parse_server_list(body.decode("utf-8", "replace"), source)
    return read_server_list_file(source)


def _bust(url: str) -> str:
    """A cache-busting parameter, as LibreSpeed's client adds (``r=``)."""
    return f"{url}{'&' if '?' in url else '?'}r={random.random()}"


def _client_ip(text: str) -> Optional[str]:
    """The address in a getIP.php answer (plain, or ``processedString``), or None if it holds none."""
    text = text.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        text = str(doc.get("processedString", "")) if isinstance(doc, dict) else ""
        text = text.split(" - ")[0].strip()
    try:
        return str(ipaddress.ip_address(text.split("%")[0]))
    except ValueError:
        return None


@dataclass
class _Session:
    server: LibreSpeedServer
    secure: bool
    client_ip: Optional[str]
    ping_ms: list[Optional[float]]
    selection: dict[str, Optional[float]]
    """Server name -> its lowest ping during selection (lists only)."""

    def record(self) -> dict[str, Any]:
        rec = {k: v for k, v in asdict(self.server).items() if v is not None}
        rec["kind"] = "librespeed"
        rec["url"] = self.server.url("dlURL", self.secure).split("?")[0]
        return rec

    def raw(self) -> dict[str, Any]:
        got = [p for p in self.ping_ms if p is not None]
        jitter = (sum(abs(a - b) for a, b in zip(got, got[1:])) / (len(got) - 1)) if len(got) > 1 else None
        return {
            "protocol": "librespeed",
            "ck_size_mib": CK_SIZE,
            "ul_blob_bytes": UL_BLOB_BYTES,
            "client_ip": self.client_ip,
            "ping_ms": self.ping_ms,
            "ping_p50_ms": None if not got else round(percentile(got, 50), 3),
            "jitter_ms": None if jitter is None else round(jitter, 3),
            "selection_ping_ms": self.selection or None,
        }


class _Stream(threading.Thread):
    """One connection looping over garbage.php downloads or empty.php uploads."""

    def __init__(self, url: str, direction: str, stop: threading.Event, where: str) -> None:
        super().__init__(daemon=True, name="gnc-librespeed")
        self.url, self.direction, self.stop, self.where = url, direction, stop, where
        self.bytes = 0
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0), trust_env=False) as client:
                while not self.stop.is_set():
                    self._download(client) if self.direction == "download" else self._upload(client)
        except BaseException as exc:  # recorded; the other streams go on
            if not self.stop.is_set():
                self.error = exc

    def _download(self, client: httpx.Client) -> None:
        got = 0
        with client.stream("GET", _bust(self.url)) as resp:
            if resp.status_code != 200:
                raise ProtocolFailure(f"{self.where}: garbage.php answered HTTP {resp.status_code}")
            for chunk in resp.iter_raw(READ_CHUNK):
                self.bytes += len(chunk)
                got += len(chunk)
                if self.stop.is_set():
                    return
        if got < (1 << 20):  # garbage.php sends ckSize chunks of 1 MiB; a page or an error is smaller
            raise ProtocolFailure(f"{self.where}: garbage.php answered {got} bytes, not {CK_SIZE} MiB of data: not a LibreSpeed backend")

    def _upload(self, client: httpx.Client) -> None:
        def body() -> Iterator[bytes]:
            sent = 0
            while sent < UL_BLOB_BYTES and not self.stop.is_set():
                n = min(len(_BLOCK), UL_BLOB_BYTES - sent)
                yield _BLOCK[:n]
                sent += n
                self.bytes += n

        resp = client.post(_bust(self.url), content=body(), headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 200 and not self.stop.is_set():
            raise ProtocolFailure(f"{self.where}: empty.php answered HTTP {resp.status_code} to an upload")


def _session_error(exc: BaseException, target: Target) -> ProbeError:
    """Any failure to open a session as one of ours, in one line naming the target."""
    mapped = map_exception(exc)
    text = str(mapped)
    if not text.startswith(f"{target.name}"):
        text = f"{target.name} ({target.url or target.server_list}): {text}"
    err = type(mapped)(one_line(text))
    err.kind = mapped.kind
    return err


class LibreSpeedEngine(ThroughputEngine):
    """LibreSpeed backends: one server URL, or a server list with ``server_id`` or lowest ping."""

    name = "librespeed"

    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self._cache: SessionCache[_Session] = SessionCache(self._open, _session_error)

    # ----------------------------------------------------------------- server choice, preflight
    def session(self, target: Target) -> _Session:
        """Choose the server, check getIP.php and ping it, once per target (raises ProbeError)."""
        return self._cache.get(target)

    def _open(self, target: Target) -> _Session:
        where = f"{target.name} ({target.url or target.server_list})"
        if target.server_list:
            try:
                servers = load_server_list(target.server_list, self.timeout_s)
            except (OSError, ValueError) as exc:
                raise ProtocolFailure(f"{where}: server list: {exc}") from exc
        elif target.url:
            servers = [single_server(target.url, target.name)]
        else:
            raise ProtocolFailure(f"{target.name}: the librespeed engine needs url or server_list")
        selection: dict[str, Optional[float]] = {}
        if target.server_id:
            chosen = [s for s in servers if s.id == str(target.server_id) or s.name == str(target.server_id)]
            if not chosen:
                raise ProtocolFailure(f"{where}: no server with id or name {target.server_id!r} in the list")
            server = chosen[0]
        elif len(servers) == 1:
            server = servers[0]
        else:
            server, selection = self._select(servers, target.secure)
        with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
            ip_url = server.url("getIpURL", target.secure)
            resp = client.get(_bust(ip_url))
            if resp.status_code != 200:
                raise ProtocolFailure(f"{where}: {ip_url} answered HTTP {resp.status_code}: not a LibreSpeed backend")
            ip = _client_ip(resp.text[:4096])
            if ip is None:
                raise ProtocolFailure(
                    f"{where}: {ip_url} answered {one_line(resp.text[:60])!r}, not an IP address: not a LibreSpeed backend"
                )
            pings = self._pings(client, server.url("pingURL", target.secure), where, PING_COUNT)
        return _Session(server, target.secure, ip, pings, selection)

    @staticmethod
    def _pings(client: httpx.Client, url: str, where: str, count: int) -> list[Optional[float]]:
        out: list[Optional[float]] = []
        for _ in range(count):
            t0 = time.perf_counter()
            try:
                resp = client.get(_bust(url))
            except httpx.HTTPError:
                out.append(None)
                continue
            ms = (time.perf_counter() - t0) * 1000
            if resp.status_code != 200:
                raise ProtocolFailure(f"{where}: {url} answered HTTP {resp.status_code}: not a LibreSpeed backend")
            if len(resp.content) > 1024:
                raise ProtocolFailure(
                    f"{where}: {url} answered {len(resp.content)} bytes; empty.php answers none: not a LibreSpeed backend"
                )
            out.append(round(ms, 3))
        return out

    def _select(self, servers: list[LibreSpeedServer], secure: bool) -> tuple[LibreSpeedServer, dict[str, Optional[float]]]:
        """The lowest-ping server (three pings each, six servers at a time, like LibreSpeed's selector)."""

        def best_ping(s: LibreSpeedServer) -> Optional[float]:
            try:
                with httpx.Client(timeout=2.0, trust_env=False) as client:
                    got = [p for p in self._pings(client, s.url("pingURL", secure), s.name, 3) if p is not None]
            except Exception:
                return None
            return min(got) if got else None

        with ThreadPoolExecutor(max_workers=6) as pool:
            pings = list(pool.map(best_ping, servers))
        table = {s.name: p for s, p in zip(servers, pings)}
        alive = [(p, i) for i, p in enumerate(pings) if p is not None]
        if not alive:
            raise ProtocolFailure(f"none of the {len(servers)} servers in the list answered its pingURL")
        return servers[min(alive)[1]], table

    # ------------------------------------------------------------------------------- measuring
    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        try:
            sess = self.session(target)
        except ProbeError as exc:
            return failed(target, plan, self.name, str(exc), exc.kind)
        key = "dlURL" if plan.direction == "download" else "ulURL"
        url = sess.server.url(key, sess.secure)
        if plan.direction == "download":
            url = f"{url}{'&' if '?' in url else '?'}ckSize={CK_SIZE}"
        where = f"{target.name} ({url.split('?')[0]})"
        local_stop = threading.Event()
        streams = [_Stream(url, plan.direction, local_stop, where) for _ in range(plan.streams)]
        t0, points = run_streams(streams, plan.duration_s, plan.interval_s, stop, local_stop)
        err_text, err_kind = named_stream_errors([s.error for s in streams if s.error is not None], len(streams), where)
        return summarize(
            target,
            plan,
            self.name,
            points,
            per_stream_bytes=[s.bytes for s in streams],
            url=url.split("?")[0],
            error=err_text and one_line(err_text),
            error_kind=err_kind,
            server=sess.record(),
            engine_raw=sess.raw(),
        )
