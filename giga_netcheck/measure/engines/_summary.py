"""The reduction every engine shares: counter points -> samples, goodput, p50/p90, one result.

Every engine (the own ``http`` engine, speedtest-cli's transfers, LibreSpeed's protocol, the
scheduled light plan's capped transfers) samples its byte counters with ``poll_streams`` and
hands the points here, so every figure comes from one reduction: goodput by
:func:`giga_netcheck.core.goodput.goodput` in the variant the engine names (recorded as
``goodput_method``), samples and their p50/p90 after the warm-up.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from giga_netcheck.core.goodput import AFTER_WARMUP, FIRST_BYTE_TO_LAST, WHOLE_TRANSFER, Span, goodput
from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.core.stats import percentile, rounded
from giga_netcheck.measure.engines.base import ThroughputPlan, rate_samples


def summarize(
    target: Target,
    plan: ThroughputPlan,
    engine: str,
    points: Sequence[tuple[float, int, bool]],
    *,
    method: str = AFTER_WARMUP,
    spans: Sequence[Span] = (),
    per_stream_bytes: Sequence[int] = (),
    url: Optional[str] = None,
    error: Optional[str] = None,
    error_kind: Optional[str] = None,
    server: Optional[dict[str, Any]] = None,
    engine_raw: Optional[dict[str, Any]] = None,
    notes: tuple[str, ...] = (),
    whole_if_short: bool = False,
    proxy: Optional[str] = None,
) -> BandwidthMeasurement:
    """One measurement from ``poll_streams`` points (the first is ``(t0, 0, True)``).

    ``method``: ``after-warmup`` (``per_stream_bytes``: each stream's bytes, averaged over the
    whole test) or ``first-byte-to-last`` (``spans``: each stream's bytes and first/last byte
    times; no warm-up cut, samples only from intervals that ended with a stream still moving,
    each stream's rate over its own first-to-last byte).
    ``whole_if_short``: for clients that move a fixed amount (speedtest-cli's set of files), a
    transfer that ended before the warm-up still gets a figure, over its whole time
    (``whole-transfer``), and the note ``engine.short_transfer`` says so."""
    t_start = points[0][0]
    t_end = points[-1][0]
    span = max(t_end - t_start, 1e-9)
    capped = method == FIRST_BYTE_TO_LAST
    g = goodput(method, points=points, warmup_s=plan.warmup_s, spans=spans, whole_if_short=whole_if_short, errored=error is not None)
    if g.method == WHOLE_TRANSFER:
        notes = tuple(notes) + (SHORT_NOTE,)
    samples = rate_samples(points, only_alive=capped)
    steady = samples if capped else samples[int(round(plan.warmup_s / plan.interval_s)) :]
    if capped:
        moved = sum(s.bytes for s in spans)
        per_stream = tuple(
            0.0 if s.first_at is None else round(s.bytes * 8 / max((s.last_at or t_start) - s.first_at, 1e-9) / 1e6, 3) for s in spans
        )
    else:
        moved = points[-1][1]
        per_stream = tuple(round(b * 8 / span / 1e6, 3) for b in per_stream_bytes)
    return BandwidthMeasurement(
        target=target.name,
        role=target.role,
        url=url or target.url or "",
        direction=plan.direction,
        streams=plan.streams,
        engine=engine,
        duration_s=round(t_end - t_start, 3),
        warmup_s=0.0 if capped else plan.warmup_s,
        interval_s=plan.interval_s,
        goodput_mbps=rounded(g.mbps),
        p50_mbps=rounded(percentile(steady, 50)),
        p90_mbps=rounded(percentile(steady, 90)),
        bytes_total=moved,
        samples_mbps=tuple(round(x, 3) for x in samples),
        per_stream_mbps=per_stream,
        error=error,
        error_kind=error_kind,
        server=server,
        engine_raw=engine_raw,
        notes=notes,
        proxy=proxy,
        goodput_method=g.method,
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
    method: str = AFTER_WARMUP,
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
        goodput_method=method,
    )


def one_line(text: str, limit: int = 300) -> str:
    """Error text for a report line: whitespace collapsed, bounded (a server may answer a page)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
