"""The reduction every engine shares: counter points -> samples, warm-up cut, goodput, p50/p90.

The own engine (http.py) does the same inline; engines that drive someone else's client
(speedtest-cli) or speak someone else's protocol (LibreSpeed) sample their byte counters the
same way and hand the points here, so every engine's headline figure means the same thing:
bytes moved after the warm-up divided by the time after it (iperf3's ``-O``).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.core.stats import percentile
from giga_netcheck.measure.engines.base import ThroughputPlan, rate_samples


def summarize(
    target: Target,
    plan: ThroughputPlan,
    engine: str,
    points: Sequence[tuple[float, int, bool]],
    *,
    per_stream_bytes: Sequence[int] = (),
    url: Optional[str] = None,
    error: Optional[str] = None,
    error_kind: Optional[str] = None,
    server: Optional[dict[str, Any]] = None,
    engine_raw: Optional[dict[str, Any]] = None,
    notes: tuple[str, ...] = (),
    whole_if_short: bool = False,
) -> BandwidthMeasurement:
    """One measurement from ``poll_streams`` points (the first is ``(t0, 0, True)``).

    ``whole_if_short``: for clients that move a fixed amount (speedtest-cli's set of files), a
    transfer that ended before the warm-up still gets a figure, over its whole time, and the
    note ``engine.short_transfer`` says so."""
    t_start = points[0][0]
    samples = rate_samples(points)
    t_end, last_total, _ = points[-1]
    warm = next(((t, b) for t, b, _ in points[1:] if t - t_start >= plan.warmup_s), None)
    goodput: Optional[float] = None
    if warm is not None and t_end > warm[0] and last_total > 0:
        goodput = (last_total - warm[1]) * 8 / (t_end - warm[0]) / 1e6
    span = max(t_end - t_start, 1e-9)
    if goodput is None and whole_if_short and last_total > 0 and error is None:
        goodput = last_total * 8 / span / 1e6
        notes = tuple(notes) + (SHORT_NOTE,)
    steady = samples[int(round(plan.warmup_s / plan.interval_s)) :]
    return BandwidthMeasurement(
        target=target.name,
        role=target.role,
        url=url or target.url or "",
        direction=plan.direction,
        streams=plan.streams,
        engine=engine,
        duration_s=round(t_end - t_start, 3),
        warmup_s=plan.warmup_s,
        interval_s=plan.interval_s,
        goodput_mbps=None if goodput is None else round(goodput, 3),
        p50_mbps=_r(percentile(steady, 50)),
        p90_mbps=_r(percentile(steady, 90)),
        bytes_total=last_total,
        samples_mbps=tuple(round(x, 3) for x in samples),
        per_stream_mbps=tuple(round(b * 8 / span / 1e6, 3) for b in per_stream_bytes),
        error=error,
        error_kind=error_kind,
        server=server,
        engine_raw=engine_raw,
        notes=notes,
    )


SHORT_NOTE = "engine.short_transfer"


def failed(
    target: Target,
    plan: ThroughputPlan,
    engine: str,
    error: str,
    kind: str,
    *,
    url: Optional[str] = None,
    server: Optional[dict[str, Any]] = None,
    engine_raw: Optional[dict[str, Any]] = None,
    notes: tuple[str, ...] = (),
) -> BandwidthMeasurement:
    """A measurement that moved nothing: the reason is the result."""
    return BandwidthMeasurement(
        target=target.name,
        role=target.role,
        url=url or target.url or "",
        direction=plan.direction,
        streams=plan.streams,
        engine=engine,
        duration_s=0.0,
        warmup_s=plan.warmup_s,
        interval_s=plan.interval_s,
        goodput_mbps=None,
        p50_mbps=None,
        p90_mbps=None,
        bytes_total=0,
        samples_mbps=(),
        error=one_line(error),
        error_kind=kind,
        server=server,
        engine_raw=engine_raw,
        notes=notes,
    )


def one_line(text: str, limit: int = 300) -> str:
    """Error text for a report line: whitespace collapsed, bounded (a server may answer a page)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _r(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(v, 3)
