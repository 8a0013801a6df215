"""The ``cloudflare`` engine: Cloudflare's speed-test endpoints (speed.cloudflare.com), or ``serve``.

speed.cloudflare.com serves ``GET /__down?bytes=N`` (N bytes; ``bytes=0`` answers nothing and is
the latency request) and ``POST /__up`` (the body is discarded), the two paths npm
``@cloudflare/speedtest`` uses; ``serve`` answers them too (server/cloudflare.py), so the engine is
tested offline against it. Cloudflare's anycast network has a data center close to every Japanese
ISP and answers over IPv4 and IPv6, so it is the zero-configuration internet target
(``config.site.public_target``) and the family comparison can use it (``family=``).

The engine is the own ``http`` engine's method on these paths (its stream class, the same
counting): several streams, each one connection looping over large requests; bytes counted as they
arrive (download) or as the server acknowledges them (upload, ``TCP_INFO``); the warm-up
discarded; samples every ``interval_s``; the headline figure over the time after the warm-up
(``_summary.summarize``). Latency under load is the bandwidth probe's (``LoadedLatencySampler``
runs around every multi-stream test, whatever the engine).

Before the first test, once per target: a few ``bytes=0`` requests on one connection (each must
answer 200 with no payload: a captive portal's or a proxy's page is refused as "not a Cloudflare
speed-test endpoint"), their round trips less the server's own time (``Server-Timing:
cfRequestDuration``) kept in ``engine_raw``, and one small download that must be exactly the
size asked for. The address the server saw (``cf-meta-ip``) and its data center
(``cf-meta-colo``, Cloudflare only) go to ``server``.

Where it differs from Cloudflare's own engine, on purpose: that one times a fixed series of
requests of growing size (100 kB ... 250 MB, one at a time) and reports the 90th percentile of
per-request rates; this one runs parallel streams for a fixed time like every engine here, so its
figures compare with the others'. Cloudflare's results-logging and TURN packet-loss endpoints are
never called.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional
from urllib.parse import urlsplit

import httpx

from giga_netcheck.core.errors import ProbeError, ProtocolFailure, TimeoutFailure
from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.core.stats import percentile
from giga_netcheck.measure.engines._summary import failed, one_line, summarize
from giga_netcheck.measure.engines.base import ThroughputEngine, ThroughputPlan, named_stream_errors, run_streams
from giga_netcheck.measure.engines.http import _UPLOAD_BLOCK, _abort_when_set, _Stream
from giga_netcheck.measure.failures import map_exception
from giga_netcheck.measure.proxy_discovery import without_credentials

DEFAULT_URL = "https://speed.cloudflare.com"
"""Cloudflare's public speed-test endpoints (the engine's base URL when a target gives none)."""
DOWN_BYTES = 100_000_000
"""Bytes per download request (Cloudflare's own engine asks for up to 250 MB)."""
UP_BYTES = 25_000_000
"""Bytes per upload request (Cloudflare's own engine posts up to 50 MB)."""
PING_COUNT = 5
PROBE_BYTES = 10_000
"""The preflight's small download: the answer must be exactly this many bytes."""
PREFLIGHT_LIMIT_S = 20.0
"""The endpoint check (pings and the small download) as a whole, whatever the server's pace."""
MAX_EMPTY_ANSWER = 64
"""A ``bytes=0`` answer longer than this is a page, not Cloudflare's empty answer."""
FAMILY_SOURCE = {"ipv4": "0.0.0.0", "ipv6": "::"}
"""Local addresses that pin a connection to a family: a host name that resolves to both is reached
over that family only (the other family's addresses fail to bind and are skipped)."""


def base_url(target: Target) -> str:
    """The target's base URL (``…/__down`` or ``…/__up`` trimmed), else Cloudflare's."""
    url = (target.url or DEFAULT_URL).rstrip("/")
    for tail in ("/__down", "/__up"):
        if url.endswith(tail):
            url = url[: -len(tail)]
    return url


def cloudflare_target(name: str = "internet", role: str = "internet", url: Optional[str] = None) -> Target:
    """A target measured by this engine: Cloudflare's endpoints, or ``url`` (a ``serve``)."""
    url = (url or DEFAULT_URL).rstrip("/")
    return Target(name, role, urlsplit(url).hostname or url, url, engine="cloudflare")


def _client(timeout: httpx.Timeout, proxy: Optional[str], family: Optional[str], tls: bool) -> httpx.Client:
    """One client (one connection at a time), direct over ``family`` when one is given."""
    if family is not None:
        transport = httpx.HTTPTransport(local_address=FAMILY_SOURCE[family], verify=tls)
        return httpx.Client(timeout=timeout, trust_env=False, transport=transport)
    return httpx.Client(timeout=timeout, trust_env=False, proxy=proxy, verify=tls)


def upload_size(plan: ThroughputPlan) -> int:
    """Bytes per upload request: whole upload blocks, at most UP_BYTES and the plan's size."""
    return max(1, min(plan.request_bytes, UP_BYTES) // len(_UPLOAD_BLOCK)) * len(_UPLOAD_BLOCK)


class _CfStream(_Stream):
    """The http engine's stream (its counters, its upload abort) on ``/__down`` and ``/__up``."""

    def __init__(self, base: str, plan: ThroughputPlan, stop: threading.Event, family: Optional[str], where: str) -> None:
        super().__init__(base, plan, stop)
        self.name = "gnc-cloudflare"
        self.family = family
        self.where = where
        self.down_bytes = max(1, min(plan.request_bytes, DOWN_BYTES))
        self.up_bytes = upload_size(plan)

    def run(self) -> None:
        tls = any(u.lower().startswith("https:") for u in (self.base_url, self.plan.proxy or ""))
        try:
            with _client(httpx.Timeout(10.0, connect=5.0), self.plan.proxy, self.family, tls) as client:
                try:
                    while not self.stop.is_set():
                        self._download(client) if self.plan.direction == "download" else self._upload(client)
                finally:
                    self._attach(None)
        except BaseException as exc:  # recorded, the measurement goes on with other streams
            if not self.stop.is_set():
                self.error = exc

    def _download(self, client: httpx.Client) -> None:
        got = 0
        with client.stream("GET", f"{self.base_url}/__down?bytes={self.down_bytes}") as resp:
            if resp.status_code != 200:
                raise ProtocolFailure(f"{self.where}: /__down answered HTTP {resp.status_code}")
            for chunk in resp.iter_raw():
                self._received += len(chunk)
                got += len(chunk)
                if self.stop.is_set():
                    return
        if got < min(self.down_bytes, 1 << 16):  # an error page, or a server that sends nothing
            raise ProtocolFailure(f"{self.where}: /__down answered {got} of {self.down_bytes} bytes")

    def _upload(self, client: httpx.Client) -> None:
        size = self.up_bytes

        def body() -> Iterator[bytes]:
            sent = 0
            while sent < size and not self.stop.is_set():
                yield _UPLOAD_BLOCK
                sent += len(_UPLOAD_BLOCK)
                self._accepted += len(_UPLOAD_BLOCK)

        # A Content-Length, as browsers send (no chunked framing to a third party's server).
        resp = client.post(
            f"{self.base_url}/__up",
            content=body(),
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            extensions={"trace": self._trace},
        )
        if resp.status_code != 200 and not self.stop.is_set():
            raise ProtocolFailure(f"{self.where}: /__up answered HTTP {resp.status_code} to an upload")


def server_time_ms(header: Optional[str]) -> Optional[float]:
    """The server's own time in ``Server-Timing: cfRequestDuration;dur=<ms>``, or None."""
    for metric in (header or "").split(","):
        name, _, params = metric.strip().partition(";")
        if name.strip().lower() in ("cfrequestduration", "cfreqdur"):
            for p in params.split(";"):
                key, _, value = p.strip().partition("=")
                if key.strip().lower() == "dur":
                    try:
                        ms = float(value.strip().strip('"'))
                    except ValueError:
                        return None
                    return ms if 0 <= ms < 1e7 else None
    return None


@dataclass
class _Session:
    base: str
    family: Optional[str]
    client_ip: Optional[str] = None
    colo: Optional[str] = None
    ping_ms: list[float] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"kind": "cloudflare", "url": self.base}
        if self.client_ip:
            rec["client_ip"] = self.client_ip
        if self.colo:
            rec["colo"] = self.colo
        return rec

    def raw(self, plan: ThroughputPlan) -> dict[str, Any]:
        p50 = percentile(self.ping_ms, 50) if self.ping_ms else None
        return {
            "protocol": "cloudflare",
            "request_bytes": min(plan.request_bytes, DOWN_BYTES) if plan.direction == "download" else upload_size(plan),
            "family": self.family,
            "ping_ms": self.ping_ms,
            "ping_p50_ms": None if p50 is None else round(p50, 3),
        }


def _in_time(deadline: float, where: str) -> None:
    """The preflight as a whole is bounded: a server that answers a byte at a time is dropped."""
    if time.monotonic() > deadline:
        raise TimeoutFailure(f"{where}: the endpoint check took more than {PREFLIGHT_LIMIT_S:g} s")


def _header(resp: httpx.Response, name: str, limit: int = 64) -> Optional[str]:
    value = resp.headers.get(name)
    return one_line(value, limit) if value else None


class CloudflareEngine(ThroughputEngine):
    """Parallel streams on Cloudflare's ``/__down`` and ``/__up`` (speed.cloudflare.com or ``serve``).

    ``family`` (``ipv4``/``ipv6``): every connection over that family only, direct (the family
    comparison: the same host name, each family in turn)."""

    name = "cloudflare"
    supports_proxy = True

    def __init__(self, family: Optional[str] = None, timeout_s: float = 5.0) -> None:
        if family is not None and family not in FAMILY_SOURCE:
            raise ValueError(f"family must be ipv4 or ipv6, not {family!r}")
        self.family = family
        self.timeout_s = timeout_s
        self._sessions: dict[tuple[str, str, Optional[str]], _Session] = {}
        self._errors: dict[tuple[str, str, Optional[str]], ProbeError] = {}
        self._lock = threading.Lock()

    def session(self, target: Target, proxy: Optional[str] = None) -> _Session:
        """Check the endpoint and measure its idle round trip, once per target (raises ProbeError)."""
        key = (target.name, base_url(target), None if self.family else proxy)
        with self._lock:
            if key in self._errors:
                raise self._errors[key]
            if key not in self._sessions:
                try:
                    self._sessions[key] = self._open(target, key[2])
                except Exception as exc:
                    err = self._error(exc, target)
                    self._errors[key] = err
                    raise err from exc
            return self._sessions[key]

    def _error(self, exc: BaseException, target: Target) -> ProbeError:
        mapped = map_exception(exc)
        text = str(mapped)
        where = f"{target.name} ({base_url(target)})"
        if not text.startswith(where):
            text = f"{where}: {text}"
        err = type(mapped)(one_line(text))
        err.kind = mapped.kind
        return err

    def _open(self, target: Target, proxy: Optional[str]) -> _Session:
        base = base_url(target)
        where = f"{target.name} ({base})"
        sess = _Session(base, self.family)
        not_cf = "not a Cloudflare speed-test endpoint"
        deadline = time.monotonic() + PREFLIGHT_LIMIT_S
        with _client(httpx.Timeout(self.timeout_s), proxy, self.family, base.lower().startswith("https:")) as client:
            for _ in range(PING_COUNT):
                _in_time(deadline, where)
                t0 = time.perf_counter()
                with client.stream("GET", f"{base}/__down?bytes=0") as resp:
                    ms = (time.perf_counter() - t0) * 1000
                    if resp.status_code != 200:
                        raise ProtocolFailure(f"{where}: /__down?bytes=0 answered HTTP {resp.status_code}: {not_cf}")
                    body = b""
                    for chunk in resp.iter_raw():
                        body += chunk
                        _in_time(deadline, where)
                        if len(body) > MAX_EMPTY_ANSWER:
                            raise ProtocolFailure(f"{where}: /__down?bytes=0 answered a page, not an empty answer: {not_cf}")
                server_ms = server_time_ms(resp.headers.get("server-timing")) or 0.0
                sess.ping_ms.append(round(max(0.0, ms - server_ms), 3))
                sess.client_ip = _header(resp, "cf-meta-ip") or sess.client_ip
                sess.colo = _header(resp, "cf-meta-colo", 16) or sess.colo
            got = 0
            with client.stream("GET", f"{base}/__down?bytes={PROBE_BYTES}") as resp:
                if resp.status_code != 200:
                    raise ProtocolFailure(f"{where}: /__down?bytes={PROBE_BYTES} answered HTTP {resp.status_code}: {not_cf}")
                for chunk in resp.iter_raw():
                    got += len(chunk)
                    _in_time(deadline, where)
                    if got > PROBE_BYTES:
                        break
            if got != PROBE_BYTES:
                raise ProtocolFailure(f"{where}: /__down?bytes={PROBE_BYTES} answered {got} bytes: {not_cf}")
        return sess

    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        proxy = None if self.family else plan.proxy
        base = base_url(target)
        path = "/__down" if plan.direction == "download" else "/__up"
        try:
            sess = self.session(target, proxy)
        except ProbeError as exc:
            return failed(target, plan, self.name, str(exc), exc.kind, url=base + path)
        where = f"{target.name} ({base}{path})"
        run_plan = ThroughputPlan(plan.direction, plan.streams, plan.duration_s, plan.warmup_s, plan.interval_s, plan.request_bytes, proxy)
        local_stop = threading.Event()
        streams = [_CfStream(base, run_plan, local_stop, self.family, where) for _ in range(plan.streams)]
        if plan.direction != "download":
            threading.Thread(target=_abort_when_set, args=(local_stop, streams), daemon=True, name="gnc-abort").start()
        _, points = run_streams(streams, plan.duration_s, plan.interval_s, stop, local_stop)
        err_text, err_kind = named_stream_errors([s.error for s in streams if s.error is not None], len(streams), where)
        return summarize(
            target,
            plan,
            self.name,
            points,
            per_stream_bytes=[s.bytes for s in streams],
            url=base + path,
            error=err_text and one_line(err_text),
            error_kind=err_kind,
            server=sess.record(),
            engine_raw=sess.raw(plan),
            proxy=without_credentials(proxy),
        )
