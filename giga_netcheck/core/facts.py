"""Facts derived from measurements, shared by thresholds and triage (pure, no I/O).

Both need the same reductions (the line's download figure, idle and loaded RTT per hop, DNS
per resolver); computing them here once keeps the two modules about decisions, not arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import (
    BandwidthMeasurement,
    DiscoveredPath,
    DnsSeries,
    FamilyPath,
    LatencySeries,
    LoadResult,
    Measurements,
    PathHop,
    ProbeRecord,
    ProxyReport,
    Target,
)

BYTE_CAPPED_ENGINES = frozenset({"http-capped"})
"""Engines whose transfers are too small to judge capacity (the scheduled light plan)."""
ONE_STREAM_ENGINES = frozenset({"ndt7"})
"""Engines that are one TCP connection by design (M-Lab's ndt7): their figure is the line's
figure, never the single-stream half of a single-vs-several comparison."""


@dataclass(frozen=True)
class Facts:
    targets: tuple[Target, ...]
    idle: dict[str, LatencySeries]
    """Target name -> idle series."""
    loaded: dict[str, list[LatencySeries]]
    """Target name -> series sampled while a load ran."""
    bandwidth: tuple[BandwidthMeasurement, ...]
    dns: tuple[DnsSeries, ...]
    unidentified: dict[str, str] = field(default_factory=dict)
    """Target name -> why its URL was not accepted as a measurement server."""
    load: Optional[LoadResult] = None
    """The load probe's section (docs/load.md), None when it did not run."""
    families: tuple[FamilyPath, ...] = ()
    """IPv4 and IPv6 to the same services (probes/family.py)."""
    proxy: Optional[ProxyReport] = None
    """Proxy settings and connect RTT vs TTFB through the proxy (probes/proxy.py)."""
    paths: tuple[DiscoveredPath, ...] = ()
    """Traceroutes to the internet targets (probes/path.py)."""
    hops: tuple[Target, ...] = ()
    """Routers the traceroutes found that are none of the targets, nearest first (role ``hop``,
    or ``gateway`` for the first hop when no gateway was known)."""

    @classmethod
    def of(cls, targets: tuple[Target, ...], m: Measurements, probes: tuple[ProbeRecord, ...] = ()) -> Facts:
        idle = {s.target: s for s in m.latency if s.phase == "idle"}
        loaded: dict[str, list[LatencySeries]] = {}
        for s in m.latency:
            if s.phase != "idle":
                loaded.setdefault(s.target, []).append(s)
        unidentified = {
            p.probe.split(":", 1)[1]: (Text(p.reason_key, **p.reason_args) if p.reason_key else p.reason or p.status)
            for p in probes
            if p.probe.startswith("identify:")
        }
        names = {t.name for t in targets}
        hops: dict[str, Target] = {}
        for p in m.paths:
            for h in p.hops:
                if h.name and h.address and h.name not in names and h.name not in hops:
                    hops[h.name] = Target(h.name, h.role or "hop", h.address)
        return cls(
            tuple(targets),
            idle,
            loaded,
            tuple(m.bandwidth),
            tuple(m.dns),
            unidentified,
            m.load,
            tuple(m.families),
            m.proxy,
            tuple(m.paths),
            tuple(hops.values()),
        )

    # ---------------------------------------------------------------- targets
    def by_role(self, role: str) -> list[Target]:
        return [t for t in self.route if t.role == role]

    def target(self, name: str) -> Optional[Target]:
        return next((t for t in self.route if t.name == name), None)

    @property
    def route(self) -> tuple[Target, ...]:
        """Targets and discovered hops, nearest first: a target sits at the TTL where a trace met
        it; one no trace met keeps its place by role (gateway first, then center, internet)."""
        if not self.hops:
            return self.targets
        ttl = {h.name: h.ttl for p in self.paths for h in p.hops if h.name}
        default = {"gateway": 0.5, "center": 100.0, "internet": 200.0}

        def where(i_t: tuple[int, Target]) -> tuple[float, int]:
            i, t = i_t
            return (float(ttl[t.name]) if t.name in ttl else default.get(t.role, 300.0), i)

        return tuple(t for _, t in sorted(enumerate(self.targets + self.hops), key=where))

    def path_hop(self, name: str) -> Optional[PathHop]:
        """The traceroute's record of a discovered hop (its TTL and address)."""
        return next((h for p in self.paths for h in p.hops if h.name == name), None)

    # -------------------------------------------------------------- bandwidth
    def throughput(self, target: str, direction: str, single: bool = False) -> Optional[BandwidthMeasurement]:
        for b in self.bandwidth:
            if b.engine in BYTE_CAPPED_ENGINES:
                continue  # a few MB cannot measure capacity (scheduled light runs keep them for trends)
            one_flow = b.streams == 1 and b.engine not in ONE_STREAM_ENGINES  # a single-stream probe, not the line figure
            if b.target == target and b.direction == direction and one_flow == single and b.goodput_mbps is not None:
                return b
        return None

    def line(self, direction: str) -> Optional[BandwidthMeasurement]:
        """The multi-stream figure to the farthest server that measured (internet before center)."""
        for role in ("internet", "center"):
            found = [b for t in self.by_role(role) if (b := self.throughput(t.name, direction)) is not None]
            if found:
                return min(found, key=lambda b: b.goodput_mbps or 0.0)
        return None

    # ---------------------------------------------------------------- latency
    def idle_p50(self, target: str) -> Optional[float]:
        s = self.idle.get(target)
        return s.stats.p50_ms if s else None

    def loaded_increase(self, target: str) -> Optional[tuple[float, LatencySeries]]:
        """Largest p50 increase under any load over the idle p50, with the loaded series."""
        base = self.idle_p50(target)
        if base is None:
            return None
        best: Optional[tuple[float, LatencySeries]] = None
        for s in self.loaded.get(target, []):
            if s.stats.p50_ms is None or s.stats.received < 3:
                continue
            inc = s.stats.p50_ms - base
            if best is None or inc > best[0]:
                best = (inc, s)
        return best

    def farthest_idle(self) -> Optional[LatencySeries]:
        """Idle series to the farthest answering target (internet before center before gateway)."""
        for role in ("internet", "center", "gateway"):
            got = [self.idle[t.name] for t in self.by_role(role) if t.name in self.idle and self.idle[t.name].stats.received]
            if got:
                return max(got, key=lambda s: s.stats.p50_ms or 0.0)
        return None

    def silent(self, target: str) -> bool:
        """No answer at all: every latency probe lost and no bytes moved."""
        s = self.idle.get(target)
        answered = s is not None and s.stats.received > 0
        moved = any(b.target == target and b.bytes_total > 0 for b in self.bandwidth)
        return not answered and not moved and (s is not None and (s.stats.sent > 0 or s.error is not None))
