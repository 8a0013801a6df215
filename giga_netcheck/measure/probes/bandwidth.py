"""Bandwidth probe: multi-stream download and upload to each measurement server (capacity),
one stream down to each (per-flow behaviour), with RTT to every hop sampled meanwhile.

HTTP transfers go through the proxy a browser here would use for the target's URL
(``proxy.ProxyConfig``: site file, host settings, PAC) when the engine supports it (the own
``http`` engine); each figure records the proxy in ``proxy``, None when it went direct."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import Target
from giga_netcheck.measure.engines import ThroughputEngine, ThroughputPlan, registry
from giga_netcheck.measure.engines.http import HttpEngine
from giga_netcheck.measure.probes.base import Probe, ProbeContext, ProbeOutput
from giga_netcheck.measure.probes.latency import LoadedLatencySampler
from giga_netcheck.measure.probes.proxy import resolve_v4_or_v6


def proxy_for(ctx: ProbeContext, target: Target, engine: ThroughputEngine) -> Optional[str]:
    """The proxy browsers would use for the target's URL, if the engine can go through one."""
    if ctx.proxy is None or not target.url or not engine.supports_proxy:
        return None
    return ctx.proxy.choose(target.url, resolve_v4_or_v6).proxy


class BandwidthProbe(Probe):
    name = "bandwidth"

    def __init__(self, engine: Optional[ThroughputEngine] = None) -> None:
        # An engine given here (the scheduled mode's byte-capped one, a test's fake) measures the
        # giga-netcheck servers and is the only one used: targets of other engines are skipped.
        self.engine = engine or HttpEngine()
        self.only = engine is not None
        self._engines: dict[str, ThroughputEngine] = {}

    def engine_for(self, target: Target) -> ThroughputEngine:
        """The target's engine (``engine:`` in the site file or ``run --engine``), one instance each."""
        if target.engine == "http":
            return self.engine
        if target.engine not in self._engines:
            self._engines[target.engine] = registry()[target.engine]()
        return self._engines[target.engine]

    def check(self, ctx: ProbeContext) -> Optional[str]:
        if not ctx.settings.bandwidth_enabled:
            return Text("reason.bandwidth_disabled")
        if not self._servers(ctx):
            return Text("reason.no_server")
        return None

    def _servers(self, ctx: ProbeContext) -> list[Target]:
        # giga-netcheck servers once /id verified them; other engines check their servers themselves
        return [
            t
            for t in ctx.targets
            if (t.engine == "http" and t.url and t.name in ctx.servers) or (t.engine != "http" and t.role != "gateway" and not self.only)
        ]

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        s = ctx.settings
        servers = self._servers(ctx)
        tests = []
        for t in servers:
            tests.append((t, "download", s.streams))
            tests.append((t, "upload", s.streams))
            # one flow against many: per-flow limits, located by which server shows it (not for an
            # engine that is one connection by design: its download was that flow already)
            if s.streams > 1 and getattr(self.engine_for(t), "max_streams", None) != 1:
                tests.append((t, "download", 1))
        out = ProbeOutput()
        for t, direction, streams in tests:
            if ctx.stop.is_set():
                break
            ctx.progress.step(f"{direction} x{streams} to {t.name}", total=s.duration_s)
            engine = self.engine_for(t)
            plan = ThroughputPlan(direction, streams, s.duration_s, s.warmup_s, proxy=proxy_for(ctx, t, engine))
            if streams > 1:  # the line's figure (a one-connection engine too): latency under its load
                with LoadedLatencySampler(ctx, phase=f"{direction}:{t.name}") as sampler:
                    m = engine.measure(t, plan, ctx.stop)
                out.latency.extend(sampler.series())
            else:
                m = engine.measure(t, plan, ctx.stop)
            if m.server is None and t.name in ctx.servers:  # the giga-netcheck server that /id verified
                m = replace(m, server={"kind": "giga-netcheck", "url": t.url, "version": ctx.servers[t.name].get("version")})
            out.bandwidth.append(m)
        failed = [m for m in out.bandwidth if m.goodput_mbps is None]
        if ctx.stop.is_set():
            out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"
        elif failed and len(failed) == len(out.bandwidth):
            out.status, out.reason, out.reason_kind = "failed", failed[0].error or Text("reason.no_bytes"), failed[0].error_kind
        elif failed:
            out.status = "partial"
            out.reason = Text(
                "reason.some_tests_failed",
                failures="; ".join(f"{m.direction} → {m.target}" + (f": {m.error}" if m.error else "") for m in failed),
            )
        return out
