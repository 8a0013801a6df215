"""Latency probe: RTT, jitter and loss to each hop, idle; and a sampler for loaded latency."""

from __future__ import annotations

import threading
import time
from typing import Optional
from urllib.parse import urlsplit

from giga_netcheck.core.errors import ProbeError
from giga_netcheck.core.facts import Facts
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import LatencySeries, Measurements, Target
from giga_netcheck.core.stats import summarize_rtts
from giga_netcheck.core.triage import loss_probes_wanted
from giga_netcheck.measure.failures import map_exception
from giga_netcheck.measure.probes.base import Probe, ProbeContext, ProbeOutput, in_parallel, no_answer_reason
from giga_netcheck.measure.probes.rtt import RttMethod, open_method

AUTO_ORDER = ["icmp", "icmp-dgram", "udp-echo", "tcp-connect"]
GATEWAY_TCP_PORT = 80


FOLLOW_UP_INTERVAL_S = 0.02
"""Spacing of the follow-up probes to the gateway: 50 small echo requests a second on the LAN."""
FOLLOW_UP_MAX = 300
"""At most this many follow-up probes: enough to rule out a LAN losing 1% (299), about 6 s."""
FOLLOW_UP_LIMIT_S = 10.0
"""And at most this long, lost probes' timeouts included."""


def method_order(setting: str) -> list[str]:
    return AUTO_ORDER if setting == "auto" else [setting]


def _ports(target: Target, servers: dict) -> tuple[Optional[int], Optional[int]]:
    ident = servers.get(target.name)
    udp = ident.get("udp_echo_port") if ident else None
    tcp = GATEWAY_TCP_PORT
    if target.url:
        parts = urlsplit(target.url)
        tcp = parts.port or (443 if parts.scheme == "https" else 80)
    return udp, tcp


def measure_series(
    target: Target,
    ctx: ProbeContext,
    *,
    phase: str,
    count: int,
    interval_s: float,
    deadline: Optional[float] = None,
    stop: Optional[threading.Event] = None,
    methods: Optional[list[str]] = None,
) -> LatencySeries:
    """Send ``count`` probes (or until ``deadline``/``stop``); never raises. ``methods``: the
    methods to try in order (default: the site's setting)."""
    stop = stop or ctx.stop
    udp, tcp = _ports(target, ctx.servers)
    rtts: list[Optional[float]] = []
    method: Optional[RttMethod] = None
    error = kind = None
    name = "none"
    try:
        method, why = open_method(methods or method_order(ctx.settings.latency_method), target.host, udp_port=udp, tcp_port=tcp)
        name = method.name
        for i in range(count):
            if stop.is_set() or ctx.stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                break
            t0 = time.monotonic()
            rtts.append(method.once(ctx.settings.latency_timeout_s))
            rest = interval_s - (time.monotonic() - t0)
            if rest > 0 and i < count - 1:
                stop.wait(rest)
    except ProbeError as exc:
        error, kind = str(exc), exc.kind
    except Exception as exc:  # a failure is a result
        mapped = map_exception(exc)
        error, kind = str(mapped), mapped.kind
    finally:
        if method is not None:
            method.close()
    return LatencySeries(
        target=target.name,
        role=target.role,
        host=target.host,
        method=name,
        phase=phase,
        rtts_ms=tuple(None if r is None else round(r, 4) for r in rtts),
        stats=summarize_rtts(rtts),
        error=error,
        error_kind=kind,
    )


class LatencyProbe(Probe):
    """Idle RTT to every target, all targets in parallel (one thread each)."""

    name = "latency"

    def check(self, ctx: ProbeContext) -> Optional[str]:
        return None if ctx.targets else Text("reason.no_target")

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        s = ctx.settings
        results: dict[str, LatencySeries] = {}
        ctx.progress.step("latency (idle)", total=s.latency_count * s.latency_interval_s)

        def one(t: Target) -> None:
            results[t.name] = measure_series(t, ctx, phase="idle", count=s.latency_count, interval_s=s.latency_interval_s)

        in_parallel(one, [(t,) for t in ctx.targets])
        series = [results[t.name] for t in ctx.targets if t.name in results]
        out = ProbeOutput(latency=series)
        failed = [x for x in series if x.error or x.stats.received == 0]
        if ctx.stop.is_set():
            out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"
        elif failed and len(failed) == len(series):
            out.status, out.reason = "failed", no_answer_reason([(x.target, x.error) for x in failed])
            out.reason_kind = failed[0].error_kind or "timeout"
        elif failed:
            out.status, out.reason = "partial", no_answer_reason([(x.target, x.error) for x in failed])
        return out


class LossPlacementProbe(Probe):
    """Follow-up: the idle probes that find and place a loss the run cannot place yet (a slow
    single flow that a loss could explain; loss beyond a gateway whose clean probes are too few to
    rule out the LAN): core.triage.loss_probes_wanted says how many to which target; they go out
    in parallel, bounded by FOLLOW_UP_MAX and FOLLOW_UP_LIMIT_S, each by its target's idle method,
    and join its idle series."""

    name = "loss-placement"

    def check(self, ctx: ProbeContext) -> Optional[str]:
        return None

    def run(self, ctx: ProbeContext) -> ProbeOutput:
        so_far = ctx.measured or ProbeOutput()
        m = Measurements(bandwidth=tuple(so_far.bandwidth), latency=tuple(so_far.latency), paths=tuple(so_far.paths))
        facts = Facts.of(tuple(ctx.targets), m)
        profile = ctx.profiles.get(ctx.site.profile) or next(iter(ctx.profiles.values()), None)
        if profile is None:
            return ProbeOutput()
        want = {name: min(FOLLOW_UP_MAX, n) for name, n in loss_probes_wanted(facts, profile).items()}
        points = [(t, want[t.name]) for t in facts.route if t.name in want and t.name in facts.idle]
        if not points:
            return ProbeOutput()
        longest = max(n for _, n in points)
        ctx.progress.step(", ".join(f"{t.name}: {n} more probes" for t, n in points), total=longest * FOLLOW_UP_INTERVAL_S)
        deadline = time.monotonic() + FOLLOW_UP_LIMIT_S
        results: dict[str, LatencySeries] = {}

        def one(t: Target, n: int) -> None:
            results[t.name] = measure_series(
                t, ctx, phase="idle", count=n, interval_s=FOLLOW_UP_INTERVAL_S, deadline=deadline, methods=[facts.idle[t.name].method]
            )

        in_parallel(one, points)
        series = [results[t.name] for t, _ in points if t.name in results]
        out = ProbeOutput(latency=series)
        failed = [x for x in series if x.error]
        if ctx.stop.is_set():
            out.status, out.reason, out.reason_kind = "partial", Text("reason.interrupted"), "interrupted"
        elif failed:
            out.status, out.reason = "partial", no_answer_reason([(x.target, x.error) for x in failed])
            out.reason_kind = failed[0].error_kind
        return out


class LoadedLatencySampler:
    """Keeps sampling RTT to every target (and every hop the path probe discovered) while a load
    runs, in one thread per target."""

    def __init__(self, ctx: ProbeContext, phase: str, interval_s: float = 0.2) -> None:
        self.ctx = ctx
        self.phase = phase
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._results: dict[str, LatencySeries] = {}
        self._points = list(ctx.targets) + [h for h in getattr(ctx, "hops", []) if h.name not in {t.name for t in ctx.targets}]
        self._threads = [threading.Thread(target=self._one, args=(t,), daemon=True) for t in self._points]

    def _one(self, t: Target) -> None:
        self._results[t.name] = measure_series(t, self.ctx, phase=self.phase, count=10_000, interval_s=self.interval_s, stop=self._stop)

    def __enter__(self) -> LoadedLatencySampler:
        for th in self._threads:
            th.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(self.ctx.settings.latency_timeout_s + 1.0)

    def series(self) -> list[LatencySeries]:
        return [self._results[t.name] for t in self._points if t.name in self._results]
