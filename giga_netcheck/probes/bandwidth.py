"""Bandwidth probe: multi-stream download and upload to each measurement server (capacity),
one stream down to each (per-flow behaviour), with RTT to every hop sampled meanwhile."""

from __future__ import annotations

from typing import Optional

from ..engines import ThroughputEngine, ThroughputPlan
from ..engines.http import HttpEngine
from ..models import Target
from .base import Probe, ProbeContext, ProbeOutput
from .latency import LoadedLatencySampler


class BandwidthProbe(Probe):
    name = "bandwidth"

    def __init__(self, engine: Optional[ThroughputEngine] = None) -> None:
        self.engine = engine or HttpEngine()

    def check(self, ctx: ProbeContext) -> Optional[str]:
        if not ctx.settings.bandwidth_enabled:
            return "disabled in the site file (probes.bandwidth.enabled: false)"
        if not self._servers(ctx):
            return "no measurement server among the targets (set targets.center or targets.internet to a giga-netcheck serve URL)"
        return None

    @staticmethod
    def _servers(ctx: ProbeContext) -> list[Target]:
        return [t for t in ctx.targets if t.url and t.name in ctx.servers]

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        s = ctx.settings
        servers = self._servers(ctx)
        tests = []
        for t in servers:
            tests.append((t, "download", s.streams))
            tests.append((t, "upload", s.streams))
            if s.streams > 1:  # one flow against many: per-flow limits, located by which server shows it
                tests.append((t, "download", 1))
        out = ProbeOutput()
        for t, direction, streams in tests:
            if ctx.stop.is_set():
                break
            ctx.progress.step(f"{direction} x{streams} to {t.name}", total=s.duration_s)
            plan = ThroughputPlan(direction, streams, s.duration_s, s.warmup_s)
            if streams > 1:
                with LoadedLatencySampler(ctx, phase=f"{direction}:{t.name}") as sampler:
                    m = self.engine.measure(t, plan, ctx.stop)
                out.latency.extend(sampler.series())
            else:
                m = self.engine.measure(t, plan, ctx.stop)
            out.bandwidth.append(m)
        failed = [m for m in out.bandwidth if m.goodput_mbps is None]
        if ctx.stop.is_set():
            out.status, out.reason, out.reason_kind = "partial", "interrupted", "interrupted"
        elif failed and len(failed) == len(out.bandwidth):
            out.status, out.reason, out.reason_kind = "failed", failed[0].error or "no bytes moved", failed[0].error_kind
        elif failed:
            out.status = "partial"
            out.reason = "; ".join(f"{m.direction} to {m.target}: {m.error or 'no bytes moved'}" for m in failed)
        return out
