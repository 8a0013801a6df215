"""Proxy probe: which path each HTTP target takes, and what the proxy adds to time-to-first-byte.

For every HTTP target the proxy a browser would use is chosen (``proxy.ProxyConfig``: site
file, environment or system settings, PAC). Through a proxy, two series are taken side by side:

- TCP connect round trips to the proxy itself (``tcp-connect``): the network's share;
- time to the first byte of ``GET /rtt`` through the proxy on a kept-alive connection to it
  (``http-ttfb``): the network's share plus everything the proxy does (authentication, content
  inspection, its own upstream connection). The first request, which also opens the
  connection, is not counted.

ICMP and UDP never go through an HTTP proxy, and neither does DNS: the report marks those
probes ``direct`` so a reader knows which path each figure describes.
"""

from __future__ import annotations

import socket
import time
from typing import Optional
from urllib.parse import urlsplit

import httpx

from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import LatencySeries, ProxyPath, ProxyReport, Target
from giga_netcheck.core.stats import summarize_rtts
from giga_netcheck.measure.failures import map_exception
from giga_netcheck.measure.probes.base import Probe, ProbeContext, ProbeOutput
from giga_netcheck.measure.probes.family import FamilyUnusable, connect_series
from giga_netcheck.measure.proxy_discovery import ProxyConfig, without_credentials

TTFB_COUNT_MAX = 15
"""Requests through the proxy per target (after the one that opens the connection)."""


def resolve_v4_or_v6(host: str) -> Optional[str]:
    """``dnsResolve`` for PAC scripts: the first address, or None."""
    try:
        return str(socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)[0][4][0])
    except (socket.gaierror, UnicodeError, IndexError):
        return None


def probe_paths(cfg: ProxyConfig, any_via_proxy: bool, bandwidth_via_proxy: bool = False) -> dict[str, str]:
    """Which probes go through the proxy. ICMP, UDP and DNS never can; the own HTTP throughput
    engine goes through it where it applies (each bandwidth figure records its ``proxy``, null:
    direct), the other engines, the server check and the load ramp still connect direct."""
    return {
        "latency": "direct",
        "dns": "direct",
        "bandwidth": "proxy" if bandwidth_via_proxy else "direct",
        "identify": "direct",
        "family": "direct",
        "load": "direct",
        "proxy": "proxy" if any_via_proxy else "direct",
    }


def ttfb_series(target: Target, url: str, proxy: str, count: int, timeout_s: float, stop) -> tuple[LatencySeries, Optional[BaseException]]:
    """``count`` + 1 ``GET`` through ``proxy`` on one client; the first (connection setup) dropped."""
    rtts: list[Optional[float]] = []
    error: Optional[BaseException] = None
    with httpx.Client(proxy=proxy, trust_env=False, timeout=httpx.Timeout(timeout_s)) as client:
        for i in range(count + 1):
            if stop.is_set():
                break
            t0 = time.perf_counter()
            try:
                with client.stream("GET", url) as resp:
                    ms = (time.perf_counter() - t0) * 1000.0
                    resp.read()
                    ok = resp.status_code < 500
            except Exception as exc:  # recorded: a proxy that refuses or times out is data
                error, ms, ok = exc, None, False
            if i > 0:
                rtts.append(round(ms, 3) if ok and ms is not None else None)
    series = LatencySeries(
        target.name, target.role, urlsplit(proxy).hostname or proxy, "http-ttfb", "proxy", tuple(rtts), summarize_rtts(rtts)
    )
    return series, error


class ProxyProbe(Probe):
    """Record the proxy settings and, per HTTP target through a proxy, connect RTT vs TTFB."""

    name = "proxy"

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        cfg: ProxyConfig = ctx.proxy or ProxyConfig()
        s = ctx.settings
        count = max(5, min(TTFB_COUNT_MAX, s.latency_count))
        timeout = max(2.0, 4 * s.latency_timeout_s)
        paths: list[ProxyPath] = []
        http_targets: list[Target] = []
        for t in ctx.targets:
            if not t.url or ctx.stop.is_set():
                continue
            http_targets.append(t)
            choice = cfg.choose(t.url, resolve_v4_or_v6)
            if choice.proxy is None:
                paths.append(ProxyPath(t.name, t.role, t.url, None, choice.decided_by))
                continue
            ctx.progress.step(f"proxy to {t.name}")
            p = urlsplit(choice.proxy)
            proxy_host, proxy_port = p.hostname or "", p.port or (443 if p.scheme == "https" else 8080)
            addr = resolve_v4_or_v6(proxy_host)
            connect = None
            err_text = err_kind = None
            try:
                if addr is None:
                    raise FamilyUnusable(f"{proxy_host}: does not resolve")
                connect = connect_series(
                    Target(t.name, t.role, addr), addr, proxy_port, count, s.latency_interval_s, s.latency_timeout_s, "proxy", ctx.stop
                )
            except FamilyUnusable as exc:
                err_text, err_kind = str(exc), "unreachable"
            ttfb, exc = ttfb_series(t, f"{t.url}/rtt", choice.proxy, count, timeout, ctx.stop)
            if exc is not None and err_text is None:
                mapped = map_exception(exc)
                err_text, err_kind = str(mapped), mapped.kind
            paths.append(
                ProxyPath(t.name, t.role, t.url, without_credentials(choice.proxy), choice.decided_by, connect, ttfb, err_text, err_kind)
            )
        via = any(p.proxy for p in paths)
        notes = []
        if cfg.pac_status and cfg.pac_status != "evaluated":
            notes.append(Text(f"note.pac_{cfg.pac_status.replace('-', '_')}", url=cfg.pac_url or "", error=cfg.pac_error or ""))
        if cfg.detected:
            notes.append(Text("note.proxy_direct_probes"))
        out = ProbeOutput()
        out.proxy = ProxyReport(
            detected=cfg.detected,
            source=cfg.source,
            http=without_credentials(cfg.http),
            https=without_credentials(cfg.https),
            no_proxy=cfg.no_proxy,
            pac_url=without_credentials(cfg.pac_url),
            pac_status=cfg.pac_status,
            paths=tuple(paths),
            probe_paths=probe_paths(cfg, via, any(p.proxy for p, t in zip(paths, http_targets) if t.engine == "http")),
            notes=tuple(notes),
        )
        failed = [p for p in paths if p.proxy and p.error]
        if ctx.stop.is_set():
            out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"
        elif failed:
            out.status = "partial"
            out.reason = Text("reason.target_errors", errors="; ".join(f"{p.target}: {p.error}" for p in failed))
        return out
