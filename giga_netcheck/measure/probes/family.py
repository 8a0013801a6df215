"""IPv4 vs IPv6 to the same service: TCP connect RTT and a multi-stream download per family.

Where a measurement server's host name resolves to both an A and an AAAA record, the same
server is measured twice, pinned to each address: what a dual-stack browser gets over IPv6
(IPoE in Japan) against what an IPv4-only service gets (PPPoE, congested at peak hours).
A family this machine cannot use (no IPv6 address or route, connection refused) is recorded as
``not-measured`` with the reason: a school without IPv6 is not a fault.

The comparison is always direct, never through an HTTP proxy: a proxy would pick the family
itself and hide the one the school's line carries.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from dataclasses import replace
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import FamilyPath, LatencySeries, Target
from giga_netcheck.core.stats import summarize_rtts
from giga_netcheck.measure.engines import ThroughputPlan
from giga_netcheck.measure.engines.cloudflare import CloudflareEngine
from giga_netcheck.measure.engines.http import HttpEngine
from giga_netcheck.measure.probes.base import Probe, ProbeContext, ProbeOutput
from giga_netcheck.measure.probes.rtt import tcp_handshake

FAMILIES = (("ipv4", socket.AF_INET), ("ipv6", socket.AF_INET6))
RTT_COUNT_MAX = 20
"""TCP connects per family (fewer if the site asks for fewer latency probes)."""
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}


class FamilyUnusable(Exception):
    """This machine cannot reach the address over its family (no address, no route)."""


def family_addresses(host: str, port: int) -> dict[str, str]:
    """``{"ipv4": addr, "ipv6": addr}`` for the families ``host`` resolves to (first of each)."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return {}
    out: dict[str, str] = {}
    for fam, _, _, _, sockaddr in infos:
        name = "ipv4" if fam == socket.AF_INET else "ipv6" if fam == socket.AF_INET6 else None
        if name and name not in out:
            out[name] = str(sockaddr[0])
    return out


def tcp_connect_ms(address: str, port: int, timeout_s: float) -> Optional[float]:
    """One TCP handshake to a literal address of either family; ms, None when nothing answered.

    Raises :class:`FamilyUnusable` when the OS has no route or address for the family."""
    try:
        rtt, err = tcp_handshake(address, port, timeout_s)
    except OSError as exc:
        raise FamilyUnusable(str(exc)) from exc
    if err in _NO_ROUTE:
        raise FamilyUnusable(os.strerror(err))
    return rtt if err in (0, errno.ECONNREFUSED) else None


def connect_series(
    target: Target, address: str, port: int, count: int, interval_s: float, timeout_s: float, phase: str, stop
) -> LatencySeries:
    """``count`` TCP connects to ``address``:``port`` as a latency series (raises FamilyUnusable)."""
    rtts: list[Optional[float]] = []
    for i in range(count):
        if stop.is_set():
            break
        rtts.append(tcp_connect_ms(address, port, timeout_s))
        if i + 1 < count:
            time.sleep(interval_s)
    return LatencySeries(
        target.name,
        target.role,
        address,
        "tcp-connect",
        phase,
        tuple(None if r is None else round(r, 3) for r in rtts),
        summarize_rtts(rtts),
    )


def _pinned_url(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class FamilyProbe(Probe):
    """Measure every dual-stack measurement server over IPv4 and over IPv6."""

    name = "family"

    def __init__(self) -> None:
        self._plan: Optional[list[tuple[Target, int, dict[str, str]]]] = None

    def _dual_stack(self, ctx: ProbeContext) -> list[tuple[Target, int, dict[str, str]]]:
        if self._plan is None:
            self._plan = []
            for t in ctx.targets:
                # own servers that identified themselves, and Cloudflare's endpoints (dual-stack:
                # the zero-configuration target compares IPv4 with IPv6 too)
                if not t.url or not ((t.engine == "http" and t.name in ctx.servers) or t.engine == "cloudflare"):
                    continue
                parts = urlsplit(t.url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
                addrs = family_addresses(parts.hostname or t.host, port)
                if len(addrs) == 2:
                    self._plan.append((t, port, addrs))
        return self._plan

    def check(self, ctx: ProbeContext) -> Optional[str]:
        if not ctx.settings.bandwidth_enabled:
            return Text("reason.bandwidth_disabled")
        if not self._dual_stack(ctx):
            return Text("reason.family_single_stack")
        return None

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        s = ctx.settings
        out = ProbeOutput()
        count = max(5, min(RTT_COUNT_MAX, s.latency_count))
        for t, port, addrs in self._dual_stack(ctx):
            for fam, _ in FAMILIES:
                if ctx.stop.is_set():
                    break
                addr = addrs[fam]
                ctx.progress.step(f"{fam} to {t.name}", total=s.duration_s)
                try:
                    rtt = connect_series(t, addr, port, count, s.latency_interval_s, s.latency_timeout_s, "family", ctx.stop)
                except FamilyUnusable as exc:
                    out.families.append(
                        FamilyPath(t.name, t.role, fam, addr, "not-measured", Text("reason.family_unusable", family=fam, error=str(exc)))
                    )
                    continue
                if rtt.stats.received == 0:
                    out.families.append(
                        FamilyPath(t.name, t.role, fam, addr, "not-measured", Text("reason.family_no_answer", family=fam), rtt)
                    )
                    continue
                plan = ThroughputPlan("download", s.streams, s.duration_s, s.warmup_s)
                if t.engine == "cloudflare":  # the host name kept (TLS checks it), the family forced by the source address
                    m = CloudflareEngine(family=fam).measure(t, plan, ctx.stop)
                else:
                    m = HttpEngine().measure(Target(t.name, t.role, addr, _pinned_url(t.url or "", addr)), plan, ctx.stop)
                m = replace(m, family=fam)
                status = "ok" if m.goodput_mbps is not None else "not-measured"
                reason = None if status == "ok" else Text("reason.family_no_bytes", family=fam, error=m.error or "")
                out.families.append(FamilyPath(t.name, t.role, fam, addr, status, reason, rtt, m))
        if ctx.stop.is_set():
            out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"
        elif out.families and all(f.status != "ok" for f in out.families):
            out.status, out.reason = "partial", "; ".join(str(f.reason) for f in out.families if f.reason)
        return out
